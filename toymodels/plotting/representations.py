"""How each run represents its features: the figures of single models along one axis.

WᵀW and feature norms (``features``, ``features_figure``), feature directions in 2-D and
3-D (``geometry``, ``geometry_grid``), dimensions per feature against the reference
fractions (``dimensionality``) and training-loss curves (``loss``).
"""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from toymodels.analysis.metrics import REPRESENTED_NORM
from toymodels.plotting.common import (
    DENSITY_AXES,
    GRAM_CMAP,
    REFERENCE_DIMENSIONS,
    SUPERPOSITION_CMAP,
    _default_axis,
    _ensure_analysis,
    _feature_colours,
    _fixed_note,
    _grid_shape,
    _run_name,
    _runs_along,
    _single,
    is_log_spaced,
    label,
    sweep_axes,
    title,
    unpadded,
)

def features(axes, ds: xr.Dataset, axis: str | None = None) -> list[tuple]:
    """The paper's WᵀW and feature-norm panels, one pair per run along ``axis``.

    For each run: the Gram matrix WᵀW [F, F] (diverging colormap, symmetric limits
    shared by all runs) and a horizontal bar per feature of ‖W_i‖, coloured by the
    notebook's polysemanticity ``sqrt(superposition)`` clipped to [0, 1] (black: none,
    gold: >= 1).

    Args:
      axes: array of axes of shape [n_runs, 2]: ``axes[k, 0]`` gets run k's WᵀW,
        ``axes[k, 1]`` its norm bars (``features_figure`` lays each pair side by side).
      ds: results dataset with ``W`` and ``superposition`` (added by analysis if
        missing).
      axis: sweep axis to run along (default: the density axis, else the first non-seed
        axis); other axes are reduced by ``best_runs``.

    Returns:
      One ``(AxesImage, BarContainer)`` per run.
    """
    ds = _ensure_analysis(ds, ["superposition"])
    runs, names = _runs_along(ds, _default_axis(ds, axis))
    axes = np.asarray(axes, dtype=object)
    if axes.shape != (runs.sizes["run"], 2):
        raise ValueError(
            f"axes must have shape ({runs.sizes['run']}, 2), not {axes.shape}"
        )
    W = runs["W"].transpose("run", "hidden", "feature").values.astype(np.float64)
    sup = runs["superposition"].transpose("run", "feature").values
    kept = [unpadded(w) for w in W]  # each run at its own size (static axes)
    grams = [w.T @ w for w, _ in kept]
    vmax = max(max(float(np.abs(g).max(initial=0.0)) for g in grams), 1e-6)
    drawn = []
    for k, name in enumerate(names):
        (w, cols), poly = kept[k], np.sqrt(np.clip(sup[k][kept[k][1]], 0.0, None))
        image = _gram_panel(axes[k, 0], grams[k], vmax, name)
        drawn.append((image, _norm_panel(axes[k, 1], np.linalg.norm(w, axis=0), poly)))
    return drawn


def _gram_panel(ax, gram: np.ndarray, vmax: float, name: str):
    image = ax.imshow(
        gram, cmap=GRAM_CMAP, vmin=-vmax, vmax=vmax, interpolation="nearest"
    )
    n = gram.shape[0]
    ticks = np.arange(n) if n <= 10 else []
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_title(f"WᵀW, {name}" if name else "WᵀW", fontsize=9)
    return image


def _norm_panel(ax, norms: np.ndarray, polysemanticity: np.ndarray):
    colour = SUPERPOSITION_CMAP(Normalize(0.0, 1.0, clip=True)(polysemanticity))
    bars = ax.barh(np.arange(norms.size), norms, color=colour, height=0.8)
    ax.set_ylim(norms.size - 0.5, -0.5)
    ax.set_xlim(0.0, 1.05 * max(1.0, float(norms.max())))
    ax.set_yticks([])
    ax.set_xlabel("‖W_i‖", fontsize=9)
    return bars


