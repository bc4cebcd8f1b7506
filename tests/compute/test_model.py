"""The residual MLP of one example (toymodels.compute.model and tasks) against a numpy
implementation written from the definitions (tests/compute/numpy_resid.py)."""

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels.compute import model, tasks
from toymodels import data
from toymodels.spec import DataSpec
from toymodels.residual_config import ResidualSpec, parse_residual

from tests.compute import numpy_resid

CASES = [  # (task, n_layers, split, bias, readout)
    ("identity_relu", 1, (5,), True, "transpose"),
    ("identity_relu", 2, (3, 2), True, "learned"),
    ("relu", 3, (2, 2, 1), False, "transpose"),
    ("abs", 2, (4, 1), True, "learned"),
    ("uand", 2, (3, 3), True, "learned"),
]


def random_params(spec: ResidualSpec, seed: int) -> dict:
    """The init's shapes with every entry random (biases too, so that they are tested)."""
    params = model.init(jax.random.key(seed), spec, 3)
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.normal(size=v.shape) * 0.5, jnp.float32) for k, v in params.items()}


@pytest.mark.parametrize("task,L,split,bias,readout", CASES)
def test_forward_and_labels_match_numpy(task, L, split, bias, readout):
    spec = ResidualSpec(7, 12, sum(split), L, split, bias, "fixed", readout, task)
    params = random_params(spec, L)
    x = numpy_resid.inputs(np.random.default_rng(0), 64, np.full(7, 0.4), task)
    forward = jax.jit(jax.vmap(partial(model.forward, spec=spec), in_axes=(None, 0)))
    got = forward(params, jnp.asarray(x, jnp.float32))
    want = numpy_resid.forward(params, x, task, L, bias, readout)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)
    folded = jax.jit(lambda p, x: jax.vmap(model.forward_folded, in_axes=(None, None, 0, None))(
        model.fold(p, spec), p.get("R"), x, spec))
    np.testing.assert_allclose(folded(params, jnp.asarray(x, jnp.float32)), want, rtol=2e-4, atol=2e-4)
    W_E = np.asarray(params["W_E"])
    gram = jnp.asarray(W_E.T @ W_E)
    s = 0.0 if task == "uand" else 0.7
    label = jax.jit(jax.vmap(partial(tasks.labels, spec=spec), in_axes=(0, None, None)))
    y = label(jnp.asarray(x, jnp.float32), gram, s)
    np.testing.assert_allclose(y, numpy_resid.labels(x, W_E, s, task), rtol=1e-5, atol=1e-5)
    assert y.shape == (64, spec.n_outputs)


