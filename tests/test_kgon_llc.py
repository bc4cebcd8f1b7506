"""The LLC of the c = 6, m = 2 k-gon critical points (Chen et al. 2023) at n = 5000.

Theory: 7 at the 5-gon, 8.5 at the 5+-gon and the 6-gon. The benchmark
``benchmarks/kgon_llc_table.py`` (``results_kgon_llc.json``) holds the full table; the
slow tests here re-run its exact-loss setting at two points.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from toymodels import theory
from toymodels.evaluation import exactly_one_loss_jnp
from toymodels.sgld import llc

UNUSED_BIAS = -2.0  # < 0: a smooth critical point (0 sits on the ReLU kink)


@functools.cache
def _kgon(k, sigma):
    return theory.kgon(6, k, sigma=sigma, unused_bias=UNUSED_BIAS)  # about 2 s each


def _point(k, sigma=0):
    g = _kgon(k, sigma)
    return {"W": jnp.asarray(g.W, jnp.float32), "b": jnp.asarray(g.b, jnp.float32)}


def exact_loss(p):
    return exactly_one_loss_jnp(p["W"], p["b"])


def test_jnp_loss_matches_numpy_closed_form():
    rng = np.random.default_rng(0)
    for _ in range(20):
        W, b = rng.normal(size=(2, 6)), 0.5 * rng.normal(size=6)
        got = float(exactly_one_loss_jnp(jnp.asarray(W), jnp.asarray(b)))
        np.testing.assert_allclose(got, theory.exactly_one_loss(W, b), rtol=1e-5)
    for k, sigma in [(5, 0), (5, 1), (6, 0)]:
        got = float(exact_loss(_point(k, sigma)))
        np.testing.assert_allclose(got, _kgon(k, sigma).loss, rtol=1e-6)


@pytest.mark.parametrize("k, sigma, lam", [(5, 0, 7.0), (5, 1, 8.5), (6, 0, 8.5)])
def test_hessian_rank_is_twice_the_theory_lambda(k, sigma, lam):
    # these critical points are minimally singular: the loss is quadratic in the
    # directions the Hessian sees (smallest nonzero eigenvalue 0.021 at the 6-gon) and
    # flat in the others (rotation; the unused columns and negative biases), so
    # lambda = rank / 2; the gradient vanishes.
    flat, unravel = ravel_pytree(_point(k, sigma))
    loss = lambda v: exact_loss(unravel(v))  # noqa: E731
    hess = np.asarray(jax.jit(jax.hessian(loss))(flat), np.float64)
    eig = np.linalg.eigvalsh(hess)
    assert np.all(eig > -1e-4)
    assert int(np.sum(eig > 1e-3)) == 2 * lam
    assert float(np.max(np.abs(jax.grad(loss)(flat)))) < 1e-5


def _llc_exact(k, seed):
    return llc(exact_loss, _point(k), n=5000, key=jax.random.key(seed), chains=4,
               draws=20_000, burn_in=5_000, epsilon=1e-4, gamma=3.0)


@pytest.mark.slow
@pytest.mark.parametrize("k, lam, lo, hi", [(5, 7.0, 1.05, 1.30), (6, 8.5, 0.98, 1.18)])
def test_kgon_llc_near_theory(k, lam, lo, hi):
    """Exact-loss LLC at nbeta = n / ln n (n = 5000), eps = 1e-4, gamma = 3, 4 chains.

    Measured (benchmarks/results_kgon_llc.json, seeds 0..5, one estimate each): 5-gon
    7.72..8.67 (mean 8.08, +15%), 6-gon 8.57..9.53 (mean 9.00, +6%). Tolerance: the
    mean of seeds 0, 1 within [1.05, 1.30] x 7 and [0.98, 1.18] x 8.5, the single-seed
    range widened by about 0.05 x lambda. The estimate sits ABOVE theory, as Chen et
    al.'s did (5-gon 7.705, 6-gon 9.027 at n = 5000), for three reasons:

    * finite n (the main one): at nbeta = 587 the tempered posterior spreads about
      1/sqrt(nbeta a) = 0.3 along the softest Hessian direction (a = 0.021 at the
      6-gon), where the cubic and quartic terms of L and the ReLU kink surfaces matter.
      Scaling nbeta by 10 (with gamma x 10, eps / 10, which leaves the quadratic
      prediction unchanged) brings the estimates from 8.08 to 7.02 (5-gon) and from
      9.00 to 8.34 (6-gon), close to the quadratic prediction below.
    * gamma localisation pulls the estimate DOWN: for the quadratic approximation the
      estimator's mean is sum_i nbeta a_i / (2 (nbeta a_i + gamma)) / (1 - eps p_i/4),
      6.86 (5-gon) and 8.21 (6-gon) at gamma = 3 (the default gamma = 100 would give
      4.4 and 5.0).
    * discretisation pushes it UP (the 1 / (1 - eps p / 4) factor, about +1% here).
    """
    est = np.mean([float(_llc_exact(k, seed).llc) for seed in (0, 1)])
    assert lo < est / lam < hi, est
