"""The error of `final_loss` against a 10^8-sample reference, and best-of-seeds rankings.

Trains two sweeps with toymodels (10,000 steps, the notebook recipe), then for every run
compares three estimates of the population loss:

- `final_loss` as stored (toymodels.evaluation: exact for 0 and 1 active features,
  65,536 samples of the rest, shared by every run);
- the first version's estimator: plain Monte Carlo on 65,536 fresh samples of the run's
  own (one key per seed);
- the reference: plain Monte Carlo on 10^8 samples (jax.random's own generator and a
  forward pass written here, sums in float64; shared by the runs of one density so that
  their ranking is sharp).

Sweeps: 20 features (importance 0.7^i) in 5 dims at densities 1, 0.1, 0.01 and 0.001
(4 seeds), and the perturbed pentagon of issue 10 (5 features in 2 dims, density 0.05,
feature 0 at 1/4 of it, 16 seeds), whose seed ranking is the figure to beat.

Usage:
    python benchmarks/final_loss.py [--samples 1e8] [--json final_loss.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import toymodels as tm

PENTAGON = {
    "name": "pentagon_perturbed", "seed": 0,
    "model": {"kind": "relu_output", "n_features": 5, "n_hidden": 2},
    "data": {"feature_probability": 0.05, "density_ratio": 0.25},
    "train": {"steps": 10_000}, "sweep": {"seed": list(range(16))},
}
BASIC = {
    "name": "basic", "seed": 0,
    "model": {"kind": "relu_output", "n_features": 20, "n_hidden": 5},
    "data": {"importance_decay": 0.7},
    "train": {"steps": 10_000},
    "sweep": {"feature_probability": [1.0, 0.1, 0.01, 0.001], "seed": [0, 1, 2, 3]},
}
CHUNK = 1 << 20  # reference samples per compiled call (a multiple of 1,024)


@functools.partial(jax.jit, static_argnums=4)
def _chunk_sums(gram, b, p, importance, k, key):
    """[M, 2] Σ loss and Σ loss² of M models on k plain samples (sums of 1,024 blocks)."""
    u = jax.random.uniform(key, (k, p.shape[0]))
    x = jnp.where(u < p, u / p, 0.0)  # on with probability p, then Uniform[0, 1)

    def one(g, c):
        y = jnp.maximum(jnp.dot(x, g, precision=jax.lax.Precision.HIGHEST) + c, 0.0)
        loss = jnp.sum((x - y) ** 2 * importance, axis=1).reshape(-1, 1024)
        return jnp.stack([loss.sum(1), (loss ** 2).sum(1)], axis=-1)  # [k / 1024, 2]

    return jax.lax.map(lambda args: one(*args), (gram, b))


def plain_monte_carlo(W, b, p, importance, n, seed) -> tuple[np.ndarray, np.ndarray]:
    """([M] mean, [M] standard error) of Σ_i I_i (x_i - ReLU(WᵀWx + b)_i)² for M models
    W: [M, H, F], b: [M, F] on the same n plain samples (rounded up to 1,024s) (jax.random, not the package's
    generator; float32 per sample, sums accumulated in float64)."""
    n = -(-n // 1024) * 1024  # whole blocks of 1,024
    gram = jnp.asarray(np.einsum("mhf,mhg->mfg", W, W), jnp.float32)
    args = [jnp.asarray(a, jnp.float32) for a in (b, p, importance)]
    totals, done, key = np.zeros((len(W), 2)), 0, jax.random.key(seed)
    while done < n:
        k = min(CHUNK, n - done)
        part = _chunk_sums(gram, *args, k, jax.random.fold_in(key, done))
        totals += np.asarray(part, np.float64).sum(1)
        done += k
    mean = totals[:, 0] / n
    return mean, np.sqrt((totals[:, 1] / n - mean ** 2) / (n - 1))


def resolved_pairs(estimate: np.ndarray, ref: np.ndarray, ref_se: np.ndarray) -> tuple[int, int]:
    """(pairs of runs the reference separates by > 4 of its combined standard errors, how
    many of them `estimate` orders the same way)."""
    gap = ref[:, None] - ref[None, :]
    resolved = np.triu(np.abs(gap) > 4 * np.hypot(ref_se[:, None], ref_se[None, :]), 1)
    same = np.sign(estimate[:, None] - estimate[None, :]) == np.sign(gap)
    return int(resolved.sum()), int((resolved & same).sum())


def rank_agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, bool]:
    """(Spearman correlation of two scores, whether they pick the same best)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]), bool(np.argmin(a) == np.argmin(b))


