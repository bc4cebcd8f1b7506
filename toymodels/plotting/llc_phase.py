"""The local learning coefficient over a phase diagram (`toymodels llc` on a phase sweep).

`llc_phase(ds)`: two panels over the same two sweep axes, the extra feature's phase and
the LLC of the same run (the lowest-`final_loss` seed of each cell, as every phase figure
does), both with the closed-form boundary of `toymodels.theory`. Cells whose estimate
is not trusted (`llc_trusted`, see `toymodels.slt.LLCResult`) are crossed out.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.colors import Normalize
from matplotlib.figure import Figure


def llc_phase(ds: xr.Dataset, x: str | None = None, y: str | None = None,
              theory: str | None = "auto", vmax: float | None = None) -> Figure:
    """Phase (left) and LLC (right) of the best seed of each cell.

    Args:
      ds: a phase sweep with `llc` and `llc_trusted` (`toymodels llc DIR`); `phase` is
        computed if missing.
      x, y: the sweep axes (defaults as the `phase` figure: relative importance, density).
      theory: the boundary overlay, as for `phase`.
      vmax: top of the LLC colour scale (default the largest trusted value).
    """
    from toymodels import plotting as p

    if "llc" not in ds:
        raise ValueError("needs llc: run `toymodels llc DIR` on this sweep first")
    ds = p._ensure_analysis(ds, ["phase"])
    x, y = p._default_xy(ds, x, y)
    fig = Figure(figsize=(11.5, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    p.phase(left, ds, x, y, theory)
    cells = p.best_runs(ds, [x, y]).sortby([x, y])
    values = cells["llc"].transpose(y, x).values.astype(np.float64)
    trusted = cells["llc_trusted"].transpose(y, x).values.astype(bool)
    top = vmax if vmax is not None else float(np.nanmax(np.where(trusted, values, np.nan), initial=1.0))
    mesh, (xlog, ylog) = p._mesh(right, cells[x], cells[y], values, "magma",
                                 Normalize(0.0, top))
    xs, ys = (p._plot_coordinate(cells[a])[0] for a in (x, y))
    bad = np.argwhere(~trusted)
    right.plot(xs[bad[:, 1]], ys[bad[:, 0]], "x", color="#9ec5e8", markersize=4,
               label=f"not trusted ({len(bad)} of {trusted.size})", gid="untrusted")
    p._theory_overlay(right, ds, x, y, theory, xlog, ylog)
    fig.colorbar(mesh, ax=right, label="local learning coefficient λ̂")
    settings = ds["llc"].attrs
    nbeta = settings.get("nbeta_used")
    right.set_title(f"LLC of the same runs ({settings.get('loss', '?')} loss, "
                    f"nβ = {float(nbeta):.3g}, γ = {settings.get('gamma', '?')})"
                    if nbeta is not None else "LLC of the same runs", fontsize=9)
    if len(bad):
        right.legend(loc="lower right", fontsize=7)
    return fig


FIGURES = {"llc_phase": llc_phase}  # x, y, theory, vmax
