"""SPD's failure statistics (`sweeps/spd_failures.toml`, `sweeps/spd_failures_models.toml`,
issue 28): how often a Stochastic Parameter Decomposition (Bushnaq et al. 2025) of a
5 → 2 model misses a feature, over seeds of one model or over many models.

It reads an analysed SPD results Dataset (`toymodels analyze`): `best_cosine_W_in` and
`best_cosine_W_out` [..., feature] (each feature's best flattened cosine with a
subcomponent), `failed` and `missed_feature`. Every run of the sweep (every seed, every
source run, every value of any other axis) is one decomposition; they are pooled.

Left: the histogram of each run's worst feature (the lowest best cosine over the features
and the two matrices) with the failure threshold (`toymodels.spd.metrics.FAIL_COSINE`,
0.9) and the failure rate with its Wilson 95% interval. Middle: which feature the failed
runs miss. Right: each run's final training loss (`loss`, the last log period's mean), the
successes' and the failures' histograms, and the failure rate of keeping the lowest-loss
of k seeds of one target (`kept_failure_rates`).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels.analysis.spd import lowest_loss_failure_rate
from toymodels.spd.metrics import FAIL_COSINE

COLOURS = ("#3b75af", "#c44e52", "#7f7f7f")
VARIABLES = ("best_cosine_W_in", "best_cosine_W_out", "failed", "missed_feature", "loss")
KEPT = (1, 2, 4, 8)  # the k of "keep the lowest-loss of k seeds" in the loss panel's title
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion k / n (95% at the default z).

    Example:
      >>> [round(v, 4) for v in wilson(0, 10)]
      [0.0, 0.2775]
    """
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def need_analyzed(ds: xr.Dataset, names: tuple[str, ...] = ()) -> None:
    """A ValueError naming what an SPD figure needs (`names`, default this module's
    VARIABLES) that `ds` lacks: `toymodels analyze` adds it."""
    missing = [n for n in names or VARIABLES if n not in ds]
    if missing:
        raise ValueError(f"needs {', '.join(missing)}: run `toymodels analyze` on an SPD "
                         "sweep first")


def worst_cosines(ds: xr.Dataset) -> np.ndarray:
    """[runs] each run's worst feature: min over features and W_in, W_out of the best
    flattened cosine (NaN features, those the target does not represent, skipped)."""
    both = xr.concat([ds.best_cosine_W_in, ds.best_cosine_W_out], "matrix")
    worst = both.min(("matrix", "feature"), skipna=True)
    return np.asarray(worst.values, float).ravel()


def final_losses(ds: xr.Dataset) -> np.ndarray:
    """[runs] each run's final training loss (the last log period's mean of `loss`)."""
    return np.asarray(ds.loss.isel(step=-1).values, float).ravel()


def kept_failure_rates(ds: xr.Dataset) -> dict[int, float]:
    """{k: the failure rate of keeping the lowest-loss of k seeds} for k in `KEPT` up to
    the number of seeds: losses are compared only between seeds of one target and setting
    (every other axis held), and the rate is the mean over those (a sweep of one seed per
    model gives k = 1 only, its plain failure rate)."""
    failed = ds.failed.astype(bool)
    loss = ds.loss.isel(step=-1)
    if "seed" not in failed.dims:
        failed, loss = failed.expand_dims("seed"), loss.expand_dims("seed")
    others = [d for d in failed.dims if d != "seed"]
    f = np.asarray(failed.transpose(*others, "seed").values).reshape(-1, failed.sizes["seed"])
    L = np.asarray(loss.transpose(*others, "seed").values, float).reshape(f.shape)
    return {k: float(np.mean([lowest_loss_failure_rate(a, b, k) for a, b in zip(f, L)]))
            for k in KEPT if k <= f.shape[1]}


def spd_failures(axes, ds: xr.Dataset) -> list:
    """Three panels on `axes` [3]: the histogram of each run's worst best cosine with the
    failure threshold and the failure rate (Wilson 95%), the missed features' counts, and
    the final losses of successes and failures with the lowest-loss-of-k failure rates."""
    need_analyzed(ds)
    worst = worst_cosines(ds)
    failed = np.asarray(ds.failed.values, bool).ravel()
    missed = np.asarray(ds.missed_feature.values, int).ravel()[failed]
    n = int(ds.sizes["feature"])
    k, total = int(failed.sum()), failed.size
    lo, hi = wilson(k, total)
    drawn = []
    ax = axes[0]
    bins = np.linspace(min(0.0, np.nanmin(worst)), 1.0, 41)
    drawn += list(ax.hist(worst[~failed], bins, color=COLOURS[0], label="found every feature")[2])
    drawn += list(ax.hist(worst[failed], bins, color=COLOURS[1], label="failed")[2])
    drawn.append(ax.axvline(FAIL_COSINE, color=COLOURS[2], linestyle="--", linewidth=1.2,
                            label=f"threshold {FAIL_COSINE:g}"))
    ax.set_xlabel("worst feature's best flattened |cosine| (W_in, W_out)")
    ax.set_ylabel("decompositions")
    ax.set_title(f"failed {k} of {total}: {k / total:.1%} "
                 f"(Wilson 95%: {lo:.1%} to {hi:.1%})", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[1]
    counts = np.bincount(missed, minlength=n)[:n]
    drawn.append(ax.bar(np.arange(n), counts, color=COLOURS[1]))
    ax.set_xticks(np.arange(n))
    ax.set_xlabel("missed feature (a failed run's lowest)")
    ax.set_ylabel("failed decompositions")
    ax.set_title("which feature is missed", fontsize=9)
    ax = axes[2]
    loss = final_losses(ds)
    finite = np.isfinite(loss)
    edges = np.histogram_bin_edges(loss[finite], 40) if finite.any() else np.linspace(0, 1, 41)
    drawn += list(ax.hist(loss[finite & ~failed], edges, color=COLOURS[0], alpha=0.8,
                          label="found every feature")[2])
    drawn += list(ax.hist(loss[finite & failed], edges, color=COLOURS[1], alpha=0.8,
                          label="failed")[2])
    ax.set_xlabel("final training loss")
    ax.set_ylabel("decompositions")
    kept = kept_failure_rates(ds)
    ax.set_title("lowest loss of k seeds kept, failed: "
                 + ", ".join(f"k={k} {rate:.0%}" for k, rate in kept.items()), fontsize=8)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    for a in axes:
        a.grid(color="0.92", linewidth=0.6)
    return drawn


def spd_failures_figure(ds: xr.Dataset) -> Figure:
    """A three-axes figure drawn by ``spd_failures(axes, ds)``."""
    fig = Figure(figsize=(13.0, 3.6), layout="constrained")
    spd_failures(fig.subplots(1, 3, width_ratios=(3, 2, 3)), ds)
    a = ds.attrs
    steps = f", {int(ds.step.values[-1]):,} steps" if "step" in ds.coords and ds.step.size else ""
    fig.suptitle(f"{a.get('name', 'SPD')}: SPD of {a.get('spd_source', '?')}, "
                 f"{a.get('n_features', '?')} → {a.get('n_hidden', '?')}{steps}", fontsize=9)
    return fig


spd_failures_figure.__wrapped__ = spd_failures  # its description

FIGURES = {"spd_failures": spd_failures_figure}
