"""Figures from a results dataset: matplotlib only, no retraining.

Where this sits in the data flow: ``toymodels.load(dir)`` gives an ``xarray.Dataset``
(sweep axes, then ``hidden``, ``feature``, ``step``); ``toymodels.analysis.analyze``
adds per-run metrics; the functions here draw them.

Two layers:

- Axes functions (``features``, ``phase``, ``dimensionality``, ``geometry``, ``loss``,
  ``heatmap``) take an ``ax`` (or an array of axes), draw on it and return the artists
  they drew. They never create, show or save figures and set no rcParams.
- Figure functions (``PLOTS[kind](ds, **options)``, ``features_figure``,
  ``geometry_grid``, ``phase_grid``) build a whole ``matplotlib.figure.Figure`` without pyplot, so there
  is no global state; the caller (the CLI, a script in ``plots/``) saves it.

Runs are reduced to the axes a plot needs by ``best_runs``: the lowest-``final_loss``
seed when a ``seed`` axis exists, index 0 along every other axis (select other values
with ``ds.sel(...)`` first). Titles and labels come from the dataset (``attrs["name"]``,
the config, the axis names), never written per figure.

Example (with ``ds = toymodels.load("runs/reproduce/phase_2_1")``)::

  fig = PLOTS["phase"](ds, theory="2_1")
  fig.savefig("phase_2_1.png")
"""

from __future__ import annotations

import itertools
import math
import tomllib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import (
    BoundaryNorm,
    LinearSegmentedColormap,
    ListedColormap,
    LogNorm,
    Normalize,
)
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Patch

from toymodels import theory as _theory
from toymodels.plotting import memorisation as _memorisation
from toymodels.plotting import norms as _norms
from toymodels.plotting import sae as _sae
from toymodels.plotting import slt as _slt

NON_SWEEP_DIMS = ("hidden", "feature", "step", "polytope_kind", "snapshot", "rescale")
DENSITY_AXES = ("feature_probability", "sparsity")
PHASE_COLORS = {
    "unrepresented": "#d0d0d0",
    "dedicated": "#3b75af",
    "superposition": "#ef8636",
}
REFERENCE_DIMENSIONS = {
    "1": 1.0,
    "3/4": 3 / 4,
    "2/3": 2 / 3,
    "1/2": 1 / 2,
    "2/5": 2 / 5,
    "3/8": 3 / 8,
}
SUPERPOSITION_CMAP = LinearSegmentedColormap.from_list(
    "superposition", ["#111111", "#f2b705"]
)
GRAM_CMAP = "RdBu_r"
AXIS_LABELS = {
    "sparsity": "sparsity S",
    "feature_probability": "feature density 1−S",
    "relative_importance": "relative importance r",
    "importance_decay": "importance decay",
    "dropout": "dropout rate",
    "learning_rate": "learning rate",
    "weight_decay": "weight decay",
    "seed": "seed",
    "n_features": "features n",
    "n_hidden": "hidden dimensions m",
    "dataset_size": "training examples T",
    "data_seed": "data seed",
    "batch_size": "batch size",
    "steps": "steps",
    "momentum": "momentum μ",
    "l1_weights": "L1 on weights λ",
}
AXIS_SYMBOLS = {
    "sparsity": "S",
    "feature_probability": "1−S",
    "relative_importance": "r",
    "importance_decay": "decay",
    "learning_rate": "lr",
    "weight_decay": "wd",
    "density_ratio": "p₀/p",
    "n_features": "n",
    "n_hidden": "m",
    "dataset_size": "T",
}
VARIABLE_LABELS = {
    "final_loss": "final loss",
    "loss": "training loss",
    "feature_norm": "feature norm ‖W_i‖",
    "superposition": "superposition Σ_j≠i (Ŵ_i·W_j)²",
    "feature_dimensionality": "feature dimensionality D_i",
    "dims_per_feature": "dimensions per feature D* = m/‖W‖²_F",
    "n_represented": "represented features",
}


# ---- names, titles and coordinates


def label(name: str) -> str:
    """Readable label of an axis or variable name, e.g. "sparsity" -> "sparsity S"."""
    return AXIS_LABELS.get(name) or VARIABLE_LABELS.get(name) or name.replace("_", " ")


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3g}"
    return str(value.item() if isinstance(value, np.generic) else value)


