"""Figures of the open questions on norms and optimisers (issue 14, parts 1 and 2).

`norms`: for a sweep with a `norm` axis (none, rms, layer) over density, per norm the
decoded and represented feature counts, the polytope-labelled features, the mean bias and
the flip rates of the output states under a rescaling of h before the norm and of the
readout's input after it (`toymodels.analysis.norms`). `optimizer_phase`: for a sweep with `optimizer` and `learning_rate` axes, per optimiser
and cell the lowest-loss run of the learning-rate scan and seeds: the phase diagram of the
last feature, or (`panel="basis"`) the basis alignment `basis_kurtosis` against its
rotation null over density. Each figure takes the dataset only.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels.plotting.common import _ensure_analysis, title
from toymodels.plotting.phase_diagrams import phase
from toymodels.results import config_of

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


def _with_axis(ds: xr.Dataset, name: str, value) -> xr.Dataset:
    """`ds` with a length-1 axis `name` = [value] if it has no such axis (a sweep of one
    norm, optimiser or learning rate draws as one line or panel)."""
    return ds if name in ds.dims else ds.expand_dims({name: [value]})


def _config_value(ds: xr.Dataset, table: str, key: str, default):
    """The resolved config's table.key (its first static group's), else `default`."""
    config = config_of(ds)
    if config is None:
        return default
    spec = {"model": config.spec.model, "train": config.spec.train}.get(table)
    return getattr(spec, key, None) or config.train.get(key, default)


def norms(ds: xr.Dataset, importance: int = 0) -> Figure:
    """Five panels over density, one line per norm (best of seeds, the `importance`-th
    value of an importance axis): decoded (solid) and represented (||W_i|| > 0.5,
    dashed) features; features with a polytope label (dedicated, digon, ... pentagon);
    the mean output bias; the flip rate of the one-hot output states at c = 0.5 (solid)
    and c = 2 (dashed) with h → c·h before the norm (`norm_flip_rate`: 0 up to eps with
    a norm), and with norm(h) → c·norm(h) after it (`readout_flip_rate`)."""
    ds = _ensure_analysis(ds, ["n_decoded", "norm_flip_rate", "readout_flip_rate",
                               "polytope_counts"])
    ds = _with_axis(ds, "norm", _config_value(ds, "model", "norm", "none"))
    for axis in ("importance_decay", "relative_importance"):
        if axis in ds.dims:
            ds = ds.isel({axis: importance})
    axis, p = _density_axis(ds)
    extra = [d for d in ds.final_loss.dims if d not in (axis, "norm", "seed")]
    if extra:  # else their values would be drawn as if they were densities
        raise ValueError(f"norms draws the axes norm, {axis} and seed only; this sweep also "
                         f"has {', '.join(extra)} (select one value first)")
    order = np.argsort(p)
    fig = Figure(figsize=(16.0, 3.3), layout="constrained")
    axes = fig.subplots(1, 5)
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
        for ax, rate in zip(axes[3:], (run.norm_flip_rate, run.readout_flip_rate)):
            line(ax, rate.sel(rescale=0.5).values, label=f"{norm}: c = 0.5")
            line(ax, rate.sel(rescale=2.0).values, ls="--", label=f"{norm}: c = 2")
    titles = ("features decoded / represented", "features with a polytope label",
              "mean output bias b", "flipped output states, h -> c h before the norm",
              "flipped, norm(h) -> c norm(h) (readout)")
    for ax, text in zip(axes, titles):
        ax.set_xscale("log")
        ax.set_xlabel("feature density 1 − S")
        ax.set_title(text, fontsize=9)
    axes[0].legend(fontsize=6, ncol=1)
    axes[4].legend(fontsize=6)
    axes[3].set_ylim(axes[4].get_ylim())
    axes[2].axhline(0, color="0.6", lw=0.6)
    fig.suptitle(title(ds, f"norm on h before the readout; best of {ds.sizes['seed']} seeds"),
                 fontsize=10)
    return fig


def lr_as_seed(ds: xr.Dataset) -> xr.Dataset:
    """`ds` with its learning_rate and seed axes merged into one `seed` axis (so a
    best-of-seeds pick picks the lowest-final_loss (lr, seed) of each cell); the chosen
    run's learning rate stays in the variable `run_learning_rate`."""
    lr = xr.broadcast(ds.learning_rate, ds.final_loss)[0]
    ds = ds.assign(run_learning_rate=lr)
    merged = ds.stack(pick=("learning_rate", "seed")).reset_index("pick", drop=True)
    return merged.rename(pick="seed").assign_coords(seed=np.arange(merged.sizes["pick"]))


