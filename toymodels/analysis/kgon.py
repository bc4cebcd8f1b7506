"""Which k-gon a solution is (Chen et al. 2023; `toymodels.theory.kgon`).

Role in the data flow: a sweep of the ReLU-output model on exactly-one-active inputs
(`[data] inputs = "exactly_one"`, e.g. sweeps/kgon_trajectories.toml) stores `W`, `b` and,
with snapshots, `W_snapshots` / `b_snapshots`; these functions label them, vectorised over
any leading axes (numpy on the host: labels are strings, not traced values).

The k^{σ+}-gon: a regular k-gon of k represented features (||W_i|| > 0.5), with σ of the
c - k unrepresented features' biases at 1/(2c) instead of 0 (each lowers the loss by
1/(4c²), `toymodels.theory.kgon(c, k, sigma)`). Its loss level is

  L(k, σ) = L(k) - σ / (4c²),   L(0) = 1/3,   L(1) = (c - 1) / (3c),   L(k ≥ 2) = kgon(c, k).loss.

Two ways to label: `classify_kgon(W, b)` counts columns and positive unused biases
(robust, needs the parameters); `kgon_label(loss, c)` takes the nearest loss level (needs
only a loss; levels 1/(4c²) apart, 0.0069 for c = 6, so use the exact population loss
`final_loss`, not a noisy training-loss curve, where levels matter at that scale).
"""

from __future__ import annotations

import functools

import numpy as np

from toymodels import theory

NORM_THRESHOLD = 0.5  # ||W_i|| above this: feature i is represented


@functools.lru_cache(maxsize=None)
def kgon_losses(c: int) -> dict[tuple[int, int], float]:
    """{(k, σ): L(k, σ)} for every 0 <= k <= c and 0 <= σ <= c - k (see the module doc).

    Example:
      >>> levels = kgon_losses(6)
      >>> round(levels[(4, 0)], 4), round(levels[(5, 1)], 4), len(levels)
      (0.1111, 0.0618, 28)
    """
    base = {0: 1.0 / 3.0, 1: (c - 1) / (3.0 * c)}
    base.update({k: theory.kgon(c, k).loss for k in range(2, c + 1)})
    return {(k, s): base[k] - s / (4.0 * c * c) for k in range(c + 1) for s in range(c - k + 1)}


def kgon_name(k: int, sigma: int = 0) -> str:
    """The label of the k^{σ+}-gon: "4-gon", "4^{2+}-gon" (mathtext-ready).

    Example:
      >>> kgon_name(5), kgon_name(4, 2)
      ('5-gon', '4^{2+}-gon')
    """
    return f"{k}-gon" if sigma == 0 else f"{k}^{{{sigma}+}}-gon"


def classify_kgon(W, b, threshold: float = NORM_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """(k, σ) of solutions: k the represented features (||W_i|| > threshold), σ the
    unrepresented ones whose bias is above 1/(4c), halfway to the σ+ value 1/(2c).

    Args:
      W: [..., H, F] weights (any leading axes: runs, snapshots).
      b: [..., F] biases.

    Returns:
      k, sigma: int arrays of shape [...].

    Example:
      >>> from toymodels import theory
      >>> g = theory.kgon(6, 4, sigma=2)
      >>> [int(a) for a in classify_kgon(g.W, g.b)]
      [4, 2]
    """
    W, b = np.asarray(W, np.float64), np.asarray(b, np.float64)
    c = W.shape[-1]
    used = np.linalg.norm(W, axis=-2) > threshold  # [..., F]
    k = used.sum(-1)
    sigma = (~used & (b > 1.0 / (4.0 * c))).sum(-1)
    return k, sigma


def nearest_kgon(loss, c: int) -> tuple[np.ndarray, np.ndarray]:
    """(k, σ) of the loss level L(k, σ) (`kgon_losses(c)`) nearest to each loss.

    Args:
      loss: [...] losses.

    Returns:
      k, sigma: int arrays of shape [...].

    Example:
      >>> [int(a) for a in nearest_kgon(0.0690, 6)]
      [5, 0]
    """
    keys = list(kgon_losses(c))
    levels = np.array([kgon_losses(c)[key] for key in keys])
    nearest = np.argmin(np.abs(np.asarray(loss, np.float64)[..., None] - levels), axis=-1)
    ks, sigmas = np.array(keys).T
    return ks[nearest], sigmas[nearest]


def kgon_label(loss, c: int) -> np.ndarray:
    """The name (`kgon_name`) of the nearest loss level to each loss: a str array [...].

    Example:
      >>> kgon_label([0.1111, 0.0973, 0.0482], 6).tolist()
      ['4-gon', '4^{2+}-gon', '6-gon']
    """
    k, sigma = nearest_kgon(loss, c)
    names = [kgon_name(int(a), int(s)) for a, s in zip(np.ravel(k), np.ravel(sigma))]
    return np.array(names, dtype=object).reshape(np.shape(k))


def kgon_counts(W, b, threshold: float = NORM_THRESHOLD) -> dict[str, int]:
    """{name: how many solutions} of `classify_kgon`, in order of the loss level (lowest
    first); W: [..., H, F], b: [..., F].

    Example:
      >>> from toymodels import theory
      >>> g, h = theory.kgon(6, 4), theory.kgon(6, 5)
      >>> kgon_counts(np.stack([g.W, h.W, g.W]), np.stack([g.b, h.b, g.b]))
      {'5-gon': 1, '4-gon': 2}
    """
    k, sigma = classify_kgon(W, b, threshold)
    c = np.shape(W)[-1]
    pairs, counts = np.unique(np.stack([np.ravel(k), np.ravel(sigma)], -1), axis=0,
                              return_counts=True)
    order = np.argsort([kgon_losses(c)[(int(a), int(s))] for a, s in pairs])
    return {kgon_name(int(pairs[i][0]), int(pairs[i][1])): int(counts[i]) for i in order}
