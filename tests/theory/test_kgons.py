"""k-gon critical points of the exactly-one loss (REFERENCE E) against brute force."""

import numpy as np
import pytest

from toymodels import theory
from toymodels.theory.kgons import _kgon_arrays


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


def test_kgon_rejects_more_vertices_than_features():
    with pytest.raises(ValueError):
        theory.kgon(6, 7)
