"""Calibrating the LLC's settings on a sweep's own runs (`toymodels llc DIR --calibrate`).

A calibration is an LLC pass (`toymodels.trainers.llc`, the same engine: lock, resume,
progress) over `calibrate_runs` runs of the source, each estimated on a grid of the step
scale (epsilon = scale / (nbeta h_max + gamma), `toymodels.sgld.auto_epsilon`) x gamma x
nbeta (factors of the pass's own), with one chain of `CHAIN_STEPS` steps and no burn-in.
The estimates at every chain length (burn-in B, draws D) of `LENGTHS` are read off
that one chain afterwards: a chain's first B + D steps are the whole of a chain of that
length (the same keys, step by step), so one run serves every length. Beside each
estimate is its bias diagnostic (`toymodels.sgld_quadratic`: the settings' ratio and the
relaxation, from the Hessian eigenvalues at w*, `llc_spectrum`).

With a stochastic loss the estimate read off the chain is nbeta (mean L_t(w_t) - mean of
L_t(w*) over all draws), not the per-step difference of `toymodels.sgld.estimate`: the
same expectation, more noise.

`recommend` picks, among the settings every calibrated run trusts whose estimates agree
with those of the next longer chain, the cheapest.

Shapes: R calibration runs = K source runs x S scales x G gammas x N nbetas; C chains;
T = CHAIN_STEPS; L lengths.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import xarray as xr

from toymodels import sgld
from toymodels import sgld_quadratic as quadratic
from toymodels.grid import Grid

SCALES = (0.1, 0.2, 0.4)  # the step's scale (epsilon = "auto" uses sgld.AUTO_SCALE = 0.2)
GAMMAS = (1.0, 10.0, 100.0)
NBETA_FACTORS = (1.0, 2.0)  # times the pass's nbeta (n / ln n by default)
LENGTHS = ((100, 200), (500, 1000), (1000, 2000))  # (burn_in, draws) read off one chain
CHAIN_STEPS = max(b + d for b, d in LENGTHS)
AXES = ("run", "epsilon_scale", "gamma", "nbeta")
AGREE = 0.1  # an estimate is flat in chain length: within 10% (or 2 standard errors)


def calibration_indices(n_runs: int, k: int) -> np.ndarray:
    """[min(k, n_runs)] source runs evenly spaced over 0..n_runs-1 (first and last in).

    Example:
      >>> calibration_indices(10, 3).tolist()
      [0, 4, 9]
    """
    k = min(k, n_runs)
    return np.unique(np.round(np.linspace(0, n_runs - 1, k)).astype(int))


def calibration_axes(n_runs: int, k: int, nbeta: float) -> tuple:
    """((name, values), ...) of `AXES`: the calibrated runs of a source of n_runs and the
    settings (a resolved calibration's `SweepConfig.axes`: its run count and shape)."""
    values = (tuple(calibration_indices(n_runs, k).tolist()), SCALES, GAMMAS,
              tuple(float(f * nbeta) for f in NBETA_FACTORS))
    return tuple(zip(AXES, values))


def calibration_grid(grid: Grid, k: int, nbeta: float) -> Grid:
    """The calibration runs of an LLC grid (`llc_grid` of the source group, its hyper an
    `LLCHyper`): k of its runs, each repeated over SCALES x GAMMAS x nbeta factors, on the
    axes `AXES`. Every setting of a source run keeps its seed: the same chain noise."""
    index = calibration_indices(grid.n_runs, k)
    scale, gamma, factor = (a.ravel() for a in np.meshgrid(SCALES, GAMMAS, NBETA_FACTORS, indexing="ij"))
    per = len(scale)
    runs = np.repeat(index, per)
    tile = lambda a: np.tile(np.asarray(a, np.float32), len(index))
    hyper = jax.tree.map(lambda a: np.asarray(a)[runs], grid.hyper)
    hyper = dataclasses.replace(hyper, epsilon=tile(scale), gamma=tile(gamma),
                                nbeta=tile(factor * nbeta))
    coords = (index, np.asarray(SCALES), np.asarray(GAMMAS), np.asarray(NBETA_FACTORS) * nbeta)
    data_seed = None if grid.data_seed is None else grid.data_seed[runs]
    return Grid(AXES, coords, hyper, grid.seed[runs], data_seed)


def read_lengths(trace: np.ndarray, init_loss: np.ndarray, nbeta: np.ndarray,
                 lengths: tuple = LENGTHS):
    """(llc [R, L], llc_se [R, L]) at each (burn_in, draws) of `lengths`, from one chain
    per run: trace [R, C, T] (every step's loss, no burn-in), init_loss [R], nbeta [R]."""
    est, se = [], []
    for burn_in, draws in lengths:
        chain = nbeta[:, None] * np.mean(trace[:, :, burn_in:burn_in + draws] - init_loss[:, None, None], axis=2)
        est.append(chain.mean(axis=1))
        se.append(chain.std(axis=1, ddof=1) / np.sqrt(chain.shape[1]))
    return np.stack(est, axis=1), np.stack(se, axis=1)


def diagnostics(spectrum: np.ndarray, nbeta, epsilon, gamma) -> tuple[np.ndarray, np.ndarray]:
    """(settings_ratio [R, L], relaxation [R, L]) of `toymodels.sgld_quadratic` for each
    run's Hessian eigenvalues spectrum [R, d] and settings [R], at each length."""
    ratio = np.stack([np.asarray(jax.vmap(lambda h, nb, e, g: quadratic.settings_ratio(
        h, nb, e, g, draws=d, burn_in=b))(spectrum, nbeta, epsilon, gamma)) for b, d in LENGTHS], 1)
    relax = np.stack([np.asarray(jax.vmap(lambda h, nb, e, g: quadratic.relaxation(
        h, nb, e, g, burn_in=b))(spectrum, nbeta, epsilon, gamma)) for b, _ in LENGTHS], 1)
    return ratio, relax


def trusted(est, se, ratio, relax, acceptance, diverged) -> np.ndarray:
    """[R, L] the rule of `toymodels.sgld.trust_checks` at each length, for the runs'
    acceptance and divergence [R] (below_init aside: the chain's fraction is over all its
    steps, not one length's draws)."""
    at = lambda a: np.broadcast_to(np.asarray(a)[:, None], np.shape(est))
    checks = sgld.trust_checks(est, se, np.zeros(np.shape(est)), at(acceptance), at(diverged),
                               ratio, relax, True, np)
    return np.logical_and.reduce(list(checks.values()))


def calibration_dataset(columns: dict, grid: Grid) -> xr.Dataset:
    """The calibration's Dataset on `AXES` x length, from its chunk arrays [R, ...]."""
    nbeta = np.asarray(grid.hyper.nbeta, np.float64)
    epsilon, gamma = np.asarray(columns["llc_epsilon"]), np.asarray(grid.hyper.gamma)
    est, se = read_lengths(np.asarray(columns["llc_trace"], np.float64),
                           np.asarray(columns["llc_init_loss"], np.float64), nbeta)
    ratio, relax = diagnostics(np.asarray(columns["llc_spectrum"]), nbeta.astype(np.float32),
                               epsilon, gamma)
    ok = trusted(est, se, ratio, relax, np.asarray(columns["llc_acceptance"]),
                 np.asarray(columns["llc_diverged"], bool))
    shape = grid.shape + (len(LENGTHS),)
    var = lambda a, text: xr.DataArray(np.asarray(a).reshape(shape), dims=AXES + ("length",),
                                       attrs={"description": text})
    data = {
        "llc": var(est, "the LLC estimate at this chain length (read off the first "
                        "burn_in + draws steps of one chain)"),
        "llc_se": var(se, "its standard error over chains"),
        "llc_settings_ratio": var(ratio, "the settings' bias on a regular estimate "
                                         "(toymodels.sgld_quadratic.settings_ratio)"),
        "llc_relaxation": var(relax, "burn-in in relaxation times of the slowest curved direction"),
        "llc_trusted": var(ok, "the estimate passes the trust rule at this length"),
        "llc_epsilon": xr.DataArray(epsilon.reshape(grid.shape), dims=AXES,
                                    attrs={"description": "the step the scale gave"}),
    }
    coords = dict(zip(AXES, grid.coords))
    coords.update(burn_in=("length", [b for b, _ in LENGTHS]), draws=("length", [d for _, d in LENGTHS]))
    return xr.Dataset(data, coords={**coords, "length": np.arange(len(LENGTHS))},
                      attrs={"trainer": "llc_calibration"})


def recommend(ds: xr.Dataset) -> dict | None:
    """The cheapest setting (epsilon_scale, gamma, nbeta, burn_in, draws) that every
    calibrated run trusts and whose estimates agree with the next longer chain's (within
    `AGREE` or 2 standard errors), fewest steps first, then the settings ratio nearest 1;
    None where no setting qualifies."""
    est, se = ds.llc, ds.llc_se
    longer, longer_se = est.shift(length=-1), se.shift(length=-1)
    flat = np.abs(est - longer) <= np.maximum(AGREE * np.abs(longer), 2 * np.hypot(se, longer_se))
    good = (ds.llc_trusted & flat).all("run")  # the longest length has no next: never flat
    if not bool(good.any()):
        return None
    steps = (ds.burn_in + ds.draws).broadcast_like(good)
    off = np.abs(ds.llc_settings_ratio - 1).max("run").fillna(0.0)
    score = (steps + off).where(good)
    best = {k: int(v) for k, v in zip(score.dims, np.unravel_index(int(np.nanargmin(score.values)), score.shape))}
    pick = ds.isel(best)
    return {"epsilon_scale": float(pick.epsilon_scale), "gamma": float(pick.gamma),
            "nbeta": float(pick.nbeta), "burn_in": int(pick.burn_in), "draws": int(pick.draws)}


def recommendation_text(ds: xr.Dataset) -> str:
    """One line: the recommended settings as `toymodels llc` flags, or why there are none."""
    best = recommend(ds)
    if best is None:
        return ("no setting of the grid is trusted on every calibrated run with estimates flat in "
                "chain length; see the figure (toymodels plot llc_calibration)")
    return (f"recommended: --epsilon auto (scale {best['epsilon_scale']:g}) --gamma {best['gamma']:g} "
            f"--nbeta {best['nbeta']:.4g} --burn-in {best['burn_in']} --draws {best['draws']}")
