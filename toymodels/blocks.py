"""Blocks of V runs: the one rule for V and the one map of a per-run function over blocks.

XLA's float arithmetic may depend on array shapes, so a run's result would change with the
chunk size if the run axis were one vmap of the whole chunk. Every run is instead computed
inside a block of exactly V runs (`block_size`), and chunks are whole blocks: a run gives
the same bits whatever the chunk size or device count. `map_blocks` is the one place where
a function written for ONE run is vmapped over the V runs of a block and mapped over the
blocks of a chunk.
"""

from __future__ import annotations

from typing import Callable

import jax

MAX_BLOCK = 64
RUN_BUDGET = 1 << 19  # values per block of one compiled step: measured best on CPU for
# 20 -> 5, 400 -> 30 and 2 -> 1 toy models (larger blocks only pad small sweeps)


def block_size(values_per_run: int, budget: int = RUN_BUDGET) -> int:
    """V: the largest power of two with about `budget` values of [V, values_per_run],
    between 2 and `MAX_BLOCK`; a function of the static spec only.

    Example:
      >>> block_size(1024 * (20 + 5)), block_size(10**9), block_size(1)
      (16, 2, 64)
    """
    target = max(budget // values_per_run, 1)
    return int(min(MAX_BLOCK, max(2, 1 << target.bit_length() - 1)))


def as_blocks(tree, V: int):
    """[R, ...] leaves as [R / V, V, ...] (R a multiple of V)."""
    return jax.tree.map(lambda a: a.reshape(-1, V, *a.shape[1:]), tree)


def as_runs(tree):
    """[G, V, ...] leaves as [G V, ...]: the inverse of `as_blocks`."""
    return jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), tree)


def map_blocks(fn: Callable, in_axes=0) -> Callable:
    """`fn` of ONE run, applied to blocks: `mapped(*args)` takes [G, V, ...] leaves (those
    with `in_axes` None are shared: not blocked) and returns [G, V, ...] leaves; the V runs
    of a block are vmapped, the G blocks computed one after another (`lax.map`)."""
    def mapped(*args):
        if in_axes == 0:
            return jax.lax.map(lambda a: jax.vmap(fn)(*a), args)
        blocked = tuple(a for a, ax in zip(args, in_axes) if ax is not None)

        def one(block):
            it = iter(block)
            full = [next(it) if ax is not None else a for a, ax in zip(args, in_axes)]
            return jax.vmap(fn, in_axes=in_axes)(*full)
        return jax.lax.map(one, blocked)
    return mapped