def dimensionality(ax, ds: xr.Dataset, axis: str | None = None) -> list:
    """Dimensions per feature D* against 1/(1 − S) (log x), with every feature's D_i.

    Args:
      ax: the axes.
      ds: results dataset with ``dims_per_feature`` and ``feature_dimensionality``.
      axis: the sweep axis to run along (default the density axis); x is 1/p from the
        ``density`` variable (mean over features), else from the axis
        itself.

    Returns:
      [Line2D of D*, PathCollection of D_i, *reference Line2Ds, *their Texts].
    """
    ds = _ensure_analysis(ds, ["dims_per_feature", "feature_dimensionality"])
    axis = _default_axis(ds, axis)
    runs, _ = _runs_along(ds, axis)
    inv_p = 1.0 / _density(runs, axis)
    order = np.argsort(inv_p)
    d_star = runs["dims_per_feature"].values
    d_i = runs["feature_dimensionality"].transpose("run", "feature").values
    line = ax.plot(
        inv_p[order],
        d_star[order],
        color="black",
        marker="o",
        markersize=3,
        label="D* = m/‖W‖²_F",
        zorder=3,
    )[0]
    scatter = ax.scatter(
        np.repeat(inv_p, d_i.shape[1]),
        d_i.ravel(),
        s=8,
        alpha=0.3,
        color="#3b75af",
        linewidths=0,
        label="D_i (each feature)",
    )
    refs, texts = _reference_lines(ax)
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.1)
    ax.set_xlabel("1 / feature density, 1/(1−S)")
    ax.set_ylabel("dimensions per feature")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title(ds, _fixed_note(ds, [axis])), fontsize=9)
    return [line, scatter, *refs, *texts]


def _density(runs: xr.Dataset, axis: str | None) -> np.ndarray:
    """Feature density p per run (mean over features), from the data or the axis."""
    if "density" in runs.data_vars:
        p = runs["density"]
        return (p.mean("feature") if "feature" in p.dims else p).values.astype(
            np.float64
        )
    if axis not in DENSITY_AXES:
        raise ValueError(
            f"need a density variable or a density axis "
            f"{DENSITY_AXES}; got axis {axis!r}"
        )
    values = np.asarray(runs["run"].values, dtype=np.float64)
    return 1.0 - values if axis == "sparsity" else values


def _reference_lines(ax) -> tuple[list, list]:
    lines, texts = [], []
    values = sorted(REFERENCE_DIMENSIONS.values())
    for name, value in REFERENCE_DIMENSIONS.items():
        k = values.index(value)  # nudge labels of close lines apart
        close_below = k > 0 and value - values[k - 1] < 0.05
        close_above = k + 1 < len(values) and values[k + 1] - value < 0.05
        va = "bottom" if close_below else "top" if close_above else "center"
        lines.append(ax.axhline(value, color="grey", linestyle=":", linewidth=0.8))
        texts.append(
            ax.text(
                1.01,
                value,
                name,
                transform=ax.get_yaxis_transform(),
                va=va,
                fontsize=8,
                color="dimgrey",
            )
        )
    return lines, texts


