"""Figures of memorisation and double descent (Henighan et al. 2023, "Superposition,
Memorization, and Double Descent"): models trained on T fixed examples.

The runs of a finite-dataset sweep have a `dataset_size` axis (static), usually a
`data_seed` axis (several training sets per T) and a `seed` axis (several inits per
training set). Every figure first keeps the best init of each training set, chosen by
its `train_loss` (the objective it was trained on: choosing by the test loss would bias
the test curve downwards), then shows each data seed and their mean.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from toymodels.analysis.data_points import hidden_points
from toymodels.plotting.common import _ensure_analysis
from toymodels.plotting.common import title as _title
from toymodels.results import one_group

SIZE = "dataset_size"
TEST_COLOUR, TRAIN_COLOUR = "#3b75af", "#ef8636"
STYLES = ("-", "--", ":", "-.")  # one per value of a `by` axis


def best_inits(ds: xr.Dataset) -> xr.Dataset:
    """The init (``seed``) of lowest ``train_loss`` for every other coordinate.

    Example:
      >>> ds = xr.Dataset({"train_loss": ("seed", [0.3, 0.1, 0.2])}, {"seed": [0, 1, 2]})
      >>> int(best_inits(ds).seed)
      1
    """
    if "seed" not in ds.dims:
        return ds
    by = ds["train_loss"] if "train_loss" in ds else ds["final_loss"]
    return ds.isel(seed=by.fillna(np.inf).argmin("seed"))


def _sizes(ds: xr.Dataset) -> np.ndarray:
    if SIZE not in ds.dims:
        raise ValueError(f"memorisation figures need a {SIZE!r} sweep axis; "
                         f"the dims are {list(ds.dims)}")
    return ds[SIZE].values


def _mean_over_data(da: xr.DataArray) -> xr.DataArray:
    return da.mean("data_seed") if "data_seed" in da.dims else da


def losses(axes, ds: xr.Dataset, by: str | None = None) -> list:
    """Test loss (``final_loss``, the population loss; ``axes[0]``, linear scale) and
    ``train_loss`` (``axes[1]``, log scale) against T.

    Best init per training set; a dot per data seed, a line through their mean. With
    ``by`` (a sweep axis, e.g. weight_decay), one line per value of it, shaded from light
    to dark.

    Returns:
      The line artists, test then train for each value of ``by``.
    """
    T = _sizes(ds)
    runs = best_inits(ds)
    values = runs[by].values if by else [None]
    drawn = []
    for k, value in enumerate(values):
        part = runs.sel({by: value}) if by else runs
        shade = 0.45 + 0.55 * (k + 1) / len(values)
        label = f"{by} = {value:g}" if by else None
        for ax, name, colour in ((axes[0], "final_loss", TEST_COLOUR),
                                 (axes[1], "train_loss", TRAIN_COLOUR)):
            da = part[name].transpose(SIZE, ...)
            flat = da.values.reshape(len(T), -1)
            ax.scatter(np.repeat(T, flat.shape[1]), flat.ravel(), s=6, color=colour,
                       alpha=0.35 * shade, lw=0)
            drawn += ax.plot(T, _mean_over_data(da).values, STYLES[k % len(STYLES)],
                             color=colour, alpha=shade, label=label)
    for ax, what in zip(axes, ("test loss (population)", "train loss (the T examples)")):
        ax.set_xscale("log")
        ax.set_xlabel("training examples T")
        ax.set_ylabel(what)
        if by:
            ax.legend(fontsize=7)
    axes[1].set_yscale("log")
    return drawn


def losses_figure(ds: xr.Dataset, by: str | None = None) -> Figure:
    """Test and train loss against T side by side (``losses``). Option: ``by``."""
    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    losses(fig.subplots(1, 2), ds, by)
    fig.suptitle(_title(ds, "test and train loss against T, best of the inits per "
                            "training set; dots: each training set"), fontsize=9)
    return fig


def dimensionality(ax, ds: xr.Dataset) -> list:
    """Fractional dimensionality of the features (D_i of features with ‖W_i‖ > 0.5) and
    of the training points (D_t) against T, every value a dot (best init, data seed 0
    when there are several), with the mean of each as a line. The analysis variables are
    computed if missing (a results directory that `toymodels analyze` has not seen)."""
    T = _sizes(ds)
    runs = best_inits(_ensure_analysis(ds, ["feature_dimensionality", "feature_norm"]))
    runs = runs.isel(data_seed=0) if "data_seed" in runs.dims else runs
    drawn = []
    for name, colour, what in (("feature_dimensionality", TEST_COLOUR, "features"),
                               ("data_dimensionality", TRAIN_COLOUR, "data points")):
        if name not in runs:
            continue
        means = []
        for t in T:
            run = runs.sel({SIZE: t})
            values = run[name].values.ravel()
            if name == "feature_dimensionality":
                values = values[run["feature_norm"].values.ravel() > 0.5]
            values = values[np.isfinite(values)]
            ax.scatter(np.full(len(values), t), values, s=5, color=colour, alpha=0.4, lw=0)
            means.append(values.mean() if len(values) else np.nan)
        drawn += ax.plot(T, means, color=colour, label=what)
    ax.set_xscale("log")
    ax.set_xlabel("training examples T")
    ax.set_ylabel("dimensionality D")
    ax.set_ylim(-0.02, 1.05)
    ax.legend(fontsize=7)
    return drawn


def _arrows(ax, vectors: np.ndarray, colour: str) -> None:
    """Lines from the origin to each column of ``vectors: [2, N]``, on a square frame."""
    for x, y in vectors.T:
        ax.plot([0.0, x], [0.0, y], color=colour, lw=1.0)
    ax.scatter(*vectors, s=6, color=colour)
    lim = 1.15 * max(float(np.abs(vectors).max(initial=0.0)), 1e-6)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def geometry_figure(ds: xr.Dataset, sizes=None, max_features: int = 30) -> Figure:
    """Henighan et al.'s figure: for each T (columns), the hidden vectors h_t = W x_t of
    the training points (top row) and the feature directions W_i (bottom row; the
    ``max_features`` longest), of the best init of data seed 0. Needs n_hidden = 2.

    Options: ``sizes`` (the T values, default six spread over the axis),
    ``max_features``.
    """
    T = _sizes(ds)
    if sizes is None:
        sizes = T[np.unique(np.linspace(0, len(T) - 1, min(6, len(T))).round().astype(int))]
    else:  # the nearest T of the sweep to each wanted one, each once
        sizes = list(dict.fromkeys(T[np.argmin(np.abs(np.log(T) - np.log(s)))] for s in sizes))
    runs = best_inits(ds)
    runs = runs.isel(data_seed=0) if "data_seed" in runs.dims else runs
    fig = Figure(figsize=(1.9 * len(sizes), 4.2), layout="constrained")
    grid = fig.subplots(2, len(sizes), squeeze=False)
    for k, t in enumerate(sizes):
        run = one_group(runs.sel({SIZE: t}))
        W = run["W"].transpose("hidden", "feature").values
        if W.shape[0] != 2:
            raise ValueError(f"the geometry figure needs n_hidden = 2, not {W.shape[0]}")
        _arrows(grid[0, k], hidden_points(run).values, TRAIN_COLOUR)
        longest = np.argsort(-np.linalg.norm(W, axis=0))[:max_features]
        _arrows(grid[1, k], W[:, longest], TEST_COLOUR)
        grid[0, k].set_title(f"T = {t:,}", fontsize=9)
    grid[0, 0].set_ylabel("training points", fontsize=9)
    grid[1, 0].set_ylabel("features", fontsize=9)
    fig.suptitle(_title(ds, "hidden vectors of the training points and feature directions"),
                 fontsize=10)
    return fig


def loss_grid(ax, ds: xr.Dataset, y: str = "n_hidden") -> object:
    """Test loss over T (x) and ``y`` (e.g. n_hidden): best init per training set, mean
    over data seeds, log colour scale. Returns the mesh."""
    T = _sizes(ds)
    loss = best_inits(ds)["final_loss"]
    cells = (loss if y == "data_seed" else _mean_over_data(loss)).transpose(y, SIZE)
    values = cells.values
    mesh = ax.pcolormesh(np.arange(len(T) + 1), np.arange(cells.sizes[y] + 1), values,
                         norm=LogNorm(np.nanmin(values), np.nanmax(values)), cmap="viridis")
    ax.set_xticks(np.arange(len(T)) + 0.5, [f"{t:,}" for t in T], rotation=60, fontsize=7)
    ax.set_yticks(np.arange(cells.sizes[y]) + 0.5, [str(v) for v in cells[y].values])
    ax.set_xlabel("training examples T")
    ax.set_ylabel(y.replace("n_hidden", "hidden dimensions m"))
    ax.figure.colorbar(mesh, ax=ax, label="test loss")
    return mesh


def _single(draw, detail: str, figsize=(6.4, 4.2), title=None):
    """A figure kind of one axes: `draw(ax, ds, **options)`, titled by `title(ds, detail)`
    (default: `plotting.common.title`)."""
    title = title or _title

    def make(ds: xr.Dataset, **options) -> Figure:
        fig = Figure(figsize=figsize, layout="constrained")
        draw(fig.add_subplot(), ds, **options)
        fig.suptitle(title(ds, detail), fontsize=9)
        return fig

    make.__doc__ = f"A one-axes figure drawn by ``{draw.__name__}(ax, ds, **options)``."
    make.__wrapped__ = draw  # its options and description (toymodels.reference)
    return make


FIGURES = {
    "double_descent": losses_figure,  # by
    "memorisation_dimensionality": _single(
        dimensionality, "dimensionality of the features and of the training points"),
    "memorisation_geometry": geometry_figure,  # sizes, max_features
    "loss_grid": _single(loss_grid, "test loss over T and m, best of the inits"),  # y
}