def _run_name(name: str, value: Any) -> str:
    return f"{AXIS_SYMBOLS.get(name, name.replace('_', ' '))} = {_fmt(value)}"


def sweep_axes(ds: xr.Dataset) -> list[str]:
    """The sweep axis names in config order (dims of ``W`` before hidden, feature)."""
    ref = ds["W"] if "W" in ds else ds["final_loss"]
    return [d for d in ref.dims if d not in NON_SWEEP_DIMS]


def _config(ds: xr.Dataset) -> dict:
    try:
        return tomllib.loads(ds.attrs.get("config", ""))
    except tomllib.TOMLDecodeError:
        return {}


def title(ds: xr.Dataset, detail: str = "") -> str:
    """Figure title from ``attrs["name"]`` and the config: model kind, n, m, steps."""
    config = _config(ds)
    model = config.get("model", {})
    swept = config.get("sweep", {})  # a static axis: its values, e.g. m=2/3/5
    pick = lambda key, value: "/".join(map(str, swept[key])) if key in swept else value
    kind = pick("kind", ds.attrs.get("model_kind", model.get("kind", "")))
    n = pick("n_features", ds.attrs.get("n_features", model.get("n_features", ds.sizes.get("feature"))))
    m = pick("n_hidden", ds.attrs.get("n_hidden", model.get("n_hidden", ds.sizes.get("hidden"))))
    steps = config.get("train", {}).get("steps")
    steps = pick("steps", steps and f"{steps:,}")
    parts = [p for p in (kind, f"n={n}", f"m={m}", steps and f"{steps} steps") if p]
    head = f"{ds.attrs.get('name', 'sweep')} ({', '.join(parts)})"
    return f"{head}\n{detail}" if detail else head


def _fixed_note(ds: xr.Dataset, keep: list[str]) -> str:
    """Says how the axes that a plot does not show were reduced."""
    notes = []
    for axis in sweep_axes(ds):
        if axis in keep or ds.sizes[axis] == 1:
            continue
        if axis == "seed":
            notes.append(f"best of {ds.sizes['seed']} seeds")
        else:
            notes.append(_run_name(axis, ds[axis].values[0]))
    return ", ".join(notes)


def is_log_spaced(values, rtol: float = 0.05) -> bool:
    """Whether coordinates are geometrically (not arithmetically) spaced.

    Three or more positive values whose log steps agree within ``rtol`` (loose enough
    for hand-rounded coordinates) are log-spaced; two positive values count as
    log-spaced when they differ by a factor of 10 or more.

    Example:
      >>> is_log_spaced([0.1, 1.0, 10.0]), is_log_spaced([1.0, 2.0, 3.0])
      (True, False)
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        return False
    if v.size == 2:
        return bool(v.max() / v.min() >= 10.0)
    steps, log_steps = np.diff(v), np.diff(np.log(v))
    geometric = np.allclose(log_steps, log_steps[0], rtol=rtol, atol=0.0)
    arithmetic = np.allclose(steps, steps[0], rtol=rtol, atol=0.0)
    return bool(geometric and not arithmetic)


def _plot_coordinate(coord: xr.DataArray) -> tuple[np.ndarray, str, bool]:
    """Values, label, log flag of a sweep axis; sparsity is shown as density 1-S."""
    values = np.asarray(coord.values, dtype=np.float64)
    name = str(coord.name)
    if name == "sparsity":
        values, name = 1.0 - values, "feature_probability"
    return values, label(name), is_log_spaced(values)


def _edges(values: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around centres (geometric midpoints on log axes)."""
    if values.size == 1:
        return values[0] + np.array([-0.5, 0.5])
    t = np.log(values) if log else values
    mid = (t[1:] + t[:-1]) / 2
    edges = np.concatenate([[2 * t[0] - mid[0]], mid, [2 * t[-1] - mid[-1]]])
    return np.exp(edges) if log else edges


# ---- reducing runs


def unpadded(W) -> tuple[np.ndarray, np.ndarray]:
    """One run's ``W: [H, F]`` without the NaN padding of a sweep with static axes
    (``toymodels.groups``): the rows and columns that are all NaN are dropped.

    Returns:
      (W [H', F'] as float64, the indices of the kept features [F']).

    Example:
      >>> W, kept = unpadded([[1.0, np.nan], [np.nan, np.nan]])
      >>> W.tolist(), kept.tolist()
      ([[1.0]], [0])
    """
    W = np.asarray(W, dtype=np.float64)
    rows = ~np.isnan(W).all(axis=-1)
    cols = ~np.isnan(W).all(axis=-2)
    return W[rows][:, cols], np.flatnonzero(cols)



