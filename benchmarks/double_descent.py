"""Throughput of the double-descent T x m grid (full-batch training on T fixed examples)
beside the default online sweep, in the same run.

A full-batch step of a T-example run is one [F, T] batch, so its samples/s is T times
its model-steps/s. The grid is `sweeps/double_descent_grid.toml` (n = 200, m in {2, 4, 8},
T from 5 to 2,000, 4 runs per cell) at `--steps` steps; each of its static groups is
timed through the real sweep path (`toymodels.sweep.make_chunk_runner`, one block of runs
per JAX CPU device, as `toymodels sweep` does), compile and first call excluded, the median
over `--repeats` calls. The baseline in the same run is the online 20 -> 5 sweep of
`throughput.py` (R = 1,000, B = 1,024).

Usage:
    python benchmarks/double_descent.py                    # about 2 minutes on 2 cores
    python benchmarks/double_descent.py --steps 200 --repeats 5 --json dd.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import jax

jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))

import toymodels as tm  # noqa: E402
from toymodels.sweep import make_chunk_runner, round_chunk  # noqa: E402
from toymodels.trainers.toy import TRAINER  # noqa: E402

GRID = Path(__file__).resolve().parent.parent / "sweeps" / "double_descent_grid.toml"


def timed(group: tm.SweepConfig, repeats: int) -> float:
    """Median seconds of one call that trains every run of `group` (compile excluded)."""
    grid, devices = tm.expand(group), jax.devices()
    chunk = round_chunk(grid.n_runs, TRAINER, group.spec, len(devices))
    n_slots = min(len(set(grid.seed.tolist())), chunk // len(devices))
    run = make_chunk_runner(TRAINER, group.spec, group.seed, chunk, n_slots, devices)
    run(grid, 0, grid.n_runs)  # compile and first call
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(grid, 0, grid.n_runs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def online_baseline(steps: int) -> tm.SweepConfig:
    return tm.parse_config({
        "name": "online-20x5", "model": {"n_features": 20, "n_hidden": 5},
        "data": {"importance_decay": 0.9},
        "train": {"steps": steps, "batch_size": 1024, "log_every": steps, "eval_samples": 8192},
        "sweep": {"sparsity": {"linspace": [0.0, 0.999, 100]}, "seed": list(range(10))},
    })


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    overrides = (f"train.steps={args.steps}", f"train.log_every={args.steps}",
                 "train.warmup_steps=15", "train.eval_samples=8192")
    grid = tm.load_config(GRID, overrides)
    rows = []
    base = online_baseline(args.steps)
    seconds = timed(base, args.repeats)
    rows.append({"name": "online 20->5 (baseline)", "runs": base.n_runs, "T": None, "m": 5,
                 "seconds": seconds, "model_steps_per_s": base.n_runs * args.steps / seconds,
                 "samples_per_s": base.n_runs * args.steps * 1024 / seconds})
    for group in grid.groups:
        T, m = group.spec.train.batch_size, group.spec.model.n_hidden
        seconds = timed(group, args.repeats)
        steps = group.n_runs * args.steps
        rows.append({"name": f"T={T} m={m}", "runs": group.n_runs, "T": T, "m": m,
                     "seconds": seconds, "model_steps_per_s": steps / seconds,
                     "samples_per_s": steps * T / seconds})
    base_rate = rows[0]["samples_per_s"]
    print(f"{'config':>26} {'runs':>5} {'s/call':>8} {'model-steps/s':>14} {'samples/s':>11} "
          f"{'samples/s vs online':>20}")
    for r in rows:
        r["samples_vs_online"] = r["samples_per_s"] / base_rate
        print(f"{r['name']:>26} {r['runs']:>5} {r['seconds']:8.3f} {r['model_steps_per_s']:14.3g} "
              f"{r['samples_per_s']:11.3g} {r['samples_vs_online']:20.3f}")
    whole = sum(r["seconds"] for r in rows[1:])
    total = sum(r["runs"] for r in rows[1:]) * args.steps
    print(f"whole grid: {total} model-steps in {whole:.1f} s = {total / whole:.3g} model-steps/s "
          f"({len(rows) - 1} static groups, {args.steps} steps, medians of {args.repeats})")
    if args.json:
        info = {"cpu_count": len(os.sched_getaffinity(0)), "devices": [str(d) for d in jax.devices()],
                "steps": args.steps, "repeats": args.repeats, "load_average": os.getloadavg()}
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