def optimizer_phase(ds: xr.Dataset, panel: str = "phase") -> Figure:
    """One panel per optimiser; in each cell the run of lowest final_loss over the
    learning-rate scan and the seeds (`lr_as_seed`): `panel="phase"`, the phase diagram
    of the last feature (`toymodels.plotting.phase`, with its closed-form boundary);
    `panel="basis"`, `basis_kurtosis` over density (other axes at their first value)
    against its rotation null 3(m − 1)/(m + 1), each point labelled with the run's
    rotation p-value `basis_kurtosis_p` and its learning rate."""
    basis = ["basis_kurtosis", "basis_kurtosis_p"] if panel == "basis" else []
    ds = _ensure_analysis(ds, ["phase", *basis])
    ds = _with_axis(ds, "optimizer", _config_value(ds, "train", "optimizer", "adamw"))
    ds = _with_axis(ds, "learning_rate", _config_value(ds, "train", "learning_rate", 1e-3))
    names = list(ds.optimizer.values)
    fig = Figure(figsize=(3.6 * len(names) + 1.2, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(names), sharey=True))
    for ax, name in zip(axes, names):
        run = lr_as_seed(ds.sel(optimizer=name))
        if panel == "phase":
            drawn = phase(ax, run)
            if name != names[-1]:
                drawn[1].remove()
        else:
            _basis(ax, run)
        ax.set_title(str(name), fontsize=9)
    n_lr, n_seed = ds.sizes["learning_rate"], ds.sizes["seed"]
    lrs = "/".join(f"{v:g}" for v in ds.learning_rate.values)
    fig.suptitle(title(ds, f"per cell the best of {n_lr} learning rates ({lrs}) x "
                                f"{n_seed} seeds"), fontsize=10)
    return fig


def _basis(ax, run: xr.Dataset) -> None:
    axis, p = _density_axis(run)
    for other in [d for d in run.basis_kurtosis.dims if d not in (axis, "seed")]:
        run = run.isel({other: 0})
    order = np.argsort(p)
    best = _best(run)
    k = best.basis_kurtosis.values
    ax.plot(p[order], k[order], marker="o", ms=4, label="best run")
    for x, y, pv, lr in zip(p, k, best.basis_kurtosis_p.values, best.run_learning_rate.values):
        if np.isfinite(y):
            ax.annotate(f"p={pv:.2f}\nlr {lr:g}", (x, y), fontsize=6,
                        textcoords="offset points", xytext=(3, 4))
    null = float(np.nanmean(run.basis_kurtosis_null.values))
    ax.axhline(null, color="tab:red", ls="--", lw=1, label=f"random rotation: {null:.2f}")
    m = run.sizes["hidden"]
    ax.axhline(m - 2 + 1 / (m - 1), color="0.3", ls=":", lw=1, label="axis-aligned")
    ax.set_xscale("log")
    ax.set_xlabel("feature density 1 − S")
    ax.set_ylabel("centred kurtosis of W_i")
    ax.legend(fontsize=6, loc="lower left")


FIGURES = {
    "norms": norms,  # importance
    "optimizer_phase": optimizer_phase,  # panel: "phase" or "basis"
}
