"""Basis alignment: are the feature directions aligned with the hidden coordinate axes?

The loss of the tied models depends on W only through WᵀW, so SGD, momentum and weight
decay are equivariant under any rotation O of the hidden space (training O W₀ gives O W);
Adam's per-coordinate scaling is equivariant only under signed permutations. A privileged
hidden basis in a model without a hidden nonlinearity can therefore only come from the
optimiser (or from dropout).

The measure: for each represented feature (||W_i|| > `metrics.REPRESENTED_NORM`), the
mean-centred kurtosis of its m = H hidden coordinates,

  κ_i = m Σ_k (W_ki − w̄_i)⁴ / (Σ_k (W_ki − w̄_i)²)²,   w̄_i = mean_k W_ki,

averaged over the represented features (`basis_kurtosis`). A column along one axis has
the largest value, m − 2 + 1/(m − 1) (3.25 at m = 5); one spread evenly over ±1
entries has 1. The null, a random rotation of the hidden space (O Haar-distributed),
makes each column a uniformly random direction of its length, whose centred kurtosis has
the mean of m i.i.d. normals whatever W is:

  E κ = m E[Σ d_k⁴] / E[(Σ d_k²)²] = m · 3(m − 1)²/m / ((m − 1)(m + 1)) = 3(m − 1)/(m + 1)

(d the centred normals: Σ d² ~ χ²_{m−1} is independent of the direction). That is 2.0 at
m = 5 and exactly 1 at m = 2, where κ ≡ 1 for every W (the two centred entries are ±a):
the measure says nothing at m = 2, and is undefined (NaN) at m = 1. The large-m value 3
is not the null for small m.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toymodels.analysis.metrics import REPRESENTED_NORM


def centred_kurtosis(W: jax.Array) -> jax.Array:
    """[F] κ_i of each column of W: [H, F] over its H entries (NaN for a constant
    column, e.g. H = 1).

    Example:
      >>> round(float(centred_kurtosis(jnp.eye(5)[:, :1])[0]), 5)  # m - 2 + 1/(m - 1)
      3.25
    """
    d = W - jnp.mean(W, axis=0, keepdims=True)
    m2 = jnp.sum(d**2, axis=0)
    return W.shape[0] * jnp.sum(d**4, axis=0) / jnp.where(m2 > 0, m2**2, jnp.nan)


def basis_kurtosis(W: jax.Array) -> jax.Array:
    """[] the mean of `centred_kurtosis` over the represented features (NaN if none)."""
    represented = jnp.linalg.norm(W, axis=0) > REPRESENTED_NORM
    k = jnp.where(represented, centred_kurtosis(W), 0.0)
    n = jnp.sum(represented)
    return jnp.where(n > 0, jnp.sum(k) / jnp.maximum(n, 1), jnp.nan)


def kurtosis_null(m: int) -> float:
    """E κ of a uniformly random direction in R^m (a random rotation's mean):
    3(m − 1)/(m + 1); NaN for m < 2.

    Example:
      >>> kurtosis_null(5), kurtosis_null(2)
      (2.0, 1.0)
    """
    return 3.0 * (m - 1) / (m + 1) if m >= 2 else float("nan")


N_ROTATIONS = 256  # random rotations of the per-run null (`rotation_pvalue`)


def haar_rotations(key: jax.Array, m: int, n: int = N_ROTATIONS) -> jax.Array:
    """[n, m, m] Haar-random orthogonal matrices (QR of Gaussians, signs of R's diagonal
    folded into Q)."""
    q, r = jnp.linalg.qr(jax.random.normal(key, (n, m, m)))
    return q * jnp.sign(jnp.diagonal(r, axis1=1, axis2=2))[:, None, :]


def rotation_pvalue(W: jax.Array, key: jax.Array) -> jax.Array:
    """[] the fraction of `N_ROTATIONS` random rotations O (drawn from `key`) with
    basis_kurtosis(O W) >= basis_kurtosis(W): the run's own null, which keeps its
    geometry (how many distinct directions, their lengths) and removes only its
    orientation. Uniform on [0, 1] for an optimiser that is rotation-equivariant from a
    rotation-invariant init; small when the columns lean towards the axes."""
    rotated = jax.vmap(basis_kurtosis)(haar_rotations(key, W.shape[0]) @ W)
    return jnp.mean(rotated >= basis_kurtosis(W) - 1e-6)


def basis_one(W: jax.Array) -> dict:
    """The basis-alignment variables of ONE run `W: [H, F]`: `basis_kurtosis` and its mean
    under a random rotation `basis_kurtosis_null` (3(m − 1)/(m + 1)), both []."""
    return {"basis_kurtosis": basis_kurtosis(W),
            "basis_kurtosis_null": jnp.float32(kurtosis_null(W.shape[0]))}


def basis_p_one(W: jax.Array) -> dict:
    """The run's own null of ONE run `W: [H, F]`: `basis_kurtosis_p` []
    (`rotation_pvalue`, `N_ROTATIONS` rotations from the fixed key 0). It costs
    `N_ROTATIONS` kurtoses per run, so `analyze` adds it only on request."""
    return {"basis_kurtosis_p": rotation_pvalue(W, jax.random.key(0))}