def test_the_loss_is_the_importance_weighted_mean_over_outputs():
    spec = ResidualSpec(6, 10, 4, 1, (4,))
    params = random_params(spec, 0)
    x = numpy_resid.inputs(np.random.default_rng(1), 32, np.full(6, 0.5), "abs")
    I = np.linspace(1.0, 0.2, 6)
    err = (numpy_resid.forward(params, x, "identity_relu", 1, True, "transpose")
           - numpy_resid.labels(x, params["W_E"], -0.3, "identity_relu")) ** 2
    want = np.mean(err @ I / 6)
    loss = jax.jit(partial(tasks.loss, spec=spec))
    got = loss(params, jnp.asarray(x, jnp.float32), -0.3, jnp.asarray(I, jnp.float32))
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_init_follows_braun_et_al():
    """W_E: unit columns, a function of embed_seed alone; W_in, W_out: Kaiming-uniform
    bounds sqrt(6 / fan_in) (filled to within 5% of the bound, and their variance b²/3);
    biases zero."""
    spec = ResidualSpec(50, 400, 40, 2, (20, 20))
    a = model.init(jax.random.key(0), spec, 7)
    b = model.init(jax.random.key(1), spec, 7)
    c = model.init(jax.random.key(0), spec, 8)
    np.testing.assert_allclose(np.linalg.norm(a["W_E"], axis=0), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(a["W_E"], b["W_E"])
    assert not np.array_equal(a["W_E"], c["W_E"])
    assert not np.array_equal(a["W_in_0"], b["W_in_0"])
    for name, fan_in in (("W_in_0", 400), ("W_out_1", 20)):
        bound = np.sqrt(6.0 / fan_in)
        w = np.asarray(a[name])
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
        np.testing.assert_allclose(w.var(), bound ** 2 / 3, rtol=0.05)
    assert not np.any(a["b_in_0"]) and not np.any(a["b_out_1"])
    assert "W_U" not in a and "R" not in a


def test_uand_pairs_are_row_major():
    i, j = tasks.pairs(4)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


def test_signed_inputs_and_boolean_uand_inputs():
    """The sampler: Bernoulli(p) then Uniform[-1, 1) (signed tasks) or exactly 1 (uand)."""
    c = parse_residual({"residual": {"n_features": 10, "d_embed": 8, "d_mlp": 2},
                        "train": {"batch_size": 20000}})
    noise = jax.jit(partial(tasks.sample_noise, spec=c.spec))(jax.random.key(0))
    p = jnp.full(10, 0.3)
    x = np.asarray(tasks.sample(noise, p, c.spec.data, c.spec.residual))
    on = x != 0
    assert abs(on.mean() - 0.3) < 0.01 and x.min() < -0.99 and x.max() > 0.99
    assert abs((x[on] < 0).mean() - 0.5) < 0.01
    uand = ResidualSpec(10, 8, 2, 1, (2,), readout="learned", task="uand")
    xb = np.asarray(tasks.sample(noise, p, c.spec.data, uand))
    np.testing.assert_array_equal(xb != 0, on)
    assert set(np.unique(xb)) == {0.0, 1.0}


@pytest.mark.parametrize("law", [
    DataSpec(),
    DataSpec(magnitude="exponential"),
    DataSpec(unit_norm=True),
    DataSpec(correlation="correlated", set_size=2),
    DataSpec(inputs="exactly_one"),
])
def test_residual_draw_gives_the_toy_samplers_inputs_bit_for_bit(law):
    """tasks.sample_noise draws its values batch-major and no dropout uniforms: the
    inputs are still exactly the toy models' sampler's (data.sample_noise and
    data.sample_inputs, features on rows), transposed."""
    c = parse_residual({"residual": {"n_features": 6, "d_embed": 8, "d_mlp": 2},
                        "train": {"batch_size": 37}})
    spec = dataclasses.replace(c.spec, data=law)
    key = jax.random.key(5)
    p = jnp.array([0.5, 0.2, 0.9, 0.05, 0.3, 0.7])
    ours = tasks.sample(jax.jit(partial(tasks.sample_noise, spec=spec))(key), p, law,
                        spec.residual)
    theirs = data.sample_inputs(data.sample_noise(key, spec), p, law, signed=True).T
    assert ours.shape == (37, 6)
    np.testing.assert_array_equal(np.asarray(ours).view(np.uint32),
                                  np.asarray(theirs).view(np.uint32))


def test_residual_input_law_firing_rate_and_magnitudes_monte_carlo():
    """At Braun et al.'s p = 0.01 (n = 100): each feature fires with probability p,
    independently of the others, and an active value is Uniform[-1, 1): the firing rate,
    the rate of pairs, the magnitudes' mean, second moment and CDF at five points against
    the closed forms, each within 4 standard errors of a 100 x 2048 x 100 draw."""
    c = parse_residual({"residual": {"n_features": 100, "d_embed": 8, "d_mlp": 2},
                        "train": {"batch_size": 2048}})
    p = 0.01
    draw = jax.jit(jax.vmap(lambda k: tasks.sample(tasks.sample_noise(k, c.spec),
                                                   jnp.full(100, p), c.spec.data,
                                                   c.spec.residual)))
    x = np.asarray(draw(jax.random.split(jax.random.key(11), 100)))  # [100, B, n]
    on = x != 0
    N = on.size
    assert abs(on.mean() - p) < 4 * np.sqrt(p * (1 - p) / N)
    both = (on[..., 0::2] & on[..., 1::2]).mean()  # disjoint pairs: p^2 if independent
    assert abs(both - p * p) < 4 * np.sqrt(p * p * (1 - p * p) / (N // 2))
    v = x[on].astype(np.float64)
    m = v.size
    assert abs(v.mean()) < 4 * np.sqrt(1 / 3 / m)
    assert abs((v ** 2).mean() - 1 / 3) < 4 * np.sqrt((1 / 5 - 1 / 9) / m)
    for t in (-0.9, -0.5, 0.0, 0.3, 0.8):
        F = (t + 1) / 2
        assert abs((v <= t).mean() - F) < 4 * np.sqrt(F * (1 - F) / m)
    assert v.min() >= -1 and v.max() < 1
