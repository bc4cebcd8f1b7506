"""Figures of the local learning coefficient (LLC) and the k-gon critical points it
tells apart: trajectories between critical points, and the LLC over a phase diagram.

`kgon_trajectories(ds, runs=4)`: Chen et al. (2023)'s picture of SGD moving between
k-gon critical points (sweeps/kgon_trajectories.toml). Top panel: training-loss curves
(`ds.loss`, dims (*run_axes, step)) of a few runs, with the k-gon loss levels
(`toymodels.theory.kgon(c, k).loss`) as labelled horizontal lines. Bottom panel, when the
dataset has `llc_snapshots` (dims (*run_axes, snapshot); `toymodels llc DIR` adds it, and
`llc_snapshots_se` for error bars): the local learning coefficient at the snapshots. Each
plateau is labelled by the k^{σ+}-gon that `toymodels.analysis.kgon.classify_kgon` finds in
`W_snapshots` / `b_snapshots` at the first snapshot after the start and where the label
changes. Without `llc_snapshots` the figure
has the loss panel alone (and says so in its title). The x axis (training step) is
symmetric-log: linear up to the first logged step, so the snapshot at step 0 is drawn.

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
from matplotlib.lines import Line2D

from toymodels.analysis.kgon import classify_kgon, kgon_losses, kgon_name
from toymodels.llc_calibration import recommendation_text
from toymodels.plotting.common import (
    _default_xy,
    _ensure_analysis,
    _plot_coordinate,
    best_runs,
    plain_number,
)
from toymodels.plotting.phase_diagrams import _mesh, _theory_overlay, phase
from toymodels.results import config_of

COLOURS = ("#3b75af", "#ef8636", "#519e3e", "#c53a32", "#8d69b8", "#84584e", "#d57dbe")
LLC = "llc_snapshots"
KGON_NEED = ("needs a k-gon sweep: a relu_output model in 2 hidden dims on "
             'data.inputs = "exactly_one" of uniform magnitude, unit importance '
             "(e.g. sweeps/kgon_trajectories.toml)")
"""What `kgon_trajectories` needs, before `kgon_problem`'s reason (`plotting.needs`)."""


def run_axes(ds: xr.Dataset) -> list[str]:
    """The dims of `ds.loss` that index runs (all but `step`)."""
    return [d for d in ds.loss.dims if d != "step"]


def as_runs(da: xr.DataArray, axes: list[str]) -> xr.DataArray:
    """`da` with its run axes stacked into one leading `run` dim (a size-1 one if none)."""
    if not axes:
        return da.expand_dims("run")
    return da.stack(run=axes).transpose("run", ...)


def pick_runs(final: np.ndarray, n: int) -> np.ndarray:
    """Indices of n runs spread over the order of their final losses [R] (the lowest, the
    highest and evenly between), so the picks show the different endings.

    Example:
      >>> pick_runs(np.array([0.3, 0.1, 0.2, 0.05, 0.4]), 3).tolist()
      [3, 2, 4]
    """
    order = np.argsort(final, kind="stable")
    at = np.unique(np.round(np.linspace(0, len(order) - 1, min(n, len(order)))).astype(int))
    return order[at]


def run_label(runs: xr.DataArray, i: int, axes: list[str]) -> str:
    """"init_noise=0.1, seed=3" for run i of the stacked `runs`."""
    if not axes:
        return "run"
    values = runs.run.values[i]
    values = values if isinstance(values, tuple) else (values,)
    return ", ".join(f"{a}={v:g}" if isinstance(v, float) else f"{a}={v}"
                     for a, v in zip(axes, values))


def plateau_labels(W: np.ndarray, b: np.ndarray) -> list[tuple[int, str]]:
    """(snapshot index, k-gon name) at snapshot 1 and wherever the label of one run's
    snapshots W: [S, H, F], b: [S, F] changes after it. Snapshot 0, the (perturbed)
    start, is not labelled: its noise, not a plateau, decides its σ."""
    k, sigma = classify_kgon(W, b)
    names = [kgon_name(int(a), int(s)) for a, s in zip(k, sigma)]
    return [(i, n) for i, n in enumerate(names) if i == 1 or (i > 1 and n != names[i - 1])]