def best_runs(ds: xr.Dataset, keep=()) -> xr.Dataset:
    """Reduces ``ds`` to the sweep axes in ``keep``.

    Over ``seed`` (when not kept) it picks the run with the lowest ``final_loss`` per
    cell (seed 0 without ``final_loss``); along any other axis it takes index 0.

    Args:
      ds: results dataset.
      keep: sweep axis names to keep.

    Returns:
      Dataset whose sweep dims are ``keep`` (the chosen seed stays as a coordinate).
    """
    axes = sweep_axes(ds)
    unknown = [a for a in keep if a not in axes]
    if unknown:
        raise ValueError(f"no sweep axis {unknown}; the sweep axes are {axes}")
    out = ds
    if "seed" in axes and "seed" not in keep:
        if "final_loss" in ds:
            out = out.isel(seed=ds["final_loss"].fillna(np.inf).argmin("seed"))
        else:
            out = out.isel(seed=0)
    return out.isel({a: 0 for a in axes if a not in keep and a != "seed"})


def _ensure_analysis(ds: xr.Dataset, names) -> xr.Dataset:
    """Adds missing analysis variables with ``toymodels.analysis.analyze``."""
    missing = [n for n in names if n not in ds]
    if not missing:
        return ds
    try:
        from toymodels.analysis import analyze
    except ImportError as error:  # the module, or its `analyze`, is not there yet
        if error.name != "toymodels.analysis":
            raise
        raise ValueError(
            f"the dataset lacks {missing} and toymodels.analysis is not available"
        ) from error
    return analyze(ds, adversarial="vulnerability" in missing)


def _default_axis(ds: xr.Dataset, axis: str | None) -> str | None:
    axes = [a for a in sweep_axes(ds) if a != "seed"]
    if axis is not None:
        return axis
    density = [a for a in axes if a in DENSITY_AXES]
    return (density or axes or [None])[0]


def _default_xy(ds: xr.Dataset, x: str | None, y: str | None) -> tuple[str, str]:
    axes = [a for a in sweep_axes(ds) if a != "seed"]
    if y is None:
        density = [a for a in axes if a in DENSITY_AXES and a != x]
        y = (density or [a for a in axes if a != x] + [None])[0]
    if x is None:
        x = (
            "relative_importance"
            if "relative_importance" in axes and y != "relative_importance"
            else next((a for a in axes if a != y), None)
        )
    if x is None or y is None:
        raise ValueError(f"a 2-D plot needs two sweep axes besides seed; found {axes}")
    return x, y


def _runs_along(ds: xr.Dataset, axis: str | None) -> tuple[xr.Dataset, list[str]]:
    """Best runs along one axis, with ``run`` as their dim, and a title per run."""
    if axis is None:
        return best_runs(ds).expand_dims("run"), [""]
    runs = best_runs(ds, [axis]).rename({axis: "run"})
    return runs, [_run_name(axis, v) for v in ds[axis].values]


# ---- axes functions


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

    Returns:
      The drawn artists: per feature an arrow (Annotation) or Line3D, and a Text
      label; in 2-D also the unit circle (first).
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
    colours = (
        colormaps["tab10"](np.arange(F))
        if F <= 10
        else colormaps["viridis"](np.linspace(0.0, 1.0, F))
    )
    lim = 1.2 * max(float(np.linalg.norm(W, axis=0).max()), 0.5)
    draw = _geometry_3d if is_3d else _geometry_2d
    return draw(ax, W, labels, colours, lim)


def _geometry_2d(ax, W, labels, colours, lim) -> list:
    artists = [ax.add_patch(Circle((0, 0), 1.0, fill=False, color="lightgrey", lw=0.8))]
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
        artists.append(
            ax.text(
                1.1 * vx,
                1.1 * vy,
                labels[i],
                color=colours[i],
                fontsize=8,
                ha="center",
                va="center",
            )
        )
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return artists


