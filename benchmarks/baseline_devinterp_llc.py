"""Baseline: the local learning coefficient (LLC) of toy models with devinterp's estimator.

The problem, shared with llc_throughput.py (which times `toymodels.sgld.llc` on it):

    model   relu_output 6 -> 2: x_hat = ReLU(W^T W x + b), W [2, 6], b [6]
    data    ONE finite dataset of n = 1000 exactly-one-active inputs, x = mu e_i with
            mu ~ U[0, 1) and i uniform over the 6 features (numpy, seed DATA_SEED)
    loss    L(w) = mean_x sum_j (x_j - x_hat_j)^2 (full batch unless --batch says less)
    w*      R models: the 5-gon critical point `toymodels.theory.kgon(6, 5,
            unused_bias=-0.1)` (a smooth one: the unused feature's bias is below the
            ReLU kink), run 0 exactly, runs r >= 1 with N(0, SIGMA^2) added to every
            entry of W and b (numpy, seed MODEL_SEED)
    SGLD    4 chains x (burn-in 100 + draws 200) steps, epsilon (devinterp's lr) 1e-4,
            gamma (devinterp's localization) 100, nbeta = n / ln n; every chain
            starts at w*; a "draw" below is one SGLD step of one chain, burn-in
            included: draws = R x chains x (burn_in + draws)

devinterp side (this file): devinterp 2.x's `devinterp.slt.sampling.sample` (SGLD,
`sampling_method="sgmcmc_sgld"`, update dw = -(lr/2)(nbeta grad L + localization (w -
w*)) + sqrt(lr) N(0, 1), the same chain as ours) and `devinterp.slt.llc.compute_llc`,
one model at a time, as devinterp runs. devinterp 2.x is written for language models:
its dataset is a HuggingFace `Dataset` of token sequences ("input_ids") and its custom
`loss_fn(model, input_ids)` returns a per-token loss [batch, seq - 1]. The toy problem
goes through that interface unchanged: each "sequence" is [index of the sample, 0]
(length 2, so one loss position), and `loss_fn` looks the input up in the fixed table X
and returns the per-sample loss sum_j (x_j - x_hat_j)^2 [batch, 1]; devinterp averages
it over the batch (mean over batch of the summed squared error: our L). Its DataLoader
has batch_size = the same batch as our side (1000 = full batch for the main comparison),
and the init loss L(w*) is averaged over n / batch batches (one epoch: exact).

The timed call is what a user runs per model: `sample(...)` (init loss, the 4 chains
one after another, devinterp's zarr output in a temporary directory, removed afterwards)
plus `compute_llc(...)`, after one untimed warm-up model, torch on 1 thread (`--threads`;
the old API's cores=1). tqdm's bars are off (TQDM_DISABLE=1). Besides that whole-call
rate it reports the rate within its per-chain loops (`sample_single_chain`, wrapped to
be timed), within them less their gc.collect() calls (`sampler._gc_and_empty_cache`,
twice per chain, about 0.25 s each here: the process holds some 400,000 Python objects
once transformers is imported), and with `--marginal-draws` the marginal cost of a draw
(model 0 again with more draws). devinterp's own lambda-hat (`llc_mean`) averages the
loss over every step, burn-in included; `llc_post_burnin` uses the draws after burn-in
only, as `toymodels.sgld.llc` does, and is the one to compare with ours.

Usage (from the benchmark venv, which has torch, devinterp, jax and the project;
llc_throughput.py runs it in a fresh process with `--problem`):

    /tmp/benchvenv/bin/python benchmarks/baseline_devinterp_llc.py --models 5
    /tmp/benchvenv/bin/python benchmarks/baseline_devinterp_llc.py --batch 1000 100 \
        --marginal-draws 3000 --json dv.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # devinterp draws a tqdm bar per chain

import numpy as np

INSTALL_HINT = ('devinterp (and torch) are not installed; install the benchmark extras '
                'with: pip install -e ".[bench]"')

N_FEATURES, N_HIDDEN, K_GON = 6, 2, 5
N_DATA = 1000
DATA_SEED, MODEL_SEED = 0, 1
SIGMA = 1e-3          # perturbation of the R models around the 5-gon
UNUSED_BIAS = -0.1    # bias of the unused 6th feature (a smooth critical point)
# SGLD settings, the same on both sides (names of toymodels.sgld.llc).
SETTINGS = {"chains": 4, "draws": 200, "burn_in": 100, "epsilon": 1e-4, "gamma": 100.0}


def nbeta(n: int = N_DATA) -> float:
    """n / ln n (devinterp's and toymodels.sgld's default inverse temperature)."""
    return n / math.log(n)


def make_dataset(n: int = N_DATA, c: int = N_FEATURES, seed: int = DATA_SEED) -> np.ndarray:
    """X [n, c] float32: row s is mu_s e_{i_s}, mu ~ U[0, 1), i uniform over c features."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, c), np.float32)
    X[np.arange(n), rng.integers(0, c, n)] = rng.random(n, dtype=np.float32)
    return X


