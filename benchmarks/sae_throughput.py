"""SAE training throughput: JAX against the PyTorch baseline, SAE-steps/s and samples/s.

The two cases of the SAE speed spec (`baseline_torch_sae.CASES`): 1,000 relu SAEs of
width 20 on 5 dims (F = 20 features, p = 0.05) and 100 of width 512 on 256 dims (F = 512,
p = 0.01), batch 1024, fresh data every step. Each repeat times the JAX side and (with
`--baseline`) `baseline_torch_sae.torch_sae_rate`, alternately in the same process, so
that other work on the host falls on both alike; the figures are medians over
`--repeats`, and the ratio is JAX / torch of the medians. FLOPs count the matmuls only
(`baseline_torch_sae.matmul_flops`, the same count for both sides); the share of the
ceiling is against `ceiling.matmul_ceiling`, measured first in the same run (n = 2048
and 4096, as throughput.py does).

The JAX side is `jax_sae_rate`: the real sweep path of an SAE sweep
(`toymodels.sweep.make_chunk_runner` of a synthetic-source `[sae]` config: the relu SAE of
`toymodels.dictionary.sae`, Adam with torch's defaults, one chunk split over one JAX CPU
device per core). Its R SAEs are `--seeds` seeds x R / seeds L1 coefficients; the SAEs of
a seed share their data draws (common random numbers), so with the default 10 seeds the
JAX side draws 10 batches a step where torch draws R; `--seeds 0` gives every SAE its own
draws, like for like.

As throughput.py does, this imports `toymodels` as an installed package and sets one
JAX CPU device per core. With `--baseline` it also needs torch, so run it from the
benchmark venv, which has jax, optax, torch and the project (editable) installed:

    /tmp/benchvenv/bin/python benchmarks/sae_throughput.py --baseline \
        --json benchmarks/results_sae.json
    python benchmarks/sae_throughput.py --only small --repeats 1   # JAX alone
    /tmp/benchvenv/bin/python benchmarks/sae_throughput.py --check
        # the project's relu SAE loss and gradients against torch's
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jax

# As the `toymodels` command does: one JAX CPU device per core, so a sweep uses them all.
jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import toymodels as tm  # noqa: E402
from toymodels.trainers.sae import TRAINER, expand_sae  # noqa: E402
from toymodels.dictionary.sae_penalty import relu_loss  # noqa: E402
from toymodels.sweep import make_chunk_runner, round_chunk  # noqa: E402
from baseline_torch_sae import CASES, DECODER_NORM, L1_COEFF, LR, matmul_flops  # noqa: E402

# JAX runs far more steps than torch in the same time; steps per case of the JAX side.
JAX_STEPS = {"small": 40, "large": 20}


def sae_config(R: int, N: int, d: int, batch: int, steps: int, F: int, p: float,
               l1_coeff: float, seed: int, seeds: int) -> tm.SweepConfig:
    """R relu SAEs of width N on a synthetic source (F random unit features in d dims, each
    on with probability p), as a sweep: `seeds` seeds x R / seeds L1 coefficients from
    l1_coeff to 2 l1_coeff (the runs of a seed share their data draws: common random
    numbers; with seeds = R every SAE draws its own batch, as the torch baseline does)."""
    return tm.parse_config({
        "name": "bench-sae", "seed": seed,
        "sae": {"source": "synthetic", "n_features": F, "n_hidden": d, "kind": "relu",
                "width": N},
        "data": {"feature_probability": p},
        "train": {"steps": steps, "batch_size": batch, "learning_rate": LR, "log_every": steps},
        "sweep": {"seed": list(range(seeds)),
                  "l1_coefficient": {"linspace": [l1_coeff, 2 * l1_coeff, R // seeds]}},
    })


@functools.lru_cache(maxsize=None)
def _runner(R, N, d, batch, steps, F, p, l1_coeff, seed, seeds):
    """The real sweep path for these R SAEs: `toymodels.sweep.make_chunk_runner` (one
    chunk, split over one JAX device per core), and the grid it runs."""
    config = sae_config(R, N, d, batch, steps, F, p, l1_coeff, seed, seeds)
    grid, devices = expand_sae(config), jax.devices()
    chunk = round_chunk(grid.n_runs, TRAINER, config.spec, len(devices))
    return make_chunk_runner(TRAINER, config.spec, seed, chunk, seeds, devices), grid, len(devices)


def jax_sae_rate(R, N, d, batch, steps, F=None, p=0.05, *, l1_coeff=L1_COEFF,
                 seed=0, seeds=10) -> dict:
    """Time `steps` steps of R relu SAEs trained by the project's engine (after one untimed
    call that compiles the program).

    Returns the keys of `torch_sae_rate` (sae_steps_per_s, samples_per_s, seconds,
    flops per step, gflops, cores_busy, final_loss, ...) and first_call_seconds.
    """
    F = N if F is None else F
    run, grid, n_devices = _runner(R, N, d, batch, steps, F, float(p), float(l1_coeff), seed, seeds)
    start = time.perf_counter()
    run(grid, 0, grid.n_runs)  # compile (first time only) + warm-up
    first_call = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    _, arrays = run(grid, 0, grid.n_runs)
    seconds = time.perf_counter() - start
    busy = (time.process_time() - cpu) / seconds
    flops = matmul_flops(R, N, d, batch, F)
    return {
        "R": grid.n_runs, "N": N, "d": d, "F": F, "p": p, "batch": batch, "steps": steps,
        "seeds": seeds, "l1_coeff": l1_coeff, "devices": n_devices, "seconds": seconds,
        "cores_busy": busy, "first_call_seconds": first_call,
        "sae_steps_per_s": grid.n_runs * steps / seconds,
        "samples_per_s": grid.n_runs * steps * batch / seconds,
        "flops": flops, "gflops": flops * steps / seconds / 1e9,
        "final_loss": float(np.mean(arrays["loss"][:, -1])),
        "trainer": "toymodels.sweep.make_chunk_runner (make_train_sae)",
    }




def check(R: int = 3, N: int = 12, d: int = 5, B: int = 64, seed: int = 0) -> float:
    """The project's relu SAE loss (`toymodels.dictionary.sae_penalty.relu_loss`, past its λ
    warm-up) and gradients against the torch baseline's on the same parameters and
    inputs; returns the largest relative difference."""
    import types

    import torch

    from baseline_torch_sae import sae_loss

    rng = np.random.default_rng(seed)
    names = ("W_enc", "b_enc", "W_dec", "b_dec")
    shapes = ((R, d, N), (R, N), (R, N, d), (R, d))
    params = {k: rng.standard_normal(s, dtype=np.float32) * 0.3 for k, s in zip(names, shapes)}
    h = np.abs(rng.standard_normal((R, B, d), dtype=np.float32))

    tparams = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in params.items()}
    loss_t = sae_loss(*(tparams[k] for k in names), torch.tensor(h), L1_COEFF)
    loss_t.backward()
    grads_t = {k: tparams[k].grad.clone().numpy() for k in names}

    ours = {"encoder": np.swapaxes(params["W_enc"], 1, 2), "b_enc": params["b_enc"],
            "decoder": params["W_dec"], "b_dec": params["b_dec"]}
    hyper = types.SimpleNamespace(l1_coefficient=jnp.float32(L1_COEFF))
    loss = lambda p, x: relu_loss(p, None, x, hyper, jnp.float32(1.0))[0]
    losses, grads = jax.vmap(jax.value_and_grad(loss))(jax.tree.map(jnp.asarray, ours), jnp.asarray(h))
    grads_j = {"W_enc": np.swapaxes(grads["encoder"], 1, 2), "b_enc": grads["b_enc"],
               "W_dec": grads["decoder"], "b_dec": grads["b_dec"]}

    def rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))

    diffs = {"loss": rel(jnp.sum(losses), loss_t.detach().numpy())}
    for k in names:
        diffs["grad " + k] = rel(grads_j[k], grads_t[k])
    for k, v in diffs.items():
        print(f"  {k:<10} max relative difference {v:.1e}")
    return max(diffs.values())


def _line(who: str, name: str, r: dict, ceiling: float | None) -> str:
    out = (f"{who:<5} {name:<6} R={r['R']:<5} {r['F']}->{r['d']} N={r['N']:<4} "
           f"steps={r['steps']:<4} | {r['sae_steps_per_s']:>10,.0f} SAE-steps/s "
           f"| {r['samples_per_s']:.3g} samples/s | {r['gflops']:6.1f} GFLOP/s")
    if ceiling:
        out += f" ({100 * r['gflops'] / ceiling:.0f}%)"
    return out + f" | {r['cores_busy']:.2f} cores busy | {r['seconds']:.1f} s"


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(CASES), action="append")
    parser.add_argument("--steps", type=int, default=None, help="JAX steps (default per case)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=10,
                        help="distinct data seeds among the R SAEs (0: one per SAE, as torch)")
    parser.add_argument("--baseline", action="store_true", help="also time the PyTorch baseline")
    parser.add_argument("--baseline-steps", type=int, default=None,
                        help="torch steps (default per case, baseline_torch_sae.CASES)")
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--ceiling-n", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--ceiling-repeats", type=int, default=5)
    parser.add_argument("--check", action="store_true",
                        help="compare the project's loss and gradients with torch's, exit")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    if args.check:
        worst = check()
        # float32 sums of a few hundred terms: ~1e-6; a wrong loss is off by far more.
        print("OK" if worst < 1e-3 else "FAIL", f"(largest {worst:.1e})")
        return 0 if worst < 1e-3 else 1

    from baseline_torch_sae import measure_ceiling
    from ceiling import machine_info

    info = machine_info()
    print(f"{info['platform']} | jax {jax.__version__} | {len(jax.devices())} x "
          f"{jax.devices()[0].device_kind} | {info.get('cpu_count', '?')} CPUs "
          f"({info.get('cpu_model')}) | toymodels from {Path(tm.__file__).parent}")
    measured = None if args.no_ceiling else measure_ceiling(
        args.ceiling_n, args.ceiling_repeats, set_devices=False)
    ceiling = measured and measured["gflops"]
    if args.baseline:
        from baseline_torch_sae import torch_sae_rate

    rows = []
    for name in args.only or list(CASES):
        R, N, d, B, F, p, torch_steps, warmup = CASES[name]
        jax_runs, torch_runs = [], []
        for rep in range(args.repeats):  # alternately, so that load falls on both alike
            if args.baseline:
                torch_runs.append(torch_sae_rate(
                    R, N, d, B, args.baseline_steps or torch_steps, F=F, p=p,
                    warmup_steps=warmup, seed=rep))
                print(_line("torch", name, torch_runs[-1], ceiling), flush=True)
            jax_runs.append(jax_sae_rate(R, N, d, B, args.steps or JAX_STEPS[name], F=F,
                                         p=p, seed=rep, seeds=args.seeds or R))
            print(_line("jax", name, jax_runs[-1], ceiling), flush=True)
        row = {"case": name, "R": R, "N": N, "d": d, "F": F, "p": p, "batch": B,
               "jax_sae_steps_per_s": _median(jax_runs, "sae_steps_per_s"),
               "jax_samples_per_s": _median(jax_runs, "samples_per_s"),
               "jax_gflops": _median(jax_runs, "gflops"),
               "jax_cores_busy": _median(jax_runs, "cores_busy"),
               "jax_final_loss": _median(jax_runs, "final_loss"), "jax_runs": jax_runs}
        summary = (f"{name}: median of {args.repeats}: jax {row['jax_sae_steps_per_s']:,.0f} "
                   f"SAE-steps/s ({row['jax_samples_per_s']:.3g} samples/s, "
                   f"{row['jax_gflops']:.1f} GFLOP/s")
        if ceiling:
            row["jax_share_of_ceiling"] = row["jax_gflops"] / ceiling
            summary += f", {100 * row['jax_share_of_ceiling']:.0f}% of {ceiling:.0f}"
        summary += ")"
        if args.baseline:
            row.update({"torch_sae_steps_per_s": _median(torch_runs, "sae_steps_per_s"),
                        "torch_samples_per_s": _median(torch_runs, "samples_per_s"),
                        "torch_gflops": _median(torch_runs, "gflops"),
                        "torch_cores_busy": _median(torch_runs, "cores_busy"),
                        "torch_final_loss": _median(torch_runs, "final_loss"),
                        "torch_runs": torch_runs})
            row["speedup_vs_torch"] = row["jax_sae_steps_per_s"] / row["torch_sae_steps_per_s"]
            summary += (f" | torch {row['torch_sae_steps_per_s']:,.0f} SAE-steps/s "
                        f"({row['torch_gflops']:.1f} GFLOP/s) -> x{row['speedup_vs_torch']:.1f}")
        print(summary, flush=True)
        rows.append(row)
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "sae_throughput", "machine": info, "ceiling_gflops": ceiling,
            "ceiling": measured, "repeats": args.repeats, "l1_coeff": L1_COEFF, "lr": LR,
            "jax_trainer": "toymodels.sweep.make_chunk_runner (make_train_sae)",
            "seeds": args.seeds,
            "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
