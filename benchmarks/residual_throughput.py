"""Residual-MLP training throughput: the sweep engine against one-model-at-a-time PyTorch.

The cases of `baseline_torch_residual.CASES` (Braun et al. 2025's compressed-computation
model: n = 100, d_embed = 1000, d_mlp = 50, 1 layer, and the same 50 neurons over 2
layers; feature probability 0.01, signed inputs, task identity_relu, batch 2048, AdamW).
Each repeat times the torch baseline (`torch_residual_rate`, one model, at each of
`--threads`) and then the JAX side, alternately in the same process, so that other work
on the host falls on both alike; the figures are medians over `--repeats`, and the speed
ratio is JAX / torch of the medians, in model-steps/s (one optimisation step of one
model on a batch of 2048). FLOPs count the matmuls of the plain formulation
(`baseline_torch_residual.matmul_flops`), the same count for both sides whatever each
computes.

The JAX side is the real sweep path (`engine_rate`: `toymodels.sweep.make_chunk_runner`
of the parsed `[residual]` config, one chunk over one JAX CPU device per core): R =
`--models` runs, one per seed, sharing W_E (embed_seed 0, the table's default), AdamW
(lr 3e-3, weight decay 0.01 as torch's, cosine), `eval_samples` at its minimum 8,192.
Its timed call is a whole chunk (init, `--steps` steps, the final evaluation); each R of
`--models` is timed every repeat. The run first measures the matmul ceiling
(`ceiling.matmul_ceiling`, also per CPU-second) and records each R's share of it, in the
plain FLOPs and in those the JAX side computes (`folded_flops`), and the load average
after every repeat.

    python benchmarks/residual_throughput.py --only braun --models 1 8 32 128 \
        --threads 1 --repeats 3 --json benchmarks/results_residual.json
    python benchmarks/residual_throughput.py --torch-only --threads 2 1 --repeats 3
        # the baseline alone (no JAX needed)

Run it from the benchmark venv (torch, and for the JAX side jax and the project's
dependencies), with PYTHONPATH at the tree.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline_torch_residual import (CASES, LR, WEIGHT_DECAY, INSTALL_HINT, matmul_flops,  # noqa: E402
                                     torch_residual_rate)
from compare import add_arguments, cpu_count, header, summarise, time_alternately  # noqa: E402

try:  # the JAX side; --torch-only runs without it
    import jax

    # As the `toymodels` command does: one JAX CPU device per core.
    jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))
    import numpy as np

    import toymodels as tm
    from engine_rate import chunk_runner, time_chunk
    from toymodels.errors import UserError
    JAX_ERROR = None
except ImportError as e:  # pragma: no cover - depends on the venv
    JAX_ERROR = e

JAX_STEPS = 20


def folded_flops(case: str) -> float:
    """Matmul FLOPs of one step of one model as the JAX side computes it
    (`toymodels.compute.model.fold`; W_E fixed, its gram G made once per run): the batch's
    P x, (G - s(G - I)) x, M a and the gradients dP = dpre^T x, da = derr M, dM = derr^T a,
    2 B (5 n k + n^2), and the fold P = W_in W_E, M = W_E^T W_out with its backward,
    8 k d n (183.4 MFLOP at n = 100, d_embed = 1000, d_mlp = 50, B = 2048, against 2,252.8
    for `matmul_flops`: a ratio of 12.3). One layer only (NaN otherwise)."""
    c = CASES[case]
    if c["n_layers"] != 1:
        return float("nan")
    B, n, d, k = c["batch"], c["n"], c["d_embed"], c["d_mlp"]
    return float(2 * B * (5 * n * k + n * n) + 8 * k * d * n)


def residual_config(case: str, R: int, steps: int, seed: int = 0):
    """R residual MLPs of `case` as a sweep: one run per seed, W_E shared (embed_seed 0)."""
    c = CASES[case]
    return tm.parse_config({
        "name": f"bench-residual-{case}", "seed": seed,
        "residual": {"n_features": c["n"], "d_embed": c["d_embed"], "d_mlp": c["d_mlp"],
                     "n_layers": c["n_layers"], "task": "identity_relu"},
        "data": {"feature_probability": c["p"]},
        "train": {"steps": steps, "batch_size": c["batch"], "learning_rate": LR,
                  "weight_decay": WEIGHT_DECAY, "optimizer": "adamw", "schedule": "cosine",
                  "log_every": steps, "eval_samples": 8192},
        "sweep": {"seed": list(range(R))},
    }, f"<residual_throughput {case}>")


def jax_residual_rate(runner, case: str, steps: int, warm: bool) -> dict:
    """Model-steps/s of the engine's chunk for `case` (see `engine_rate.time_chunk`)."""
    t = time_chunk(runner, warm)
    arrays = t.pop("arrays")
    flops = matmul_flops(case)
    rate = t["n_runs"] * steps / t["seconds"]
    loss = arrays.get("loss")
    return {**t, "case": case, "steps": steps, "model_steps_per_s": rate,
            "model_steps_per_cpu_s": rate / t["cores_busy"],
            "samples_per_s": rate * CASES[case]["batch"], "flops": flops,
            "gflops": flops * rate / 1e9,
            "final_loss": None if loss is None else float(np.mean(np.asarray(loss)[:, -1])),
            "trainer": "toymodels.sweep.make_chunk_runner ([residual])"}