def make_w_stars(R: int, sigma: float = SIGMA, seed: int = MODEL_SEED):
    """(W [R, 2, 6], b [R, 6]) float32: the 5-gon (run 0) and R - 1 perturbed copies."""
    from toymodels.theory import kgon

    g = kgon(N_FEATURES, K_GON, unused_bias=UNUSED_BIAS)
    W0, b0 = np.asarray(g.W, np.float32), np.asarray(g.b, np.float32)
    rng = np.random.default_rng(seed)
    W = W0 + sigma * rng.standard_normal((R,) + W0.shape, dtype=np.float32)
    b = b0 + sigma * rng.standard_normal((R,) + b0.shape, dtype=np.float32)
    W[0], b[0] = W0, b0
    return W, b


def draws_per_model(settings: dict = SETTINGS) -> int:
    """SGLD steps of one model, all chains, burn-in included."""
    return settings["chains"] * (settings["burn_in"] + settings["draws"])


def _torch_problem(X: np.ndarray):
    """(ToyModel class, loss_fn, HF dataset) of devinterp's side for the table X."""
    import torch
    from datasets import Dataset

    table = torch.tensor(X)

    class ToyModel(torch.nn.Module):
        """relu_output: x_hat = ReLU(W^T W x + b) on rows x."""

        def __init__(self, W, b):
            super().__init__()
            self.W = torch.nn.Parameter(torch.tensor(W))   # [m, c]
            self.b = torch.nn.Parameter(torch.tensor(b))   # [c]

        def forward(self, x):                              # x [B, c]
            return torch.relu((x @ self.W.T) @ self.W + self.b)

    def loss_fn(model, input_ids):
        """Per-"token" loss [B, 1]: sum_j (x_j - x_hat_j)^2 of the samples indexed."""
        x = table[input_ids[:, 0]]
        return ((x - model(x)) ** 2).sum(-1, keepdim=True)

    ids = np.stack([np.arange(len(X)), np.zeros(len(X), np.int64)], axis=1)
    dataset = Dataset.from_dict({"input_ids": ids}).with_format("torch")
    return ToyModel, loss_fn, dataset


