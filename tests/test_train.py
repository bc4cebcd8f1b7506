"""The trainer: batched equals alone, draws shared per seed, schedule, data distribution."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import toymodels as tm
from toymodels import data, evaluation
from toymodels.spec import ModelSpec, Spec, TrainSpec
from toymodels.train import block_size, lr_multiplier, make_train

SPEC = Spec(ModelSpec("relu_output", 6, 3), TrainSpec(steps=40, batch_size=32, log_every=10))


def _hypers():
    return [
        tm.make_hyper(6, feature_probability=0.3, importance=0.9 ** np.arange(6)),
        tm.make_hyper(6, feature_probability=1.0, dropout=0.2, learning_rate=3e-3),
        tm.make_hyper(6, feature_probability=0.05, weight_decay=0.0),
    ]


def _stack(hypers):
    return jax.tree.map(lambda *a: np.stack(a), *hypers)


def _runs(n):
    """n runs cycling through three hyperparameter sets and two seeds (slots 0, 1)."""
    hypers = [_hypers()[r % 3] for r in range(n)]
    return _stack(hypers), np.arange(n) % 2


def test_vmapped_runs_equal_runs_trained_alone():
    """Runs trained together in groups (two groups of V) give the bits of runs trained alone."""
    V = block_size(SPEC)
    hyper, slot = _runs(2 * V)
    root, seeds = jax.random.key(0), jnp.array([3, 7])
    keys = jax.vmap(jax.random.fold_in, (None, 0))(root, seeds)
    shared = evaluation.eval_key(0)
    batched = jax.jit(make_train(SPEC))(keys, jnp.asarray(slot, jnp.int32), hyper, shared)
    one = jax.jit(tm.make_train_one(SPEC))
    for r in (0, 1, 5, 2 * V - 1):  # first and middle lanes, and the second group
        alone = one(jax.random.fold_in(root, seeds[slot[r]]), jax.tree.map(lambda a: a[r], hyper),
                    shared)
        for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(batched)):
            np.testing.assert_array_equal(a, b[r])


def test_runs_sharing_a_seed_share_init_and_draws():
    """Two runs with the same seed and hyperparameters are identical; another seed is not."""
    V = block_size(SPEC)
    hyper = _stack([_hypers()[0]] * V)
    keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(0), jnp.array([0, 1]))
    slot = jnp.asarray(np.r_[0, 0, np.ones(V - 2)], jnp.int32)
    out = jax.jit(make_train(SPEC))(keys, slot, hyper, evaluation.eval_key(0))
    np.testing.assert_array_equal(out.params["W"][0], out.params["W"][1])
    assert not np.allclose(out.params["W"][0], out.params["W"][2])


def test_make_batch_distribution():
    u = jax.random.uniform(jax.random.key(1), (2, 200_000))
    x = np.asarray(data.make_batch(u, jnp.array([0.1, 1.0]))).T
    active = x[:, 0] > 0
    assert abs(active.mean() - 0.1) < 0.005
    assert abs(x[active, 0].mean() - 0.5) < 0.01 and x.max() < 1.0
    assert abs(x[:, 0].var() - (0.1 / 3 - 0.1**2 / 4)) < 0.002  # E[x^2] - E[x]^2 with E[x^2] = p/3
    assert (x[:, 1] > 0).mean() > 0.999


def test_dropout_keep_is_inverted_dropout():
    u = jax.random.uniform(jax.random.key(2), (100_000,))
    keep = np.asarray(data.dropout_keep(u, jnp.float32(0.3)))
    assert abs((keep == 0).mean() - 0.3) < 0.01
    np.testing.assert_allclose(keep[keep > 0], 1 / 0.7, rtol=1e-6)
    assert abs(keep.mean() - 1.0) < 0.02
    np.testing.assert_array_equal(np.asarray(data.dropout_keep(u, jnp.float32(0.0))), 1.0)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_schedules(schedule):
    """Warm-up c / W at update count c (the first update has c = 0), then the schedule."""
    m = lr_multiplier(TrainSpec(steps=1000, log_every=100, schedule=schedule, warmup_steps=100))
    at = lambda s: float(m(jnp.array(s)))
    assert at(0) == 0.0 and at(50) == pytest.approx(0.5) and at(99) == pytest.approx(0.99)
    assert at(100) == pytest.approx(1.0)
    if schedule == "constant":
        assert at(999) == 1.0
    else:
        assert at(550) == pytest.approx(0.5, abs=1e-6) and at(1000) == pytest.approx(0.0, abs=1e-6)


def _optax_schedule(schedule, lr, W, steps):
    """The reference: optax's own schedules (a cosine of zero length is refused by optax,
    so W = steps is the warm-up alone, then the peak)."""
    if schedule == "cosine" and W < steps:
        return optax.warmup_cosine_decay_schedule(0.0, lr, W, steps, end_value=0.0)
    return optax.linear_schedule(0.0, lr, W) if W else optax.constant_schedule(lr)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
@pytest.mark.parametrize("W,steps", [(0, 100), (10, 100), (1, 7), (37, 250), (100, 100)])
def test_schedules_equal_optax_at_every_count(schedule, W, steps):
    lr = 0.03
    ours = lr_multiplier(TrainSpec(steps=steps, log_every=1, schedule=schedule, warmup_steps=W))
    counts = jnp.arange(steps + 1, dtype=jnp.int32)
    want = jax.vmap(_optax_schedule(schedule, lr, W, steps))(counts)
    # float32 rounding, on the scale of the peak (near the end of the cosine, 1 + cos is
    # a cancellation: optax's pi * c / D and our pi * (c / D) differ there by ~6e-8 lr)
    np.testing.assert_allclose(lr * ours(counts), want, rtol=1e-6, atol=1e-6 * lr)


def test_weight_decay_is_decoupled_and_applies_to_bias():
    """With zero gradient signal, AdamW shrinks the weights by (1 - lr * wd) per step."""
    spec = Spec(ModelSpec("linear", 3, 3), TrainSpec(steps=10, batch_size=8, log_every=10))
    zero_importance = tm.make_hyper(3, importance=0.0, learning_rate=0.1, weight_decay=0.5)
    out = jax.jit(tm.make_train_one(spec))(jax.random.key(0), zero_importance)
    from toymodels.models import init_tied
    W0 = init_tied(jax.random.fold_in(jax.random.key(0), 0), spec.model)["W"]
    np.testing.assert_allclose(out.params["W"], W0 * (1 - 0.1 * 0.5) ** 10, rtol=1e-5)