def _line(who: str, r: dict) -> str:
    threads = f"threads={r['threads']}" if "threads" in r else f"R={r['n_runs']} dev={r['devices']}"
    return (f"{who:<5} {r['case']:<12} {threads:<12} steps={r['steps']:<4} | "
            f"{r['model_steps_per_s']:9.2f} model-steps/s | {r['gflops']:6.1f} GFLOP/s | "
            f"{r['cores_busy']:.2f} cores busy | {r['seconds']:.1f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=list(CASES), action="append")
    add_arguments(ap, "models", [64], JAX_STEPS, "models")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-ceiling", action="store_true")
    ap.add_argument("--ceiling-n", type=int, nargs="+", default=[2048])
    ap.add_argument("--ceiling-repeats", type=int, default=3)
    args = ap.parse_args(argv)

    try:
        import torch
    except ImportError:
        print(INSTALL_HINT)
        return 2
    if not args.torch_only and JAX_ERROR is not None:
        print(f"the JAX side needs jax and the project ({JAX_ERROR}); use --torch-only")
        return 2
    threads = args.threads or [cpu_count()]
    print(header(torch.__version__, None if args.torch_only else jax))
    ceiling = None
    if not (args.torch_only or args.no_ceiling):
        from ceiling import describe, matmul_ceiling
        ceiling = matmul_ceiling(args.ceiling_n, args.ceiling_repeats)
        ceiling["gflop_per_cpu_s"] = max(r["gflops"] / r["cores_busy"]
                                         for r in ceiling["candidates"])
        print(describe(ceiling) + f"; per CPU-second {ceiling['gflop_per_cpu_s']:.1f} GFLOP",
              flush=True)
    rows = []
    for case in args.only or list(CASES):
        try:
            runners = {} if args.torch_only else {
                R: chunk_runner(residual_config(case, R, args.steps)) for R in args.models}
        except UserError as e:  # a tree without the [residual] trainer
            print(f"the JAX side could not be built ({e}); use --torch-only")
            return 2
        torch_runs, jax_runs, load = time_alternately(
            args.repeats, threads,
            lambda t, rep: torch_residual_rate(case, args.torch_steps, t, seed=rep), runners,
            lambda runner, warm: jax_residual_rate(runner, case, args.steps, warm), _line)
        row = {"case": case, **CASES[case], "flops": matmul_flops(case),
               "folded_flops": folded_flops(case), "load_average": load}
        summarise(row, torch_runs, jax_runs, "model_steps", "models", args.steps,
                  lambda med: f" ({med * row['flops'] / 1e9:.1f} GFLOP/s)")
        for R in jax_runs:
            if ceiling:  # the plain formulation's FLOPs (the JAX side computes fewer)
                med, cpu = (row["jax"][R][f"median_model_steps_per_{s}"] for s in ("s", "cpu_s"))
                row["jax"][R]["share_of_ceiling"] = med * row["flops"] / 1e9 / ceiling["gflops"]
                row["jax"][R]["share_of_ceiling_per_cpu_s"] = (
                    cpu * row["flops"] / 1e9 / ceiling["gflop_per_cpu_s"])
                row["jax"][R]["computed_share_of_ceiling_per_cpu_s"] = (
                    cpu * row["folded_flops"] / 1e9 / ceiling["gflop_per_cpu_s"])
        rows.append(row)
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "residual_throughput", "platform": platform.platform(),
            "cpu_count": cpu_count(), "repeats": args.repeats,
            "torch_only": args.torch_only, "ceiling_gflops": ceiling and ceiling["gflops"],
            "ceiling": ceiling, "results": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
