"""Dropout at m = 1: the mixture identity and the candidates against Monte Carlo of the
trainer's own objective (train.weighted_mse with data.dropout_keep), and the boundary
against a grid search of the candidate losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad

from toymodels import data, theory, threefry
from toymodels.models import get_model
from toymodels.train import weighted_mse

BATCH, BATCHES = 8192, 128  # 1M samples per estimate
NODES, WEIGHTS = np.polynomial.legendre.leggauss(2)  # exact for cubics on [-1, 1]


def _inner(u, G, b, I):
    """∫_0^1 Σ_i I_i (x_i - ReLU(G_i·x + b_i))² dv at x = (u, v), exactly: each term is a
    quadratic in v on either side of its kink."""
    total = 0.0
    for i in range(2):
        z0, slope = G[i, 0] * u + b[i], G[i, 1]
        kink = np.clip(-z0 / slope, 0.0, 1.0) if slope != 0 else 0.0
        for lo, hi in ((0.0, kink), (kink, 1.0)):
            v = (lo + hi) / 2 + (hi - lo) / 2 * NODES
            x_i = u if i == 0 else v
            error = (x_i - np.maximum(z0 + slope * v, 0.0)) ** 2
            total += I[i] * (hi - lo) / 2 * np.sum(WEIGHTS * error)
    return total


def _exact_loss(W, b, p, importance):
    """L(W, b) of x' = ReLU(WᵀW x + b), n = 2, no dropout: the strata by number of active
    features, the one-feature ones by adaptive quadrature, the two-feature one as an
    adaptive outer quadrature of an exact inner integral."""
    G, b, I = W.T @ W, np.asarray(b, float), np.asarray(importance, float)

    def f(x0, x1):
        x = np.array([x0, x1])
        return float(np.sum(I * (x - np.maximum(G @ x + b, 0.0)) ** 2))

    one0 = quad(lambda u: f(u, 0.0), 0, 1, epsabs=1e-12, limit=200)[0]
    one1 = quad(lambda u: f(0.0, u), 0, 1, epsabs=1e-12, limit=200)[0]
    both = quad(lambda u: _inner(u, G, b, I), 0, 1, epsabs=1e-11, limit=200)[0]
    return (1 - p) ** 2 * f(0.0, 0.0) + p * (1 - p) * (one0 + one1) + p * p * both


@jax.jit
def _mc_many(W, b, p, r, q, key):
    """[C] means and [C] standard errors of the training objective with dropout q, for C
    models W: [C, 1, 2], b: [C, 2] on the same samples."""
    importance = jnp.stack([jnp.ones_like(r), r])
    forward = get_model("relu_output").forward

    def one_batch(key):
        values_key, drop_key = jax.random.split(key)
        x = data.make_batch(threefry.uniform(values_key, (2, BATCH)), jnp.stack([p, p]))
        keep = data.dropout_keep(threefry.uniform(drop_key, (1, BATCH)), q)
        return jax.vmap(lambda W_, b_: weighted_mse({"W": W_, "b": b_}, x, x, keep,
                                                    importance, forward))(W, b)

    means = jax.lax.map(one_batch, jax.random.split(key, BATCHES))  # [BATCHES, C]
    return means.mean(0), means.std(0, ddof=1) / np.sqrt(BATCHES)


def _mc_training_loss(Ws, bs, p, r, q, seed=0):
    f32 = lambda v: jnp.asarray(np.asarray(v), jnp.float32)
    mean, se = _mc_many(f32(Ws), f32(bs), f32(p), f32(r), f32(q), jax.random.key(seed))
    return np.asarray(mean, np.float64), np.asarray(se, np.float64)


CASES = [  # (W, b, p, r, q): generic weights, both signs, biases on both sides of 0
    (np.array([[0.9, -0.7]]), np.array([0.05, -0.1]), 0.3, 0.5, 0.3),
    (np.array([[0.6, 1.1]]), np.array([0.2, -0.3]), 0.8, 2.0, 0.5),
    (np.array([[1.3, -0.4]]), np.array([-0.05, 0.1]), 0.05, 1.0, 0.1),
]


@pytest.mark.parametrize("W, b, p, r, q", CASES)
def test_dropout_mixture_matches_monte_carlo_of_training_loss(W, b, p, r, q):
    mc, se = (v[0] for v in _mc_training_loss(W[None], b[None], p, r, q))
    exact = lambda W_, b_: _exact_loss(W_, b_, p, [1.0, r])
    mixture = theory.dropout_loss(exact, W, b, q)
    assert abs(mc - mixture) < 3 * se, (mc, mixture, se)
    # the test can fail: without dropout, or mixing without the 1/√(1-q) rescaling
    naive = q * exact(0 * W, b) + (1 - q) * exact(W, b)
    assert abs(mc - exact(W, b)) > 10 * se and abs(mc - naive) > 10 * se


CANDIDATE_FAMILIES = {  # closed-form losses, the candidates' (W, b)
    "fixed": (theory.candidate_losses_2_1_dropout, theory.candidates_2_1_dropout),
    "biased": (theory.candidate_losses_2_1_biased, theory.candidates_2_1_biased),
}


@pytest.mark.parametrize("family", sorted(CANDIDATE_FAMILIES))
@pytest.mark.parametrize("p, r, q", [(0.2, 0.5, 0.3), (0.9, 2.0, 0.5)])
def test_candidates_under_dropout_match_monte_carlo(family, p, r, q):
    losses, candidates = CANDIDATE_FAMILIES[family]
    closed = losses(p, r, q)
    Ws, bs = zip(*candidates(p, q))
    mc, se = _mc_training_loss(np.stack(Ws), np.stack(bs), p, r, q)
    assert (np.abs(mc - closed) < 3 * se + 1e-7).all(), (mc, closed, se)
    if family == "biased":  # their best biases can only lower the fixed candidates' losses
        assert (closed <= theory.candidate_losses_2_1_dropout(p, r, q)[:3] + 1e-12).all()


def test_reduces_to_dropout_free_theory_at_q0():
    p, r = np.meshgrid(np.geomspace(0.01, 1, 41), np.geomspace(0.1, 10, 41))
    losses = theory.candidate_losses_2_1_dropout(p, r, 0.0)
    np.testing.assert_allclose(losses[:3], theory.candidate_losses_2_1(p, r), rtol=1e-12)
    assert (theory.phase_2_1_dropout(p, r, 0.0) == theory.phase_2_1(p, r)).all()
    np.testing.assert_allclose(theory.boundary_2_1_dropout(r, 0.0), theory.boundary_2_1(r))
    assert theory.dedicated_range_2_1_dropout(0.0) == pytest.approx(
        theory.dedicated_boundary_density("2_1"))


P_GRID = np.linspace(1e-5, 1.0, 100_001)


@pytest.mark.parametrize("q", [0.1, 0.3, 0.5])
@pytest.mark.parametrize("r", [0.1, 0.5, 1.0, 2.0, 8.0])
def test_boundary_is_where_the_candidate_losses_cross(r, q):
    phases = theory.phase_2_1_dropout(P_GRID, r, q)
    brute = P_GRID[phases == "superposition"].max()
    assert theory.boundary_2_1_dropout(r, q) == pytest.approx(brute, abs=2e-5)
    assert theory.boundary_2_1_dropout(r, q) < theory.boundary_2_1(r)  # dropout shrinks it


@pytest.mark.parametrize("q", [0.1, 0.5])
def test_vertical_boundary_at_r1(q):
    lo, hi = theory.dedicated_range_2_1_dropout(q)
    below, above = theory.phase_2_1_dropout(P_GRID, 0.999, q), theory.phase_2_1_dropout(
        P_GRID, 1.001, q)
    switch = P_GRID[(below == "unrepresented") & (above == "dedicated")]
    assert switch.min() == pytest.approx(lo, abs=1e-3)
    assert switch.max() == pytest.approx(hi, abs=1e-4)
    if hi < 1.0:  # q > 1/4: the densest rows drop both features
        assert set(theory.phase_2_1_dropout(P_GRID[P_GRID > hi + 1e-3], 5.0, q)) == {
            "unrepresented"}


def test_mixture_refuses_more_than_one_hidden_unit():
    with pytest.raises(ValueError, match="one hidden unit"):
        theory.dropout_loss(lambda W, b: 0.0, np.ones((2, 2)), np.zeros(2), 0.1)


@pytest.mark.parametrize("p, q", [(0.3, 0.3), (0.8, 0.5), (0.5, 0.0)])
def test_biased_candidates_are_the_optima_of_their_families(p, q):
    """Against a numerical minimisation of the exact mixture (quadrature, no closed form):
    a dedicated feature over its norm and bias, the unit pair over its shared bias."""
    from scipy.optimize import minimize, minimize_scalar

    mix = lambda W, b: theory.dropout_loss(lambda W_, b_: _exact_loss(W_, b_, p, [1.0, 0.0]),
                                           W, b, q)
    ded = minimize(lambda x: mix(np.array([[x[0], 0.0]]), np.array([x[1], 0.0])),
                   [0.8, 0.1], method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10})
    loss, a, beta = (float(v) for v in theory.dedicated_dropout(p, q))
    assert ded.fun == pytest.approx(loss, abs=1e-7)
    assert abs(ded.x[0]) ** 2 == pytest.approx((1 - q) * a, abs=1e-3)
    assert ded.x[1] == pytest.approx(beta, abs=1e-3)
    k = np.sqrt(1 - q)
    pair = minimize_scalar(lambda c: mix(np.array([[k, -k]]), np.array([c, c])),
                           bounds=(0.0, 0.9), method="bounded", options={"xatol": 1e-7})
    loss, bias = (float(v) for v in theory.antipodal_dropout(p, q))
    assert pair.fun == pytest.approx(loss, abs=1e-8)  # importances [1, 0]: one member
    assert pair.x == pytest.approx(bias, abs=1e-4)


@pytest.mark.parametrize("q", [0.0, 0.5])
@pytest.mark.parametrize("r", [0.2, 1.0, 4.0])
def test_biased_boundary_is_where_the_losses_cross(r, q):
    grid = np.linspace(0.05, 1.0, 400)
    phases = theory.phase_2_1_biased(grid, r, q)
    brute = grid[phases == "superposition"].max()
    assert theory.boundary_2_1_biased(r, q) == pytest.approx(brute, abs=grid[1] - grid[0])
