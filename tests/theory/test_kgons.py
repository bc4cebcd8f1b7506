"""Exactly-one-active loss and k-gon critical points (REFERENCE E) against brute force."""

import numpy as np
import pytest
from scipy.integrate import quad

from toymodels import theory
from toymodels.theory.kgons import _kgon_arrays


def _quad_loss(W, b):
    """The definition, integrated numerically per (input i, output j)."""
    c = W.shape[1]
    total = 0.0
    for i in range(c):
        for j in range(c):
            a = float(W[:, j] @ W[:, i])
            t = float(i == j)
            kink = [] if a == 0 else [-b[j] / a]
            pts = [p for p in kink if 0 < p < 1] or None
            val, _ = quad(lambda mu: (t * mu - max(mu * a + b[j], 0.0)) ** 2, 0, 1,
                          points=pts, epsabs=1e-13, epsrel=1e-12)
            total += val
    return total / c


@pytest.mark.parametrize("seed", range(5))
def test_exactly_one_loss_matches_quadrature(seed):
    rng = np.random.default_rng(seed)
    m, c = [(2, 4), (2, 6), (3, 5), (1, 3), (4, 4)][seed]
    W = rng.normal(size=(m, c))
    b = rng.uniform(-1.0, 1.0, size=c)
    b[0], b[1], b[2] = 0.0, 0.5, -0.5
    gram = W.T @ W
    assert (gram < 0).any() and (gram > 0).any() and (b > 0).any() and (b < 0).any()
    np.testing.assert_allclose(theory.exactly_one_loss(W, b), _quad_loss(W, b), rtol=1e-8)


def test_exactly_one_loss_zero_and_unused_columns():
    assert theory.exactly_one_loss(np.zeros((2, 6)), np.zeros(6)) == pytest.approx(1 / 3)
    # a zero column with bias beta: (1/c)(1/3 - beta + c beta^2) on top of the rest
    W = np.zeros((2, 6))
    for beta in (-0.3, 0.05, 1 / 12, 0.4):
        b = np.zeros(6)
        b[2] = beta
        r = max(beta, 0.0)
        expected = (5 / 3 + 1 / 3 - r + 6 * r**2) / 6
        assert theory.exactly_one_loss(W, b) == pytest.approx(expected, abs=1e-14)


@pytest.fixture(scope="module")
def kgons():
    return {k: theory.kgon(6, k) for k in range(2, 7)}


def _flat(W, b):
    return np.concatenate([W.ravel(), b])


def test_kgon_is_critical_in_full_space(kgons):
    for k, g in kgons.items():
        neg = theory.kgon(6, k, unused_bias=-0.05) if k < 6 else g
        x0 = _flat(neg.W, neg.b)
        f = lambda x: theory.exactly_one_loss(x[:12].reshape(2, 6), x[12:])  # noqa: E731
        h = 1e-6
        grad = np.array([(f(x0 + h * e) - f(x0 - h * e)) / (2 * h) for e in np.eye(18)])
        assert np.abs(grad).max() < 1e-6, (k, grad)
        assert neg.loss == pytest.approx(g.loss, abs=1e-14)  # unused bias <= 0 is free


def test_kgon_beats_family_grid(kgons):
    ls = np.linspace(0.0, 2.0, 81)
    bs = np.linspace(-1.0, 0.5, 61)
    for k, g in kgons.items():
        grid = min(theory.exactly_one_loss(*_kgon_arrays(6, k, l, bb, 0, 0.0))
                   for l in ls for bb in bs)
        assert g.loss <= grid + 1e-12, k


def test_kgon_values(kgons):
    losses = [kgons[k].loss for k in range(2, 7)]
    assert np.all(np.diff(losses) < 0)  # c = 6: more vertices, lower loss
    for k in (2, 3, 4):  # interference cos <= 0: l = 1, b = 0, only dropped features cost
        g = kgons[k]
        assert (g.length, g.bias) == (1.0, 0.0)
        assert g.loss == pytest.approx((6 - k) / 18, abs=1e-14)
    for k in (5, 6):
        assert kgons[k].bias < 0 and kgons[k].length > 1
    # REFERENCE E: L = (k ell_k + (c - k)/3)/c, (l*, b*) independent of c
    for k in (3, 5):
        assert theory.kgon(8, k).length == pytest.approx(kgons[k].length, abs=1e-6)
        assert theory.kgon(8, k).bias == pytest.approx(kgons[k].bias, abs=1e-6)


@pytest.mark.parametrize("k", [2, 4, 5])
def test_sigma_plus_lowers_loss_by_quarter_c_squared(kgons, k):
    for sigma in range(1, 6 - k + 1):
        g = theory.kgon(6, k, sigma=sigma)
        assert g.loss == pytest.approx(kgons[k].loss - sigma / (4 * 36), abs=1e-12)
        assert np.count_nonzero(g.b == 1 / 12) == sigma
        assert theory.exactly_one_loss(g.W, g.b) == g.loss


def test_free_energy_crossing():
    n = theory.free_energy_crossing(-0.01, -1.0, 5.0)
    assert -0.01 * n - np.log(n) + 5.0 == pytest.approx(0.0, abs=1e-9)
    assert theory.free_energy_crossing(0.01, 1.0, 1.0) is None  # positive for n >= 1
    with pytest.raises(ValueError):
        theory.kgon(6, 7)
