"""SAEs on a synthetic world: the project's sweep against SAELens's own trainer, SAE-steps/s.

A SynthSAEBench-shaped sweep: R BatchTopK SAEs of width N on a `[synthetic]` preset
(default "synthsaebench-4k": SynthSAEBench-16k's law at 4,096 features in 256 dims),
batch 1024, fresh world examples every step, trained by the project's real sweep path
(`toymodels.sweep.make_chunk_runner` of the parsed `[sae]` + `[synthetic]` config: one
chunk split over one JAX CPU device per core, as the `toymodels` command runs it). The
R SAEs are `--seeds` seeds x R / seeds values of k around the world's mean L0; the SAEs
of a seed share their batch (the world draws it once per seed and step), so `--seeds R`
gives every SAE its own draws, like SAELens.

The reference is SAELens's own trainer as SAELens runs it: `SyntheticSAERunner` (its
`SAETrainer`, its `SyntheticActivationIterator` over a `SyntheticModel` built from this
world's exported parameters) training ONE BatchTopK SAE (k = the world's mean L0,
rounded) at a time, on torch with one thread per core (`baseline_saelens_synthetic.py
train`, a subprocess in the benchmark venv); its rate is steps/s between batch requests
after `--saelens-warmup` steps, i.e. SAE-steps/s, with setup excluded. The project's is R
x steps / seconds of one whole chunk call (after one untimed call per runner, which
compiles).

Each repeat times SAELens, then ours, alternately, so that other work on the host falls
on both alike; figures are medians of `--repeats`, the ratio is ours / SAELens of the
medians; the same per CPU-second (process CPU time / wall time is recorded as "cores
busy" on both sides) is less sensitive to other work on the host. FLOPs count the matmuls only (2 B F d to decode the world's batch, per SAE for
SAELens and per seed for ours, + 10 B d N per SAE step), the share of the ceiling is
against `ceiling.matmul_ceiling` measured first in the same run (n = 2048 and 4096).

    python benchmarks/synthetic_sae_throughput.py --saes 64 --seeds 4 64 --steps 4 2 \
        --saelens-steps 20 --saelens-warmup 5 --repeats 3 --ceiling-n 2048 \
        --ceiling-repeats 3 --json benchmarks/results_synthetic_sae.json   # as recorded
    python benchmarks/synthetic_sae_throughput.py --no-baseline --repeats 1   # ours alone
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

# As the `toymodels` command does: one JAX CPU device per core, so a sweep uses them all.
jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import toymodels as tm  # noqa: E402
from toymodels.dictionary import world as W  # noqa: E402
from toymodels.sweep import make_chunk_runner, round_chunk  # noqa: E402
from toymodels.trainers.sae import TRAINER, expand_sae  # noqa: E402
from synthetic_reference import BASELINE, BENCH_PYTHON, export, preset  # noqa: E402

LR = 3e-4  # SAELens's SyntheticSAERunnerConfig default


def sweep_config(name: str, R: int, N: int, batch: int, steps: int, ks: list[int],
                 seeds: int, seed: int = 0) -> tm.SweepConfig:
    """R = seeds x len(ks) BatchTopK SAEs of width N on the world `name`."""
    return tm.parse_config({
        "name": "bench-world-sae", "seed": seed,
        "sae": {"source": "synthetic", "kind": "batchtopk", "width": N},
        "synthetic": {"preset": name},
        "train": {"steps": steps, "batch_size": batch, "learning_rate": LR, "log_every": steps},
        "sweep": {"seed": list(range(seeds)), "k": ks},
    })


@functools.lru_cache(maxsize=None)
def _runner(name, R, N, batch, steps, ks, seeds, seed):
    config = sweep_config(name, R, N, batch, steps, list(ks), seeds, seed)
    grid, devices = expand_sae(config), jax.devices()
    chunk = round_chunk(grid.n_runs, TRAINER, config.spec, len(devices))
    return make_chunk_runner(TRAINER, config.spec, seed, chunk, seeds, devices), grid, len(devices)


def flops_per_step(F: int, d: int, N: int, batch: int, draws: int, saes: int) -> float:
    """Matmul FLOPs of one step: `draws` world batches decoded, `saes` SAE steps."""
    return float(draws * 2 * batch * F * d + saes * 10 * batch * d * N)


_warm: set = set()


def ours_rate(name, R, N, batch, steps, ks, seeds, seed=0) -> dict:
    run, grid, n_devices = _runner(name, R, N, batch, steps, tuple(ks), seeds, seed)
    first = None
    if (name, R, N, batch, steps, tuple(ks), seeds, seed) not in _warm:
        start = time.perf_counter()
        run(grid, 0, grid.n_runs)  # compile + warm-up, once per runner
        first = time.perf_counter() - start
        _warm.add((name, R, N, batch, steps, tuple(ks), seeds, seed))
    start, cpu = time.perf_counter(), time.process_time()
    _, arrays = run(grid, 0, grid.n_runs)
    seconds = time.perf_counter() - start
    spec, _ = preset(name)
    flops = flops_per_step(spec.n_features, spec.n_hidden, N, batch, seeds, grid.n_runs)
    return {"R": grid.n_runs, "seeds": seeds, "N": N, "batch": batch, "steps": steps,
            "devices": n_devices, "seconds": seconds, "first_call_seconds": first,
            "cores_busy": (time.process_time() - cpu) / seconds,
            "sae_steps_per_s": grid.n_runs * steps / seconds,
            "samples_per_s": grid.n_runs * steps * batch / seconds,
            "flops_per_step": flops, "gflops": flops * steps / seconds / 1e9,
            "final_loss": float(np.mean(arrays["loss"][:, -1])),
            "load_1min": os.getloadavg()[0]}


def saelens_rate(world_npz: Path, N: int, k: int, batch: int, steps: int, warmup: int,
                 seed: int, tmp: Path) -> dict:
    out = tmp / f"saelens_{seed}.json"
    cmd = [BENCH_PYTHON, str(BASELINE), "train", str(world_npz), "--width", str(N),
           "--k", str(k), "--batch", str(batch), "--steps", str(steps), "--warmup",
           str(warmup), "--lr", repr(LR), "--seed", str(seed), "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"SAELens baseline failed:\n{proc.stderr[-3000:]}")
    r = json.loads(out.read_text())
    run = r["runs"][0]
    run.update({k_: r[k_] for k_ in ("sae_lens", "torch", "threads", "F", "d", "width", "k")})
    run["load_1min"] = os.getloadavg()[0]
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="synthsaebench-4k")
    ap.add_argument("--saes", type=int, default=64, help="R, SAEs in the sweep")
    ap.add_argument("--width", type=int, default=None, help="N (default F / 4, as SynthSAEBench's "
                    "4,096 latents on 16k features)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[4, 64],
                    help="distinct data seeds among the R SAEs (one row each; R: every SAE "
                    "its own draws, like SAELens)")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 5],
                    help="our steps per timed call, one per --seeds value (or one for all)")
    ap.add_argument("--saelens-steps", type=int, default=40)
    ap.add_argument("--saelens-warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--no-ceiling", action="store_true")
    ap.add_argument("--ceiling-n", type=int, nargs="+", default=[2048, 4096])
    ap.add_argument("--ceiling-repeats", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from baseline_torch_sae import measure_ceiling
    from ceiling import machine_info

    info = machine_info()
    print(f"{info['platform']} | jax {jax.__version__} | {len(jax.devices())} devices | "
          f"{info['cpu_count']} CPUs ({info['cpu_model']}) | load {os.getloadavg()[0]:.1f}")
    measured = None if args.no_ceiling else measure_ceiling(
        args.ceiling_n, args.ceiling_repeats, set_devices=False)
    ceiling = measured and measured["gflops"]

    spec, world_seed = preset(args.preset)
    F, d = spec.n_features, spec.n_hidden
    N = args.width or F // 4
    world = W.build_world(spec, world_seed)
    codes = np.asarray(jax.jit(W.sample_codes, static_argnums=(1, 3))(
        world, spec, jax.random.key(1), 8192))
    mean_l0 = float((codes > 0).sum(1).mean())
    k0 = max(1, round(mean_l0))
    print(f"world {args.preset}: F={F} d={d}, mean L0 {mean_l0:.2f} -> SAELens k={k0}; "
          f"SAEs N={N}, batch {args.batch}")

    our_steps = args.steps * len(args.seeds) if len(args.steps) == 1 else args.steps
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        export(world, spec, tmp / "world.npz")
        saelens_runs, ours_runs = [], {s: [] for s in args.seeds}
        for rep in range(args.repeats):
            if not args.no_baseline:
                r = saelens_rate(tmp / "world.npz", N, k0, args.batch, args.saelens_steps,
                                 args.saelens_warmup, rep, tmp)
                saelens_runs.append(r)
                print(f"SAELens  1 SAE  k={k0}: {r['sae_steps_per_s']:8.2f} SAE-steps/s, "
                      f"{r['gflops']:6.1f} GFLOP/s" + (f" ({r['gflops'] / ceiling:.1%})" if ceiling else "")
                      + f", {r['cores_busy']:.2f} cores busy, load {r['load_1min']:.1f}", flush=True)
            for seeds, steps in zip(args.seeds, our_steps):
                per_seed = args.saes // seeds
                ks = [max(1, k0 - per_seed // 2 + i) for i in range(per_seed)]
                r = ours_rate(args.preset, args.saes, N, args.batch, steps, ks, seeds)
                ours_runs[seeds].append(r)
                print(f"ours R={r['R']} seeds={seeds:<3}: {r['sae_steps_per_s']:8.2f} SAE-steps/s, "
                      f"{r['gflops']:6.1f} GFLOP/s" + (f" ({r['gflops'] / ceiling:.1%})" if ceiling else "")
                      + f", {r['cores_busy']:.2f} cores busy, {r['seconds']:.1f} s, load "
                      f"{r['load_1min']:.1f}", flush=True)
    med = lambda runs, key: statistics.median(r[key] for r in runs)
    for seeds, runs in ours_runs.items():
        row = {"preset": args.preset, "F": F, "d": d, "R": args.saes, "N": N,
               "batch": args.batch, "seeds": seeds, "steps": runs[0]["steps"],
               "ours_sae_steps_per_s": med(runs, "sae_steps_per_s"),
               "ours_gflops": med(runs, "gflops"), "ours_cores_busy": med(runs, "cores_busy"),
               "ours_sae_steps_per_cpu_s": statistics.median(
                   r["sae_steps_per_s"] / r["cores_busy"] for r in runs),
               "ours_runs": runs}
        if ceiling:
            row["ours_share_of_ceiling"] = row["ours_gflops"] / ceiling
        line = (f"{args.preset} R={args.saes} seeds={seeds}: median of {args.repeats}: ours "
                f"{row['ours_sae_steps_per_s']:.1f} SAE-steps/s ({row['ours_gflops']:.1f} GFLOP/s"
                + (f", {row['ours_share_of_ceiling']:.1%} of {ceiling:.0f}" if ceiling else "") + ")")
        if saelens_runs:
            row.update({"saelens_sae_steps_per_s": med(saelens_runs, "sae_steps_per_s"),
                        "saelens_gflops": med(saelens_runs, "gflops"),
                        "saelens_cores_busy": med(saelens_runs, "cores_busy"),
                        "saelens_sae_steps_per_cpu_s": statistics.median(
                            r["sae_steps_per_s"] / r["cores_busy"] for r in saelens_runs),
                        "saelens_k": k0, "saelens_runs": saelens_runs})
            if ceiling:
                row["saelens_share_of_ceiling"] = row["saelens_gflops"] / ceiling
            row["speedup"] = row["ours_sae_steps_per_s"] / row["saelens_sae_steps_per_s"]
            # per CPU-second (process CPU time): less sensitive to what else the host runs
            row["speedup_per_cpu_s"] = (row["ours_sae_steps_per_cpu_s"]
                                        / row["saelens_sae_steps_per_cpu_s"])
            # ratios within each repeat, for their spread
            row["speedup_per_repeat"] = [o["sae_steps_per_s"] / s["sae_steps_per_s"]
                                         for o, s in zip(runs, saelens_runs)]
            line += (f" | SAELens {row['saelens_sae_steps_per_s']:.2f} SAE-steps/s "
                     f"({row['saelens_gflops']:.1f} GFLOP/s) -> x{row['speedup']:.1f} "
                     f"(per repeat x{min(row['speedup_per_repeat']):.1f}-x"
                     f"{max(row['speedup_per_repeat']):.1f}); per CPU-second x"
                     f"{row['speedup_per_cpu_s']:.1f}")
        print(line, flush=True)
        rows.append(row)
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "synthetic_sae_throughput", "machine": info,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "ceiling_gflops": ceiling, "ceiling": measured, "repeats": args.repeats,
            "lr": LR, "world_mean_l0": mean_l0, "saelens_k": k0,
            "ours_trainer": "toymodels.sweep.make_chunk_runner (SAE trainer, [synthetic] world)",
            "saelens_trainer": "sae_lens.synthetic.SyntheticSAERunner, one BatchTopK SAE",
            "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
