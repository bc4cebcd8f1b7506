"""Training throughput of toymodels: model-steps/s, samples/s, GFLOP/s.

Times the real sweep path (`toymodels.sweep.make_chunk_runner`: the jitted chunk program,
one block of runs per device) on the configs of the issue, with the runs spread over
`--seeds` distinct seeds as in a real sweep (runs sharing a seed share their random
draws), split over one JAX CPU device per core as the `toymodels` command does. Compile time and the first call are
reported apart; the timed figure is the median over `--repeats` calls, with the median of
process CPU time / wall time over them ("cores busy").

The share of the ceiling is against `ceiling.matmul_ceiling`, measured first in the same
run with the same JAX devices: the best sustained float32 matmul throughput on all the
cores, the largest median among numpy's BLAS and three JAX ways (one matmul, one per
device dispatched at once as the sweep does, one batched matmul), at n = 2048 and 4096
(`--ceiling-n`). Which candidate set it is printed and every candidate goes to the JSON.

FLOPs count the matmuls only: 12·B·F·H per model-step (forward and backward). The timed
call includes the final evaluation on 8,192 samples (`eval_samples`, about 3 steps' work,
1-3% of the default step counts); real sweeps of 10,000 steps amortise it further.

Usage:
    python benchmarks/throughput.py                       # all configs, with the ceiling
    python benchmarks/throughput.py --only 20x5 --steps 200 --repeats 3
    python benchmarks/throughput.py --baseline            # + the PyTorch baseline, same run
    python benchmarks/throughput.py --json throughput.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import os

import jax

# As the `toymodels` command does: one JAX CPU device per core, so a sweep uses them all.
jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import toymodels as tm  # noqa: E402
from toymodels.sweep import make_chunk_runner, round_chunk  # noqa: E402
from toymodels.trainers.toy import TRAINER  # noqa: E402
from toymodels.train import block_size  # noqa: E402

CONFIGS = {  # name: (F, H, B, R, default steps)
    "20x5": (20, 5, 1024, 1000, 300),
    "400x30": (400, 30, 1024, 100, 100),
    "2x1": (2, 1, 1024, 10_000, 300),
}
EVAL_SAMPLES = 8192  # the minimum: the final evaluation then costs about 3 steps' work


def sweep_config(F: int, H: int, B: int, R: int, steps: int, seeds: int) -> tm.SweepConfig:
    """R runs: R / seeds sparsities x `seeds` seeds, the usual shape of a sweep."""
    return tm.parse_config({
        "name": f"bench-{F}x{H}",
        "model": {"kind": "relu_output", "n_features": F, "n_hidden": H},
        "data": {"importance_decay": 0.9},
        "train": {"steps": steps, "batch_size": B, "log_every": steps,
                  "eval_samples": EVAL_SAMPLES},
        "sweep": {"sparsity": {"linspace": [0.0, 0.999, R // seeds]}, "seed": list(range(seeds))},
    })


def measure(name: str, steps: int | None, seeds: int, repeats: int) -> dict:
    F, H, B, R, default_steps = CONFIGS[name]
    steps = steps or default_steps
    config = sweep_config(F, H, B, R, steps, seeds)
    grid, devices = tm.expand(config), jax.devices()
    chunk = round_chunk(grid.n_runs, TRAINER, config.spec, len(devices))
    run = make_chunk_runner(TRAINER, config.spec, 0, chunk, seeds, devices)
    start = time.perf_counter()
    run(grid, 0, grid.n_runs)  # compile + first call
    first = time.perf_counter() - start
    times, busy = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        run(grid, 0, grid.n_runs)
        times.append(time.perf_counter() - start)
        busy.append((time.process_time() - cpu) / times[-1])
    seconds = statistics.median(times)
    model_steps = grid.n_runs * steps / seconds
    return {
        "config": name, "n_features": F, "n_hidden": H, "batch": B, "runs": grid.n_runs,
        "seeds": seeds, "steps": steps, "block_size": block_size(config.spec),
        "chunk": chunk, "seconds_median": seconds, "seconds_all": times,
        "first_call_seconds": first, "cores_busy": statistics.median(busy),
        "model_steps_per_s": model_steps,
        "samples_per_s": model_steps * B, "gflops": model_steps * 12 * B * F * H / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(CONFIGS), action="append")
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default per config)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--ceiling-n", type=int, nargs="+", default=[2048, 4096],
                        help="matmul sizes of the ceiling (default 2048 4096)")
    parser.add_argument("--ceiling-repeats", type=int, default=5)
    parser.add_argument("--baseline", action="store_true", help="also time the PyTorch baseline")
    parser.add_argument("--baseline-steps", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from ceiling import describe, machine_info, matmul_ceiling

    info = machine_info()
    print(f"{info['platform']} | jax {jax.__version__} | {len(jax.devices())} x "
          f"{jax.devices()[0].device_kind} | {info.get('cpu_count', '?')} CPUs "
          f"({info.get('cpu_model')})")
    measured = None if args.no_ceiling else matmul_ceiling(args.ceiling_n, args.ceiling_repeats)
    ceiling = measured and measured["gflops"]
    if measured:
        for c in measured["candidates"]:
            print(f"  {c['candidate']:<15} n={c['n']:<5} {c['gflops']:6.1f} GFLOP/s "
                  f"({c['cores_busy']:.2f} cores busy)")
        print(describe(measured))
    rows = []
    for name in args.only or list(CONFIGS):
        row = measure(name, args.steps, args.seeds, args.repeats)
        if ceiling:
            row["share_of_ceiling"] = row["gflops"] / ceiling
        if args.baseline:
            import baseline_torch
            F, H, B, R, _ = CONFIGS[name]
            base = [baseline_torch.run(F, H, B, R, steps=args.baseline_steps, warmup_steps=1)
                    for _ in range(args.repeats)]
            row["torch_model_steps_per_s"] = statistics.median(b["model_steps_per_s"] for b in base)
            row["speedup_vs_torch"] = row["model_steps_per_s"] / row["torch_model_steps_per_s"]
        rows.append(row)
        print(_line(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "ceiling_gflops": ceiling,
                                         "ceiling": measured, "results": rows}, indent=1))


def _line(r: dict) -> str:
    out = (f"F={r['n_features']:<4} H={r['n_hidden']:<3} B={r['batch']} R={r['runs']:<6} "
           f"steps={r['steps']:<4} V={r['block_size']:<3} | {r['model_steps_per_s']:>9,.0f} model-steps/s "
           f"| {r['samples_per_s']:.3g} samples/s | {r['gflops']:6.1f} GFLOP/s")
    if "share_of_ceiling" in r:
        out += f" ({100 * r['share_of_ceiling']:.0f}% of the all-core ceiling)"
    out += f" | {r['cores_busy']:.2f} cores busy"
    out += f" | compile+first call {r['first_call_seconds']:.1f}s"
    if "speedup_vs_torch" in r:
        out += f" | torch {r['torch_model_steps_per_s']:,.0f} -> x{r['speedup_vs_torch']:.1f}"
    return out


if __name__ == "__main__":
    main()
