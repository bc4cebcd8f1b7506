"""Mechanisms inside the models (issue 5): neurons, training dynamics, attacks, computation.

The stacked neuron weights of a privileged basis (``neurons``, ``neurons_figure``),
feature dimensionality over training with its jumps (``dynamics``,
``dynamics_figure``), adversarial vulnerability against features per dimension
(``vulnerability``), and the abs model's weights with the asymmetric-superposition
motif outlined (``computation``, ``computation_figure``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from toymodels.analysis.dynamics import (
    JUMP_THRESHOLD,
    dimensionality_over_training,
    jumps,
)
from toymodels.analysis.neurons import (
    asymmetric_inhibited,
    asymmetric_superposition,
    balance,
    n_monosemantic,
)
from toymodels.plotting.common import (
    GRAM_CMAP,
    REFERENCE_DIMENSIONS,
    _default_axis,
    _ensure_analysis,
    _feature_colours,
    _fixed_note,
    _grid_shape,
    _runs_along,
    _single,
    title,
    unpadded,
)


def _neuron_rows(run: xr.Dataset) -> np.ndarray:
    """[H, F] weights, rows = neurons: ``W``, or ``W1`` balanced against ``W2``."""
    if "W" in run and not np.isnan(run["W"].values).all():
        return unpadded(run["W"].transpose("hidden", "feature").values)[0]
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


FIGURES = {
    "neurons": neurons_figure,  # axis, max_columns
    "dynamics": dynamics_figure,  # axis, max_columns, threshold
    "vulnerability": _single(vulnerability),
    "computation": computation_figure,  # axis, max_columns
}
