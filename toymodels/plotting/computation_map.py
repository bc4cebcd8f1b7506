"""The map of computation in superposition with clean labels: a residual MLP's loss
relative to the naive baseline as heatmaps over two sweep axes, one panel per task and
depth (`sweeps/computation_map.toml`, `sweeps/computation_map_depth.toml`, issue 27).

It reads an analysed residual-MLP results Dataset (`toymodels analyze`): `loss_ratio`
(final_loss / the naive baseline's closed form). Each cell is the lowest ratio over the
seeds (`reduce="best"`) or their mean (`reduce="mean"`), then the lowest over every axis
that is neither drawn nor a panel (learning_rate, d_embed, ...: the best setting found).
The colour scale diverges at 1, the naive baseline: blue below (the run beats dedicating
its neurons), red above; each cell is written out.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

PANEL_AXES = ("task", "n_layers")
REDUCTIONS = ("best", "mean")
CMAP = "RdBu_r"


def _need(ds: xr.Dataset, x: str, y: str, reduce: str) -> None:
    if "loss_ratio" not in ds:
        raise ValueError("needs loss_ratio: run `toymodels analyze` on a residual sweep first")
    dims = ds.loss_ratio.dims
    for name, axis in (("x", x), ("y", y)):
        if axis not in dims:
            raise ValueError(f"{name} = {axis!r} is not a sweep axis; axes: "
                             f"{', '.join(d for d in dims if d != 'seed')}")
    if x == y:
        raise ValueError(f"x and y are both {x!r}; pick two different axes")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce = {reduce!r}; valid: {', '.join(REDUCTIONS)}")


def panels(ds: xr.Dataset, x: str, y: str) -> list[str]:
    """The panel axes: task and n_layers where swept (more than one value) and not drawn."""
    dims = ds.loss_ratio.dims
    return [a for a in PANEL_AXES if a in dims and a not in (x, y) and ds.sizes[a] > 1]


def cell_ratios(ds: xr.Dataset, x: str = "feature_probability", y: str = "d_mlp",
                reduce: str = "best") -> xr.DataArray:
    """The map's cells: loss_ratio over seeds (min or mean), then the min over every axis
    that is neither x, y nor a panel axis. Returns [panels..., y, x]."""
    _need(ds, x, y, reduce)
    ratio = ds.loss_ratio
    if "seed" in ratio.dims:
        ratio = ratio.min("seed") if reduce == "best" else ratio.mean("seed")
    keep = (*panels(ds, x, y), y, x)
    rest = [d for d in ratio.dims if d not in keep]
    if rest:
        ratio = ratio.min(rest)
    return ratio.transpose(*keep)


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def _draw(ax, cells: xr.DataArray, x: str, y: str, norm, n_features) -> object:
    values = np.asarray(cells.values, float)  # [Y, X]
    image = ax.imshow(values, origin="lower", aspect="auto", cmap=CMAP, norm=norm)
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6.5,
                    color="white" if abs(norm(v) - 0.5) > 0.35 else "black")
    xs, ys = cells[x].values, cells[y].values
    ax.set_xticks(range(len(xs)), [_label(v) for v in xs], fontsize=7)
    yl = [_label(v) for v in ys]
    if y == "d_mlp" and n_features:
        yl = [f"{v} ({int(v) / int(n_features):.3g}n)" for v in ys]
    ax.set_yticks(range(len(ys)), yl, fontsize=7)
    ax.set_xlabel(x, fontsize=8)
    ax.set_ylabel(y, fontsize=8)
    return image


def computation_map(axes, ds: xr.Dataset, x: str = "feature_probability", y: str = "d_mlp",
                    reduce: str = "best") -> list:
    """Heatmaps of loss / naive baseline over x and y, one axes per panel (task and
    n_layers where swept, row-major over an array of axes of that many); the colour
    scale diverges at 1 (the naive baseline)."""
    cells = cell_ratios(ds, x, y, reduce)
    names = panels(ds, x, y)
    flat = list(np.ravel(axes))
    grid = cells.stack(panel=names) if names else cells.expand_dims(panel=[()])
    if len(flat) < grid.sizes["panel"]:
        raise ValueError(f"needs {grid.sizes['panel']} axes (one per panel of "
                         f"{', '.join(names)}); got {len(flat)}")
    finite = np.asarray(cells.values, float)
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.9, 1.1)
    norm = TwoSlopeNorm(1.0, min(lo, 0.99), max(hi, 1.01))
    drawn = []
    for k, ax in enumerate(flat[:grid.sizes["panel"]]):
        one = grid.isel(panel=k)
        drawn.append(_draw(ax, one.transpose(y, x), x, y, norm, ds.attrs.get("n_features")))
        where = ", ".join(f"{n} = {_label(one[n].item())}" for n in names)
        ax.set_title(where, fontsize=8)
    drawn.append(norm)
    return drawn


def computation_map_figure(ds: xr.Dataset, x: str = "feature_probability", y: str = "d_mlp",
                           reduce: str = "best") -> Figure:
    """A grid of heatmaps drawn by ``computation_map(axes, ds)``, rows the first panel
    axis, columns the second (one panel axis: one row), with one colour bar marked at 1."""
    cells = cell_ratios(ds, x, y, reduce)
    names = panels(ds, x, y)
    rows, cols = ((ds.sizes[names[0]], ds.sizes[names[1]]) if len(names) == 2
                  else (1, ds.sizes[names[0]]) if names else (1, 1))
    fig = Figure(figsize=(2.9 * cols + 1.0, 2.4 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    drawn = computation_map(axes, ds, x, y, reduce)
    bar = fig.colorbar(drawn[0], ax=axes, shrink=0.8)
    bar.ax.axhline(1.0, color="black", linewidth=1.2)
    bar.set_label("loss / naive baseline (1: naive)", fontsize=8)
    others = [d for d in ds.loss_ratio.dims
              if d not in (*names, x, y, "seed") and ds.sizes[d] > 1]
    how = "lowest seed" if reduce == "best" else "mean of seeds"
    best = f"; lowest over {', '.join(others)}" if others else ""
    a = ds.attrs
    fig.suptitle(f"{a.get('name', 'residual MLPs')}: n={a.get('n_features')}, "
                 f"min {float(np.nanmin(cells.values)):.3f}\n{how}{best}", fontsize=9)
    return fig


computation_map_figure.__wrapped__ = computation_map  # its description

FIGURES = {"computation_map": computation_map_figure}
