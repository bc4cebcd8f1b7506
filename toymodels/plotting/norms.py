"""Figures of the open questions on norms and optimisers (issue 14, parts 1 and 2).

`norms`: for a sweep with a `norm` axis (none, rms, layer) over density, per norm the
decoded and represented feature counts, the polytope-labelled features, the mean bias and
the flip rate of the output states under a rescaling of the readout's input
(`toymodels.analysis.norms`). `optimizer_phase`: for a sweep with `optimizer` and
`learning_rate` axes, each optimiser at its best learning rate (lowest mean
`final_loss` over the sweep's cells): the phase diagram of the last feature, or
(`panel="basis"`) the basis alignment `basis_kurtosis` against its rotation null over
density. Each figure takes the dataset only.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

NORM_COLOURS = {"none": "tab:blue", "rms": "tab:orange", "layer": "tab:green"}
LABELLED = ("dedicated", "digon", "triangle", "tetrahedron", "pentagon", "square_antiprism")


def _density_axis(ds: xr.Dataset) -> tuple[str, np.ndarray]:
    """(axis name, density values p) of the sweep's density axis."""
    if "feature_probability" in ds.dims:
        return "feature_probability", ds.feature_probability.values
    return "sparsity", 1.0 - ds.sparsity.values


def _best(ds: xr.Dataset) -> xr.Dataset:
    """The lowest-final_loss seed of every cell."""
    return ds.isel(seed=ds.final_loss.fillna(np.inf).argmin("seed"))


def _ensure(ds: xr.Dataset, names) -> xr.Dataset:
    if all(n in ds for n in names):
        return ds
    from toymodels.analysis import analyze
    return analyze(ds)


def norms(ds: xr.Dataset, importance: int = 0) -> Figure:
    """Four panels over density, one line per norm (best of seeds, the `importance`-th
    value of an importance axis): decoded (solid) and represented (||W_i|| > 0.5,
    dashed) features; features with a polytope label (dedicated, digon, ... pentagon);
    the mean output bias; the flip rate of the one-hot output states at c = 0.5 (solid)
    and c = 2 (dashed)."""
    ds = _ensure(ds, ["n_decoded", "norm_flip_rate", "polytope_counts"])
    for axis in ("importance_decay", "relative_importance"):
        if axis in ds.dims:
            ds = ds.isel({axis: importance})
    axis, p = _density_axis(ds)
    order = np.argsort(p)
    fig = Figure(figsize=(13.0, 3.3), layout="constrained")
    axes = fig.subplots(1, 4)
    for norm in ds.norm.values:
        run = _best(ds.sel(norm=norm))
        colour = NORM_COLOURS.get(str(norm), "k")
        line = lambda ax, v, **kw: ax.plot(p[order], np.asarray(v)[order], color=colour,
                                           marker="o", ms=3, **kw)
        line(axes[0], run.n_decoded.values, label=f"{norm}: decoded")
        line(axes[0], run.n_represented.values, ls="--", label=f"{norm}: ||W_i|| > 0.5")
        counts = run.polytope_counts.sel(polytope_kind=list(LABELLED)).sum("polytope_kind")
        line(axes[1], counts.values, label=str(norm))
        line(axes[2], run.b.mean("feature").values, label=str(norm))
        line(axes[3], run.norm_flip_rate.sel(rescale=0.5).values, label=f"{norm}: c = 0.5")
        line(axes[3], run.norm_flip_rate.sel(rescale=2.0).values, ls="--",
             label=f"{norm}: c = 2")
    titles = ("features decoded / represented", "features with a polytope label",
              "mean output bias b", "flipped output states, h -> c h")
    for ax, text in zip(axes, titles):
        ax.set_xscale("log")
        ax.set_xlabel("feature density 1 − S")
        ax.set_title(text, fontsize=9)
    axes[0].legend(fontsize=6, ncol=1)
    axes[3].legend(fontsize=6)
    axes[2].axhline(0, color="0.6", lw=0.6)
    from toymodels.plotting import title
    fig.suptitle(title(ds, f"norm on h before the readout; best of {ds.sizes['seed']} seeds"),
                 fontsize=10)
    return fig


def best_learning_rates(ds: xr.Dataset) -> dict[str, float]:
    """{optimizer: the learning rate with the lowest mean final_loss over every other
    axis} (the lr scan of a sweep with `optimizer` and `learning_rate` axes)."""
    others = [d for d in ds.final_loss.dims if d not in ("optimizer", "learning_rate")]
    mean = ds.final_loss.fillna(np.inf).mean(others)  # a diverged run rules its lr out
    return {str(o): float(ds.learning_rate.values[int(mean.sel(optimizer=o).argmin())])
            for o in ds.optimizer.values}


def optimizer_phase(ds: xr.Dataset, panel: str = "phase") -> Figure:
    """One panel per optimiser at its best learning rate (`best_learning_rates`):
    `panel="phase"`, the phase diagram of the last feature (`toymodels.plotting.phase`,
    with its closed-form boundary); `panel="basis"`, `basis_kurtosis` of the best seed
    over density (other axes at their first value; points: every seed) with the
    rotation null 3(m − 1)/(m + 1)."""
    from toymodels import plotting
    ds = _ensure(ds, ["phase", "basis_kurtosis"])
    rates = best_learning_rates(ds)
    names = list(ds.optimizer.values)
    fig = Figure(figsize=(3.4 * len(names) + 1.2, 3.2), layout="constrained")
    axes = fig.subplots(1, len(names), sharey=True)
    for ax, name in zip(np.atleast_1d(axes), names):
        run = ds.sel(optimizer=name, learning_rate=rates[str(name)])
        if panel == "phase":
            drawn = plotting.phase(ax, run)
            if name != names[-1]:
                drawn[1].remove()
        else:
            _basis(ax, run)
        ax.set_title(f"{name}, lr {rates[str(name)]:g}", fontsize=9)
    fig.suptitle(plotting.title(ds, "each optimiser at its best learning rate of the scan"),
                 fontsize=10)
    return fig


def _basis(ax, run: xr.Dataset) -> None:
    axis, p = _density_axis(run)
    for other in [d for d in run.basis_kurtosis.dims if d not in (axis, "seed")]:
        run = run.isel({other: 0})
    order = np.argsort(p)
    every = run.basis_kurtosis.transpose(axis, "seed").values
    for k in range(every.shape[1]):
        ax.scatter(p, every[:, k], s=6, color="0.6")
    best = _best(run).basis_kurtosis.values
    ax.plot(p[order], best[order], marker="o", ms=3, label="best seed")
    null = float(np.nanmean(run.basis_kurtosis_null.values))
    ax.axhline(null, color="tab:red", ls="--", lw=1, label=f"random rotation: {null:.2f}")
    m = run.sizes["hidden"]
    ax.axhline(m - 2 + 1 / (m - 1), color="0.3", ls=":", lw=1, label="axis-aligned")
    ax.set_xscale("log")
    ax.set_xlabel("feature density 1 − S")
    ax.set_ylabel("centred kurtosis of W_i")
    ax.legend(fontsize=6)


FIGURES = {
    "norms": norms,  # importance
    "optimizer_phase": optimizer_phase,  # panel: "phase" or "basis"
}
