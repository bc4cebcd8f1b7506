"""Time `toymodels.analysis.analyze` on 10,000 runs of the paper's geometry size.

F = 400 features, H = 30 hidden (REFERENCE 1.9). The runs are a mix of
  * structured: tegum products of uniform polytopes filling the hidden space, randomly
    rotated, features shuffled, 1% noise, the rest of the features near zero;
  * random: Gaussian columns with norms spread around 1 (one big tangled component);
  * low rank: random W of rank 5.
Prints the warm-up (compile) time and the median of a few timed repeats.

Run: .venv/bin/python benchmarks/analyze.py [--runs 10000] [--repeats 3]
"""

import argparse
import time

import jax
import numpy as np
import xarray as xr

from toymodels.analysis import POLYTOPE_KINDS, analyze

F, H = 400, 30


def polygon(k: int) -> np.ndarray:
    """Regular k-gon in 2-D, [2, k]."""
    t = 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(t), np.sin(t)])


def blocks() -> dict[str, np.ndarray]:
    """Unit-norm polytopes [d, N] by name."""
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]).T / np.sqrt(3)
    t = np.pi / 2 * np.arange(4)
    r, z = np.sqrt(2 / 3), np.sqrt(1 / 3)
    top = np.stack([r * np.cos(t), r * np.sin(t), np.full(4, z)])
    bottom = np.stack([r * np.cos(t + np.pi / 4), r * np.sin(t + np.pi / 4), -top[2]])
    return {
        "dedicated": np.ones((1, 1)),
        "digon": np.array([[1.0, -1.0]]),
        "triangle": polygon(3),
        "pentagon": polygon(5),
        "tetrahedron": tet,
        "square_antiprism": np.concatenate([top, bottom], axis=1),
    }


LAYOUTS = (  # tegum products that fill H = 30 dimensions
    {"digon": 30},
    {"pentagon": 15},
    {"square_antiprism": 10},
    {"triangle": 6, "tetrahedron": 2, "digon": 6, "dedicated": 6},
    {"pentagon": 6, "square_antiprism": 4, "dedicated": 6},
)


def template(layout: dict[str, int]) -> np.ndarray:
    """Block-diagonal W [H, F] of one layout; unused features stay zero."""
    W, row, col = np.zeros((H, F)), 0, 0
    for name, count in layout.items():
        block = blocks()[name]
        for _ in range(count):
            d, n = block.shape
            W[row : row + d, col : col + n] = block
            row, col = row + d, col + n
    assert row == H, layout
    return W


def structured(rng: np.random.Generator, n: int) -> np.ndarray:
    """Rotated, shuffled, 1%-noisy polytope layouts, [n, H, F]."""
    templates = np.stack([template(layout) for layout in LAYOUTS])
    base = templates[rng.integers(len(LAYOUTS), size=n)]
    q, _ = np.linalg.qr(rng.normal(size=(n, H, H)))
    perm = np.argsort(rng.random((n, F)), axis=1)
    W = np.take_along_axis(q @ base, perm[:, None, :], axis=2)
    return W + 0.01 / np.sqrt(H) * rng.normal(size=W.shape)


def random_runs(rng: np.random.Generator, n: int, rank: int | None) -> np.ndarray:
    """Gaussian W [n, H, F] (optionally of low rank) with column norms around 1."""
    if rank is None:
        W = rng.normal(size=(n, H, F))
    else:
        W = rng.normal(size=(n, H, rank)) @ rng.normal(size=(n, rank, F))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    return W * rng.uniform(0.0, 1.5, size=(n, 1, F))


def dataset(n_runs: int, seed: int = 0) -> xr.Dataset:
    """10,000-run-style dataset with run axes (kind, seed) and a b variable."""
    rng = np.random.default_rng(seed)
    n = n_runs // 10
    W = np.concatenate(
        [
            structured(rng, 4 * n),
            random_runs(rng, 4 * n, None),
            random_runs(rng, 2 * n, 5),
        ]
    ).astype(np.float32)
    W = W.reshape(10, n, H, F)
    return xr.Dataset(
        {
            "W": (("kind", "seed", "hidden", "feature"), W),
            "b": (("kind", "seed", "feature"), np.zeros((10, n, F), np.float32)),
            # as in real results, so the adversarial analysis runs too
            "density": (("kind", "seed", "feature"), np.full((10, n, F), 0.1, np.float32)),
            "importance": (("kind", "seed", "feature"), np.ones((10, n, F), np.float32)),
        },
        coords={"kind": ["structured"] * 4 + ["random"] * 4 + ["low_rank"] * 2},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    t0 = time.perf_counter()
    ds = dataset(args.runs)
    print(f"device: {jax.devices()[0]}  runs: {args.runs}  F={F} H={H}")
    print(f"build dataset: {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    analyze(ds.isel(seed=slice(0, 1)))  # 10 runs: same chunk shape, so this compiles
    print(f"compile (analyze on 10 runs): {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    out = analyze(ds)
    print(f"warm-up (first full run): {time.perf_counter() - t0:.2f} s")
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = analyze(ds)
        times.append(time.perf_counter() - t0)
    print(f"analyze: median {np.median(times):.2f} s over {args.repeats} repeats "
          f"({', '.join(f'{t:.2f}' for t in times)}); "
          f"{args.runs / np.median(times):,.0f} runs/s")
    print("variables:", ", ".join(v for v in out.data_vars if v not in ds))
    counts = out["polytope_counts"].sum(("seed",))
    for kind in ("structured", "random", "low_rank"):
        total = counts.sel(kind=kind).sum("kind").values
        print(f"  {kind:>10}: " + ", ".join(
            f"{k} {c}" for k, c in zip(POLYTOPE_KINDS, total) if c))


if __name__ == "__main__":
    main()
