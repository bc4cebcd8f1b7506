"""The exactly-one-active loss (REFERENCE E) against numerical quadrature."""

import numpy as np
import pytest
from scipy.integrate import quad

from toymodels import theory


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
