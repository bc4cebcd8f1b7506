"""The "Sparse but wrong" figure (Chanin & Garriga-Alonso 2025): BatchTopK SAEs over k on
a world of correlated features, against the true L0 (`sweeps/sae_sparse_but_wrong.toml`).

It reads an SAE sweep along a `k` axis (and `seed`), scored by `toymodels analyze`:
`decoder_mcc`, `decoder_projection` (s_n along `rank`), `true_l0`, and the decoders and
truth for the mixing of correlated partners (`toymodels.dictionary.sparse_but_wrong`;
the pairs are the `[synthetic]` table's `correlations`, read from the config).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels.dictionary import sparse_but_wrong as sbw

POSITIVE, NEGATIVE, NEUTRAL = "#c53a32", "#3b75af", "0.25"


def by_k(da: xr.DataArray, *trailing: str) -> np.ndarray:
    """[K, S, *trailing] values of a variable: along k, then seeds (S = 1 without a seed
    axis); a variable without run axes (a world's truth) is repeated."""
    if "seed" not in da.dims:
        da = da.expand_dims(seed=[0])
    return np.asarray(da.transpose("k", "seed", *trailing).values, np.float64)


def sweep_curves(ds: xr.Dataset, n: int | None = None) -> dict:
    """Per SAE of a k sweep: the numbers the figure draws, each [K, S] (k, seed).

    Args:
      n: the rank of s_n; None: `sbw.projection_rank` of the true L0.

    Returns:
      {"k" [K], "true_l0" [], "n" [], "mcc", "s_n", "mixing_positive",
      "mixing_negative" [K, S]} (mixing: NaN where the world has no pairs of that sign).
    """
    for name in ("decoder_mcc", "decoder_projection", "true_l0", "decoder", "truth"):
        if name not in ds:
            raise ValueError(f"needs {name}: an analysed SAE sweep over k (toymodels analyze)")
    true_l0 = float(ds.true_l0.mean())
    n = sbw.projection_rank(true_l0) if n is None else int(n)
    if not 0 <= n < ds.sizes["rank"]:
        raise ValueError(f"n must be a rank 0 .. {ds.sizes['rank'] - 1}, got {n}")
    decoders = by_k(ds.decoder, "latent", "hidden")
    truth = by_k(ds.truth.broadcast_like(ds.decoder_mcc), "hidden", "feature")
    first, second, rho = sbw.both_ways(sbw.world_pairs(ds.attrs.get("config", "")))
    mixing = np.full(decoders.shape[:2] + (2,), np.nan)
    for index in np.ndindex(*decoders.shape[:2]):
        values = sbw.partner_mixing(truth[index].T, decoders[index], first, second)
        mixing[index] = sbw.mixing_by_sign(values, rho)
    return {"k": np.asarray(ds.k.values, np.float64), "true_l0": true_l0, "n": n,
            "mcc": by_k(ds.decoder_mcc), "s_n": by_k(ds.decoder_projection.sel(rank=n)),
            "mixing_positive": mixing[..., 0], "mixing_negative": mixing[..., 1]}


def _curve(ax, k, values, colour, label) -> list:
    """Each seed as a point, the mean over seeds as a line."""
    drawn = ax.plot(np.repeat(k, values.shape[1]), values.ravel(), "o", color=colour,
                    markersize=3, alpha=0.5)
    drawn += ax.plot(k, np.nanmean(values, axis=1), "-", color=colour, label=label)
    return drawn


def sparse_but_wrong(axes, ds: xr.Dataset, n: int | None = None) -> list:
    """Decoder MCC, the nth decoder projection s_n and the mixing of correlated partners
    against the SAEs' k, the true L0 dashed: the MCC's peak and s_n's elbow
    (`sparse_but_wrong.elbow`) are marked; mixing > 0 leans a latent towards its
    feature's partner.

    Args:
      axes: three axes.
      n: the rank of s_n; default the smallest integer above the true L0.
    """
    c = sweep_curves(ds, n)
    k = c["k"]
    drawn = _curve(axes[0], k, c["mcc"], NEUTRAL, "decoder MCC")
    peak = int(np.argmax(c["mcc"].mean(axis=1)))
    drawn += axes[0].plot(k[peak], c["mcc"].mean(axis=1)[peak], "*", color=POSITIVE,
                          markersize=11, label=f"peak, k = {k[peak]:g}")
    axes[0].set_ylabel("decoder MCC")
    drawn += _curve(axes[1], k, c["s_n"], NEUTRAL, f"$s_{{{c['n']}}}$")
    knee = sbw.elbow(k, c["s_n"].mean(axis=1))
    drawn += axes[1].plot(k[knee], c["s_n"].mean(axis=1)[knee], "*", color=POSITIVE,
                          markersize=11, label=f"elbow, k = {k[knee]:g}")
    axes[1].set_ylabel(f"nth decoder projection $s_{{{c['n']}}}$")
    drawn += _curve(axes[2], k, c["mixing_positive"], POSITIVE, "pairs with ρ > 0")
    drawn += _curve(axes[2], k, c["mixing_negative"], NEGATIVE, "pairs with ρ < 0")
    axes[2].axhline(0.0, color="0.6", linewidth=0.6)
    axes[2].set_ylabel("partner mixing")
    for ax in axes:
        ax.axvline(c["true_l0"], color="0.4", linestyle="--", linewidth=0.8)
        ax.set_xlabel("SAE k")
        ax.legend(fontsize=7, title=f"true L0 {c['true_l0']:.2f}" if ax is axes[0] else None,
                  title_fontsize=7)
    return drawn


def sparse_but_wrong_figure(ds: xr.Dataset, n: int | None = None) -> Figure:
    """A three-panel figure drawn by ``sparse_but_wrong(axes, ds, n)``."""
    fig = Figure(figsize=(10.5, 3.4), layout="constrained")
    sparse_but_wrong(fig.subplots(1, 3), ds, n)
    fig.suptitle(f"{ds.attrs.get('name', 'SAEs')}: BatchTopK SAEs over k against the true "
                 "L0 (Sparse but wrong)", fontsize=9)
    return fig


sparse_but_wrong_figure.__wrapped__ = sparse_but_wrong  # its options and description

FIGURES = {"sparse_but_wrong": sparse_but_wrong_figure}  # n
