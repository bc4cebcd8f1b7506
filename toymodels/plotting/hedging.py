"""The feature-hedging figure: one-latent SAEs on a parent and a child feature against the
closed form (`toymodels.theory.hedging`, docs/hedging.md).

It reads an SAE results Dataset of width 1 on 2 features (`sweeps/sae_hedging.toml`,
`sweeps/sae_hedging_hierarchical.toml`): feature 0 is the parent, feature 1 the child;
`density` holds each run's firing probabilities (a synthetic world's: a child's given its
parent), `truth` the feature directions and `decoder` the latent's row.
"""

from __future__ import annotations

import tomllib

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels import theory

KEEP = ("latent", "hidden", "feature")  # the per-run dims of decoder, truth and density
# (mean, variance) of an active feature's value under each data.magnitude (toymodels.data)
MAGNITUDE_MOMENTS = {"constant": (1.0, 0.0), "uniform": (0.5, 1.0 / 12.0),
                     "exponential": (0.5, 0.25)}


def magnitude_moments(ds: xr.Dataset) -> tuple[float, float]:
    """(mean, variance) of the sweep's feature magnitudes, from its config's
    data.magnitude (default uniform).

    Example:
      >>> magnitude_moments(xr.Dataset(attrs={"config": '[data]\\nmagnitude = "constant"'}))
      (1.0, 0.0)
    """
    data = tomllib.loads(ds.attrs.get("config", "")).get("data", {})
    return MAGNITUDE_MOMENTS[data.get("magnitude", "uniform")]


def basis_share(direction, features):
    """The child's share of a direction in the features' basis: the coefficients ``c`` of
    ``direction ≈ F c`` (least squares), normalised, signed so that the parent's is >= 0;
    returns ``c_child``. For orthonormal features it is ``direction·f_c / |direction|``.

    Args:
      direction: [d] (any length).
      features: [d, 2] the parent's and the child's directions.

    Example:
      >>> round(basis_share(np.array([3.0, 4.0, 0.0]), np.eye(3)[:, :2]), 6)
      0.8
    """
    c = np.linalg.lstsq(np.asarray(features, np.float64), np.asarray(direction, np.float64),
                        rcond=None)[0]
    c = c * (1.0 if c[0] >= 0 else -1.0)
    return float(c[1] / max(np.linalg.norm(c), 1e-30))


def _runs(ds: xr.Dataset) -> list[xr.Dataset]:
    """Every run of `ds`, one Dataset each (all sweep axes, seeds included): its decoder,
    truth and density (a world's, per static group or stored once), its final loss when
    there is one."""
    names = ["decoder", "truth", "density", *(n for n in ("loss", "parent", "world_mean",
                                                          "world_std") if n in ds)]
    ds = ds[names]
    if "loss" in ds:
        ds = ds.assign(loss=ds.loss.isel(step=-1))
    axes = [d for d in ds.decoder.dims if d not in KEEP]
    if not axes:
        return [ds]
    stacked = ds.stack(run=axes)
    return [stacked.isel(run=i) for i in range(stacked.sizes["run"])]


def _moments(run: xr.Dataset, ds: xr.Dataset) -> tuple[tuple, tuple]:
    """((mean_p, mean_c), (var_p, var_c)) of a run's magnitudes: a synthetic world's own
    per-feature means (`world_mean`; its stds must be 0: magnitude m, as
    synthetic.mean = 1, std = 0), else the config's data.magnitude (`magnitude_moments`)."""
    if "world_mean" not in run:
        mean, var = magnitude_moments(ds)
        return (mean, mean), (var, var)
    if np.any(run.world_std.values != 0):
        raise ValueError("needs a world of constant magnitudes (synthetic.std = 0): the closed "
                         "form here takes each feature's magnitude m exactly")
    means = tuple(float(m) for m in run.world_mean.values)
    return means, (0.0, 0.0)