def evaluate(ds, n: int, seed: int) -> list[dict]:
    """One row per run: the three estimates (see the module docstring)."""
    rows = []
    cells = [d for d in ds.final_loss.dims if d != "seed"]
    for cell in (ds.isel({d: i}) for d in cells for i in range(ds.sizes[d])) if cells else [ds]:
        W = cell.W.values.astype(np.float64)  # [S, H, F]
        b = cell.b.values.astype(np.float64)
        p, importance = cell.density.values[0], cell.importance.values[0]
        start = time.perf_counter()
        ref, ref_se = plain_monte_carlo(W, b, p, importance, n, seed)
        seconds = time.perf_counter() - start
        old = [plain_monte_carlo(W[s:s + 1], b[s:s + 1], p, importance, 65_536, 1000 + s)[0][0]
               for s in range(len(W))]
        for s in range(len(W)):
            rows.append({"density": float(p.max()), "seed": int(cell.seed.values[s]),
                         "reference": ref[s], "reference_se": ref_se[s],
                         "final_loss": float(cell.final_loss.values[s]),
                         "final_loss_se": float(cell.final_loss_se.values[s]),
                         "plain_65536": float(old[s]), "reference_seconds": seconds})
    return rows


def report(name: str, rows: list[dict]) -> dict:
    """Prints the error table and ranking of one sweep; returns its summary."""
    print(f"\n{name}: |estimate - reference| / reference (median and max over runs), "
          "and the error in units of the combined standard error")
    summary = {}
    for density in sorted({r["density"] for r in rows}, reverse=True):
        cell = [r for r in rows if r["density"] == density]
        ref = np.array([r["reference"] for r in cell])
        ref_se = np.array([r["reference_se"] for r in cell])
        new = np.array([r["final_loss"] for r in cell])
        se = np.array([r["final_loss_se"] for r in cell])
        old = np.array([r["plain_65536"] for r in cell])
        rel_new, rel_old = np.abs(new - ref) / ref, np.abs(old - ref) / ref
        z = np.abs(new - ref) / np.hypot(se, ref_se)
        rho_new, best_new = rank_agreement(new, ref)
        rho_old, best_old = rank_agreement(old, ref)
        print(f"  density {density:g}: final_loss rel. error median {np.median(rel_new):.1e} "
              f"max {rel_new.max():.1e} (|z| max {z.max():.1f}; se/loss {np.median(se / new):.1e},"
              f" reference se/loss {np.median(ref_se / ref):.1e}); plain 65,536: median "
              f"{np.median(rel_old):.1e} max {rel_old.max():.1e}")
        pairs, same_new = resolved_pairs(new, ref, ref_se)
        _, same_old = resolved_pairs(old, ref, ref_se)
        if len(cell) > 2:
            print(f"    seed ranking vs reference: final_loss Spearman {rho_new:.3f}, same best "
                  f"{best_new}; plain 65,536 Spearman {rho_old:.3f}, same best {best_old}")
            print(f"    pairs of seeds the reference resolves (> 4 se): {pairs}; ordered the "
                  f"same by final_loss {same_new}, by plain 65,536 {same_old}")
        summary[density] = {"rel_error_median": float(np.median(rel_new)),
                            "rel_error_max": float(rel_new.max()), "z_max": float(z.max()),
                            "plain_rel_error_median": float(np.median(rel_old)),
                            "plain_rel_error_max": float(rel_old.max()),
                            "spearman": rho_new, "same_best": best_new,
                            "plain_spearman": rho_old, "plain_same_best": best_old,
                            "resolved_pairs": pairs, "final_loss_same_order": same_new,
                            "plain_same_order": same_old}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=float, default=1e8, help="reference samples")
    parser.add_argument("--json", help="write the rows and summaries here")
    args = parser.parse_args()
    n = int(args.samples)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for raw in (PENTAGON, BASIC):
            cfg = tm.parse_config(raw)
            start = time.perf_counter()
            ds = tm.load(tm.run_sweep(cfg, f"{tmp}/{cfg.name}", quiet=True))
            print(f"{cfg.name}: {cfg.n_runs} runs trained in {time.perf_counter() - start:.0f} s")
            rows = evaluate(ds, n, seed=7)
            out[cfg.name] = {"rows": rows, "summary": report(cfg.name, rows)}
            if cfg.name == "pentagon_perturbed":
                order = sorted(rows, key=lambda r: r["reference"])
                print("    seeds by reference loss:", [r["seed"] for r in order])
                print("    seeds by final_loss:    ",
                      [r["seed"] for r in sorted(rows, key=lambda r: r["final_loss"])])
                print("    seeds by plain 65,536:  ",
                      [r["seed"] for r in sorted(rows, key=lambda r: r["plain_65536"])])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)


if __name__ == "__main__":
    main()
