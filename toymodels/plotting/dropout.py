"""Figures of dropout: the 2 -> 1 phase diagram with the dropout-aware theory, and how the
represented count and ‖W‖²_F fall with the dropout rate where no closed form exists.

`dropout_phase(ds)`: one `phase` panel per dropout rate q (sweeps/dropout_phase.toml),
each with the boundary of the fixed candidates `toymodels.theory.boundary_2_1_dropout`
at its own q (black dashed; the r = 1 segment up to `dedicated_range_2_1_dropout`, and
the line above which both features are dropped where it lies below density 1), that of
the candidates with their best biases `theory.boundary_2_1_biased` (purple, solid) and
the dropout-free boundary (grey dotted). The panel title counts the cells whose
best-seed phase equals `theory.phase_2_1_dropout` and `theory.phase_2_1_biased` at the
cell's (density, r, q) (`phase_agreement`).

`dropout_law(ds)`: for m >= 2 (sweeps/dropout.toml), the best seed's `n_represented`
and ‖W‖²_F against q, one line per density, each with its least-squares line
`y ≈ y0 + s q` (`linear_fit`; slope and R² in the legend).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels import theory
from toymodels.plotting import common as _c
from toymodels.plotting import phase_diagrams as _pd

FREE_STYLE = dict(color="0.35", linestyle=":", linewidth=1.3)
DROPOUT_STYLE = dict(color="black", linestyle="--", linewidth=1.5)
BIASED_STYLE = dict(color="#7a0177", linestyle="-", linewidth=1.3)


def _density(cells: xr.Dataset, axis: str) -> np.ndarray:
    values = cells[axis].values.astype(np.float64)
    return 1.0 - values if axis == "sparsity" else values


def phase_agreement(cells: xr.Dataset, q: float, x: str, y: str,
                    predict=theory.phase_2_1_dropout) -> tuple[int, int]:
    """(cells whose `phase` equals ``predict(p, r, q)``, cells with a phase).

    Args:
      cells: one run per cell (the best seed), sweep dims exactly ``x`` and ``y`` (one
        of them relative_importance, the other a density axis), with ``phase``.
      q: the dropout rate of these runs.
      x, y: the two axes.
      predict: the theory, ``theory.phase_2_1_dropout`` (fixed candidates) or
        ``theory.phase_2_1_biased`` (best biases).

    Example:
      >>> cells = xr.Dataset({"phase": (("relative_importance", "feature_probability"),
      ...     [["superposition", "unrepresented"]])},
      ...     coords={"relative_importance": [0.5], "feature_probability": [0.1, 1.0]})
      >>> phase_agreement(cells, 0.0, "relative_importance", "feature_probability")
      (2, 2)
    """
    density_axis = y if x == "relative_importance" else x
    cells = cells.transpose("relative_importance", density_axis, ...)
    r = cells["relative_importance"].values.astype(np.float64)[:, None]
    p = _density(cells, density_axis)[None, :]
    predicted = predict(p, r, q)
    seen = cells["phase"].values.astype(str)
    has = np.isin(seen, theory.PHASES)
    return int(np.sum((seen == predicted) & has)), int(np.sum(has))


def _boundary_lines(ax, q: float, r_axis_is_x: bool) -> list:
    """p*(r, q), its r = 1 segment and the drop-both line, plus p*(r, 0) for reference."""
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    r_lo, r_hi = sorted(xlim if r_axis_is_x else ylim)
    r = np.geomspace(max(r_lo, 1e-3 * r_hi), r_hi, 400)  # r > 0
    p_lo, p_hi = theory.dedicated_range_2_1_dropout(q)
    curves = [(r, theory.boundary_2_1(r), "theory-free", FREE_STYLE, "no dropout"),
              (r, theory.boundary_2_1_dropout(r, q), "theory-boundary", DROPOUT_STYLE,
               f"fixed candidates, q = {q:g}"),
              (np.array([1.0, 1.0]), np.array([p_lo, p_hi]), "theory-r1", DROPOUT_STYLE, None)]
    if p_hi < 1.0:
        top = r[r >= 1.0]
        curves.append((top, np.full_like(top, p_hi), "theory-drop-both", DROPOUT_STYLE, None))
    r_coarse = np.geomspace(r[0], r[-1], 60)
    triple = float(theory.boundary_2_1_biased(1.0, q))
    curves += [(r_coarse, theory.boundary_2_1_biased(r_coarse, q), "theory-biased",
                BIASED_STYLE, f"with best biases, q = {q:g}"),
               (np.array([1.0, 1.0]), np.array([triple, 1.0]), "theory-biased-r1",
                BIASED_STYLE, None)]
    lines = []
    for rr, pp, gid, style, label in curves:
        xs, ys = (rr, pp) if r_axis_is_x else (pp, rr)
        lines.append(ax.plot(xs, ys, gid=gid, label=label, **style)[0])
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    return lines


def dropout_phase(ds: xr.Dataset, x: str | None = None, y: str | None = None,
                  max_columns: int = 4) -> Figure:
    """`phase` panels, one per dropout rate, with the dropout-aware boundary and counts.

    Args:
      ds: 2 -> 1 results with a ``dropout`` sweep axis (``phase`` is added if missing).
      x, y: the panel axes (defaults as in ``phase``: relative_importance and density).
      max_columns: panels per row.

    Returns:
      The figure; each axes carries ``agreement = (agree, cells)``.
    """

    if "dropout" not in ds.dims:
        raise ValueError(f"dropout_phase needs a dropout sweep axis; dims are {dict(ds.sizes)}")
    ds = _c._ensure_analysis(ds, ["phase"])
    x, y = _c._default_xy(ds, x, y)
    if "relative_importance" not in (x, y) or not {x, y} & set(_c.DENSITY_AXES):
        raise ValueError(f"dropout_phase needs relative_importance and a density axis; "
                         f"got x={x!r}, y={y!r}")
    rows, columns = _c._grid_shape(ds.sizes["dropout"], max_columns)
    fig = Figure(figsize=(3.1 * columns + 1.7, 2.9 * rows + 0.7), layout="constrained")
    for k, q in enumerate(ds["dropout"].values.astype(float)):
        ax = fig.add_subplot(rows, columns, k + 1)
        panel = ds.isel(dropout=k)
        mesh, legend = _pd.phase(ax, panel, x, y, theory=None)[:2]
        lines = _boundary_lines(ax, q, x == "relative_importance")
        cells = _c.best_runs(panel, [x, y])
        ax.agreement = phase_agreement(cells, q, x, y)
        ax.agreement_biased = phase_agreement(cells, q, x, y, theory.phase_2_1_biased)
        legend.remove()
        if k == ds.sizes["dropout"] - 1:
            handles = legend.legend_handles + [ln for ln in lines if ln.get_label()[0] != "_"]
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                      fontsize=8, title="extra feature", title_fontsize=8)
        if k % columns:
            ax.set_ylabel("")
        ax.set_title(f"dropout {q:g}: {ax.agreement[0]} (fixed), "
                     f"{ax.agreement_biased[0]} (biases) of {ax.agreement[1]} agree",
                     fontsize=8)
    fig.suptitle(_c.title(ds, _c._fixed_note(ds, [x, y, "dropout"])), fontsize=10)
    return fig


def linear_fit(q, values) -> tuple[float, float, float, np.ndarray]:
    """Least-squares ``values ≈ y0 + s q``: (y0, s, R², residuals [N]).

    R² is ``1 - Σ res² / Σ (values - mean)²`` (1 for a perfect line; NaN for constant
    values).

    Example:
      >>> y0, s, r2, res = linear_fit([0.0, 0.5, 1.0], [5.0, 4.0, 3.0])
      >>> round(y0, 9), round(s, 9), round(r2, 9), np.abs(res).max() < 1e-12
      (5.0, -2.0, 1.0, np.True_)
    """
    q, values = np.asarray(q, np.float64), np.asarray(values, np.float64)
    slope, intercept = np.polyfit(q, values, 1)
    residuals = values - (intercept + slope * q)
    spread = np.sum((values - values.mean()) ** 2)
    r2 = 1.0 - np.sum(residuals**2) / spread if spread > 0 else np.nan
    return float(intercept), float(slope), float(r2), residuals


def _law_panel(ax, q, curves, ylabel):
    for label, values in curves:
        y0, s, r2, _ = linear_fit(q, values)
        (dots,) = ax.plot(q, values, "o", markersize=4)
        ax.plot(q, y0 + s * q, "--", color=dots.get_color(), linewidth=1,
                label=f"{label}: {y0:.2f} {s:+.2f} q, R² {r2:.3f}")
    ax.set_xlabel("dropout rate q")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, title="density: fit", title_fontsize=7)


def dropout_law(ds: xr.Dataset) -> Figure:
    """`n_represented` and ‖W‖²_F of the best seed against q, one line per density,
    with least-squares lines (see the module).

    Args:
      ds: results with axes ``dropout`` and a density axis (``seed`` optional).

    Returns:
      The figure (two panels).
    """

    ds = _c._ensure_analysis(ds, ["n_represented"])
    density = next((a for a in _c.DENSITY_AXES if a in ds.dims), None)
    if "dropout" not in ds.dims or density is None:
        raise ValueError(f"dropout_law needs dropout and density axes; dims are "
                         f"{dict(ds.sizes)}")
    cells = _c.best_runs(ds, ["dropout", density]).transpose(density, "dropout", ...)
    q = cells["dropout"].values.astype(np.float64)
    fro = (cells["W"] ** 2).sum(("hidden", "feature")).values
    names = [f"{v:.3g}" for v in _density(cells, density)]
    fig = Figure(figsize=(10.5, 4.0), layout="constrained")
    axes = fig.subplots(1, 2)
    _law_panel(axes[0], q, zip(names, cells["n_represented"].values), "features represented")
    _law_panel(axes[1], q, zip(names, fro), "‖W‖²_F")
    fig.suptitle(_c.title(ds, "best seed per cell; dashed: least-squares lines"), fontsize=10)
    return fig


FIGURES = {
    "dropout_phase": dropout_phase,  # x, y, max_columns
    "dropout_law": dropout_law,
}
