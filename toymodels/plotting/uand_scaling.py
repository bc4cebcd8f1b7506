"""The U-AND scaling figure: trained universal-AND circuits against Hänni et al.'s random
construction and the naive baseline as the neuron count d grows, and what the trained
neurons look like (`sweeps/uand_scaling.toml`, issue 27).

It reads a residual sweep with `task = "uand"`, one MLP layer and a `d_mlp` axis (any
seeds): the trained runs' `final_loss` with its standard error (sampled on the sweep's
evaluation inputs), and their saved parameters for the neuron census. Nothing is
retrained; the baselines are computed here:

- the random construction (`toymodels.theory.uand.random_uand_params`, the paper's
  connection probability p_c = log² m / √d, `paper_connection`) at the sweep's d and
  beyond (`EXTRA_D`), its loss by `toymodels.theory.computation_loss.uand_loss` (the
  K <= 2 strata exact, K >= 3 sampled) averaged over `construction_seeds` draws, and
  the closed form's K = 2 part, P(exactly 2 on) · `random_uand_error` / C(m, 2);
- the naive baseline (`toymodels.theory.computation.naive_loss`: d pairs computed
  exactly, the rest left at 0; 0 from d = C(m, 2) on, so drawn only where positive);
- the best affine readout of the inputs, p²(1 − p)² per output (the regression of
  x_i x_j on x_i, x_j: a run can beat the naive baseline this way with ~m neurons in
  their linear range, without computing any AND).

The neuron census (`census`, per run, batched over seeds through `per_run`): a neuron is
alive when it is active on some input with <= 2 features on (above `ALIVE` times the
size of its largest pre-activation, so that rounding is not activity); it *reads* input i when
|(W_in W_E)_ki| >= `READ_SHARE` of its largest; it fires on a pair by
`toymodels.analysis.computation.uand_tables`; it is an *AND neuron of one pair* when it
fires on exactly one pair and on neither of that pair's singles. A construction neuron
reads Binomial(m, p_c) inputs and fires on C(reads, 2) pairs.
"""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels.analysis.batching import per_run
from toymodels.analysis.computation import feature_weights, uand_tables
from toymodels.theory.computation import naive_loss
from toymodels.theory.computation_loss import uand_loss, uand_strata
from toymodels.theory.uand import paper_connection, random_uand_error, random_uand_params

READ_SHARE = 0.25  # |input weight| at least this share of the neuron's largest: it reads
EXTRA_D = (256, 512, 1024, 2048)  # the construction's d beyond the sweep's
FIT_FROM = 128  # the construction's slopes are fitted from here on (and where p_c < 1)
ALIVE = 1e-4  # active above this share of its largest pre-activation's size: alive
MANY_PAIRS = 6  # a neuron firing on at least this many pairs is "dense"
COLOURS = {"trained": "#1f77b4", "construction": "#d62728", "closed": "#ff9896",
           "naive": "0.3", "affine": "#2ca02c"}
PARAMS = ("W_E", "W_in_0", "b_in_0", "W_out_0", "b_out_0", "R")


def _need(ds: xr.Dataset) -> None:
    if ds.attrs.get("task") != "uand" or "d_mlp" not in ds.dims:
        raise ValueError("needs a residual sweep with task = \"uand\" and a d_mlp axis "
                         "(sweeps/uand_scaling.toml)")
    if int(ds.attrs.get("n_layers", 1)) != 1:
        raise ValueError("needs one MLP layer (n_layers = 1)")


def setting(ds: xr.Dataset) -> tuple[int, float, np.ndarray]:
    """(m inputs, the feature probability p, [D] the swept d_mlp values)."""
    p = np.asarray(ds["density"].values, float)
    return int(ds.sizes["feature"]), float(np.nanmean(p)), np.asarray(ds["d_mlp"].values, int)


def runs_at(ds: xr.Dataset, d: int) -> dict[str, np.ndarray]:
    """The parameters of the runs with d_mlp = d, neurons trimmed to d: each [S, ...]
    (S seeds; [1, ...] without a seed axis)."""
    sub = ds.sel(d_mlp=d).isel(neuron_0=slice(0, d), neuron=slice(0, d))
    out = {}
    for k in PARAMS:
        if k in sub:
            da = sub[k] if "seed" in sub[k].dims else sub[k].expand_dims(seed=[0])
            out[k] = np.asarray(da.transpose("seed", ...).values, np.float32)
    return out


def census_one(params: dict, read_share: float = READ_SHARE) -> dict:
    """The neuron census of ONE run (see the module doc).

    Returns:
      {"alive": [K] bool, "reads": [K] int32 inputs read, "pairs": [K] int32 pairs it
      fires on, "and_one": [K] bool an AND neuron of one pair}; a dead neuron reads
      and fires on nothing.
    """
    t = uand_tables(params)
    read = jnp.abs(feature_weights(params)[0])  # [K, m]
    biggest = jnp.max(read, axis=1)
    reads = jnp.sum(read >= read_share * biggest[:, None], axis=1, dtype=jnp.int32)
    top = jnp.maximum(jnp.max(t["pair"], axis=1), jnp.max(t["single"], axis=1))
    scale = 2 * biggest + jnp.abs(params.get("b_in_0", 0.0))  # its largest pre-activation
    alive = jnp.maximum(top, t["zero"]) > ALIVE * scale
    and_one = (t["n_pairs"] == 1) & (jnp.sum(t["and_pairs"], axis=1) == 1)
    return {"alive": alive, "reads": jnp.where(alive, reads, 0),
            "pairs": jnp.where(alive, t["n_pairs"], 0), "and_one": alive & and_one}


