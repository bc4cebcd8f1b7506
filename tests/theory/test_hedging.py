"""Feature hedging's closed form (theory.hedging) against a one-latent ReLU SAE whose
exact expected MSE, summed over the enumerated firing states and magnitudes, is minimised
numerically over all its parameters (decoder row, decoder bias, encoder row and bias)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.optimize import minimize

from toymodels import theory


def _states(p_parent, p_child, world, mean, std):
    """The world's inputs in the (f_p, f_c) plane and their probabilities: the 4 firing
    states x 2 magnitudes each (mean ± std, each with probability 1/2: variance std²)."""
    xs, ps = [], []
    for fp, fc, sp, sc in itertools.product((0, 1), (0, 1), (-1, 1), (-1, 1)):
        if world == "independent":
            prob = (p_parent if fp else 1 - p_parent) * (p_child if fc else 1 - p_child)
        else:  # c only with p, then with p_child
            prob = (p_parent * (p_child if fc else 1 - p_child)) if fp else (1 - p_parent) * (fc == 0)
        xs.append([fp * (mean[0] + sp * std[0]), fc * (mean[1] + sc * std[1])])
        ps.append(prob / 4)
    return np.array(xs), np.array(ps)


def _sae_mse(params, xs, ps, bias):
    """E|x - b - ReLU(e·x + β) v|² of the SAE with params (v[2], e[2], β, b[2])."""
    v, e, beta = params[:2], params[2:4], params[4]
    b = params[5:7] if bias else np.zeros(2)
    z = np.maximum(xs @ e + beta, 0.0)
    r = xs - b - z[:, None] * v
    return float(ps @ (r * r).sum(1))


def _fit(xs, ps, bias, starts=6):
    """The best of a few BFGS runs: (decoder angle from f_p, in (-π/2, π/2], and loss)."""
    rng = np.random.default_rng(0)
    inits = [np.array([1.0, 0.3, 1.0, 0.3, 0.0, 0.0, 0.0]),
             np.array([0.3, 1.0, 0.3, 1.0, 0.0, 0.0, 0.0])]
    inits += [rng.normal(size=7) for _ in range(starts - 2)]
    best = min((minimize(_sae_mse, x0, (xs, ps, bias), method="BFGS", options={"gtol": 1e-11})
                for x0 in inits), key=lambda r: r.fun)
    v = best.x[:2] * np.sign(best.x[0] or 1.0)
    return np.arctan2(v[1], v[0]), best.fun


def _line_gap(a, b):
    """|sin(a - b)|: 0 when the angles a and b give the same line (± the direction)."""
    return abs(np.sin(a - b))


CASES = [  # p_parent, p_child, mean, std
    (0.3, 0.2, (1.0, 1.0), (0.0, 0.0)),
    (0.1, 0.5, (1.0, 1.0), (0.0, 0.0)),
    (0.5, 0.05, (1.0, 1.0), (0.0, 0.0)),
    (0.2, 0.7, (1.0, 1.0), (0.0, 0.0)),  # independent: the child the more variable
    (0.3, 0.3, (1.0, 0.6), (0.4, 0.2)),
]


@pytest.mark.parametrize("p_parent,p_child,mean,std", CASES)
@pytest.mark.parametrize("world", theory.hedging.WORLDS)
def test_hedging_angle_matches_numerical_sae_optimum(p_parent, p_child, mean, std, world):
    var = tuple(s * s for s in std)
    xs, ps = _states(p_parent, p_child, world, mean, std)
    angle, loss = _fit(xs, ps, bias=True)
    cov = theory.amplitude_cov(p_parent, p_child, world, mean, var)
    assert _line_gap(angle, theory.hedging_angle(cov)) < 1e-5
    assert loss == pytest.approx(theory.optimal_mse(cov), abs=1e-9)
    share = theory.child_share(p_parent, p_child, world, mean, var)
    assert abs(share) == pytest.approx(abs(np.sin(angle)), abs=1e-5)
    if world == "independent" and cov[0, 0] > cov[1, 1]:
        assert share == 0.0  # a latent that tracks p carries none of c
    if world == "hierarchical":
        assert share > 0.0


@pytest.mark.parametrize("world", theory.hedging.WORLDS)
def test_without_decoder_bias_even_independent_features_hedge(world):
    xs, ps = _states(0.3, 0.2, world, (1.0, 1.0), (0.0, 0.0))
    angle, loss = _fit(xs, ps, bias=False)
    raw = theory.raw_moment(0.3, 0.2, world)
    assert _line_gap(angle, theory.hedging_angle(raw)) < 1e-5
    assert loss == pytest.approx(theory.optimal_mse(raw), abs=1e-9)
    assert theory.child_share(0.3, 0.2, world, bias=False) > 0.1


def test_moments_match_the_enumerated_law():
    for p_parent, p_child, mean, std in CASES:
        var = tuple(s * s for s in std)
        for world in theory.hedging.WORLDS:
            xs, ps = _states(p_parent, p_child, world, mean, std)
            m = ps @ xs
            np.testing.assert_allclose(theory.amplitude_mean(p_parent, p_child, world, mean), m)
            np.testing.assert_allclose(theory.amplitude_cov(p_parent, p_child, world, mean, var),
                                       (xs - m).T @ (ps[:, None] * (xs - m)), atol=1e-15)


def test_limits():
    # a rare child: no hedging in the limit, and θ ≈ q for magnitude-one features
    # (tan 2θ = 2q(1 - π_p) / ((1 - π_p) - q(1 - π_p q)), expanded by hand)
    q = np.array([1e-3, 1e-5, 0.0])
    theta = np.arcsin(theory.child_share(0.3, q))
    np.testing.assert_allclose(theta[:2] / q[:2], 1.0, rtol=2e-3)
    assert theta[2] == 0.0
    # a child that always comes with its parent: the latent is (f_p + f_c)/√2
    assert theory.child_share(0.3, 1.0) == pytest.approx(np.sqrt(0.5))
    # independent, the child the more variable: the latent tracks the child
    assert theory.child_share(0.1, 0.4, "independent") == pytest.approx(1.0)
    # the hierarchical share grows with the child's probability
    assert np.all(np.diff(theory.child_share(0.3, np.linspace(0.0, 1.0, 11))) > 0)


def test_decoder_direction_in_a_rotated_basis():
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    cov = theory.amplitude_cov(0.3, 0.4)
    w = theory.decoder_direction(cov, Q[:, :2])
    theta = theory.hedging_angle(cov)
    np.testing.assert_allclose(w, np.cos(theta) * Q[:, 0] + np.sin(theta) * Q[:, 1], atol=1e-12)


def _train_angles(p_parent, p_child, hierarchical, steps=600, batch=1024):
    """[R] decoder angles of one-latent ReLU SAEs with a decoder bias, trained by Adam on
    pure MSE over fresh magnitude-one samples, one per (p_child, hierarchical) pair."""

    def sample(key, q, hier):
        u = jax.random.uniform(key, (batch, 2))
        parent = u[:, 0] < p_parent
        child = jnp.where(hier, parent & (u[:, 1] < q), u[:, 1] < q)
        return jnp.stack([parent, child], 1).astype(jnp.float32)

    def mse(params, x):
        z = jax.nn.relu(x @ params["e"] + params["beta"])
        r = x - params["b"][None, :] - z[:, None] * params["v"][None, :]
        return jnp.mean(jnp.sum(r * r, 1))

    opt = optax.adam(optax.cosine_decay_schedule(1e-2, steps))

    def train(q, hier):
        start = jnp.array([np.cos(0.3), np.sin(0.3)], jnp.float32)
        params = {"v": start, "e": start, "beta": jnp.float32(0.0), "b": jnp.zeros(2)}

        def step(carry, key):
            params, state = carry
            grads = jax.grad(mse)(params, sample(key, q, hier))
            updates, state = opt.update(grads, state)
            return (optax.apply_updates(params, updates), state), None

        keys = jax.random.split(jax.random.key(0), steps)
        (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), keys)
        return jnp.arctan2(params["v"][1], params["v"][0])

    return np.asarray(jax.jit(jax.vmap(train))(jnp.asarray(p_child, jnp.float32),
                                               jnp.asarray(hierarchical)))


def test_gradient_descent_finds_the_closed_form():
    q = np.array([0.05, 0.2, 0.05, 0.2, 0.5])
    hier = np.array([False, False, True, True, True])
    trained = _train_angles(0.3, q, hier)
    for world, rows in (("independent", ~hier), ("hierarchical", hier)):
        expected = theory.hedging_angle(theory.amplitude_cov(0.3, q[rows], world))
        np.testing.assert_allclose(trained[rows], expected, atol=0.01)
