"""SPD of a residual MLP (`sweeps/spd_residual.toml`, issue 28): does W_in split into one
subcomponent per feature, and what does W_out become?

It reads an analysed SPD results Dataset whose target is a one-layer residual MLP
(`toymodels analyze`, `toymodels.analysis.spd_residual`): `best_cosine_W_in` [...,
feature], `failed`, and the one-hot causal importances `ci_W_in`, `ci_W_out` [...,
feature, component] the trainer stores.

Left: every run's best flattened cosine of each feature's W_in piece (one row of points
per run, the failure threshold dashed). Middle and right: one run's one-hot causal
importances of W_in and W_out (feature × live subcomponent, σ_H in [0, 1]); the run is
option `run` (a flat index over the run axes) or by default the first that did not fail.
W_in's live subcomponents are ordered by the feature that opens them most (the identity,
for a decomposition of one subcomponent per feature), W_out's by the same rule.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels.spd.metrics import CI_THRESHOLD, FAIL_COSINE

VARIABLES = ("best_cosine_W_in", "failed", "ci_W_in", "ci_W_out")


def _runs(da: xr.DataArray, inner: tuple[str, ...]) -> np.ndarray:
    """[R, *inner] the values of `da` over its run axes (the dims not in `inner`)."""
    da = da.transpose(..., *inner)
    return np.asarray(da.values, float).reshape(-1, *da.shape[da.ndim - len(inner):])


def chosen_run(ds: xr.Dataset, run: int | None = None) -> int:
    """The flat run drawn: `run`, or the first that did not fail (0 if all failed)."""
    if run is not None:
        return int(run)
    ok = np.flatnonzero(~np.asarray(ds.failed.values, bool).ravel())
    return int(ok[0]) if ok.size else 0


def ordered_live(ci: np.ndarray, threshold: float) -> np.ndarray:
    """The live subcomponents of a one-hot pattern ci [n, C] (some value above
    `threshold`), ordered by the feature that opens them most, then by that value."""
    live = np.flatnonzero(ci.max(axis=0) > threshold)
    top = ci[:, live].argmax(axis=0)
    return live[np.lexsort((-ci[top, live], top))]


def spd_residual(axes, ds: xr.Dataset, run: int | None = None) -> list:
    """Three panels on `axes` [3] (see the module docstring)."""
    missing = [n for n in VARIABLES if n not in ds]
    if missing:
        raise ValueError(f"needs {', '.join(missing)}: run `toymodels analyze` on an SPD sweep "
                         "of a residual MLP first")
    best = _runs(ds.best_cosine_W_in, ("feature",))
    failed = np.asarray(ds.failed.values, bool).ravel()
    threshold = float(ds.attrs.get("threshold", CI_THRESHOLD))
    r = chosen_run(ds, run)
    drawn = []
    ax = axes[0]
    n = best.shape[1]
    for i, row in enumerate(best):
        colour = "#c44e52" if failed[i] else "#3b75af"
        drawn.append(ax.scatter(np.arange(n), row, s=12, color=colour, alpha=0.7,
                                label=("failed" if failed[i] else "found every feature")
                                if i == int(np.argmax(failed == failed[i])) else None))
    drawn.append(ax.axhline(FAIL_COSINE, color="0.5", linestyle="--", linewidth=1.2))
    ax.set_xlabel("feature")
    ax.set_ylabel("best flattened cosine, W_in (folded)")
    ax.set_title(f"failed {int(failed.sum())} of {failed.size} runs", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    for ax, name in zip(axes[1:], ("W_in", "W_out")):
        ci = _runs(ds[f"ci_{name}"], ("feature", "component"))[r]
        order = ordered_live(ci, threshold)
        drawn.append(ax.imshow(ci[:, order], vmin=0, vmax=1, cmap="Blues", aspect="auto"))
        ax.set_xlabel(f"live subcomponent of {name} ({order.size})")
        ax.set_ylabel("one-hot input: feature")
        ax.set_title(f"run {r}: causal importance of {name}", fontsize=9)
    return drawn


def spd_residual_figure(ds: xr.Dataset, run: int | None = None) -> Figure:
    """A three-axes figure drawn by ``spd_residual(axes, ds, run)``."""
    fig = Figure(figsize=(11.0, 3.6), layout="constrained")
    spd_residual(fig.subplots(1, 3, width_ratios=(3, 2, 2)), ds, run)
    a = ds.attrs
    fig.suptitle(f"{a.get('name', 'SPD')}: SPD of the residual MLP {a.get('spd_source', '?')} "
                 f"({a.get('n_features', '?')} features, d_mlp {a.get('d_mlp', '?')})", fontsize=9)
    return fig


spd_residual_figure.__wrapped__ = spd_residual  # its description

FIGURES = {"spd_residual": spd_residual_figure}
