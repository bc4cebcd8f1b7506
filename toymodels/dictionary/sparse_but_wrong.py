"""The measures of "Sparse but wrong" (Chanin & Garriga-Alonso 2025) for a sweep of SAEs
over k: how much each latent mixes in the feature correlated with its own, and where a
curve over k has its elbow.

The paper's finding: a BatchTopK SAE whose k is the true L0 recovers the features; below
it, each latent mixes in the features correlated with its own, with the correlation's
sign; the nth decoder projection s_n (`benchmark.decoder_projection_profile`), plotted
against k, has an elbow at the true L0. Here:

- `partner_mixing`: per correlated pair (i, j), the cosine of feature i's latent with
  feature j's direction, beyond the cosine of the two features themselves (0 for a
  latent that is feature i's direction).
- `mixing_by_sign`: its mean over the positively and over the negatively correlated pairs.
- `elbow`: the point of a curve farthest below its chord (Kneedle's knee).
- `world_pairs`: the correlated pairs of a sweep's `[synthetic]` world, from its config.
- `projection_rank`: the n of s_n read by default, the smallest integer above the true L0.

Host functions (numpy) of ONE SAE or one curve; shapes in each docstring. ``truth``
[F, d] feature directions, ``latents`` [N, d] decoder rows (any norms: normalised here).
"""

from __future__ import annotations

import math
import tomllib

import numpy as np


def unit(rows) -> np.ndarray:
    """Rows scaled to norm 1 (a zero row stays 0); [n, d] -> [n, d]."""
    rows = np.asarray(rows, np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def partner_mixing(truth, latents, first, second) -> np.ndarray:
    """How much feature ``first``'s latent mixes in feature ``second``, per pair.

    Feature i's latent is its best match by |cos| (SynthSAEBench's convention), its sign
    turned so that its cosine with feature i is >= 0 (a TopK latent's codes are >= 0, so
    its direction has a sign). The mixing is cos(latent, t_j) - cos(t_i, t_j): 0 when the
    latent is t_i itself, > 0 when it leans towards t_j.

    Args:
      truth: [F, d]; latents: [N, d]; first, second: [P] int feature indices (i, j).

    Returns:
      [P] the mixing of each pair's second feature into its first feature's latent.

    Example:
      >>> truth = np.eye(3)
      >>> latents = np.array([[0.8, 0.6, 0.0], [0.0, 0.0, -1.0]])  # t0 leaning to t1; -t2
      >>> partner_mixing(truth, latents, np.array([0, 2]), np.array([1, 0])).round(3) + 0.0
      array([0.6, 0. ])
    """
    t, w = unit(truth), unit(latents)
    cos = t @ w.T  # [F, N]
    first, second = np.asarray(first, int), np.asarray(second, int)
    own = np.argmax(np.abs(cos[first]), axis=1)  # [P] each first feature's latent
    sign = np.where(cos[first, own] < 0, -1.0, 1.0)
    return sign * cos[second, own] - np.sum(t[first] * t[second], axis=1)


def both_ways(pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first [2P], second [2P], rho [2P]) of pairs (i, j, rho), each in both orders:
    (i, j) then (j, i), so that every correlated feature's latent is measured."""
    pairs = np.asarray(pairs, np.float64).reshape(-1, 3)
    i, j, rho = pairs[:, 0].astype(int), pairs[:, 1].astype(int), pairs[:, 2]
    return np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([rho, rho])


def mixing_by_sign(mixing, rho) -> tuple[float, float]:
    """(mean mixing over the pairs with rho > 0, over those with rho < 0); NaN where
    there are none. The paper's finding is (> 0, < 0) when k is below the true L0.

    Example:
      >>> mixing_by_sign(np.array([0.3, 0.1, -0.2]), np.array([0.6, 0.6, -0.6]))
      (0.2, -0.2)
    """
    mixing, rho = np.asarray(mixing, np.float64), np.asarray(rho, np.float64)
    mean = lambda mask: float(mixing[mask].mean()) if mask.any() else math.nan
    return mean(rho > 0), mean(rho < 0)


def elbow(x, y) -> int:
    """The index of a curve's elbow: the point farthest below the chord from its first
    to its last point, with both axes scaled to [0, 1] (the knee of Kneedle, Satopää et
    al. 2011, for a curve that falls steeply and then flattens or turns back up). The
    end points lie on the chord, so a curve with no point below it returns 0 (no elbow).

    Args:
      x: [m] increasing; y: [m], m >= 2.

    Example:
      >>> elbow([1, 2, 3, 4, 5, 6], [10, 6, 2, 1.5, 1, 0.5])  # steep to x = 3, then flat
      2
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2 or not np.all(np.diff(x) > 0):
        raise ValueError("elbow needs x increasing and y of the same length (>= 2)")
    span = lambda a: (a - a.min()) / (np.ptp(a) if np.ptp(a) > 0 else 1.0)
    u, v = span(x), span(y)
    chord = v[0] + (v[-1] - v[0]) * u
    below = chord - v
    return int(np.argmax(below)) if below.max() > 0 else 0


def projection_rank(true_l0: float) -> int:
    """The n of s_n read by default: the smallest integer above the true L0 (the paper's
    toy model, L0 about 11, plots n = 12 and up). For a perfect SAE s_n is then the
    projection of a feature that is off: 0 for orthogonal features.

    Example:
      >>> projection_rank(10.95), projection_rank(5.0)
      (11, 6)
    """
    return int(math.floor(true_l0)) + 1


def world_pairs(config: str) -> np.ndarray:
    """[P, 3] the (i, j, rho) of the `correlations` of a sweep config's `[synthetic]`
    table (its TOML text, a results Dataset's attrs["config"]); [0, 3] when none.

    Example:
      >>> world_pairs('[synthetic]\\ncorrelations = [[0, 1, 0.6], [2, 3, -0.6]]\\n')
      array([[ 0. ,  1. ,  0.6],
             [ 2. ,  3. , -0.6]])
    """
    table = tomllib.loads(config).get("synthetic", {})
    return np.asarray(table.get("correlations", []), np.float64).reshape(-1, 3)