def shares(ds: xr.Dataset, world: str = "independent") -> np.ndarray:
    """[R, 5] per run: the child's firing probability P(c), the trained latent's child
    share (`basis_share` of its decoder row), the closed form's (`theory.decoder_direction`
    of the world's covariance at the run's probabilities and features, same measure),
    q = P(c | p) (hierarchical; P(c) independent) and the run's final loss over the closed
    form's least loss (NaN without a loss).

    In the hierarchical world P(c | p) is the child's density over the parent's, except
    in a synthetic world (a `parent` variable), whose `density` of a child already is its
    probability given its parent (`toymodels.dictionary.world`): q is the child's density
    and P(c) = P(p) q."""
    rows = []
    for run in _runs(ds):
        F = run.truth.values.astype(np.float64)
        pp, pc = (float(v) for v in run.density.values)
        if "parent" in run and (int(run.parent.values[1]) == 0) != (world == "hierarchical"):
            raise ValueError("the world's feature 1 is a child of feature 0: use -o world=hierarchical"
                             if world != "hierarchical" else
                             "needs feature 1 a child of feature 0 (the world's parent)")
        if world == "hierarchical" and "parent" in run:
            q, pc = pc, pp * pc
        else:
            q = pc / pp if world == "hierarchical" else pc
        means, variances = _moments(run, ds)
        cov = theory.amplitude_cov(pp, q, world, means, variances)
        w = theory.decoder_direction(cov, F)
        seen = np.linalg.eigvalsh(F @ cov @ F.T)  # the least loss: variance off the top axis
        ratio = float(run.loss) / (seen.sum() - seen[-1]) if "loss" in run else np.nan
        rows.append((pc, basis_share(run.decoder.values[0], F), basis_share(w, F), q, ratio))
    return np.array(rows)


STUCK = 1.2  # a run whose loss is above this times the closed form's least: a local minimum


def hedging(ax, ds: xr.Dataset, world: str = "independent") -> list:
    """The child's share of a one-latent SAE's decoder row against the child's firing
    probability: each trained SAE (a point per run and seed) and the closed form's MSE
    optimum at the same probabilities, features and magnitude law (line;
    `theory.hedging`, with a decoder bias).

    Args:
      world: "independent" or "hierarchical", the law the sweep's source drew (the
        synthetic source's features are independent).
    """
    for name in ("decoder", "truth", "density"):
        if name not in ds:
            raise ValueError(f"needs {name}: an SAE sweep's results")
    rows = shares(ds, world)
    x = rows[:, 3] if world == "hierarchical" else rows[:, 0]
    order = np.argsort(x, kind="stable")
    drawn = ax.plot(x[order], rows[order, 2], "-", color="#c53a32",
                    label=f"closed form ({world})")
    stuck = rows[:, 4] > STUCK
    drawn += ax.plot(x[~stuck], rows[~stuck, 1], "o", color="#3b75af", markersize=4,
                     label="trained (each run)")
    if stuck.any():
        drawn += ax.plot(x[stuck], rows[stuck, 1], "o", markerfacecolor="none",
                         color="#3b75af", markersize=6,
                         label=f"trained, local minimum (loss > {STUCK:g} x the least)")
    ax.axhline(0.0, color="0.6", linewidth=0.6)
    lo, hi = rows[:, 1:3].min(), rows[:, 1:3].max()  # 0 to 1/√2 at least: hedging's range
    ax.set_ylim(min(lo, 0.0) - 0.05, max(hi, 0.75) + 0.05)
    ax.set_xlabel("P(c | p), the child's probability given its parent" if world == "hierarchical"
                  else "child firing probability P(c)")
    ax.set_ylabel("child share of the latent")
    ax.legend(fontsize=8)
    return drawn


def hedging_figure(ds: xr.Dataset, world: str = "independent") -> Figure:
    """A one-axes figure drawn by ``hedging(ax, ds, world)``."""
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    hedging(fig.add_subplot(), ds, world)
    fig.suptitle(f"{ds.attrs.get('name', 'SAEs')}: feature hedging, one latent on a parent "
                 f"and a child ({world})", fontsize=9)
    return fig


hedging_figure.__wrapped__ = hedging  # its options and description (toymodels.reference)

FIGURES = {"hedging": hedging_figure}  # world
