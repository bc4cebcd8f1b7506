"""Per-step draws: toymodels.threefry.uniform against jax.random.uniform (same bits).

Draws one step's values for 10 seeds of a 400 -> 30 model ([10, 430, 1024] uniforms),
jitted and vmapped over the seed keys as the trainer does, and prints the median time
per value of each and their ratio.

Usage:
    python benchmarks/rng.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

from toymodels import threefry

SHAPE, SEEDS = (430, 1024), 10


def median_seconds(fn, keys, repeats: int) -> float:
    fn(keys).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(keys).block_until_ready()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    keys = jax.random.split(jax.random.key(0), SEEDS)
    ours = jax.jit(jax.vmap(lambda k: threefry.uniform(k, SHAPE)))
    theirs = jax.jit(jax.vmap(lambda k: jax.random.uniform(k, SHAPE)))
    assert (np.asarray(ours(keys)) == np.asarray(theirs(keys))).all(), "streams differ"
    n = SEEDS * np.prod(SHAPE)
    t_ours, t_theirs = (median_seconds(f, keys, args.repeats) for f in (ours, theirs))
    print(f"{jax.devices()[0].device_kind}: {n:,} values, median of {args.repeats}")
    print(f"jax.random.uniform   {1e9 * t_theirs / n:6.2f} ns/value")
    print(f"threefry.uniform     {1e9 * t_ours / n:6.2f} ns/value  (x{t_theirs / t_ours:.1f}, same bits)")


if __name__ == "__main__":
    main()