def geometry(ax, W, labels=None) -> list:
    """Feature directions of one run: arrows in 2-D (H = 2) or lines in 3-D (H = 3).

    Args:
      ax: a 2-D axes for H = 2; a 3-D axes (``fig.add_subplot(projection="3d")``) for
        H = 3.
      W: [H, F] weights (array or DataArray); column i is feature i's direction.
      labels: F labels (default the feature indices).

    Features of norm at most ``REPRESENTED_NORM`` (not represented) are drawn but not
    labelled at their tip, where their labels would pile up at the centre: one note in
    the lower-left corner names them ("not represented: 2, 4"). The axes are labelled
    "hidden dim 0", "hidden dim 1" (and 2).

    Returns:
      The drawn artists: per feature an arrow (Annotation) or Line3D, and a Text
      label per represented feature, then the note (when any is not); in 2-D also the
      unit circle (first).
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim == 2:
        W, kept = unpadded(W)
        labels = [str(i) for i in kept] if labels is None else [labels[i] for i in kept]
    if W.ndim != 2 or W.shape[0] not in (2, 3):
        raise ValueError(f"geometry needs W of shape [2 or 3, F]; got {W.shape}")
    is_3d = hasattr(ax, "get_zlim")
    if (W.shape[0] == 3) != is_3d:
        raise ValueError(
            "H = 3 needs a 3-D axes (add_subplot(projection='3d')), H = 2 a 2-D one"
        )
    labels = [str(i) for i in range(W.shape[1])] if labels is None else labels
    F = W.shape[1]
    colours = _feature_colours(F)
    lim = 1.2 * max(float(np.linalg.norm(W, axis=0).max()), 0.5)
    draw = _geometry_3d if is_3d else _geometry_2d
    return draw(ax, W, labels, colours, lim)


def _dropped_note(ax, W, labels) -> list:
    """The hidden-dimension axis labels, and one note naming the features too short to
    label at their tip."""
    dims = ("x", "y", "z")[: W.shape[0]]
    for i, d in enumerate(dims):
        getattr(ax, f"set_{d}label")(f"hidden dim {i}", fontsize=8)
    dropped = [labels[i] for i in np.flatnonzero(np.linalg.norm(W, axis=0) <= REPRESENTED_NORM)]
    if not dropped:
        return []
    note = f"not represented: {', '.join(dropped)}"
    place = (ax.text2D if W.shape[0] == 3 else ax.text)
    return [place(0.02, 0.02, note, transform=ax.transAxes, fontsize=7, color="dimgrey",
                  ha="left", va="bottom")]


def _labelled(W) -> np.ndarray:
    return np.linalg.norm(W, axis=0) > REPRESENTED_NORM


def _geometry_2d(ax, W, labels, colours, lim) -> list:
    artists = [ax.add_patch(Circle((0, 0), 1.0, fill=False, color="lightgrey", lw=0.8))]
    shown = _labelled(W)
    for i, (vx, vy) in enumerate(W.T):
        artists.append(
            ax.annotate(
                "",
                xy=(vx, vy),
                xytext=(0, 0),
                arrowprops=dict(
                    arrowstyle="-|>", color=colours[i], lw=1.5, shrinkA=0, shrinkB=0
                ),
            )
        )
        if shown[i]:
            artists.append(ax.text(1.1 * vx, 1.1 * vy, labels[i], color=colours[i],
                                   fontsize=8, ha="center", va="center"))
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return artists + _dropped_note(ax, W, labels)


def _geometry_3d(ax, W, labels, colours, lim) -> list:
    artists, shown = [], _labelled(W)
    for i, (vx, vy, vz) in enumerate(W.T):
        artists.append(ax.plot([0, vx], [0, vy], [0, vz], color=colours[i], lw=1.5)[0])
        if shown[i]:
            artists.append(ax.text(1.1 * vx, 1.1 * vy, 1.1 * vz, labels[i], color=colours[i],
                                   fontsize=8))
    for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
        setter(-lim, lim)
    ax.set_box_aspect((1, 1, 1))
    return artists + _dropped_note(ax, W, labels)


def loss(ax, ds: xr.Dataset, max_labels: int = 10) -> list:
    """Training-loss curves (log y), one per run, including every seed.

    Curves are coloured along the first numeric non-seed sweep axis. With at most
    ``max_labels`` runs each curve is labelled by its axis values in a legend; otherwise
    a colorbar shows the colouring axis.

    Returns:
      [*Line2Ds, Legend or Colorbar (when drawn)].
    """
    axes = sweep_axes(ds)
    curves = ds["loss"].transpose(*axes, "step").values.reshape(-1, ds.sizes["step"])
    combos = list(itertools.product(*(ds[a].values for a in axes)))
    colour_axis = next((a for a in axes if a != "seed" and ds.sizes[a] > 1
                        and ds[a].dtype.kind in "fiu"), None)  # numbers: a colour scale
    cmap, norm, colour_of = _loss_colours(ds, axes, colour_axis)
    few = len(combos) <= max_labels
    lines = []
    for curve, combo in zip(curves, combos, strict=True):
        name = (
            ", ".join(_run_name(a, v) for a, v in zip(axes, combo, strict=True))
            if few
            else None
        )
        lines.append(
            ax.plot(
                ds["step"].values,
                curve,
                color=colour_of(dict(zip(axes, combo, strict=True))),
                lw=1.0,
                alpha=0.9 if few else 0.4,
                label=name,
            )[0]
        )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (mean per logged block)")
    ax.set_title(title(ds), fontsize=9)
    if few and any(axes):
        return lines + [ax.legend(fontsize=7)]
    if colour_axis is not None:
        return lines + [
            ax.figure.colorbar(
                ScalarMappable(norm, cmap), ax=ax, label=label(colour_axis)
            )
        ]
    return lines


def _loss_colours(ds, axes, colour_axis):
    cmap = colormaps["viridis"]
    if colour_axis is None:
        return cmap, None, lambda combo: cmap(0.0)
    values = np.asarray(ds[colour_axis].values, dtype=np.float64)
    norm = (
        LogNorm(values.min(), values.max())
        if is_log_spaced(values)
        else Normalize(values.min(), values.max())
    )
    return cmap, norm, lambda combo: cmap(norm(float(combo[colour_axis])))


def features_figure(
    ds: xr.Dataset, axis: str | None = None, max_columns: int = 5
) -> Figure:
    """A figure of ``features`` panels: WᵀW and norm bars side by side for each run.

    Pairs are laid out in rows of up to ``max_columns`` runs, with colorbars for WᵀW and
    for polysemanticity. Options: ``axis``, ``max_columns``.
    """
    ds = _ensure_analysis(ds, ["superposition"])
    axis = _default_axis(ds, axis)
    n = ds.sizes[axis] if axis else 1
    rows, columns = _grid_shape(n, max_columns)
    fig = Figure(figsize=(2.7 * columns + 1.2, 2.4 * rows + 0.7), layout="constrained")
    grid = fig.add_gridspec(rows, 2 * columns, width_ratios=[1.0, 0.55] * columns)
    axes = np.array(
        [
            [fig.add_subplot(grid[k // columns, 2 * (k % columns) + j]) for j in (0, 1)]
            for k in range(n)
        ],
        dtype=object,
    )
    drawn = features(axes, ds, axis)
    every = list(axes.ravel())
    # the last colour bar made sits nearest the panels: WᵀW's, the panels' own colours
    fig.colorbar(ScalarMappable(Normalize(0, 1), SUPERPOSITION_CMAP), ax=every,
                 label="√superposition (bar colour)", shrink=0.9, aspect=15 * rows, pad=0.01)
    fig.colorbar(drawn[0][0], ax=every, label="WᵀW", shrink=0.9, aspect=15 * rows, pad=0.01)
    fig.suptitle(title(ds, _fixed_note(ds, [axis])), fontsize=10)
    return fig


def geometry_grid(
    ds: xr.Dataset, axis: str | None = None, max_columns: int = 5
) -> Figure:
    """A figure of ``geometry`` panels, one per run along ``axis`` (H must be 2 or 3).

    Options: ``axis`` (default the density axis), ``max_columns``.
    """
    axis = _default_axis(ds, axis)
    runs, names = _runs_along(ds, axis)
    Ws = [unpadded(runs["W"].isel(run=k).transpose("hidden", "feature"))[0]
          for k in range(len(names))]
    sizes = sorted({len(W) for W in Ws})
    if not set(sizes) <= {2, 3}:
        raise ValueError(f"geometry plots need n_hidden 2 or 3; this sweep has {sizes}")
    rows, columns = _grid_shape(len(names), max_columns)
    fig = Figure(figsize=(2.4 * columns, 2.5 * rows + 0.6), layout="constrained")
    for k, name in enumerate(names):
        three = len(Ws[k]) == 3
        ax = fig.add_subplot(rows, columns, k + 1, projection="3d" if three else None)
        geometry(ax, runs["W"].isel(run=k).transpose("hidden", "feature"))
        ax.set_title(name, fontsize=9)
    fig.suptitle(title(ds, _fixed_note(ds, [axis])), fontsize=10)
    return fig


FIGURES = {
    "features": features_figure,  # axis, max_columns
    "dimensionality": _single(dimensionality),  # axis
    "geometry": geometry_grid,  # axis, max_columns
    "loss": _single(loss),  # max_labels
}
