"""The compressed-computation control: a residual MLP's loss relative to the naive
baseline against the labels' mixing scale (`sweeps/compressed_computation_control.toml`,
issue 27; Braun et al. 2025, Bhagat et al. 2025).

It reads an analysed residual-MLP results Dataset (`toymodels analyze`): `loss_ratio`
(final_loss / the naive baseline's closed form, with `loss_ratio_se`) and `linear_ratio`
(the best rank-d_mlp affine map's, closed form) over a `label_mixing` axis and seeds.
Each seed is a point, the mean over seeds a line with a band from the lowest to the
highest seed; the linear map is a dashed line and the naive baseline (ratio 1) a grey
one. Below 1 a run beats dedicating its neurons; below the dashed line it beats every
linear map of its rank.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

COLOURS = ("#3b75af", "#ef8636", "#7f7f7f")
VARIABLES = ("loss_ratio", "linear_ratio")


def landmarks(task: str) -> dict[float, str]:
    """The label_mixing values named on the x-axis: where the labels are the published
    ones (Braun et al. 2025) and where the MLP's target is clean (Bhagat et al. 2025).
    identity_relu: published at s = 0, clean at s = 1 (the residual's own mixing
    cancelled); relu and abs: clean at s = 0, identity_relu's published target at −1.

    Example:
      >>> landmarks("identity_relu")
      {0.0: 'published', 1.0: 'clean'}
    """
    if task == "identity_relu":
        return {0.0: "published", 1.0: "clean"}
    return {-1.0: "published", 0.0: "clean"}


def _need(ds: xr.Dataset) -> None:
    missing = [n for n in VARIABLES if n not in ds]
    if missing:
        raise ValueError(f"needs {', '.join(missing)}: run `toymodels analyze` on a residual "
                         "sweep first")
    if "label_mixing" not in ds.loss_ratio.dims:
        raise ValueError("needs a sweep axis label_mixing")


def computation_control(ax, ds: xr.Dataset) -> list:
    """Loss relative to the naive baseline against the label-mixing scale s, over seeds
    (each seed a point, the mean a line, a band from the lowest to the highest seed),
    with the best rank-d_mlp linear map's ratio (dashed) and the naive baseline (1,
    grey); the x-axis names where the labels are the published and the clean ones."""
    _need(ds)
    s = np.asarray(ds["label_mixing"].values, float)
    ratio, linear = ds.loss_ratio, ds.linear_ratio
    other = [d for d in ratio.dims if d not in ("label_mixing", "seed")]
    if other:
        raise ValueError(f"takes no sweep axes but label_mixing and seed; select one value "
                         f"of {', '.join(other)} first")
    ratio = ratio.transpose("label_mixing", ...)
    values = np.asarray(ratio.values, float).reshape(len(s), -1)  # [S, seeds]
    drawn = []
    mean, lo, hi = np.nanmean(values, 1), np.nanmin(values, 1), np.nanmax(values, 1)
    drawn.append(ax.fill_between(s, lo, hi, color=COLOURS[0], alpha=0.15, linewidth=0))
    drawn += ax.plot(s, mean, "-", color=COLOURS[0], linewidth=1.6,
                     label=f"trained, mean of {values.shape[1]} seed(s)")
    for column in values.T:
        drawn += ax.plot(s, column, "o", color=COLOURS[0], markersize=3.5, alpha=0.7)
    line = np.asarray(linear.transpose("label_mixing", ...).values, float).reshape(len(s), -1)
    drawn += ax.plot(s, np.nanmean(line, 1), "--", color=COLOURS[1], linewidth=1.4,
                     label="best rank-d_mlp linear map (closed form)")
    drawn.append(ax.axhline(1.0, color=COLOURS[2], linewidth=1.0,
                            label="naive baseline (dedicated neurons)"))
    names = landmarks(str(ds.attrs.get("task", "identity_relu")))
    ticks = sorted(set(np.round(s, 6)) | {v for v in names if s.min() <= v <= s.max()})
    ax.set_xticks(ticks, [f"{t:g}\n{names[t]}" if t in names else f"{t:g}" for t in ticks])
    ax.set_xlabel("label_mixing s: the labels gain s (W_EᵀW_E − I) x")
    ax.set_ylabel("loss / naive baseline's loss")
    ax.grid(color="0.92", linewidth=0.6)
    ax.legend(fontsize=8, loc="upper left")
    return drawn


def computation_control_figure(ds: xr.Dataset) -> Figure:
    """A one-axes figure drawn by ``computation_control(ax, ds)``."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    computation_control(fig.add_subplot(), ds)
    a = ds.attrs
    steps = _steps(ds)
    fig.suptitle(f"{a.get('name', 'residual MLPs')}: {a.get('task', '?')}, n={a.get('n_features')}, "
                 f"d_embed={a.get('d_embed')}, d_mlp={a.get('d_mlp')}{steps}", fontsize=9)
    return fig


def _steps(ds: xr.Dataset) -> str:
    return f", {int(ds.step.values[-1]):,} steps" if "step" in ds.coords and ds.step.size else ""


computation_control_figure.__wrapped__ = computation_control  # its description

FIGURES = {"computation_control": computation_control_figure}
