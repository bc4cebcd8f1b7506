"""SPD throughput: the sweep engine's decompositions against one-at-a-time PyTorch.

The cases of `baseline_torch_spd.CASES`: SPD of the zoo's 5 -> 2 model `intro_pentagon`,
without and with the hidden identity matrix, at the paper's TMS settings (C = 20, gate
MLPs of 16 GELU neurons, β = 3e-3, p = 1, S = 1, batch 4096, Adam lr 1e-3 cosine, 40,000
steps). Each repeat times the torch baseline (`torch_spd_rate`, one decomposition, at
each of `--threads`) and then the JAX side, alternately in the same process, so that
other work on the host falls on both alike; the figures are medians over `--repeats`,
and the speed ratio is JAX / torch of the medians, in decomposition-steps/s (one
optimisation step of one decomposition on a batch of 4096), also given as
decompositions per hour at the paper's 40,000 steps. FLOPs: `baseline_torch_spd.
matmul_flops`, the same count for both sides.

The JAX side is the real sweep path (`engine_rate`: `toymodels.sweep.make_chunk_runner`
of the parsed `[spd]` config, one chunk over one JAX CPU device per core): R =
`--decompositions` runs of the same target, one per seed (source "zoo:intro_pentagon",
keys C, identity, beta, p, n_mask_samples). Its timed call is a whole chunk (init,
`--steps` steps and whatever the trainer evaluates at the end).

    python benchmarks/spd_throughput.py --threads 2 1 --repeats 3 \
        --json benchmarks/results_spd.json
    python benchmarks/spd_throughput.py --torch-only --threads 2 1 --repeats 3
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

from baseline_torch_spd import (CASES, INSTALL_HINT, LR, PAPER_STEPS, matmul_flops,  # noqa: E402
                                torch_spd_rate)
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
SOURCE = "zoo:intro_pentagon"  # the target baseline_torch_spd reads from the zoo's file


def spd_config(case: str, R: int, steps: int, seed: int = 0):
    """R SPD decompositions of the zoo's 5 -> 2 pentagon as a sweep, one run per seed."""
    c = CASES[case]
    return tm.parse_config({
        "name": f"bench-spd-{case}", "seed": seed,
        "spd": {"source": SOURCE, "C": c["C"], "identity": c["identity"], "beta": c["beta"],
                "p": c["p_norm"], "n_mask_samples": 1, "d_gate": c["d_gate"],
                "feature_probability": c["feature_probability"]},
        "train": {"steps": steps, "batch_size": c["batch"], "learning_rate": LR,
                  "schedule": "cosine", "log_every": steps},
        "sweep": {"seed": list(range(R))},
    }, f"<spd_throughput {case}>")


def jax_spd_rate(runner, case: str, steps: int, warm: bool) -> dict:
    """Decomposition-steps/s of the engine's chunk for `case` (`engine_rate.time_chunk`)."""
    t = time_chunk(runner, warm)
    arrays = t.pop("arrays")
    flops = matmul_flops(case)
    rate = t["n_runs"] * steps / t["seconds"]
    loss = arrays.get("loss")
    return {**t, "case": case, "steps": steps, "decomposition_steps_per_s": rate,
            "decomposition_steps_per_cpu_s": rate / t["cores_busy"],
            "decompositions_per_hour": 3600 * rate / PAPER_STEPS, "flops": flops,
            "gflops": flops * rate / 1e9,
            "final_loss": None if loss is None else float(np.mean(np.asarray(loss)[:, -1])),
            "trainer": "toymodels.sweep.make_chunk_runner ([spd])"}


def _line(who: str, r: dict) -> str:
    threads = f"threads={r['threads']}" if "threads" in r else f"R={r['n_runs']} dev={r['devices']}"
    return (f"{who:<5} {r['case']:<12} {threads:<12} steps={r['steps']:<4} | "
            f"{r['decomposition_steps_per_s']:9.2f} decomposition-steps/s "
            f"({r['decompositions_per_hour']:.3g}/h) | {r['gflops']:6.2f} GFLOP/s | "
            f"{r['cores_busy']:.2f} cores busy | {r['seconds']:.1f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=list(CASES), action="append")
    add_arguments(ap, "decompositions", [256], JAX_STEPS, "decompositions")
    ap.add_argument("--json", type=Path)
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
    per_hour = lambda med: f" ({3600 * med / PAPER_STEPS:.3g} decompositions/h)"
    rows = []
    for case in args.only or list(CASES):
        try:
            runners = {} if args.torch_only else {
                R: chunk_runner(spd_config(case, R, args.steps)) for R in args.decompositions}
        except UserError as e:  # a tree without the [spd] trainer
            print(f"the JAX side could not be built ({e}); use --torch-only")
            return 2
        torch_runs, jax_runs, load = time_alternately(
            args.repeats, threads,
            lambda t, rep: torch_spd_rate(case, args.torch_steps, t, seed=rep), runners,
            lambda runner, warm: jax_spd_rate(runner, case, args.steps, warm), _line)
        row = {"case": case, **CASES[case], "flops": matmul_flops(case), "load_average": load}
        summarise(row, torch_runs, jax_runs, "decomposition_steps", "decompositions",
                  args.steps, per_hour)
        for side in (*row["torch"].values(), *row.get("jax", {}).values()):
            side["median_decompositions_per_hour"] = (
                3600 * side["median_decomposition_steps_per_s"] / PAPER_STEPS)
            side["median_decompositions_per_cpu_hour"] = (
                3600 * side["median_decomposition_steps_per_cpu_s"] / PAPER_STEPS)
        rows.append(row)
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "spd_throughput", "platform": platform.platform(),
            "cpu_count": cpu_count(), "repeats": args.repeats, "paper_steps": PAPER_STEPS,
            "torch_only": args.torch_only, "results": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