def kgon_levels(ax, c: int) -> None:
    """Dotted horizontal lines at the k-gon losses (k = 2..c), labelled "k-gon" at the
    right edge (`theory.kgon(c, k).loss`, through the cached `kgon_losses`)."""
    for k in range(2, c + 1):
        level = kgon_losses(c)[(k, 0)]
        ax.axhline(level, color="0.6", linestyle=":", linewidth=0.8, zorder=0)
        ax.annotate(kgon_name(k), (1.0, level), xycoords=("axes fraction", "data"),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=7,
                    color="0.4")


STACK = 9  # points between plateau labels that would sit on each other


def annotate_plateaus(ax, x: np.ndarray, ys: list, labels: list, colours: list) -> list:
    """Writes each run's (snapshot index, name) `labels` just above its point (x, y) at
    that snapshot, `ys` and `labels` one per run. A label where another run's label of
    the same name already is (same snapshot, y within 3% of the panel's span) is left
    out; any other label that would cover one already placed (its box estimated from its
    characters, in points, with the axes' limits as they are now: call it last) is raised
    `STACK` points at a time until it covers none, so that "4¹⁺-gon" never sits over
    "4-gon", nor a label over its neighbour at the next snapshot. Returns the Annotations
    drawn."""
    finite = np.concatenate([np.asarray(y)[np.isfinite(y)] for y in ys] or [np.zeros(0)])
    near = 0.03 * (float(np.ptp(finite)) if finite.size else 1.0) or 1e-12
    to_points = 72.0 / ax.figure.dpi
    placed, boxes, drawn = [], [], []  # placed: (snapshot index, y, name); boxes in points
    for y, run_labels, colour in zip(ys, labels, colours):
        for i, name in run_labels:
            if not np.isfinite(y[i]):
                continue
            if any(k == i and n == name and abs(v - y[i]) <= near for k, v, n in placed):
                continue
            placed.append((i, y[i], name))
            text = f"${name.replace('-gon', '')}$-gon"
            px, py = ax.transData.transform((x[i], y[i])) * to_points
            width = LABEL_CHAR * LABEL_SIZE * len(name.replace("^{", "").replace("}", ""))
            level = 0
            while level < 8 and any(_overlap((px + 2, py + 3 + STACK * level, width), box)
                                    for box in boxes):
                level += 1
            boxes.append((px + 2, py + 3 + STACK * level, width))
            drawn.append(ax.annotate(text, (x[i], y[i]), xytext=(2, 3 + STACK * level),
                                     textcoords="offset points", fontsize=LABEL_SIZE, color=colour))
    return drawn


LABEL_SIZE, LABEL_CHAR = 7, 0.6  # plateau labels: font size; a character's width, in sizes


def _overlap(a: tuple, b: tuple) -> bool:
    """Whether two label boxes (left, bottom, width), STACK points high, overlap."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and abs(a[1] - b[1]) < STACK


UNTRUSTED_SIZE, UNTRUSTED_ALPHA = 2.5, 0.35  # untrusted LLC points: small and faint


def _settings(settings: dict) -> str:
    """"nβ = 1000, γ = 100": the LLC pass's settings, without exponents."""
    gamma = settings.get("gamma")
    return (f"nβ = {plain_number(settings['nbeta_used'])}, "
            f"γ = {plain_number(gamma) if gamma is not None else '?'}")


