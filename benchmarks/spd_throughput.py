"""SPD throughput: the sweep engine's decompositions against one-at-a-time PyTorch.

The cases of `baseline_torch_spd.CASES`: SPD of the zoo's 5 -> 2 model `intro_pentagon`,
without and with the hidden identity matrix, at the paper's TMS settings (C = 20, gate
MLPs of 16 GELU neurons, β = 3e-3, p = 1, S = 1, batch 4096, Adam lr 1e-3 cosine, 40,000
steps). Each repeat times the torch baseline (`torch_spd_rate`, one decomposition, at
each of `--threads`) and then the JAX side at each R, alternately in the same process
(`compare.time_alternately`), so that other work on the host falls on both alike; the
figures are medians over `--repeats`, per wall second and per CPU-second, with the load
average after every repeat, and the speed ratio is JAX / torch of the medians, in
decomposition-steps/s (one
optimisation step of one decomposition on a batch of 4096), also given as
decompositions per hour at the paper's 40,000 steps. FLOPs: `baseline_torch_spd.
matmul_flops`, the same count for both sides.

The JAX side is the real sweep path (`engine_rate`: `toymodels.sweep.make_chunk_runner`
of the parsed `[spd]` config, one chunk over one JAX CPU device per core): for each R of
`--decompositions`, R runs of the same target, one per seed (source "zoo:intro_pentagon",
keys C, d_gate, identity, beta, p, n_mask_samples, feature_probability). Its timed call
is a whole chunk (init, `--steps` steps and whatever the trainer evaluates at the end).
`--check` compares the two sides' loss and gradients on the same parameters, batch and
mask uniforms (`check_same_loss`).

    python benchmarks/spd_throughput.py --check
    python benchmarks/spd_throughput.py --only tms-5-2 --decompositions 1 8 64 256 \
        --steps 20 --threads 1 --repeats 3 --json benchmarks/results_spd.json
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

from baseline_torch_spd import (CASES, INSTALL_HINT, LR, PAPER_STEPS, make_spd,  # noqa: E402
                                matmul_flops, spd_loss, target_weights, torch_spd_rate)
from compare import add_arguments, cpu_count, header, summarise, time_alternately  # noqa: E402

try:  # the JAX side; --torch-only runs without it
    import jax

    # As the `toymodels` command does: one JAX CPU device per core.
    jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))
    import jax.numpy as jnp
    import numpy as np

    import toymodels as tm
    from engine_rate import chunk_runner, time_chunk
    from toymodels import threefry
    from toymodels.errors import UserError
    from toymodels.spd import decomposition as spd
    from toymodels.spd.targets import tms_target
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


def check_same_loss(case: str, batch: int = 512, seed: int = 0) -> dict:
    """The two sides' loss and gradients on the SAME parameters, batch and mask uniforms:
    the torch decomposition's initial parameters copied into `toymodels.spd.decomposition`'s
    layout (U, V; w1, b1, w2, b2 -> gate_in_w, gate_in_b, gate_out_w, gate_out_b), gate
    biases spread so that the gates fall below 0, inside [0, 1] and above 1, the mask
    uniforms drawn as `decomposition.loss` draws them and handed to torch; the JAX side is
    `decomposition.value_and_grad` (the trainer's: the nonzero rows only; 17% of the rows
    here are zero). Returns
    {name: (jax, torch)} for the total and the four terms (torch's recon is the
    stochastic term), and the largest relative gradient difference."""
    import torch

    c = CASES[case]
    W, b = target_weights("zoo")
    tgt, mod = make_spd(W, b, c["C"], c["d_gate"], c["identity"], seed)
    gen = torch.Generator().manual_seed(seed + 3)
    with torch.no_grad():
        for part in mod.parts:
            part.b2.copy_(torch.linspace(-1.5, 2.5, c["C"]))
            part.b1.copy_(0.3 * torch.randn(part.b1.shape, generator=gen))
    u = np.random.default_rng(seed).random((2, batch, W.shape[1]), dtype=np.float32)
    x = np.where(u[0] < 0.3, u[1], 0.0).astype(np.float32)  # denser than p so masks matter
    rename = {"U": "U", "V": "V", "w1": "gate_in_w", "b1": "gate_in_b", "w2": "gate_out_w",
              "b2": "gate_out_b"}
    params = {n: {rename[k]: jnp.asarray(getattr(part, k).detach().numpy()) for k in rename}
              for n, part in zip(tgt.names, mod.parts)}
    key = jax.random.key(seed + 7)
    keys = jax.random.split(key, len(params))
    r = {n: np.asarray(threefry.uniform(k, (batch, 1, c["C"])))
         for n, k in zip(sorted(params), keys)}
    hyper = spd.SPDHyper(*(jnp.float32(v) for v in (c["beta"], c["p_norm"], 1.0, 1.0, 1.0, LR,
                                                     c["feature_probability"])))
    target = tms_target(W, b, c["identity"])
    # the trainer's route: the loss and its gradient on the nonzero rows only
    (total, parts), grads = spd.value_and_grad(params, target, jnp.asarray(x), key, hyper, 1)
    t_total, t_terms = spd_loss(tgt, mod, torch.from_numpy(x),
                                [torch.from_numpy(r[n][:, 0]) for n in tgt.names],
                                c["beta"], c["p_norm"])
    t_total.backward()
    out = {"total": (float(total), t_total.item())}
    for mine, theirs in (("faithfulness", "faithfulness"), ("stochastic", "recon"),
                         ("layerwise", "layerwise"), ("importance", "minimality")):
        out[mine] = (float(parts[mine]), t_terms[theirs].item())
    worst = 0.0
    for n, part in zip(tgt.names, mod.parts):
        for k, mine in rename.items():
            g_t, g_j = getattr(part, k).grad.numpy(), np.asarray(grads[n][mine])
            worst = max(worst, float(np.abs(g_t - g_j).max() / max(np.abs(g_t).max(), 1e-12)))
    out["largest_relative_grad_difference"] = worst
    return out


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
    ap.add_argument("--check", action="store_true", help="compare one batch's loss and "
                    "gradients of the two sides on the same parameters, exit")
    args = ap.parse_args(argv)

    try:
        import torch
    except ImportError:
        print(INSTALL_HINT)
        return 2
    if not args.torch_only and JAX_ERROR is not None:
        print(f"the JAX side needs jax and the project ({JAX_ERROR}); use --torch-only")
        return 2
    if args.check:
        worst = 0.0
        for case in args.only or list(CASES):
            same = check_same_loss(case)
            print(f"{case}: " + ", ".join(f"{k} {v[0]:.7g} (torch {v[1]:.7g})"
                                          for k, v in same.items() if isinstance(v, tuple))
                  + f"; largest relative gradient difference "
                  f"{same['largest_relative_grad_difference']:.1e}")
            worst = max([worst, same["largest_relative_grad_difference"],
                         *(abs(a - b) / max(abs(b), 1e-12) for a, b in
                           (v for v in same.values() if isinstance(v, tuple)))])
        print("OK" if worst < 1e-4 else "FAIL", f"(largest relative difference {worst:.1e})")
        return 0 if worst < 1e-4 else 1
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