def devinterp_llc_rate(X: np.ndarray, W: np.ndarray, b: np.ndarray, *, batch: int = N_DATA,
                       settings: dict = SETTINGS, warmup: bool = True, seed: int = 100,
                       threads: int | None = 1, marginal_draws: int = 0) -> dict:
    """Time devinterp's estimator on the models (W[r], b[r]), one after another.

    `threads` sets torch's intra-op threads (None: torch's default). Returns
    draws_per_s (models x chains x (burn_in + draws) / seconds), seconds, cores_busy,
    per-model seconds, loop_draws_per_s (the same draws over the time spent in
    devinterp's per-chain SGLD loops, `sample_single_chain`, alone: without its init
    loss, zarr set-up and read-back and compute_llc), and with `marginal_draws` > 0
    marginal_draws_per_s: model 0 once more with `marginal_draws` more draws per chain,
    chains x marginal_draws / (its time - the median time per model), the cost of a
    draw without devinterp's fixed cost per model and chain (gc.collect() twice per
    chain, the deep copy, the zarr store), and steps_draws_per_s: the draws over the
    time of the SGLD loops less that of their gc.collect() calls (gc_seconds),
    lambda-hats (devinterp's own, burn-in included, and post burn-in), init losses
    and the config.
    """
    import devinterp
    import devinterp.slt.sampler as sampler
    import devinterp.slt.sampling as sampling
    import torch
    from devinterp.slt.llc import compute_llc

    if threads is not None:
        torch.set_num_threads(int(threads))
    n = len(X)
    if n % batch:
        raise ValueError(f"batch {batch} must divide n = {n}")
    ToyModel, loss_fn, dataset = _torch_problem(X)
    nb = nbeta(n)

    # The SGLD loops alone: time devinterp's per-chain function, and within it its
    # gc.collect() calls (both wrapped, not changed).
    chain_fn, loop = sampling.sample_single_chain, [0.0, 0.0]
    gc_fn = sampler._gc_and_empty_cache

    def timed_chain(*a, **k):
        t = time.perf_counter()
        try:
            return chain_fn(*a, **k)
        finally:
            loop[0] += time.perf_counter() - t

    def timed_gc():
        t = time.perf_counter()
        try:
            return gc_fn()
        finally:
            loop[1] += time.perf_counter() - t

    def one(W_r, b_r, seed_r, s=settings):
        out = tempfile.mkdtemp(prefix="devinterp_llc_")
        loop[:] = [0.0, 0.0]
        sampling.sample_single_chain = timed_chain
        sampler._gc_and_empty_cache = timed_gc
        try:
            t0 = time.perf_counter()
            samples = sampling.sample(
                ToyModel(W_r, b_r), dataset, {}, lr=s["epsilon"], n_beta=nb,
                localization=s["gamma"], num_chains=s["chains"], num_draws=s["draws"],
                num_burnin_steps=s["burn_in"], num_steps_bw_draws=1, batch_size=batch,
                num_init_loss_batches=n // batch, init_seed=seed_r,
                sampling_method="sgmcmc_sgld", loss_fn=loss_fn, device="cpu",
                output_path=os.path.join(out, "samples.zarr"))
            res = compute_llc(samples)
            own = float(res.llc_mean)
            seconds = time.perf_counter() - t0
            trace = np.asarray(res.loss_trace)            # [chains, burn_in + draws]
            init = float(res.init_loss)
            post = nb * (trace[:, s["burn_in"]:].mean(axis=1) - init)
        finally:
            sampling.sample_single_chain = chain_fn
            sampler._gc_and_empty_cache = gc_fn
            shutil.rmtree(out, ignore_errors=True)
        return seconds, own, post, init, tuple(loop)

    if warmup:
        one(W[0], b[0], seed)
    per_model, loops, gcs, own, post, init = [], [], [], [], [], []
    cpu = time.process_time()
    for r in range(len(W)):
        sec, o, p, i, lp = one(W[r], b[r], seed + 10 * r)
        per_model.append(sec)
        loops.append(lp[0])
        gcs.append(lp[1])
        own.append(o)
        post.append(float(p.mean()))
        init.append(i)
    seconds = sum(per_model)
    busy = (time.process_time() - cpu) / seconds
    models = len(W)
    marginal = {}
    if marginal_draws > 0:
        long = {**settings, "draws": settings["draws"] + marginal_draws}
        t_long = one(W[0], b[0], seed + 7, long)[0]
        extra = t_long - statistics.median(per_model)
        marginal = {"marginal_draws": marginal_draws, "marginal_model_seconds": t_long,
                    "marginal_draws_per_s": (settings["chains"] * marginal_draws / extra
                                             if extra > 0 else None)}
    return {
        "side": "devinterp", "models": models, "batch": batch, "n": n, "nbeta": nb,
        **settings, "seconds": seconds, "cores_busy": busy, "model_seconds": per_model,
        "median_model_seconds": statistics.median(per_model),
        "draws": models * draws_per_model(settings),
        "draws_per_s": models * draws_per_model(settings) / seconds,
        "loop_seconds": sum(loops), "model_loop_seconds": loops,
        "loop_draws_per_s": models * draws_per_model(settings) / sum(loops),
        "gc_seconds": sum(gcs),
        "steps_draws_per_s": models * draws_per_model(settings) / (sum(loops) - sum(gcs)),
        "llc_own": own, "llc_post_burnin": post, "init_loss": init,
        "llc_own_mean": float(np.mean(own)), "llc_post_burnin_mean": float(np.mean(post)),
        **marginal,
        "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
        "devinterp_version": getattr(devinterp, "__version__", _version("devinterp")),
    }


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def line(r: dict) -> str:
    marginal = ("; %s marginal" % (f"{r['marginal_draws_per_s']:,.0f}"
                                   if r.get("marginal_draws_per_s") else "no")
                if "marginal_draws" in r else "")
    return (f"devinterp batch={r['batch']:<5} models={r['models']:<3} "
            f"{r['draws_per_s']:>9,.0f} draws/s ({r['loop_draws_per_s']:,.0f} in its SGLD "
            f"loops, {r['steps_draws_per_s']:,.0f} in their steps{marginal}) "
            f"| {r['median_model_seconds']:.2f} s/model "
            f"| lambda-hat {r['llc_post_burnin_mean']:.3f} post burn-in "
            f"({r['llc_own_mean']:.3f} devinterp's own, burn-in included) "
            f"| {r['seconds']:.1f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=5, help="models timed (one at a time)")
    ap.add_argument("--batch", type=int, nargs="+", default=[N_DATA],
                    help="SGLD batch sizes, each timed in turn (n = full batch)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=100, help="devinterp's init_seed base")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: devinterp's cores=1; on a loaded "
                         "2-core host 2 threads ran 5x slower)")
    ap.add_argument("--marginal-draws", type=int, default=0,
                    help="also time model 0 with this many more draws (marginal cost)")
    ap.add_argument("--draws", type=int, default=SETTINGS["draws"])
    ap.add_argument("--burn-in", type=int, default=SETTINGS["burn_in"])
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed model")
    ap.add_argument("--problem", metavar="NPZ",
                    help="X, W, b from this file (written by llc_throughput.py) instead "
                         "of building them (which imports toymodels, and so jax)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    try:
        import devinterp  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        print(INSTALL_HINT)
        return 2
    if args.problem:
        with np.load(args.problem) as f:
            X, W, b = f["X"], f["W"][:args.models], f["b"][:args.models]
    else:
        X = make_dataset()
        W, b = make_w_stars(args.models)
    settings = {**SETTINGS, "draws": args.draws, "burn_in": args.burn_in}
    runs = []
    for rep in range(args.repeats):
        for batch in args.batch:
            runs.append(devinterp_llc_rate(X, W, b, batch=batch, threads=args.threads,
                                           settings=settings, warmup=not args.no_warmup,
                                           seed=args.seed + 1000 * rep,
                                           marginal_draws=args.marginal_draws))
            print(line(runs[-1]), flush=True)
    for batch in args.batch:
        med = statistics.median(r["draws_per_s"] for r in runs if r["batch"] == batch)
        print(f"batch {batch}: median of {args.repeats}: {med:,.0f} draws/s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"benchmark": "baseline_devinterp_llc", "platform": platform.platform(),
                       "runs": runs}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
