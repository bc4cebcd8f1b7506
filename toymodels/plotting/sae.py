"""Figures of sparse autoencoders scored against the ground truth (`toymodels.dictionary`).

They read an analysed SAE results Dataset (`toymodels analyze` adds mmcs, fvu, l0,
support_* ...). Seeds are averaged (mean, with the spread of the seeds as a band) unless a
figure says otherwise; no best-of-seeds pick, since the scores are what a user gets from
one training.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels.plotting.common import _fmt, integer_ticks
from toymodels.plotting.memorisation import _single as single

COLOURS = ("#3b75af", "#ef8636", "#519e3e", "#c53a32", "#8d69b8", "#84584e")


def _title(ds: xr.Dataset, detail: str) -> str:
    source = ds.attrs.get("sae_source", "?")
    return (f"{ds.attrs.get('name', 'SAEs')}: {detail}\nsource {source}, "
            f"{ds.attrs.get('n_features', '?')} features in {ds.attrs.get('n_hidden', '?')} dims")


def _need(ds: xr.Dataset, *names: str) -> None:
    missing = [n for n in names if n not in ds]
    if missing:
        raise ValueError(f"needs {', '.join(missing)}: run `toymodels analyze` on an SAE sweep first")


def _mean_band(ax, x, da: xr.DataArray, colour, label, style="-"):
    """A line through the mean over seeds, with a band from the min to the max seed."""
    if "seed" in da.dims:
        mean, lo, hi = da.mean("seed"), da.min("seed"), da.max("seed")
        ax.fill_between(x, lo, hi, color=colour, alpha=0.15, linewidth=0)
    else:
        mean = da
    return ax.plot(x, mean, style, color=colour, marker="o", markersize=3, label=label)[0]


def recovery_against_width(axes, ds: xr.Dataset, by: str | None = None) -> list:
    """MMCS (with the random dictionary's), recovered above 0.9, dead latents and FVU
    against the SAE width, one line per value of `by` (default: the L1 coefficient or k,
    whichever is an axis), a vertical line at the true feature count."""
    _need(ds, "mmcs", "fvu", "dead_fraction", "recovered_90")
    if "width" not in ds.dims:
        raise ValueError("needs a width axis (a [sweep] width = [...] of an SAE sweep)")
    by = by or next((a for a in ("l1_coefficient", "k", "kind") if a in ds.dims), None)
    width = ds.width.values
    values = ds[by].values if by else [None]
    drawn = []
    panels = (("mmcs", "MMCS (signed)"), ("recovered_90", "features recovered (cos > 0.9)"),
              ("dead_fraction", "dead latents (share)"), ("fvu", "FVU"))
    for ax, (name, label) in zip(axes, panels):
        for i, value in enumerate(values):
            da = ds[name] if value is None else ds[name].sel({by: value})
            da = da.mean([d for d in da.dims if d not in ("width", "seed")])
            text = None if value is None else f"{by} = {value:g}" if not isinstance(value, str) else value
            drawn.append(_mean_band(ax, width, da, COLOURS[i % len(COLOURS)], text))
        if name in ("mmcs", "recovered_90"):
            random = ds[f"random_{name}" if name == "mmcs" else "random_recovered_90"]
            random = random.mean([d for d in random.dims if d != "width"])
            ax.plot(width, random, "k:", label="random dictionary")
        n_truth = float(ds.n_truth.mean())
        ax.axvline(n_truth, color="grey", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("SAE width (latents)")
        ax.set_ylabel(label)
        if name == "fvu":
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    axes[1].text(n_truth, 0.02, f" {n_truth:g} features", color="grey", fontsize=7)
    return drawn


def width_figure(ds: xr.Dataset, by: str | None = None) -> Figure:
    """Four panels against the SAE width (`recovery_against_width`): MMCS, features
    recovered above cosine 0.9, dead latents and FVU, one line per value of `by`. Needs a
    `width` axis of an analysed SAE sweep."""
    fig = Figure(figsize=(9.6, 6.4), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    recovery_against_width(axes, ds, by)
    fig.suptitle(_title(ds, "recovery against width (mean of the seeds; band: min to max)"), fontsize=9)
    return fig


def pareto(ax, ds: xr.Dataset, by: str = "kind") -> list:
    """L0 against FVU, every SAE a dot, coloured by `by` (the kind), with each kind's
    Pareto front (the SAEs no other of the kind beats on both) as a line; the true L0 as
    a vertical line."""
    _need(ds, "l0", "fvu")
    values = ds[by].values if by in ds.dims else [ds.attrs.get("sae_kind", "SAE")]
    drawn = []
    for i, value in enumerate(values):
        part = ds.sel({by: value}) if by in ds.dims else ds
        l0, fvu = part.l0.values.ravel(), part.fvu.values.ravel()
        keep = np.isfinite(l0) & np.isfinite(fvu)
        l0, fvu = l0[keep], fvu[keep]
        colour = COLOURS[i % len(COLOURS)]
        ax.scatter(l0, fvu, s=10, color=colour, alpha=0.5)
        order = np.argsort(l0)
        front = order[np.minimum.accumulate(fvu[order]) == fvu[order]]
        drawn.append(ax.plot(l0[front], fvu[front], "-o", color=colour, markersize=4,
                             label=str(value))[0])
    ax.axvline(float(ds.true_l0.mean()), color="grey", linewidth=0.8, label="true L0")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("L0 (active latents per example)")
    ax.set_ylabel("FVU")
    ax.legend(fontsize=7)
    return drawn


GAP_METHODS = (("encoder", "SAE encoder", "-"), ("gp", "gradient pursuit, SAE decoder", "-"),
               ("omp", "OMP, SAE decoder", "-"), ("truth_gp", "gradient pursuit, true features", "--"))


def gap_against_superposition(axes, ds: xr.Dataset) -> list:
    """Code recovery of the encoder, of gradient pursuit and OMP on the SAE's decoder
    (matched L0) and of gradient pursuit on the true features, against the source's
    feature density (`source_sparsity`; else the source run), each point labelled with
    the source's represented features per hidden dimension: exact supports in `axes[0]`,
    recall of the active features in `axes[1]`."""
    _need(ds, "support_encoder", "support_gp", "support_truth_gp", "n_truth")
    if "source_run" not in ds.dims:
        raise ValueError("needs a source_run axis (an SAE sweep over several runs of a toy-model sweep)")
    reduce = [d for d in ds.support_encoder.dims if d not in ("source_run", "seed")]
    if "source_sparsity" in ds.coords:
        x, label = 1.0 - ds.source_sparsity.values, "source feature density (1 - sparsity)"
    else:
        x, label = ds.source_run.values.astype(float), "source run"
    per_dim = (ds.n_truth.mean([d for d in ds.n_truth.dims if d != "source_run"]) / ds.attrs["n_hidden"]).values
    order = np.argsort(x, kind="stable")
    drawn = []
    for ax, what, text in zip(axes, ("support", "recall"),
                              ("examples whose active features are found exactly",
                               "share of the active features found")):
        for i, (method, name, style) in enumerate(GAP_METHODS):
            da = ds[f"{what}_{method}"].mean(reduce).isel(source_run=order)
            drawn.append(_mean_band(ax, x[order], da, COLOURS[i], name, style))
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel(text)
        ax.set_ylim(0, 1.05)
        for xi, pi in zip(x[order], per_dim[order]):
            ax.annotate(f"{pi:.1f}", (xi, 1.0), fontsize=6, ha="center", color="grey")
    axes[0].legend(fontsize=7, loc="center left")
    axes[1].set_title("grey: represented features per hidden dimension", fontsize=7, color="grey")
    return drawn


def gap_figure(ds: xr.Dataset) -> Figure:
    """The SAE encoder against sparse pursuit on its decoder and on the true features at
    matched L0, across the source's superposition (`gap_against_superposition`): exact
    supports and recall. Needs an analysed SAE sweep over a results-directory source."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    gap_against_superposition(fig.subplots(1, 2), ds)
    fig.suptitle(_title(ds, "SAE encoder against pursuit at matched L0, across superposition"), fontsize=9)
    return fig


def cosine_matrices(ds: xr.Dataset, by: str = "width", max_columns: int = 6, seed: int = 0,
                    l1_coefficient: float | None = None) -> Figure:
    """The latent-feature cosine matrix (signed) of one SAE per value of `by`, latents
    ordered by the feature they match best, features by index.

    The SAEs shown are those of one value of every other sweep axis: `l1_coefficient`
    (default its first value) and the first value of any other (kind, k...); the title
    names each value shown and how many there were.

    Args:
      by: the sweep axis of the panels (one per value, at most `max_columns`).
      max_columns: the most panels drawn (the first values of `by`).
      seed: the seed shown.
      l1_coefficient: the l1_coefficient value shown, one of the sweep's (default its
        first).
    """
    _need(ds, "decoder", "truth")
    held, shown = _held(ds, by, l1_coefficient)
    ds = ds.sel(held)
    values = ds[by].values[:max_columns] if by in ds.dims else [None]
    fig = Figure(figsize=(2.4 * len(values) + 0.8, 3.2), layout="compressed")
    axes = np.atleast_1d(fig.subplots(1, len(values)))
    mesh = None
    for ax, value in zip(axes, values):
        run = ds.sel({by: value}) if value is not None else ds
        run = run.sel(seed=seed) if "seed" in run.dims else run
        decoder = run.decoder.dropna("latent", how="all").values
        truth = run.truth.values.T
        norms = np.linalg.norm(truth, axis=1)
        truth = truth[norms > 0.5] / norms[norms > 0.5, None]
        latents = decoder / np.maximum(np.linalg.norm(decoder, axis=1, keepdims=True), 1e-12)
        cos = truth @ latents.T
        order = np.lexsort((-cos.max(0), cos.argmax(0)))
        mesh = ax.imshow(cos[:, order], vmin=-1, vmax=1, cmap="RdBu_r", aspect="auto",
                         interpolation="nearest")
        ax.set_title(f"{by} = {value}" if value is not None else "", fontsize=8)
        ax.set_xlabel("latent (sorted)", fontsize=7)
        ax.set_ylabel("feature", fontsize=7)
        ax.tick_params(labelsize=6)
        integer_ticks(ax.xaxis, ax.yaxis)  # indices: 0, 5, 10, never 2.5
    fig.colorbar(mesh, ax=list(axes), label="cosine", shrink=0.8, pad=0.01)
    fig.suptitle(_title(ds, f"cosine of features and latents (seed {seed}"
                        + (f"; {shown})" if shown else ")")), fontsize=9)
    return fig


def _held(ds: xr.Dataset, by: str, l1_coefficient) -> tuple[dict, str]:
    """The value shown of each sweep axis of the SAEs but `by` and seed: `l1_coefficient`
    where given, else the first; and the title's words for them ("l1 coefficient = 0.3
    of 0.1, 0.3, 1")."""
    axes = [d for d in ds.decoder.dims if d not in (by, "seed", "latent", "hidden")]
    if l1_coefficient is not None and "l1_coefficient" not in axes:
        why = "is the panels' axis (by)" if by == "l1_coefficient" else "is not a sweep axis here"
        raise ValueError(f"-o l1_coefficient={l1_coefficient}: l1_coefficient {why}")
    held, words = {}, []
    for axis in axes:
        values = ds[axis].values
        index = 0
        if axis == "l1_coefficient" and l1_coefficient is not None:
            match = np.flatnonzero(np.isclose(values.astype(float), float(l1_coefficient)))
            if not match.size:
                raise ValueError(f"-o l1_coefficient={l1_coefficient}: not a value of this sweep; "
                                 f"its values: {', '.join(_fmt(v) for v in values)}")
            index = int(match[0])
        held[axis] = values[index]
        of = f" of {', '.join(_fmt(v) for v in values)}" if values.size > 1 else ""
        words.append(f"{axis.replace('_', ' ')} = {_fmt(values[index])}{of}")
    return held, "; ".join(words)


def _single(draw, detail: str):
    return single(draw, detail, (6.4, 4.4), _title)


FIGURES = {
    "sae_width": width_figure,  # by
    "sae_pareto": _single(pareto, "L0 against FVU per SAE kind; lines: each kind's Pareto front"),  # by
    "sae_gap": gap_figure,
    "sae_cosines": cosine_matrices,  # by, max_columns, seed, l1_coefficient
}