@functools.lru_cache(maxsize=None)
def _census_runs(read_share: float):
    return per_run(functools.partial(census_one, read_share=read_share))


def census(ds: xr.Dataset, read_share: float = READ_SHARE) -> dict[int, dict]:
    """{d: census_one's arrays over the seeds, each [S, d]} for every swept d."""
    _, _, ds_d = setting(ds)
    run = _census_runs(float(read_share))
    return {int(d): {k: np.asarray(v) for k, v in
                     run({k: jnp.asarray(v) for k, v in runs_at(ds, int(d)).items()}).items()}
            for d in ds_d}


def trained(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """([D] d, [D] mean final_loss over seeds, [D] its standard error: the seeds' spread
    and each run's sampling error together)."""
    _, _, ds_d = setting(ds)
    loss = ds["final_loss"].transpose("d_mlp", ...).values.reshape(len(ds_d), -1)
    se = ds["final_loss_se"].transpose("d_mlp", ...).values.reshape(len(ds_d), -1)
    S = loss.shape[1]
    spread = loss.std(1, ddof=1) / np.sqrt(S) if S > 1 else np.zeros(len(ds_d))
    sampling = np.sqrt((se**2).sum(1)) / S
    return ds_d, loss.mean(1), np.sqrt(spread**2 + sampling**2)


def construction(W_E: np.ndarray, p: float, d_values, seeds: int = 3,
                 n_samples: int = 16384) -> np.ndarray:
    """[D] the random construction's loss (paper's p_c) at each d, mean over `seeds`
    draws of its subsets (`uand_loss`, the K >= 3 part from n_samples inputs)."""
    return np.array([np.mean([uand_loss(random_uand_params(W_E, int(d),
                                                           paper_connection(W_E.shape[1], int(d)),
                                                           seed=s), p, n_samples, seed=s).total
                              for s in range(seeds)]) for d in d_values])


def closed_form(m: int, p: float, d_values) -> np.ndarray:
    """[D] the construction's K = 2 part of the loss per output, in expectation over
    constructions: P(exactly 2 on) random_uand_error(m, d, p_c) / C(m, 2)."""
    _, _, two = uand_strata(np.full(m, p))
    return np.array([two.sum() * random_uand_error(m, int(d), paper_connection(m, int(d)))
                     / math.comb(m, 2) for d in d_values])


def naive(m: int, p: float, d_values) -> np.ndarray:
    """[D] the naive baseline's loss per output (closed form)."""
    return np.array([naive_loss(np.eye(m), "uand", int(d), np.full(m, p)).total
                     for d in d_values])


def slope(d, loss) -> float:
    """The least-squares slope of log loss against log d over the positive points."""
    d, loss = np.asarray(d, float), np.asarray(loss, float)
    keep = (loss > 0) & np.isfinite(loss)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(d[keep]), np.log(loss[keep]), 1)[0])


def _fit_range(d: np.ndarray, start: float) -> np.ndarray:
    """[D] bool: d >= start, or every d when fewer than two are."""
    keep = d >= start
    return keep if keep.sum() >= 2 else np.ones_like(keep)


def _range(d, loss) -> str:
    d = np.asarray(d)[np.asarray(loss) > 0]
    return f"d={d.min()}..{d.max()}"


def scaling(ax, ds: xr.Dataset, construction_seeds: int = 3) -> list:
    """Loss per output against d (log-log): trained runs (mean ± SE over seeds), the
    random construction (paper's p_c), its closed form's K = 2 part, the naive baseline
    and the best affine readout; slopes in the legend."""
    m, p, ds_d = setting(ds)
    W_E = np.asarray(ds["W_E"].values.reshape(-1, *ds["W_E"].shape[-2:])[0], np.float64)
    d, mean, se = trained(ds)
    all_d = np.array(sorted({*ds_d.tolist(), *EXTRA_D}))
    made = construction(W_E, p, all_d, construction_seeds)
    line = np.unique(np.geomspace(all_d.min(), all_d.max(), 40).astype(int))
    closed = closed_form(m, p, line)
    base = naive(m, p, line)
    drawn = [ax.errorbar(d, mean, yerr=se, fmt="o-", color=COLOURS["trained"], capsize=3,
                         label=f"trained (mean ± SE), slope {slope(d, mean):.2f} "
                               f"({_range(d, mean)})")]
    big = _fit_range(all_d, max(FIT_FROM, np.log(m) ** 4))  # p_c < 1
    drawn += ax.plot(all_d, made, "s--", color=COLOURS["construction"],
                     label=f"random U-AND, p_c = log²m/√d, slope "
                           f"{slope(all_d[big], made[big]):.2f} ({_range(all_d[big], made[big])})")
    big = _fit_range(all_d, 4 * FIT_FROM)
    drawn += ax.plot(line, closed, "-", color=COLOURS["closed"], linewidth=1,
                     label=f"its closed form, K = 2 part; slope "
                           f"{slope(all_d[big], closed_form(m, p, all_d[big])):.2f} "
                           f"({_range(all_d[big], made[big])})")
    pos = base > 0
    drawn += ax.plot(line[pos], base[pos], "-", color=COLOURS["naive"],
                     label=f"naive (d pairs exact; 0 from d = {math.comb(m, 2)})")
    drawn.append(ax.axhline(p * p * (1 - p) ** 2, color=COLOURS["affine"], linestyle=":",
                            label="best affine readout of the inputs, p²(1−p)²"))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("d (MLP neurons)")
    ax.set_ylabel("loss per output, E(ŷ − y)²")
    ax.grid(color="0.9", linewidth=0.6)
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=2)
    return drawn


