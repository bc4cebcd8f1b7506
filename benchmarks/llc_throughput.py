"""LLC throughput: `toymodels.sgld.llc` on R toy models at once against devinterp's estimator.

SGLD draws per second (one draw = one SGLD step of one chain, burn-in included) of the
local learning coefficient estimator, on the problem of baseline_devinterp_llc.py: R =
1,000 models 6 -> 2 (relu_output, x_hat = ReLU(W^T W x + b)) around the 5-gon, 4 chains
x (100 burn-in + 200 draws), epsilon 1e-4, gamma 100, nbeta = n / ln n, ONE shared
dataset of n = 1000 exactly-one-active inputs, full-batch MSE loss (summed over
features, mean over the dataset).

Our side (`jax_llc_rate`): `toymodels.sgld.llc` (one jitted program; its vmap over the 4
chains) mapped over the R models by `jax.lax.map(..., batch_size=chunk)` inside one
`jax.jit`: a vmap over `chunk` models at a time (default 50, which keeps a step's
[chunk x 4, 1000, 6] arrays in cache; a plain vmap over all 1,000 ran about half as
fast). The loss is the dense formula that devinterp's side computes, on the same float32
data. One untimed call compiles; the next is timed. As the `toymodels` command does,
JAX gets one CPU device per core (`--devices`, set before JAX starts), and the R models
are split over them by `jax.shard_map` (R / devices models each, still `chunk` at a
time): on the quiet 2-core host one device gave 73-75k draws/s (1.33 cores busy), two
130-131k (1.99).

devinterp's side (`baseline_devinterp_llc.devinterp_llc_rate`): devinterp's
`sample` + `compute_llc`, one model at a time, as devinterp runs, on the first
`--baseline-models` of the same R models (default 5), torch on 1 thread, in a fresh
process per repeat (`run_devinterp`: baseline_devinterp_llc.py on an .npz of the same X,
W and b; that process imports no jax, so devinterp's gc.collect() calls, two per chain,
do not walk JAX's objects too). Its time for all R is extrapolated as R x its median
time per model (its cost per model does not depend on the model); its draws/s is
measured on those models directly. Four rates of devinterp are kept, from the whole
call to the cost of a step alone:

    draws_per_s           its whole estimator per model: init loss, the 4 chains, its
                          zarr output, compute_llc (what a user waits for)
    loop_draws_per_s      the time in its per-chain loops (`sample_single_chain`) only
    steps_draws_per_s     those loops less their gc.collect() calls
    marginal_draws_per_s  model 0 again with `--marginal-draws` more draws per chain:
                          chains x extra draws / extra time (no fixed cost at all)

Each repeat times devinterp and then ours, so that other work on the host falls on both
alike; each ratio ours / devinterp is taken within a repeat, and its median and range
over `--repeats` are reported. With `--minibatch B` devinterp is also timed with batch
B (its DataLoader; our `llc` takes a full-batch loss only, so that ratio sets our full
batch against devinterp's cheaper minibatch steps). `--check` compares lambda-hat on the
5-gon itself with long chains (1,500 draws after 500 burn-in, 8 x 4 chains ours, 2 x 4
devinterp's): the default 300-step chains are still relaxing at step 100 and their
lambda-hats spread widely (about 0.6 between models), so the short-chain means of 5
models agree only to about 0.3.

Run from the benchmark venv (torch, devinterp, jax and the project installed):

    /tmp/benchvenv/bin/python benchmarks/llc_throughput.py --baseline --minibatch 100 \
        --check --json benchmarks/results_llc.json
    python benchmarks/llc_throughput.py --repeats 1          # our side alone
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported: devinterp's bars

import jax


def _devices_arg() -> int:
    """--devices from the command line, read before JAX starts (default: one per core)."""
    for i, a in enumerate(sys.argv):
        if a == "--devices" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if a.startswith("--devices="):
            return int(a.split("=", 1)[1])
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    jax.config.update("jax_num_cpu_devices", _devices_arg())

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import toymodels as tm  # noqa: E402
from toymodels.sgld import llc  # noqa: E402
from baseline_devinterp_llc import (  # noqa: E402
    N_DATA, SETTINGS, SIGMA, draws_per_model, make_dataset, make_w_stars, nbeta,
)

R_DEFAULT = 1000
CHUNK = 50


def make_loss(X: np.ndarray):
    """Full-batch loss of relu_output on the table X: mean_x sum_j (x_j - x_hat_j)^2."""
    Xj = jnp.asarray(X)

    def loss_fn(p):
        x_hat = jax.nn.relu((Xj @ p["W"].T) @ p["W"] + p["b"])
        return jnp.mean(jnp.sum((Xj - x_hat) ** 2, axis=-1))

    return loss_fn


def make_runner(X: np.ndarray, settings: dict = SETTINGS, chunk: int = CHUNK,
                devices=None):
    """jit((w_stars, keys) -> LLCResult of every model): `llc` mapped over the models,
    `chunk` at a time (vmap inside, lax.map across chunks), and with several `devices`
    (default: all of JAX's) split over them by shard_map (R must be a multiple)."""
    loss_fn, n = make_loss(X), len(X)

    def one(args):
        w, k = args
        return llc(loss_fn, w, n=n, key=k, **settings)

    def body(w, k):
        return jax.lax.map(one, (w, k), batch_size=chunk)

    devices = jax.devices() if devices is None else list(devices)
    if len(devices) == 1:
        return jax.jit(body)
    from jax.sharding import Mesh, PartitionSpec

    mesh = Mesh(np.array(devices), ("r",))
    spec = PartitionSpec("r")
    return jax.jit(jax.shard_map(body, mesh=mesh, in_specs=(spec, spec), out_specs=spec))


def jax_llc_rate(runner, W: np.ndarray, b: np.ndarray, *, seed: int = 0,
                 settings: dict = SETTINGS, first_models: int = 0,
                 chunk: int = CHUNK, warmup: bool = True) -> dict:
    """Time `runner` (make_runner) on the R models (W[r], b[r]), after one untimed call
    (compile + run) with `warmup` (False: `runner` has run on these shapes already).

    Returns draws_per_s (R x chains x (burn_in + draws) / seconds), seconds, cores_busy,
    first_call_seconds (compile + run), lambda-hat mean over all R and over the first
    `first_models` (those devinterp times), acceptance and trusted fraction."""
    R = len(W)
    w = {"W": jnp.asarray(W), "b": jnp.asarray(b)}
    keys = jax.random.split(jax.random.fold_in(jax.random.key(0), seed), R)
    first = None
    if warmup:
        start = time.perf_counter()
        jax.block_until_ready(runner(w, keys))
        first = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    res = jax.block_until_ready(runner(w, keys))
    seconds = time.perf_counter() - start
    busy = (time.process_time() - cpu) / seconds
    lam = np.asarray(res.llc)
    return {
        "side": "toymodels", "models": R, "batch": N_DATA, "n": N_DATA, "nbeta": nbeta(),
        "devices": len(jax.devices()),
        **settings, "chunk": chunk, "seconds": seconds, "cores_busy": busy,
        "first_call_seconds": first, "draws": R * draws_per_model(settings),
        "draws_per_s": R * draws_per_model(settings) / seconds,
        "llc_mean": float(lam.mean()), "llc_std": float(lam.std()),
        "llc_first": lam[:first_models].tolist(),
        "llc_first_mean": float(lam[:first_models].mean()) if first_models else None,
        "acceptance_mean": float(np.mean(res.acceptance)),
        "trusted_fraction": float(np.mean(res.trusted)),
        "estimator": "toymodels.sgld.llc under jax.lax.map(batch_size=chunk) in one jax.jit",
    }


def check(X: np.ndarray, draws: int = 1500, burn_in: int = 500, keys: int = 8,
          dv_seeds: int = 2) -> dict:
    """lambda-hat of the 5-gon with long chains: ours over `keys` keys, devinterp over
    `dv_seeds` seeds (4 chains each, post burn-in on both sides)."""
    settings = {**SETTINGS, "draws": draws, "burn_in": burn_in}
    W, b = make_w_stars(1)
    runner = make_runner(X, settings, chunk=keys, devices=jax.devices()[:1])
    Wk, bk = np.repeat(W, keys, 0), np.repeat(b, keys, 0)
    ours = jax_llc_rate(runner, Wk, bk, seed=123, settings=settings, first_models=keys,
                        chunk=keys)
    dv = run_devinterp(X, np.repeat(W, dv_seeds, 0), np.repeat(b, dv_seeds, 0), [N_DATA],
                       seed=500, settings=settings, warmup=False)[0]
    dv_post = dv["llc_post_burnin"]
    out = {"draws": draws, "burn_in": burn_in,
           "ours_llc_per_key": ours["llc_first"], "ours_llc_mean": ours["llc_mean"],
           "ours_llc_se": float(np.std(ours["llc_first"]) / np.sqrt(keys)),
           "devinterp_llc_post_burnin": dv_post,
           "devinterp_llc_post_burnin_mean": float(np.mean(dv_post)),
           "devinterp_llc_own": dv["llc_own"]}
    print(f"check (5-gon, {draws} draws after {burn_in} burn-in): ours lambda-hat "
          f"{out['ours_llc_mean']:.3f} +- {out['ours_llc_se']:.3f} ({keys} keys x 4 chains)"
          f" | devinterp {out['devinterp_llc_post_burnin_mean']:.3f} "
          f"({', '.join(f'{v:.3f}' for v in dv_post)}; {dv_seeds} seeds x 4 chains)",
          flush=True)
    return out


def run_devinterp(X: np.ndarray, W: np.ndarray, b: np.ndarray, batches, *, seed: int,
                  marginal_draws: int = 0, settings: dict = SETTINGS,
                  warmup: bool = True, python: str = sys.executable) -> list[dict]:
    """devinterp's side in a fresh process (baseline_devinterp_llc.py, which imports
    torch and devinterp but not jax), on these models; returns its runs, one per batch.

    A separate process, so that devinterp's gc.collect() calls (two per chain) do not
    walk JAX's objects too, and torch and XLA do not share a process."""
    with tempfile.TemporaryDirectory(prefix="llc_bench_") as tmp:
        problem, out = os.path.join(tmp, "problem.npz"), os.path.join(tmp, "dv.json")
        np.savez(problem, X=X, W=W, b=b)
        cmd = [python, str(Path(__file__).resolve().parent / "baseline_devinterp_llc.py"),
               "--problem", problem, "--models", str(len(W)),
               "--batch", *map(str, batches), "--seed", str(seed),
               "--marginal-draws", str(marginal_draws), "--draws", str(settings["draws"]),
               "--burn-in", str(settings["burn_in"]), "--json", out]
        if not warmup:
            cmd.append("--no-warmup")
        env = {**os.environ, "TQDM_DISABLE": "1"}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise RuntimeError(f"devinterp side failed ({proc.returncode}): {' '.join(cmd)}")
        with open(out) as fh:
            return json.load(fh)["runs"]


def _line(r: dict) -> str:
    return (f"ours      batch={r['batch']:<5} models={r['models']:<5} "
            f"{r['draws_per_s']:>9,.0f} draws/s | lambda-hat {r['llc_mean']:.3f} mean of "
            f"{r['models']} ({r['llc_first_mean'] or float('nan'):.3f} on the first "
            f"{len(r['llc_first'])}) | acceptance {r['acceptance_mean']:.4f} | "
            f"{r['cores_busy']:.2f} cores busy | {r['seconds']:.1f} s "
            + (f" (first call {r['first_call_seconds']:.1f} s)"
               if r["first_call_seconds"] else ""))


def _stats(values) -> dict:
    values = list(values)
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": values}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=R_DEFAULT, help="R models on our side")
    ap.add_argument("--chunk", type=int, default=CHUNK, help="models per vmap (lax.map)")
    ap.add_argument("--devices", type=int, default=None,
                    help="JAX CPU devices the models are split over (default: one per core)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", action="store_true", help="also time devinterp")
    ap.add_argument("--baseline-models", type=int, default=5,
                    help="models devinterp runs per repeat (one at a time)")
    ap.add_argument("--minibatch", type=int, default=None,
                    help="also time devinterp with this SGLD batch")
    ap.add_argument("--marginal-draws", type=int, default=3000,
                    help="devinterp: model 0 again with this many more draws per chain, "
                         "for its marginal cost per draw (0: skip)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter of devinterp's side (needs torch and devinterp)")
    ap.add_argument("--check", action="store_true", help="long-chain lambda-hat check")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from ceiling import machine_info

    info = machine_info()
    print(f"{info['platform']} | jax {jax.__version__} | {len(jax.devices())} x "
          f"{jax.devices()[0].device_kind} | {info.get('cpu_count', '?')} CPUs "
          f"({info.get('cpu_model')}) | toymodels from {Path(tm.__file__).parent}")
    print(f"R={args.runs} models 6->2, n={N_DATA}, nbeta={nbeta():.2f}, {SETTINGS}, "
          f"sigma={SIGMA}")
    if args.baseline or args.check:
        from baseline_devinterp_llc import line as dv_line

    X = make_dataset()
    W, b = make_w_stars(args.runs)
    K = min(args.baseline_models, args.runs)
    runner = make_runner(X, SETTINGS, args.chunk)
    ours, dv, dv_mb = [], [], []
    for rep in range(args.repeats):  # one after the other, so load falls on both alike
        if args.baseline:
            batches = [N_DATA] + ([args.minibatch] if args.minibatch else [])
            got = run_devinterp(X, W[:K], b[:K], batches, seed=100 + 1000 * rep,
                                marginal_draws=args.marginal_draws, python=args.python)
            dv.append(got[0])
            dv_mb.extend(got[1:])
            for r in got:
                print(dv_line(r), flush=True)
        ours.append(jax_llc_rate(runner, W, b, seed=rep, first_models=K, chunk=args.chunk,
                                 warmup=rep == 0))
        print(_line(ours[-1]), flush=True)
        if args.baseline:
            o = ours[-1]["draws_per_s"]
            msg = (f"repeat {rep}: ours / devinterp = x{o / dv[-1]['draws_per_s']:.1f} "
                   f"(x{o / dv[-1]['loop_draws_per_s']:.1f} against its SGLD loops alone")
            msg += f", x{o / dv[-1]['steps_draws_per_s']:.1f} against their steps"
            if dv[-1].get("marginal_draws_per_s"):
                msg += f", x{o / dv[-1]['marginal_draws_per_s']:.1f} against its marginal cost"
            msg += ")"
            if dv_mb:
                msg += (f"; x{o / dv_mb[-1]['draws_per_s']:.1f} against devinterp's "
                        f"batch {args.minibatch} (x{o / dv_mb[-1]['loop_draws_per_s']:.1f} "
                        f"its loops alone)")
            print(msg, flush=True)

    summary = {"ours_draws_per_s": _stats(r["draws_per_s"] for r in ours),
               "ours_seconds_R": _stats(r["seconds"] for r in ours),
               "ours_llc_mean_R": statistics.median(r["llc_mean"] for r in ours),
               "ours_llc_first_models": [v for r in ours for v in r["llc_first"]]}
    summary["ours_llc_first_models_mean"] = float(np.mean(summary["ours_llc_first_models"]))
    text = (f"median of {args.repeats}: ours {summary['ours_draws_per_s']['median']:,.0f} "
            f"draws/s (R={args.runs} in {summary['ours_seconds_R']['median']:.1f} s)")
    if args.baseline:
        summary["devinterp_draws_per_s"] = _stats(r["draws_per_s"] for r in dv)
        summary["devinterp_model_seconds"] = _stats(
            s for r in dv for s in r["model_seconds"])
        summary["devinterp_seconds_R_extrapolated"] = (
            args.runs * summary["devinterp_model_seconds"]["median"])
        summary["ratio"] = _stats(o["draws_per_s"] / d["draws_per_s"] for o, d in zip(ours, dv))
        summary["devinterp_loop_draws_per_s"] = _stats(r["loop_draws_per_s"] for r in dv)
        summary["ratio_vs_loops"] = _stats(
            o["draws_per_s"] / d["loop_draws_per_s"] for o, d in zip(ours, dv))
        summary["devinterp_steps_draws_per_s"] = _stats(r["steps_draws_per_s"] for r in dv)
        summary["ratio_vs_steps"] = _stats(
            o["draws_per_s"] / d["steps_draws_per_s"] for o, d in zip(ours, dv))
        if args.marginal_draws:
            summary["devinterp_marginal_draws_per_s"] = _stats(
                r["marginal_draws_per_s"] for r in dv if r.get("marginal_draws_per_s"))
            summary["ratio_vs_marginal"] = _stats(
                o["draws_per_s"] / d["marginal_draws_per_s"] for o, d in zip(ours, dv)
                if d.get("marginal_draws_per_s"))
        summary["devinterp_llc_post_burnin"] = [v for r in dv for v in r["llc_post_burnin"]]
        summary["devinterp_llc_post_burnin_mean"] = float(
            np.mean(summary["devinterp_llc_post_burnin"]))
        summary["devinterp_llc_own_mean"] = float(np.mean([v for r in dv for v in r["llc_own"]]))
        text += (f" | devinterp {summary['devinterp_draws_per_s']['median']:,.0f} draws/s "
                 f"({summary['devinterp_model_seconds']['median']:.2f} s/model, R={args.runs} "
                 f"extrapolated to {summary['devinterp_seconds_R_extrapolated']:.0f} s) -> "
                 f"x{summary['ratio']['median']:.1f} (x{summary['ratio']['min']:.1f} to "
                 f"x{summary['ratio']['max']:.1f}); its SGLD loops alone "
                 f"{summary['devinterp_loop_draws_per_s']['median']:,.0f} draws/s -> "
                 f"x{summary['ratio_vs_loops']['median']:.1f} (x{summary['ratio_vs_loops']['min']:.1f}"
                 f" to x{summary['ratio_vs_loops']['max']:.1f}); their steps alone (less "
                 f"gc.collect) {summary['devinterp_steps_draws_per_s']['median']:,.0f} draws/s"
                 f" -> x{summary['ratio_vs_steps']['median']:.1f} (x"
                 f"{summary['ratio_vs_steps']['min']:.1f} to x"
                 f"{summary['ratio_vs_steps']['max']:.1f})")
        if args.marginal_draws:
            text += (f"; its marginal cost {summary['devinterp_marginal_draws_per_s']['median']:,.0f}"
                     f" draws/s -> x{summary['ratio_vs_marginal']['median']:.1f} (x"
                     f"{summary['ratio_vs_marginal']['min']:.1f} to x"
                     f"{summary['ratio_vs_marginal']['max']:.1f})")
        text += (f"\nlambda-hat on the first {K} models: ours "
                 f"{summary['ours_llc_first_models_mean']:.3f}, devinterp "
                 f"{summary['devinterp_llc_post_burnin_mean']:.3f} post burn-in "
                 f"({summary['devinterp_llc_own_mean']:.3f} its own, burn-in included); "
                 f"ours over all {args.runs}: {summary['ours_llc_mean_R']:.3f}")
        if dv_mb:
            summary["devinterp_minibatch"] = args.minibatch
            summary["devinterp_minibatch_draws_per_s"] = _stats(r["draws_per_s"] for r in dv_mb)
            summary["ratio_vs_minibatch"] = _stats(
                o["draws_per_s"] / d["draws_per_s"] for o, d in zip(ours, dv_mb))
            summary["devinterp_minibatch_loop_draws_per_s"] = _stats(
                r["loop_draws_per_s"] for r in dv_mb)
            summary["devinterp_minibatch_steps_draws_per_s"] = _stats(
                r["steps_draws_per_s"] for r in dv_mb)
            summary["ratio_vs_minibatch_steps"] = _stats(
                o["draws_per_s"] / d["steps_draws_per_s"] for o, d in zip(ours, dv_mb))
            summary["ratio_vs_minibatch_loops"] = _stats(
                o["draws_per_s"] / d["loop_draws_per_s"] for o, d in zip(ours, dv_mb))
            if args.marginal_draws:
                summary["devinterp_minibatch_marginal_draws_per_s"] = _stats(
                    r["marginal_draws_per_s"] for r in dv_mb if r.get("marginal_draws_per_s"))
            summary["devinterp_minibatch_llc_post_burnin_mean"] = float(
                np.mean([v for r in dv_mb for v in r["llc_post_burnin"]]))
            text += (f"\ndevinterp batch {args.minibatch}: "
                     f"{summary['devinterp_minibatch_draws_per_s']['median']:,.0f} draws/s -> "
                     f"ours (full batch) x{summary['ratio_vs_minibatch']['median']:.1f} "
                     f"(x{summary['ratio_vs_minibatch']['min']:.1f} to "
                     f"x{summary['ratio_vs_minibatch']['max']:.1f}); its SGLD loops alone "
                     f"{summary['devinterp_minibatch_loop_draws_per_s']['median']:,.0f} draws/s "
                     f"-> x{summary['ratio_vs_minibatch_loops']['median']:.1f}; their steps "
                     f"{summary['devinterp_minibatch_steps_draws_per_s']['median']:,.0f} draws/s "
                     f"-> x{summary['ratio_vs_minibatch_steps']['median']:.1f}; its lambda-hat "
                     f"{summary['devinterp_minibatch_llc_post_burnin_mean']:.3f}")
    print(text, flush=True)
    checked = check(X) if args.check else None
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "llc_throughput", "machine": info, "repeats": args.repeats,
            "R": args.runs, "baseline_models": K if args.baseline else None,
            "n": N_DATA, "nbeta": nbeta(), "settings": SETTINGS, "sigma": SIGMA,
            "chunk": args.chunk, "devices": len(jax.devices()), "summary": summary,
            "check": checked,
            "ours_runs": ours, "devinterp_runs": dv, "devinterp_minibatch_runs": dv_mb},
            indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
