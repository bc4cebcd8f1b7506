"""What every family of figures shares: names, titles, coordinates and reduced runs.

Constants (``NON_SWEEP_DIMS``, ``PHASE_COLORS``, ``AXIS_LABELS``, ...), readable names of
axes and variables (``label``, ``title``), the sweep axes of a dataset and how they are
drawn (``sweep_axes``, ``is_log_spaced``, ``_plot_coordinate``, ``_edges``), the reduction
of runs to the axes a plot shows (``unpadded``, ``best_runs``, ``_runs_along``,
``_ensure_analysis``, ``_default_axis``, ``_default_xy``), and small layout helpers
(``_grid_shape``, ``_single``, ``_feature_colours``). Nothing here draws a figure.
"""

from __future__ import annotations

import math
import tomllib
from typing import Any, Callable

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.colors import BoundaryNorm, LinearSegmentedColormap, Normalize
from matplotlib.ticker import MaxNLocator
from matplotlib.figure import Figure

from toymodels.analysis import EXTRAS, analyze

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


def plain_number(value: float) -> str:
    """A setting in a title without an exponent: 1000.0 -> "1000", 100.0 -> "100",
    1002.37 -> "1000", 0.0123 -> "0.0123" (three significant digits)."""
    value = float(value)
    if not np.isfinite(value):
        return str(value)
    return np.format_float_positional(value, precision=3, unique=True, fractional=False,
                                      trim="-")


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
    """Adds missing analysis variables with ``toymodels.analysis.analyze``, asking for
    those of ``names`` that it adds only on request (``EXTRAS``)."""
    missing = [n for n in names if n not in ds]
    if not missing:
        return ds
    return analyze(ds, extras=[n for n in missing if n in EXTRAS])


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


# ---- integer-valued axes and colour scales

MAX_LEVELS = 16  # an integer colour scale of more values is continuous (integer ticks)


def integer_ticks(*axes) -> None:
    """Ticks at whole numbers only on each matplotlib Axis (``ax.xaxis``, a colorbar's
    ``cbar.ax.yaxis``...): a feature index is 0, 2, 4, never 2.5."""
    for axis in axes:
        axis.set_major_locator(MaxNLocator("auto", integer=True))


def is_integer_valued(values) -> bool:
    """Whether every finite value is a whole number (and there is one): counts such as
    ``n_represented``, also after a reduction that kept them whole (best of seeds)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return finite.size > 0 and bool(np.all(finite == np.round(finite)))


def integer_scale(values, cmap="viridis") -> tuple[Any, Normalize | None]:
    """(cmap, norm) for a colour scale of `values`: for whole numbers (`is_integer_valued`)
    of at most `MAX_LEVELS` levels, one discrete colour per integer (a `BoundaryNorm`
    with its bounds at the half-integers); otherwise `cmap` and None (continuous)."""
    if not is_integer_valued(values):
        return cmap, None
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    lo, hi = int(finite.min()), int(finite.max())
    if hi - lo + 1 > MAX_LEVELS:
        return cmap, None
    levels = hi - lo + 1
    return (colormaps[cmap].resampled(levels) if isinstance(cmap, str) else cmap,
            BoundaryNorm(np.arange(lo - 0.5, hi + 1.0), levels))


def integer_colorbar(colorbar, values) -> None:
    """Integer ticks on a colorbar of whole-number `values`: one at each level of a
    discrete scale (`integer_scale`), else whole numbers only; nothing for other values."""
    if not is_integer_valued(values):
        return
    colorbar.minorticks_off()
    if isinstance(colorbar.norm, BoundaryNorm):
        bounds = colorbar.norm.boundaries
        colorbar.set_ticks(np.arange(bounds[0] + 0.5, bounds[-1]))
    else:
        colorbar.locator = MaxNLocator(integer=True)


# ---- laying out figures: (ds, **options) -> Figure


def _grid_shape(n: int, max_columns: int) -> tuple[int, int]:
    columns = max(1, min(n, int(max_columns)))
    return math.ceil(n / columns), columns


def _single(draw: Callable, figsize=(7.0, 4.6)) -> Callable:
    def make(ds: xr.Dataset, **options) -> Figure:
        fig = Figure(figsize=figsize, layout="constrained")
        draw(fig.add_subplot(), ds, **options)
        return fig

    make.__doc__ = f"A one-axes figure drawn by ``{draw.__name__}(ax, ds, **options)``."
    make.__wrapped__ = draw  # its options and description (toymodels.reference)
    return make


def _feature_colours(n: int) -> np.ndarray:
    """One colour per feature: tab10 up to 10 features, else viridis by index."""
    if n <= 10:
        return colormaps["tab10"](np.arange(n))
    return colormaps["viridis"](np.linspace(0.0, 1.0, n))