def neurons_panel(ax, ds: xr.Dataset, read_share: float = READ_SHARE) -> list:
    """Per d, the share of the trained neurons (alive, pooled over seeds) that are AND
    neurons of one pair, that fire on 2 to MANY_PAIRS − 1 pairs, on MANY_PAIRS or more,
    or on none; and the mean number of inputs a neuron reads against the construction's
    m p_c (right axis)."""
    m, _, ds_d = setting(ds)
    table = census(ds, read_share)
    x = np.arange(len(ds_d))
    shares, reads = [], []
    for d in ds_d:
        c = table[int(d)]
        alive = c["alive"]
        pairs = c["pairs"][alive]
        n = max(alive.sum(), 1)
        shares.append([c["and_one"][alive].sum() / n, ((pairs >= 1) & ~c["and_one"][alive]
                       & (pairs < MANY_PAIRS)).sum() / n, (pairs >= MANY_PAIRS).sum() / n,
                       (pairs == 0).sum() / n])
        reads.append(c["reads"][alive])
    shares = np.array(shares)
    names = ("AND of one pair", f"1-{MANY_PAIRS - 1} pairs (not AND of one)",
             f">= {MANY_PAIRS} pairs (dense)", "no pair")
    colours = ("#2ca02c", "#ffbb78", "#1f77b4", "0.8")
    drawn, bottom = [], np.zeros(len(ds_d))
    for k in range(4):
        drawn.append(ax.bar(x, shares[:, k], 0.6, bottom=bottom, color=colours[k],
                            label=names[k]))
        bottom += shares[:, k]
    ax.set_xticks(x, [str(d) for d in ds_d])
    ax.set_xlabel("d (MLP neurons)")
    ax.set_ylabel("share of alive neurons")
    ax.set_ylim(0, 1)
    right = ax.twinx()
    drawn += right.plot(x, [r.mean() for r in reads], "o-", color="black",
                        label=f"trained: inputs read (|w| >= {read_share:g} max)")
    drawn += right.plot(x, [m * paper_connection(m, int(d)) for d in ds_d], "s--",
                        color=COLOURS["construction"], label="construction: m p_c")
    right.set_ylim(0, m)
    right.set_ylabel(f"inputs read per neuron (of m = {m})")
    handles = drawn[:4] + drawn[4:]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=6.5, loc="upper left",
              bbox_to_anchor=(0.0, -0.16), ncol=2)
    return drawn


def uand_scaling(axes, ds: xr.Dataset, construction_seeds: int = 3,
                 read_share: float = READ_SHARE) -> list:
    """Trained U-AND circuits against Hänni et al.'s random construction and the naive
    baseline as d grows (left, log-log, slopes in the legend), and the trained neurons'
    census (right: AND neurons of one pair against dense ones, inputs read).

    Args:
      axes: two axes.
      construction_seeds: draws of the random construction averaged at each d.
      read_share: a neuron reads input i when |(W_in W_E)_ki| is at least this share
        of its largest.
    """
    _need(ds)
    return (scaling(axes[0], ds, construction_seeds)
            + neurons_panel(axes[1], ds, read_share))


def uand_scaling_figure(ds: xr.Dataset, construction_seeds: int = 3,
                        read_share: float = READ_SHARE) -> Figure:
    """A two-axes figure drawn by ``uand_scaling(axes, ds)``."""
    fig = Figure(figsize=(12.0, 5.4), layout="constrained")
    axes = fig.subplots(1, 2, width_ratios=(1.3, 1.0))
    uand_scaling(axes, ds, construction_seeds, read_share)
    m, p, _ = setting(ds)
    fig.suptitle(f"{ds.attrs.get('name', 'uand')}: universal AND of m = {m} inputs "
                 f"(p = {p:g}), C(m, 2) = {math.comb(m, 2)} outputs", fontsize=9)
    return fig


uand_scaling_figure.__wrapped__ = uand_scaling  # its description (toymodels.reference)

FIGURES = {"uand_scaling": uand_scaling_figure}
