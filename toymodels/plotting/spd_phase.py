"""SPD across a phase diagram (`sweeps/spd_phase_2_1.toml`, `sweeps/spd_phase_5_2.toml`,
issue 28): in each cell, as many live subcomponents as the toy model represents features?

It reads an analysed SPD results Dataset (`toymodels analyze`) whose source is a results
directory of toy models (every cell a `source_run`): `target_W_in` [..., hidden, feature]
(the cell's W), `n_live_W_in`, `n_live_W_out`, `best_cosine_W_in`, `best_cosine_W_out`
and `failed`. A feature is represented when ‖W_i‖ >
`toymodels.analysis.metrics.REPRESENTED_NORM` (0.5), the threshold `analyze` uses; a
matrix misses a feature when a represented feature's best flattened cosine in it is below
`toymodels.spd.metrics.FAIL_COSINE` (0.9): `failed` is a miss in W_in or W_out.
Every decomposition (every source run, every seed, every value of any other axis) is one
point; they are pooled.

One panel per decomposed matrix (W_in, W_out): the number of represented features (x)
against the number of live subcomponents (y). Decompositions with the same (x, y) and
verdict are one marker whose area grows with their count (written beside it), blue when
the matrix has every represented feature, red crosses when it misses one; the
diagonal y = x is one live subcomponent per represented feature.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels.analysis.metrics import REPRESENTED_NORM
from toymodels.plotting.spd_failures import need_analyzed
from toymodels.spd.metrics import FAIL_COSINE

COLOURS = ("#3b75af", "#c44e52", "#7f7f7f")
MATRICES = ("W_in", "W_out")
VARIABLES = ("target_W_in", "n_live_W_in", "n_live_W_out", "best_cosine_W_in",
             "best_cosine_W_out", "failed")


def _represented(ds: xr.Dataset) -> xr.DataArray:
    """[*runs, feature] whether each decomposition's target represents each feature."""
    return ((ds.target_W_in ** 2).sum("hidden") ** 0.5 > REPRESENTED_NORM).broadcast_like(ds.failed)


def represented_features(ds: xr.Dataset) -> np.ndarray:
    """[runs] each decomposition's target's represented features: #{i : ‖W_i‖ > 0.5}."""
    return np.asarray(_represented(ds).sum("feature").transpose(*ds.failed.dims).values, int).ravel()


def misses(ds: xr.Dataset, matrix: str) -> np.ndarray:
    """[runs] whether a represented feature's best flattened cosine in `matrix` is below
    FAIL_COSINE (the matrix's share of `failed`)."""
    low = (ds[f"best_cosine_{matrix}"] < FAIL_COSINE) & _represented(ds)
    return np.asarray(low.any("feature").transpose(*ds.failed.dims).values, bool).ravel()


def cell_counts(ds: xr.Dataset, matrix: str) -> dict[tuple[int, int, bool], int]:
    """{(represented, live, missed): decompositions} of one matrix's live counts."""
    x = represented_features(ds)
    y = np.asarray(ds[f"n_live_{matrix}"].broadcast_like(ds.failed).values, int).ravel()
    failed = misses(ds, matrix)
    keys, counts = np.unique(np.stack([x, y, failed]), axis=1, return_counts=True)
    return {(int(a), int(b), bool(c)): int(k) for (a, b, c), k in zip(keys.T, counts)}


def spd_phase(axes, ds: xr.Dataset) -> list:
    """Per matrix (W_in, W_out), each decomposition's live subcomponents against its
    target's represented features (‖W_i‖ > 0.5), decompositions whose matrix misses a
    represented feature marked, with the diagonal of one live subcomponent per feature."""
    need_analyzed(ds, VARIABLES)
    n = int(ds.sizes["feature"])
    total = int(np.asarray(ds.failed.values).size)
    drawn = []
    for ax, matrix in zip(axes, MATRICES):
        counts = cell_counts(ds, matrix)
        top = max([n] + [y for _, y, _ in counts])
        drawn += ax.plot([0, top], [0, top], color=COLOURS[2], linewidth=1, linestyle="--",
                         label="one per represented feature")
        for failed, colour, marker, name in ((False, COLOURS[0], "o", "every feature found"),
                                             (True, COLOURS[1], "x", "a feature missed")):
            cells = [(x, y, k) for (x, y, f), k in counts.items() if f == failed]
            if not cells:
                continue
            shift = 0.12 if failed else -0.12  # side by side when both verdicts share a cell
            xs = np.array([x for x, _, _ in cells]) + shift
            ys = np.array([y for _, y, _ in cells], float)
            ks = np.array([k for _, _, k in cells])
            drawn.append(ax.scatter(xs, ys, s=30 + 400 * ks / total, color=colour,
                                    marker=marker, label=name))
            for x, y, k in zip(xs, ys, ks):
                drawn.append(ax.annotate(str(k), (x, y), xytext=(6, 4),
                                         textcoords="offset points", fontsize=7, color=colour))
        ax.set_xticks(np.arange(n + 1))
        ax.set_yticks(np.arange(top + 1))
        ax.set_xlim(-0.5, n + 0.5)
        ax.set_ylim(-0.5, top + 0.5)
        ax.set_xlabel(f"represented features (‖W_i‖ > {REPRESENTED_NORM:g})")
        ax.set_ylabel(f"live subcomponents of {matrix}")
        ax.set_title(matrix, fontsize=9)
        ax.grid(color="0.92", linewidth=0.6)
    axes[0].legend(fontsize=8, loc="upper left")
    return drawn


def spd_phase_figure(ds: xr.Dataset) -> Figure:
    """A two-axes figure drawn by ``spd_phase(axes, ds)``."""
    fig = Figure(figsize=(9.0, 4.0), layout="constrained")
    spd_phase(fig.subplots(1, 2), ds)
    a = ds.attrs
    failed = np.asarray(ds.failed.values, bool)
    steps = f", {int(ds.step.values[-1]):,} steps" if "step" in ds.coords and ds.step.size else ""
    fig.suptitle(f"{a.get('name', 'SPD')}: SPD of every cell of {a.get('spd_source', '?')}, "
                 f"{a.get('n_features', '?')} → {a.get('n_hidden', '?')}{steps}; failed "
                 f"{int(failed.sum())} of {failed.size}", fontsize=9)
    return fig


spd_phase_figure.__wrapped__ = spd_phase  # its description

FIGURES = {"spd_phase": spd_phase_figure}
