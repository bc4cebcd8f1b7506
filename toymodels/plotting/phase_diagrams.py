"""Phase diagrams and heatmaps: one value per cell over two sweep axes.

The extra feature's phase with the closed-form boundary of ``toymodels.theory``
(``phase``, and ``phase_grid`` once per value of a third axis), and any numeric per-run
metric (``heatmap``). ``_mesh`` and ``_theory_overlay`` draw the cells and the boundary
for other families too (``plotting.llc.llc_phase``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from toymodels import theory as _theory
from toymodels.plotting.common import (
    DENSITY_AXES,
    NON_SWEEP_DIMS,
    PHASE_COLORS,
    _default_xy,
    _edges,
    _ensure_analysis,
    _fixed_note,
    _grid_shape,
    _plot_coordinate,
    _run_name,
    _single,
    best_runs,
    integer_colorbar,
    integer_scale,
    label,
    sweep_axes,
    title,
)

def phase(
    ax,
    ds: xr.Dataset,
    x: str | None = None,
    y: str | None = None,
    theory: str | None = "auto",
) -> list:
    """Phase diagram of the extra feature over two sweep axes.

    Each cell is coloured by ``phase`` ("unrepresented", "dedicated", "superposition")
    of the best-loss seed. Log scales where the coordinates are geometric; a
    ``sparsity`` axis is drawn as density 1 − S.

    Args:
      ax: the axes.
      ds: results dataset with ``phase`` (added by analysis if missing).
      x: horizontal axis (default "relative_importance", else the first non-density
        axis).
      y: vertical axis (default the density axis).
      theory: overlay the closed-form boundary of ``toymodels.theory``: "2_1", "3_2",
        None (none), or "auto" (from ``attrs`` n_features/n_hidden, when the axes are
        density and relative_importance).

    Returns:
      [QuadMesh, Legend, *boundary Line2Ds]; the p*(r) curve has gid "theory-boundary".
    """
    ds = _ensure_analysis(ds, ["phase"])
    x, y = _default_xy(ds, x, y)
    cells = best_runs(ds, [x, y]).sortby([x, y])
    codes = {name: i for i, name in enumerate(_theory.PHASES)}
    values = np.vectorize(lambda s: codes.get(s, np.nan), otypes=[float])(
        cells["phase"].transpose(y, x).values
    )
    mesh, (xlog, ylog) = _mesh(
        ax,
        cells[x],
        cells[y],
        values,
        ListedColormap(list(PHASE_COLORS.values())),
        BoundaryNorm(np.arange(-0.5, 3.0), 3),
    )
    lines = _theory_overlay(ax, ds, x, y, theory, xlog, ylog)
    handles = [Patch(color=c, label=n) for n, c in PHASE_COLORS.items()] + lines[:1]
    legend = ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=8,
        title="extra feature",
        title_fontsize=8,
    )
    ax.set_title(title(ds, _fixed_note(ds, [x, y])), fontsize=9)
    return [mesh, legend, *lines]


def _mesh(ax, xcoord, ycoord, values, cmap, norm):
    """pcolormesh of ``values`` [ny, nx] over two sweep coordinates; labels, scales."""
    labels = [c.values if c.dtype.kind in "OUS" else None for c in (xcoord, ycoord)]
    # a categorical axis (optimizer, kind) is drawn at 0, 1, ... with its names as ticks
    xcoord, ycoord = [xr.DataArray(np.arange(c.size), dims=c.dims, name=c.name)
                      if names is not None else c for c, names in zip((xcoord, ycoord), labels)]
    xv, xlabel, xlog = _plot_coordinate(xcoord)
    yv, ylabel, ylog = _plot_coordinate(ycoord)
    mesh = ax.pcolormesh(
        _edges(xv, xlog),
        _edges(yv, ylog),
        np.ma.masked_invalid(values),
        cmap=cmap,
        norm=norm,
    )
    ax.set_xscale("log" if xlog else "linear")
    ax.set_yscale("log" if ylog else "linear")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if labels[0] is not None:
        ax.set_xticks(xv, [str(v) for v in labels[0]])
    if labels[1] is not None:
        ax.set_yticks(yv, [str(v) for v in labels[1]])
    return mesh, (xlog, ylog)


def _theory_kind(ds: xr.Dataset, x: str, y: str, theory: str | None) -> str | None:
    on_axes = {x, y} in ({"relative_importance", d} for d in DENSITY_AXES)
    if theory is None or theory == "none":
        return None
    if theory == "auto":
        shape = (ds.attrs.get("n_features"), ds.attrs.get("n_hidden"))
        kind = {(2, 1): "2_1", (3, 2): "3_2"}.get(tuple(int(s or 0) for s in shape))
        return kind if on_axes else None
    if theory not in _theory.BOUNDARIES:
        raise ValueError(
            f"unknown theory {theory!r}; valid: "
            f"{sorted(_theory.BOUNDARIES)}, 'auto' or None"
        )
    if not on_axes:
        raise ValueError(
            f"the theory boundary needs axes relative_importance and a density "
            f"axis {DENSITY_AXES}; got x={x!r}, y={y!r}"
        )
    return theory


def _theory_overlay(ax, ds, x, y, theory, xlog, ylog) -> list:
    """Draws p*(r) and the r = 1 segment of ``toymodels.theory`` in data coordinates."""
    kind = _theory_kind(ds, x, y, theory)
    if kind is None:
        return []
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    r_axis_is_x = x == "relative_importance"
    r_lo, r_hi = sorted(xlim if r_axis_is_x else ylim)
    r_lo = max(r_lo, 1e-3 * r_hi)  # r > 0; a linear axis may extend below 0
    r = (
        np.geomspace(r_lo, r_hi, 400)
        if (xlog if r_axis_is_x else ylog)
        else np.linspace(r_lo, r_hi, 400)
    )
    p = _theory.BOUNDARIES[kind](r)
    p_lo, p_hi = _theory.dedicated_boundary_density(kind)
    p_lo = max(p_lo, min(ylim if r_axis_is_x else xlim))
    style = dict(color="black", linestyle="--", linewidth=1.5)
    pairs = [
        (r, p, "theory-boundary"),
        (np.array([1.0, 1.0]), np.array([p_lo, p_hi]), "theory-r1"),
    ]
    lines = []
    for rr, pp, gid in pairs:
        xs, ys = (rr, pp) if r_axis_is_x else (pp, rr)
        lines.append(
            ax.plot(
                xs, ys, gid=gid, label=f"theory (n={kind[0]}, m={kind[2]})", **style
            )[0]
        )
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    return lines


def heatmap(
    ax,
    ds: xr.Dataset,
    var: str,
    x: str | None = None,
    y: str | None = None,
    reduce: str = "mean",
    feature: int | None = None,
) -> list:
    """Any numeric per-run metric over two sweep axes, with a colorbar.

    Args:
      ax: the axes.
      ds: results dataset.
      var: a data variable with the sweep dims (``final_loss``, ``n_represented``,
        ``dims_per_feature``...); per-feature ones are averaged over features unless
        ``feature`` is given; ``loss`` uses its last logged step.
      x, y: the two sweep axes (defaults as in ``phase``).
      reduce: over the other axes (seeds...): "mean", or "best" (the run of lowest
        ``final_loss`` per cell).
      feature: index of the feature to show for per-feature variables.

    Returns:
      [QuadMesh, Colorbar].
    """
    ds = _ensure_analysis(ds, [var])
    x, y = _default_xy(ds, x, y)
    da, detail = _scalar_metric(ds[var], feature)
    cells = _reduce_cells(da, ds, x, y, reduce).sortby([x, y]).transpose(y, x)
    values = cells.values.astype(np.float64)
    mesh, _ = _mesh(ax, cells[x], cells[y], values, *integer_scale(values))  # counts: discrete
    colorbar = ax.figure.colorbar(mesh, ax=ax, label=label(var) + detail)
    integer_colorbar(colorbar, values)
    rest = [a for a in sweep_axes(ds) if a not in (x, y) and ds.sizes[a] > 1]
    how = {"mean": "mean", "best": "lowest-final-loss run"}[reduce]
    how = f"{how} over {', '.join(rest)}" if rest else ""
    ax.set_title(title(ds, how), fontsize=9)
    return [mesh, colorbar]


def _scalar_metric(da: xr.DataArray, feature: int | None) -> tuple[xr.DataArray, str]:
    if da.dtype.kind not in "fiub":
        raise ValueError(
            f"heatmap needs a numeric variable; {da.name!r} is {da.dtype} "
            "(use the 'phase' plot for phases)"
        )
    detail = ""
    if "step" in da.dims:
        da, detail = da.isel(step=-1), " (last logged step)"
    if "feature" in da.dims:
        if feature is None:
            da, detail = da.mean("feature"), detail + " (mean over features)"
        else:
            da, detail = (
                da.isel(feature=int(feature)),
                detail + f" (feature {int(feature)})",
            )
    extra = [d for d in da.dims if d in NON_SWEEP_DIMS]
    if extra:
        raise ValueError(
            f"heatmap needs one value per run; {da.name!r} also has dims {extra}"
        )
    return da, detail


REDUCTIONS = ("mean", "best")


def _reduce_cells(da: xr.DataArray, ds: xr.Dataset, x: str, y: str, reduce: str):
    """Reduces ``da`` over the sweep axes but x, y: mean, or the best-final-loss run."""
    rest = [a for a in sweep_axes(ds) if a not in (x, y)]
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown reduce {reduce!r}; valid: {list(REDUCTIONS)}")
    if not rest:
        return da
    if reduce == "mean":
        return da.mean(rest)
    if "final_loss" not in ds:
        raise ValueError("reduce='best' needs a final_loss variable")
    flat = da.transpose(y, x, *rest).values.reshape(ds.sizes[y], ds.sizes[x], -1)
    losses = ds["final_loss"].transpose(y, x, *rest).values.reshape(flat.shape)
    best = np.argmin(np.where(np.isnan(losses), np.inf, losses), axis=-1)[..., None]
    picked = np.take_along_axis(flat, best, axis=-1)[..., 0]
    return xr.DataArray(picked, dims=(y, x), coords={y: ds[y], x: ds[x]})


def _default_by(ds: xr.Dataset, by: str | None, shown: tuple[str, str]) -> str | None:
    """The axis to split panels by: ``by``, else the first other non-seed axis."""
    axes = [a for a in sweep_axes(ds) if a != "seed" and a not in shown]
    if by is None:
        return next((a for a in axes if ds.sizes[a] > 1), None)
    if by not in axes:
        raise ValueError(
            f"by={by!r} must be a sweep axis other than seed, {shown[0]} and "
            f"{shown[1]}; candidates: {axes}"
        )
    return by


def phase_grid(
    ds: xr.Dataset,
    by: str | None = None,
    x: str | None = None,
    y: str | None = None,
    theory: str | None = "auto",
    max_columns: int = 4,
) -> Figure:
    """A figure of ``phase`` panels, one per value of a third sweep axis ``by``.

    E.g. the 2 -> 1 phase diagram (relative importance x density) once per dropout rate,
    to show how dropout moves the phase boundary. Every panel is coloured by the phase
    of the best-loss seed per cell and carries the same closed-form boundary (which
    knows nothing of ``by``: with dropout it is the dropout-free reference). One legend,
    beside the last panel.

    Args:
      ds: results dataset with ``phase`` (added by analysis if missing).
      by: the axis to split by (default the first sweep axis besides seed, ``x`` and
        ``y`` with more than one value; none: a single panel).
      x, y: the axes of each panel (defaults as in ``phase``).
      theory: as in ``phase``.
      max_columns: panels per row.

    Returns:
      The figure.
    """
    ds = _ensure_analysis(ds, ["phase"])
    x, y = _default_xy(ds, x, y)
    by = _default_by(ds, by, (x, y))
    values = ds[by].values if by else [None]
    rows, columns = _grid_shape(len(values), max_columns)
    fig = Figure(figsize=(3.1 * columns + 1.7, 2.9 * rows + 0.7), layout="constrained")
    for k, value in enumerate(values):
        ax = fig.add_subplot(rows, columns, k + 1)
        drawn = phase(ax, ds.isel({by: k}) if by else ds, x, y, theory)
        if k < len(values) - 1:
            drawn[1].remove()  # one legend for the figure
        if k % columns:
            ax.set_ylabel("")
        ax.set_title(_run_name(by, value) if by else "", fontsize=9)
    fig.suptitle(title(ds, _fixed_note(ds, [x, y, by])), fontsize=10)
    return fig


def _heatmap_figure(ds: xr.Dataset, var: str = "final_loss", **options) -> Figure:
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    heatmap(fig.add_subplot(), ds, var, **options)
    return fig


_heatmap_figure.__wrapped__ = heatmap  # its options and description (toymodels.reference)


FIGURES = {
    "phase": _single(phase),  # x, y, theory
    "heatmap": _heatmap_figure,  # var, x, y, reduce, feature
    "phase_grid": phase_grid,  # by, x, y, theory, max_columns
}