def llc_panel(ax, ds: xr.Dataset, axes: list[str], picked: np.ndarray) -> tuple:
    """The LLC at the snapshots of the `picked` runs, with error bars (`llc_snapshots_se`);
    returns (snapshots [P], each run's trusted values [P], colours) for its labels
    (`annotate_plateaus`, once the x scale is final).
    Trusted estimates (`llc_snapshots_trusted`) are filled markers joined by a line;
    untrusted ones (the perturbed start, which is no critical point, among them) are
    small, faint hollow markers left out of the y range, so that one runaway chain does
    not squash it; a legend says so when there are any."""
    llc = as_runs(ds[LLC], axes).values
    se = as_runs(ds[f"{LLC}_se"], axes).values if f"{LLC}_se" in ds else np.zeros_like(llc)
    trust_name = f"{LLC}_trusted"
    trusted = (as_runs(ds[trust_name], axes).values.astype(bool) if trust_name in ds
               else np.ones(llc.shape, bool))
    x = ds[LLC].snapshot.values
    ys, colours = [], []
    for j, r in enumerate(picked):
        colour = COLOURS[j % len(COLOURS)]
        good = trusted[r] & np.isfinite(llc[r])
        ax.errorbar(x[good], llc[r][good], yerr=se[r][good], color=colour, marker="o",
                    markersize=3, linewidth=1.0, capsize=2)
        ax.plot(x[~good], llc[r][~good], "o", markersize=UNTRUSTED_SIZE, markerfacecolor="none",
                markeredgecolor=colour, markeredgewidth=0.6, alpha=UNTRUSTED_ALPHA,
                linestyle="none", gid="untrusted")
        ys.append(np.where(good, llc[r], np.nan))
        colours.append(colour)
    shown = llc[picked][trusted[picked] & np.isfinite(llc[picked])]
    if not shown.size:  # nothing trusted: the range of the middle 96% of what is drawn
        drawn = llc[picked][np.isfinite(llc[picked])]
        shown = np.percentile(drawn, [2, 98]) if drawn.size else drawn
    if shown.size:
        pad = 0.1 * max(float(np.ptp(shown)), 1.0)
        ax.set_ylim(min(0.0, shown.min() - pad), shown.max() + pad)
    settings = ds["llc"].attrs if "llc" in ds else {}  # the pass's settings live on `llc`
    nbeta = settings.get("nbeta_used")
    detail = (f" ({settings.get('loss', '?')} loss, {_settings(settings)})" if nbeta is not None
              else "")
    if (~trusted[picked]).any():
        ax.legend(handles=[
            Line2D([], [], color="0.3", marker="o", markersize=3, linewidth=1.0,
                   label="trusted (± s.e.)"),
            Line2D([], [], color="0.3", marker="o", markersize=UNTRUSTED_SIZE, linestyle="none",
                   markerfacecolor="none", alpha=UNTRUSTED_ALPHA,
                   label="not trusted (faint)")],
            fontsize=7, loc="lower right")
    ax.set_ylabel(r"LLC $\hat\lambda$")
    ax.set_title("local learning coefficient at the snapshots" + detail, fontsize=8)
    return x, ys, colours


def kgon_problem(ds: xr.Dataset) -> str | None:
    """Why the k-gon loss levels (`theory.kgon`) are not those of the sweep of `ds`, or
    None: they are the critical points of a relu_output model in 2 hidden dims on
    exactly-one inputs of uniform magnitude with unit importances (Chen et al. 2023). A
    Dataset without a config (made by hand) is checked on its sizes alone."""
    config = config_of(ds)
    H = ds.sizes.get("hidden")
    trainer = config.trainer if config is not None else ds.attrs.get("trainer", "toy")
    if trainer != "toy":
        return f"it is a sweep of {trainer} results, not of toy models"
    found = {"hidden dims": (H, 2)}
    if config is not None and config.spec is not None:
        model, law = config.spec.model, config.spec.data
        found.update({"model.kind": (model.kind, "relu_output"),
                      "data.inputs": (law.inputs, "exactly_one"),
                      "data.magnitude": (law.magnitude, "uniform"),
                      "data.unit_norm": (law.unit_norm, False)})
    if "importance" in ds and not np.allclose(ds.importance.values, 1.0):
        found["importance"] = ("not all 1", 1)
    wrong = [f"{key} = {got!r}" for key, (got, want) in found.items() if got != want]
    return f"this sweep has {', '.join(wrong)}" if wrong else None


