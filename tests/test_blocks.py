"""toymodels.blocks: the one rule for V (`block_size`) and the one map of a per-run
function over blocks of V runs (`as_blocks`, `as_runs`, `map_blocks`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels import blocks


@pytest.mark.parametrize("budget", [blocks.RUN_BUDGET, 1 << 15])
def test_block_size_is_a_power_of_two_in_2_to_64_with_about_budget_values(budget):
    """V is a power of two in [2, MAX_BLOCK]; within those bounds it is the largest one
    whose block holds at most `budget` values: V values <= budget < 2 V values."""
    for values in [1, 2, 3, 7, 25, 100, 1000, 1024 * 25, 12_345, budget // 64, budget // 3,
                   budget // 2, budget - 1, budget, budget + 1, 10 * budget, 10**9]:
        V = blocks.block_size(values, budget)
        assert V & (V - 1) == 0 and 2 <= V <= blocks.MAX_BLOCK == 64, (values, V)
        if V > 2:
            assert V * values <= budget, (values, V)
        if V < blocks.MAX_BLOCK:
            assert 2 * V * values > budget, (values, V)


def test_block_size_falls_as_the_runs_grow():
    sizes = [blocks.block_size(v) for v in (1, 10**3, 10**4, 10**5, 10**6)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 64 and sizes[-1] == 2


def test_as_blocks_puts_run_r_in_block_r_div_V_slot_r_mod_V_and_as_runs_undoes_it():
    V, R = 4, 12
    tree = {"a": np.arange(R * 3).reshape(R, 3), "b": np.arange(R)}
    blocked = blocks.as_blocks(tree, V)
    assert blocked["a"].shape == (R // V, V, 3) and blocked["b"].shape == (R // V, V)
    for r in range(R):
        np.testing.assert_array_equal(blocked["a"][r // V, r % V], tree["a"][r])
    back = blocks.as_runs(blocked)
    for name in tree:
        np.testing.assert_array_equal(back[name], tree[name])


def _per_run(w, x, shared):
    """A function of ONE run with matmuls, a reduction and a gradient."""
    loss = lambda w: jnp.mean((w.T @ jax.nn.relu(w @ x) + shared[:, None] - x) ** 2)
    return {"loss": loss(w), "grad": jax.grad(loss)(w), "h": jax.nn.relu(w @ x)}


@pytest.fixture(scope="module")
def runs():
    rng = np.random.default_rng(0)
    R = 24
    return (jnp.asarray(rng.normal(size=(R, 5, 20)), jnp.float32),
            jnp.asarray(rng.normal(size=(R, 20, 64)), jnp.float32),
            jnp.asarray(rng.normal(size=20), jnp.float32))


def test_a_run_gets_the_same_bits_in_any_block_and_any_number_of_blocks(runs):
    """The promise chunking rests on: a run's result is that of `vmap(fn)` over a block
    of V runs, whichever block and slot it is in and however many blocks the chunk has.
    (Against `fn` on the run alone, without vmap, XLA may round a reduction differently:
    measured up to 6 ulp of the loss here on CPU, so that is compared with a tolerance.)"""
    W, x, shared = runs
    V, R = 8, W.shape[0]
    mapped = jax.jit(blocks.map_blocks(_per_run, in_axes=(0, 0, None)))
    run = lambda W, x: blocks.as_runs(mapped(blocks.as_blocks(W, V), blocks.as_blocks(x, V), shared))
    three = run(W, x)  # G = 3 blocks
    one_block = jax.jit(jax.vmap(_per_run, in_axes=(0, 0, None)))
    for g in range(R // V):
        block = slice(g * V, (g + 1) * V)
        alone = run(W[block], x[block])  # G = 1
        plain = one_block(W[block], x[block], shared)
        for name in three:
            np.testing.assert_array_equal(three[name][block], alone[name], err_msg=name)
            np.testing.assert_array_equal(three[name][block], plain[name], err_msg=name)
    order = np.random.default_rng(1).permutation(R)  # every run to another block and slot
    moved = run(W[order], x[order])
    for name in three:
        np.testing.assert_array_equal(moved[name], three[name][order], err_msg=name)
    fn = jax.jit(_per_run)
    for r in range(R):
        single = fn(W[r], x[r], shared)
        for name in three:
            np.testing.assert_allclose(three[name][r], single[name], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name} of run {r}")


def test_map_blocks_with_every_argument_blocked(runs):
    """in_axes = 0 (the default): every argument has the [G, V] leading axes."""
    W, x, _ = runs
    V = 4
    fn = lambda w, x: jnp.tanh(w @ x).sum(axis=-1)
    got = blocks.as_runs(jax.jit(blocks.map_blocks(fn))(blocks.as_blocks(W, V),
                                                        blocks.as_blocks(x, V)))
    want = jax.jit(jax.vmap(fn))(W[:V], x[:V])
    assert got.shape == (W.shape[0], 5)
    np.testing.assert_array_equal(got[:V], want)
