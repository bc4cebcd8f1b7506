"""The absorption figure: feature absorption and hedging on a hierarchy, one column of
points per SAE variant (every combination of the sweep axes but seed: kind × tied in
`sweeps/sae_absorption.toml`), each seed a point, the median a bar.

It reads an analysed SAE results Dataset with a hierarchy (`toymodels analyze` stores
`absorption_gap_mean` and `hedging_mean` when the results carry a `parent` variable;
`toymodels.dictionary.benchmark`): the mean over child features of

- the absorption gap, P(the parent's latent fires | parent on, child off) − P(it fires |
  parent on, child on): 0 without absorption, up to 1;
- hedging, the cosine of the parent latent's decoder row with the child's direction.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels.plotting.common import _fmt

PANELS = (("absorption_gap_mean", "absorption gap (mean over children)"),
          ("hedging_mean", "hedging: cos(parent latent, child)"))
COLOURS = ("#3b75af", "#ef8636", "#519e3e", "#c53a32", "#8d69b8", "#84584e")
JITTER = 0.08  # the seeds' horizontal spread within a column


def part(axis: str, value) -> str:
    """A variant's value on one axis: a name as it is ("matryoshka"), else "axis = value".

    Example:
      >>> part("kind", "matryoshka"), part("tied", True)
      ('matryoshka', 'tied = True')
    """
    return value if isinstance(value, str) else f"{axis} = {_fmt(value)}"


def variants(da: xr.DataArray) -> list[tuple[str, np.ndarray]]:
    """(label, values [S] over the seeds) per combination of `da`'s dims other than seed,
    in the coordinates' order (labels by `part`); one ("", values) when there is none.

    Example:
      >>> da = xr.DataArray([[0.1, 0.2], [0.3, 0.4]], dims=("tied", "seed"),
      ...                   coords={"tied": [False, True]})
      >>> [(name, v.tolist()) for name, v in variants(da)]
      [('tied = False', [0.1, 0.2]), ('tied = True', [0.3, 0.4])]
    """
    axes = [d for d in da.dims if d != "seed"]
    if not axes:
        return [("", np.atleast_1d(da.values).astype(float))]
    stacked = da.stack(variant=axes).transpose("variant", ...)
    out = []
    for i in range(stacked.sizes["variant"]):
        one = stacked.isel(variant=i)
        name = ", ".join(part(a, one[a].item()) for a in axes)
        out.append((name, np.atleast_1d(one.values).astype(float)))
    return out


def seed_points(ax, da: xr.DataArray) -> list:
    """One column per variant (`variants`): each seed a point, jittered evenly across the
    column, the median over the seeds a black bar; the variants' names as tick labels."""
    drawn = []
    groups = variants(da)
    for i, (name, values) in enumerate(groups):
        offsets = np.linspace(-JITTER, JITTER, values.size) if values.size > 1 else np.zeros(1)
        colour = COLOURS[i % len(COLOURS)]
        drawn.append(ax.scatter(i + offsets, values, s=14, color=colour, alpha=0.8, zorder=3))
        finite = values[np.isfinite(values)]
        if finite.size:
            drawn += ax.plot([i - 2.5 * JITTER, i + 2.5 * JITTER], [np.median(finite)] * 2,
                             color="black", linewidth=1.5, zorder=4)
    ax.set_xticks(range(len(groups)), [name.replace(", ", "\n") for name, _ in groups], fontsize=7)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.axhline(0.0, color="0.6", linewidth=0.6)
    return drawn


def absorption(axes, ds: xr.Dataset) -> list:
    """The absorption gap (left) and hedging (right) of every SAE, a column per variant
    (kind × tied: every sweep axis but seed), each seed a point, the median a black bar.
    Needs an analysed SAE sweep on a world with a hierarchy (a `parent` variable)."""
    missing = [name for name, _ in PANELS if name not in ds]
    if missing:
        raise ValueError(f"needs {', '.join(missing)}: run `toymodels analyze` on an SAE "
                         "sweep whose world has a hierarchy (a parent variable)")
    drawn = []
    for ax, (name, label) in zip(axes, PANELS):
        drawn += seed_points(ax, ds[name])
        ax.set_ylabel(label)
    return drawn


def absorption_figure(ds: xr.Dataset) -> Figure:
    """Two panels drawn by ``absorption(axes, ds)``."""
    fig = Figure(figsize=(8.0, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    absorption(axes, ds)
    seeds = ds.sizes.get("seed", 1)
    fig.suptitle(f"{ds.attrs.get('name', 'SAEs')}: absorption and hedging on a hierarchy, "
                 f"{ds.attrs.get('n_features', '?')} features in {ds.attrs.get('n_hidden', '?')} "
                 f"dims (each of {seeds} seeds a point; bar: median)", fontsize=9)
    return fig


absorption_figure.__wrapped__ = absorption  # its description (toymodels.reference)

FIGURES = {"absorption": absorption_figure}