def _geometry_3d(ax, W, labels, colours, lim) -> list:
    artists = []
    for i, (vx, vy, vz) in enumerate(W.T):
        artists.append(ax.plot([0, vx], [0, vy], [0, vz], color=colours[i], lw=1.5)[0])
        artists.append(
            ax.text(
                1.1 * vx, 1.1 * vy, 1.1 * vz, labels[i], color=colours[i], fontsize=8
            )
        )
    for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
        setter(-lim, lim)
    ax.set_box_aspect((1, 1, 1))
    return artists


def loss(ax, ds: xr.Dataset, max_labels: int = 10) -> list:
    """Training-loss curves (log y), one per run, including every seed.

    Curves are coloured along the first non-seed sweep axis. With at most ``max_labels``
    runs each curve is labelled by its axis values in a legend; otherwise a colorbar
    shows the colouring axis.

    Returns:
      [*Line2Ds, Legend or Colorbar (when drawn)].
    """
    axes = sweep_axes(ds)
    curves = ds["loss"].transpose(*axes, "step").values.reshape(-1, ds.sizes["step"])
    combos = list(itertools.product(*(ds[a].values for a in axes)))
    colour_axis = next((a for a in axes if a != "seed" and ds.sizes[a] > 1), None)
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
    mesh, _ = _mesh(
        ax, cells[x], cells[y], cells.values.astype(np.float64), "viridis", None
    )
    colorbar = ax.figure.colorbar(mesh, ax=ax, label=label(var) + detail)
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


# ---- figure functions: (ds, **options) -> Figure


def _grid_shape(n: int, max_columns: int) -> tuple[int, int]:
    columns = max(1, min(n, int(max_columns)))
    return math.ceil(n / columns), columns


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
    fig.colorbar(drawn[0][0], ax=every, label="WᵀW", shrink=0.9, aspect=15 * rows)
    fig.colorbar(
        ScalarMappable(Normalize(0, 1), SUPERPOSITION_CMAP),
        ax=every,
        label="√superposition (bar colour)",
        shrink=0.9,
        aspect=15 * rows,
    )
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


def _single(draw: Callable, figsize=(7.0, 4.6)) -> Callable:
    def make(ds: xr.Dataset, **options) -> Figure:
        fig = Figure(figsize=figsize, layout="constrained")
        draw(fig.add_subplot(), ds, **options)
        return fig

    make.__doc__ = f"A one-axes figure drawn by ``{draw.__name__}(ax, ds, **options)``."
    return make


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


# ---- neurons, training dynamics, adversarial vulnerability, computation (issue 5)


def _feature_colours(n: int) -> np.ndarray:
    """One colour per feature: tab10 up to 10 features, else viridis by index."""
    if n <= 10:
        return colormaps["tab10"](np.arange(n))
    return colormaps["viridis"](np.linspace(0.0, 1.0, n))


def _neuron_rows(run: xr.Dataset) -> np.ndarray:
    """[H, F] weights, rows = neurons: ``W``, or ``W1`` balanced against ``W2``."""
    if "W" in run and not np.isnan(run["W"].values).all():
        return unpadded(run["W"].transpose("hidden", "feature").values)[0]
    from toymodels.analysis.neurons import balance

    W1 = run["W1"].transpose("hidden", "feature").values.astype(np.float32)
    W2 = run["W2"].transpose("feature", "hidden").values.astype(np.float32)
    return np.asarray(balance(W1, W2)[0], dtype=np.float64)