def kgon_trajectories(ds: xr.Dataset, runs: int = 4) -> Figure:
    """Loss curves (top) and, with `llc_snapshots`, the LLC (bottom) of `runs` runs
    spread over the final losses, sharing a symmetric-log step axis; plateaus labelled by
    their k-gon from the snapshots (see the module doc).

    Raises:
      ValueError: no `loss` curve, `runs` < 1, or a sweep whose k-gon levels these are
        not (`kgon_problem`).
    """
    if "loss" not in ds or "step" not in ds.loss.dims:
        raise ValueError("kgon_trajectories needs the loss curve `loss` (dims ..., step)")
    problem = kgon_problem(ds)
    if problem:
        raise ValueError(f"{KGON_NEED}; {problem}")
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a whole number >= 1, got {runs!r}")
    axes, c = run_axes(ds), ds.sizes["feature"]
    loss = as_runs(ds.loss, axes)
    final = ds.final_loss if "final_loss" in ds else ds.loss.isel(step=-1)
    picked = pick_runs(as_runs(final, axes).values, runs)
    has_llc, has_snaps = LLC in ds, "W_snapshots" in ds and "b_snapshots" in ds
    fig = Figure(figsize=(7.2, 6.4 if has_llc else 4.2), layout="constrained")
    panels = fig.subplots(2 if has_llc else 1, 1, sharex=True, squeeze=False)[:, 0]
    top = panels[0]
    step, snap = ds.step.values, ds.snapshot.values if "snapshot" in ds.dims else None
    labels = {}
    if has_snaps:
        W, b = as_runs(ds.W_snapshots, axes).values, as_runs(ds.b_snapshots, axes).values
        labels = {int(r): plateau_labels(W[r], b[r]) for r in picked}
    colours = [COLOURS[j % len(COLOURS)] for j in range(len(picked))]
    for colour, r in zip(colours, picked):
        top.plot(step, loss.values[r], color=colour, linewidth=1.0, label=run_label(loss, r, axes))
    kgon_levels(top, c)
    top.set_ylabel("training loss")
    top.legend(fontsize=7, loc="upper right", title="runs", title_fontsize=7)
    lower = llc_panel(panels[1], ds, axes, picked) if has_llc else None
    panels[-1].set_xlabel("training step")
    panels[-1].set_xscale("symlog", linthresh=float(step[0]))
    panels[-1].set_xlim(left=0)
    if labels:  # last, with the limits final: each label's box is placed where it is drawn
        run_labels = [labels[int(r)] for r in picked]
        annotate_plateaus(top, snap, [np.interp(snap, step, loss.values[r]) for r in picked],
                          run_labels, colours)
        if lower is not None:
            annotate_plateaus(panels[1], *lower[:2], run_labels, lower[2])
    note = "" if has_llc else f"\n(no {LLC}: run `toymodels llc DIR` for the LLC panel)"
    H = ds.sizes.get("hidden", "?")
    fig.suptitle(f"{ds.attrs.get('name', 'sweep')}: SGD between k-gons, {c} features in "
                 f"{H} dims{note}", fontsize=9)
    return fig


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
    if "llc" not in ds:
        raise ValueError("needs llc: run `toymodels llc DIR` on this sweep first")
    ds = _ensure_analysis(ds, ["phase"])
    x, y = _default_xy(ds, x, y)
    fig = Figure(figsize=(11.5, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    phase(left, ds, x, y, theory)
    cells = best_runs(ds, [x, y]).sortby([x, y])
    values = cells["llc"].transpose(y, x).values.astype(np.float64)
    trusted = cells["llc_trusted"].transpose(y, x).values.astype(bool)
    top = vmax if vmax is not None else float(np.nanmax(np.where(trusted, values, np.nan), initial=1.0))
    mesh, (xlog, ylog) = _mesh(right, cells[x], cells[y], values, "magma",
                               Normalize(0.0, top))
    xs, ys = (_plot_coordinate(cells[a])[0] for a in (x, y))
    bad = np.argwhere(~trusted)
    right.plot(xs[bad[:, 1]], ys[bad[:, 0]], "x", color="#9ec5e8", markersize=4,
               label=f"not trusted ({len(bad)} of {trusted.size})", gid="untrusted")
    _theory_overlay(right, ds, x, y, theory, xlog, ylog)
    fig.colorbar(mesh, ax=right, label="local learning coefficient λ̂")
    settings = ds["llc"].attrs
    nbeta = settings.get("nbeta_used")
    right.set_title(f"LLC of the same runs ({settings.get('loss', '?')} loss, "
                    f"{_settings(settings)})" if nbeta is not None else "LLC of the same runs",
                    fontsize=9)
    if len(bad):
        handles = {h.get_label(): h for h in right.get_legend_handles_labels()[0]}
        right.legend(handles=list(handles.values()), loc="lower right", fontsize=7)  # each
        # label once: the boundary is two lines (p*(r) and r = 1) of one label
    return fig


def llc_calibration(ds: xr.Dataset) -> Figure:
    """An LLC calibration (`toymodels llc DIR --calibrate`, `toymodels.llc_calibration`):
    for each calibrated run, the estimate against the chain length (burn-in + draws) in
    one panel per gamma, a line per epsilon scale (solid at the pass's nbeta, dashed at
    twice it; filled markers where the estimate is trusted, hollow where not), and
    below it the bias diagnostic of the same settings (`llc_settings_ratio`, trusted in
    [0.9, 1.1], shaded). The title gives the recommended settings, if any."""
    runs, gammas = ds.run.values, ds.gamma.values
    fig = Figure(figsize=(3.6 * len(gammas), 2.4 * 2 * len(runs)), layout="constrained")
    axes = fig.subplots(2 * len(runs), len(gammas), sharex=True, squeeze=False)
    steps = (ds.burn_in + ds.draws).values
    for i, run in enumerate(runs):
        for j, gamma in enumerate(gammas):
            top, bottom = axes[2 * i, j], axes[2 * i + 1, j]
            bottom.axhspan(0.9, 1.1, color="0.9")
            for k, scale in enumerate(ds.epsilon_scale.values):
                for nbeta, style in zip(ds.nbeta.values, ("-", "--")):
                    at = ds.sel(run=run, gamma=gamma, epsilon_scale=scale, nbeta=nbeta)
                    colour = COLOURS[k % len(COLOURS)]
                    label = f"scale {scale:g}" if style == "-" else None
                    top.errorbar(steps, at.llc, at.llc_se, color=colour, ls=style, lw=1, label=label)
                    ok = at.llc_trusted.values.astype(bool)
                    top.scatter(steps[ok], at.llc.values[ok], color=colour, s=16, zorder=3)
                    top.scatter(steps[~ok], at.llc.values[~ok], facecolors="none",
                                edgecolors=colour, s=16, zorder=3)
                    bottom.plot(steps, at.llc_settings_ratio, color=colour, ls=style, lw=1)
            top.set_title(f"run {run}, gamma = {plain_number(gamma)}", fontsize=9)
            if j == 0:
                top.set_ylabel("LLC estimate")
                bottom.set_ylabel("settings ratio")
            bottom.set_xlabel("chain length (burn-in + draws)")
    axes[0, 0].set_xscale("log")  # shared by every panel: set once, after the lines
    axes[0, 0].set_xticks(steps, [str(n) for n in steps])
    axes[0, 0].set_xticks([], minor=True)
    axes[0, 0].legend(fontsize=7, title=f"solid nbeta {ds.nbeta.values[0]:.4g}, dashed x2",
                      title_fontsize=7)
    fig.suptitle(recommendation_text(ds), fontsize=9)
    return fig


FIGURES = {
    "kgon_trajectories": kgon_trajectories,  # runs
    "llc_phase": llc_phase,  # x, y, theory, vmax
    "llc_calibration": llc_calibration,
}