def neurons(ax, W, labels=None) -> list:
    """The paper's stacked neuron-weight plot of one model (REFERENCE 1.12).

    One column per neuron k; each feature i adds a segment of height |W_ki| in its own
    colour, positive weights stacked upward from 0 and negative ones downward, in
    feature order (most important first).

    Args:
      ax: the axes.
      W: [H, F] weights whose rows are neurons (relu_hidden's ``W``; for
        abs_computation ``W1``, best balanced with ``analysis.balance``).
      labels: F feature labels for the legend (default the indices).

    Returns:
      One ``BarContainer`` per feature (H bars each), then the zero line.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"neurons needs W of shape [H, F]; got {W.shape}")
    H, F = W.shape
    labels = [str(i) for i in range(F)] if labels is None else list(labels)
    colours = _feature_colours(F)
    up, down = np.zeros(H), np.zeros(H)
    drawn = []
    for i in range(F):
        w = W[:, i]
        bottom = np.where(w >= 0, up, down)
        drawn.append(
            ax.bar(np.arange(H), w, bottom=bottom, width=0.8, color=colours[i],
                   label=labels[i], linewidth=0)
        )
        up, down = up + np.clip(w, 0.0, None), down + np.clip(w, None, 0.0)
    drawn.append(ax.axhline(0.0, color="black", linewidth=0.6))
    ax.set_xticks(np.arange(H) if H <= 20 else [])
    ax.set_xlim(-0.6, H - 0.4)
    ax.set_xlabel("neuron")
    ax.set_ylabel("weights W_ki, stacked")
    return drawn


def neurons_figure(
    ds: xr.Dataset, axis: str | None = None, max_columns: int = 5
) -> Figure:
    """A figure of ``neurons`` panels, one per run along ``axis`` (best seed).

    Each panel's title gives the run and its number of monosemantic neurons
    (``analysis.n_monosemantic``). For abs_computation sweeps the rows of ``W1`` are
    drawn with each hidden unit balanced (``||W1_k|| = ||W2_:k||``). Options: ``axis``
    (default the density axis), ``max_columns``.
    """
    from toymodels.analysis.neurons import n_monosemantic

    axis = _default_axis(ds, axis)
    runs, names = _runs_along(ds, axis)
    rows, columns = _grid_shape(len(names), max_columns)
    fig = Figure(figsize=(2.6 * columns + 1.0, 2.5 * rows + 0.7), layout="constrained")
    weights = [_neuron_rows(runs.isel(run=k)) for k in range(len(names))]
    lim = 1.05 * max(
        max(np.clip(W, 0, None).sum(1).max(), -np.clip(W, None, 0).sum(1).min(), 0.1)
        for W in weights
    )
    for k, (name, W) in enumerate(zip(names, weights, strict=True)):
        ax = fig.add_subplot(rows, columns, k + 1)
        neurons(ax, W)
        ax.set_ylim(-lim, lim)
        mono = int(n_monosemantic(W.astype(np.float32)))
        ax.set_title(f"{name}{', ' if name else ''}{mono} monosemantic", fontsize=9)
        if k % columns:
            ax.set_ylabel("")
    F = weights[0].shape[1]
    if F <= 10:
        fig.legend(*fig.axes[0].get_legend_handles_labels(), loc="outside right upper",
                   title="feature", fontsize=8, title_fontsize=8)
    else:
        cmap = ListedColormap(_feature_colours(F))
        fig.colorbar(ScalarMappable(Normalize(-0.5, F - 0.5), cmap), ax=fig.axes,
                     label="feature (importance order)", shrink=0.9)
    fig.suptitle(title(ds, _fixed_note(ds, [axis])), fontsize=10)
    return fig


def _snapshot_dimensionality(run: xr.Dataset) -> np.ndarray:
    """[S, F] D_i at every snapshot of one run (analysis variable, else computed)."""
    if "dimensionality_snapshots" in run:
        return run["dimensionality_snapshots"].transpose("snapshot", "feature").values
    name = "W_snapshots" if "W_snapshots" in run else "W1_snapshots"
    if name not in run:
        raise ValueError(
            "dynamics needs snapshots of the weights: train with [train] snapshot_every"
        )
    from toymodels.analysis.dynamics import dimensionality_over_training

    Ws = run[name].transpose("snapshot", "hidden", "feature").values
    return np.asarray(dimensionality_over_training(Ws.astype(np.float32)))


def _fraction_marks(ax) -> list:
    """Dotted lines at the reference fractions, labelled inside the left edge."""
    drawn = []
    for name, value in REFERENCE_DIMENSIONS.items():
        drawn.append(ax.axhline(value, color="grey", linestyle=":", linewidth=0.8))
        drawn.append(
            ax.text(0.005, value, name, transform=ax.get_yaxis_transform(),
                    va="bottom", fontsize=7, color="dimgrey")
        )
    return drawn


def dynamics(ax, run: xr.Dataset, threshold: float | None = None) -> list:
    """Feature dimensionality D_i of every feature over training, with the loss.

    Log x (training step; the snapshot at step 0 is left out), D_i as one line per
    feature, the reference fractions 1, 3/4, 2/3, 1/2, 2/5, 3/8 dotted, the jumps
    found by ``analysis.jumps`` (|change of D_i| > ``threshold`` between consecutive
    snapshots) marked, and the training loss on a twin log axis (grey, right).

    Args:
      ax: the axes.
      run: ONE run (no sweep dims) with ``W_snapshots`` (or ``W1_snapshots``, or
        ``dimensionality_snapshots``) and ``loss``; e.g. ``best_runs(ds)``.
      threshold: jump threshold (default ``analysis.JUMP_THRESHOLD``, 0.1).

    Returns:
      [*D_i Line2Ds, jump PathCollection, loss Line2D (if ``loss``), *marks].
    """
    from toymodels.analysis.dynamics import JUMP_THRESHOLD, jumps

    threshold = JUMP_THRESHOLD if threshold is None else float(threshold)
    D = _snapshot_dimensionality(run)
    steps = np.asarray(run["snapshot"].values, dtype=np.float64)
    shown = steps > 0
    colours = _feature_colours(D.shape[1])
    lines = [
        ax.plot(steps[shown], D[shown, i], color=colours[i], lw=1.0, label=str(i))[0]
        for i in range(D.shape[1])
    ]
    where = np.argwhere(np.asarray(jumps(D.astype(np.float32), threshold)))
    after = where[:, 0] + 1
    marks = ax.scatter(steps[after], D[after, where[:, 1]], marker="o", s=18,
                       facecolors="none", edgecolors="black", linewidths=0.8,
                       zorder=3, label=f"jump (|ΔD| > {threshold:g})")
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.08)
    ax.set_xlabel("training step")
    ax.set_ylabel("feature dimensionality D_i")
    drawn = [*lines, marks]
    if "loss" in run:
        twin = ax.twinx()
        loss_line = twin.plot(run["step"].values, run["loss"].values, color="grey",
                              lw=1.0, alpha=0.8, label="training loss")[0]
        twin.set_yscale("log")
        twin.set_ylabel("training loss", color="grey")
        twin.tick_params(axis="y", colors="grey")
        drawn.append(loss_line)
    return drawn + _fraction_marks(ax)


def dynamics_figure(
    ds: xr.Dataset, axis: str | None = None, max_columns: int = 3,
    threshold: float | None = None,
) -> Figure:
    """A figure of ``dynamics`` panels, one per run along ``axis`` (best seed).

    Needs a sweep trained with ``[train] snapshot_every``. Options: ``axis`` (default
    the density axis), ``max_columns``, ``threshold`` (jump threshold).
    """
    if not any(f"{w}_snapshots" in ds for w in ("W", "W1")):
        raise ValueError(
            "dynamics needs snapshots of the weights: train with [train] snapshot_every"
        )
    axis = _default_axis(ds, axis)
    runs, names = _runs_along(ds, axis)
    rows, columns = _grid_shape(len(names), max_columns)
    fig = Figure(figsize=(5.0 * columns + 1.6, 3.6 * rows + 0.7), layout="constrained")
    for k, name in enumerate(names):
        ax = fig.add_subplot(rows, columns, k + 1)
        dynamics(ax, runs.isel(run=k), threshold)
        ax.set_title(name, fontsize=9)
    handles, labels_ = fig.axes[0].get_legend_handles_labels()
    if len(handles) <= 11:
        fig.legend(handles, labels_, loc="outside right upper", fontsize=7,
                   title="feature", title_fontsize=8)
    fig.suptitle(title(ds, _fixed_note(ds, [axis])), fontsize=10)
    return fig


def vulnerability(ax, ds: xr.Dataset) -> list:
    """Adversarial vulnerability against features per dimension, one point per run.

    x: features per dimension ‖W‖²_F / m (= 1 / ``dims_per_feature``); y:
    ``vulnerability`` (``analysis.vulnerability``: the most harmful analytic L2 attack's
    loss increase relative to an orthogonal model without superposition, REFERENCE
    1.11). Every run (all seeds) is drawn, coloured by its mean feature density; the
    dashed line is y = x (the paper: vulnerability closely tracks features per
    dimension).

    Args:
      ax: the axes.
      ds: results dataset of a linear or relu_output sweep (``vulnerability`` and
        ``dims_per_feature`` added by analysis if missing).

    Returns:
      [PathCollection, y = x Line2D, Colorbar (when a density is known)].
    """
    ds = _ensure_analysis(ds, ["vulnerability", "dims_per_feature"])
    if "vulnerability" not in ds:
        raise ValueError(
            "vulnerability is defined for linear and relu_output models with b and "
            f"density; this dataset is {ds.attrs.get('model_kind', 'unknown')!r}"
        )
    x = 1.0 / ds["dims_per_feature"].values.astype(np.float64).ravel()
    y = ds["vulnerability"].transpose(*ds["dims_per_feature"].dims).values.ravel()
    drawn = []
    if "density" in ds:
        p = ds["density"]
        p = (p.mean("feature") if "feature" in p.dims else p)
        p = p.transpose(*ds["dims_per_feature"].dims).values.astype(np.float64).ravel()
        positive = p[p > 0]
        norm = (
            LogNorm(positive.min(), positive.max())
            if positive.size and positive.max() > positive.min()
            else Normalize(0.0, 1.0)
        )
        scatter = ax.scatter(x, y, c=np.clip(p, 1e-12, None), cmap="viridis",
                             norm=norm, s=22, edgecolors="black", linewidths=0.3)
        colorbar = ax.figure.colorbar(scatter, ax=ax, label="feature density 1−S")
    else:
        scatter, colorbar = ax.scatter(x, y, s=22, color="#3b75af"), None
    drawn.append(scatter)
    finite = np.isfinite(x) & np.isfinite(y)
    top = max(float(np.max(x[finite], initial=1.0)),
              float(np.max(y[finite], initial=1.0)))
    drawn.append(ax.plot([0.0, 1.05 * top], [0.0, 1.05 * top], color="grey",
                         linestyle="--", linewidth=1.0, label="y = x")[0])
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlim(0.0, 1.05 * top)
    ax.set_ylim(0.0, 1.05 * top)
    ax.set_xlabel("features per dimension ‖W‖²_F / m")
    ax.set_ylabel("vulnerability (L'−L) / (L'₀−L₀)")
    ax.legend(loc="upper left", fontsize=8)
    detail = "most harmful analytic L2 attack, budget 0.1 × mean non-zero input norm"
    ax.set_title(title(ds, detail), fontsize=9)
    return drawn + ([colorbar] if colorbar is not None else [])


def computation(axes, W1, W2, flags=None, inhibited=None) -> list:
    """The abs model's weights: W1 and W2ᵀ as heatmaps side by side (REFERENCE 1.13).

    Rows are hidden units, each rescaled so that its largest |W1| weight is 1 (and its
    W2 weights multiplied back, so the function is unchanged), as the paper draws them.
    Units in ``flags`` (asymmetric-superposition motif) are outlined in both panels:
    solid when also ``inhibited``, dashed otherwise.

    Args:
      axes: two axes, for W1 [H, F] and W2ᵀ [H, F].
      W1: [H, F] first layer.
      W2: [F, H] second layer.
      flags: [H] bool, units to outline (default none).
      inhibited: [H] bool, outlined units whose motif is inhibited (solid outline).

    Returns:
      [W1 AxesImage, W2ᵀ AxesImage, *outline Rectangles].
    """
    from matplotlib.patches import Rectangle

    W1, W2 = np.asarray(W1, np.float64), np.asarray(W2, np.float64)
    H, F = W1.shape
    peak = np.abs(W1).max(axis=1)
    scale = np.where(peak > 0, peak, 1.0)
    panels = (W1 / scale[:, None], W2.T * scale[:, None])
    names = ("W₁, unit rows max |w| = 1", "W₂ᵀ, rescaled alike")
    drawn = []
    for ax, values, name in zip(axes, panels, names, strict=True):
        vmax = max(float(np.abs(values).max()), 1e-6)
        drawn.append(ax.imshow(values, cmap=GRAM_CMAP, vmin=-vmax, vmax=vmax,
                               interpolation="nearest", aspect="auto"))
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("feature")
        ax.set_yticks(np.arange(H) if H <= 12 else np.arange(0, H, 5))
        ax.set_xticks(np.arange(F) if F <= 12 else np.arange(0, F, 5))
    axes[0].set_ylabel("hidden unit")
    flags = np.zeros(H, bool) if flags is None else np.asarray(flags, bool)
    inhibited = np.zeros(H, bool) if inhibited is None else np.asarray(inhibited, bool)
    for k in np.flatnonzero(flags):
        for ax in axes:
            drawn.append(ax.add_patch(Rectangle(
                (-0.5, k - 0.5), F, 1.0, fill=False, edgecolor="#00a000", linewidth=2.0,
                linestyle="-" if inhibited[k] else "--", gid="asymmetric")))
    return drawn


def computation_figure(
    ds: xr.Dataset, axis: str | None = None, max_columns: int = 3
) -> Figure:
    """A figure of ``computation`` panel pairs, one per run of an abs_computation sweep.

    Hidden units with the asymmetric-superposition motif
    (``analysis.asymmetric_superposition``) are outlined, solid where another unit
    inhibits the interference (``analysis.asymmetric_inhibited``). Options: ``axis``
    (default the density axis), ``max_columns``.
    """
    if "W1" not in ds or "W2" not in ds:
        raise ValueError(
            "computation needs an abs_computation sweep (variables W1, W2)"
        )
    from toymodels.analysis.neurons import (
        asymmetric_inhibited,
        asymmetric_superposition,
    )

    axis = _default_axis(ds, axis)
    runs, names = _runs_along(ds, axis)
    rows, columns = _grid_shape(len(names), max_columns)
    fig = Figure(figsize=(4.6 * columns + 1.0, 2.8 * rows + 0.8), layout="constrained")
    grid = fig.add_gridspec(rows, 2 * columns)
    for k, name in enumerate(names):
        run = runs.isel(run=k)
        W1 = run["W1"].transpose("hidden", "feature").values.astype(np.float32)
        W2 = run["W2"].transpose("feature", "hidden").values.astype(np.float32)
        flags = np.asarray(asymmetric_superposition(W1, W2))
        cell = k // columns, 2 * (k % columns)
        pair = [fig.add_subplot(grid[cell[0], cell[1] + j]) for j in (0, 1)]
        computation(pair, W1, W2, flags, np.asarray(asymmetric_inhibited(W1, W2)))
        note = f"{name}{', ' if name else ''}{int(flags.sum())} asymmetric"
        pair[0].text(0.0, 1.16, note, transform=pair[0].transAxes, fontsize=9)
    fig.colorbar(ScalarMappable(Normalize(-1, 1), GRAM_CMAP), ax=fig.axes, shrink=0.8,
                 label="w / largest |w| of the panel")
    fig.suptitle(title(ds, _fixed_note(ds, [axis])), fontsize=10)
    return fig


class _Registry(dict):
    """A dict whose unknown keys raise ValueError listing the valid ones."""

    def __missing__(self, kind):
        raise ValueError(f"unknown plot kind {kind!r}; valid: {', '.join(self)}")


PLOTS: dict[str, Callable[..., Figure]] = _Registry(
    features=features_figure,  # axis, max_columns
    phase=_single(phase),  # x, y, theory
    dimensionality=_single(dimensionality),  # axis
    geometry=geometry_grid,  # axis, max_columns
    loss=_single(loss),  # max_labels
    heatmap=_heatmap_figure,  # var, x, y, reduce, feature
    phase_grid=phase_grid,  # by, x, y, theory, max_columns
    neurons=neurons_figure,  # axis, max_columns
    dynamics=dynamics_figure,  # axis, max_columns, threshold
    vulnerability=_single(vulnerability),
    computation=computation_figure,  # axis, max_columns
    **_memorisation.FIGURES,  # double_descent (by), memorisation_geometry (sizes), ...
    **_sae.FIGURES,  # sae_width (by), sae_pareto (by), sae_gap, sae_cosines (by, max_columns)
    **_slt.FIGURES,  # kgon_trajectories (runs), llc_phase (x, y, theory, vmax)
    **_norms.FIGURES,  # norms (importance), optimizer_phase (panel)
)
"""Plot kinds of the CLI: ``PLOTS[kind](ds, **options) -> Figure``."""


def make_figure(kind: str, ds: xr.Dataset, **options) -> Figure:
    """``PLOTS[kind](ds, **options)``; an unknown kind raises ValueError."""
    return PLOTS[kind](ds, **options)


def save_plot(kind: str, results_dir, out, **options) -> Path:
    """Draws `PLOTS[kind]` from a results directory and writes it to `out` (PNG, PDF, SVG).

    Bad kinds, axes or options raise `UserError` (one line), never a traceback.
    """
    from toymodels.errors import UserError
    from toymodels.store import load

    if kind not in PLOTS:
        raise UserError(f"unknown plot kind {kind!r}; valid: {', '.join(PLOTS)}")
    ds = load(results_dir)
    try:
        fig = make_figure(kind, ds, **options)
    except (TypeError, ValueError, KeyError) as e:
        raise UserError(f"plot {kind} of {results_dir}: {e}") from None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out
