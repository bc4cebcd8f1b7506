"""Per-feature metrics of ONE model's weights (Elhage et al. 2022, REFERENCE 1.5).

Role in the data flow: `load(dir)` -> xarray.Dataset -> `analyze(ds)`, which vmaps the
functions below over the flat run axis R in one place (`toymodels.analysis.variables`).
Everything here is pure `jax.numpy` on a single `W: [H, F]` (column `W[:, i]` is feature
i's direction), free of Python control flow on values, so it jits and vmaps.

Thresholds (REFERENCE 8; the paper uses colour scales; these are this project's cuts):
  * represented: ||W_i|| > `REPRESENTED_NORM` = 0.5;
  * dedicated vs in superposition: the interference of a represented feature with the
    other *represented* features, sum_{j != i, represented} (What_i . W_j)^2, is at most
    `SUPERPOSITION_THRESHOLD` = 0.1 for `dedicated`. Tiny unlearned vectors are left
    out because their normalised interference is large and meaningless.
"""

import jax
import jax.numpy as jnp

NORM_CLAMP = 1e-6  # floor on ||W_i|| when normalising, as the paper's notebook does
REPRESENTED_NORM = 0.5  # ||W_i|| above this: feature i is represented
SUPERPOSITION_THRESHOLD = 0.1  # represented interference above this: superposition
PHASES = ("unrepresented", "dedicated", "superposition")  # `phase` codes 0, 1, 2

_HIGHEST = jax.lax.Precision.HIGHEST  # float32 matmuls on CPU and GPU alike


def feature_norms(W: jax.Array) -> jax.Array:
    """Representation strength ||W_i|| of every feature.

    Args:
      W: [H, F] weights; column i is feature i's direction.

    Returns:
      [F] column norms.

    Example:
      >>> feature_norms(jnp.array([[3.0, 0.0], [4.0, 0.0]]))
      Array([5., 0.], dtype=float32)
    """
    return jnp.sqrt(jnp.sum(jnp.square(W), axis=0))


def unit_columns(W: jax.Array) -> jax.Array:
    """What_i = W_i / max(||W_i||, 1e-6) (the notebook's clamp); [H, F] -> [H, F].

    Example:
      >>> unit_columns(jnp.array([[3.0, 0.0], [4.0, 0.0]]))
      Array([[0.6, 0. ],
             [0.8, 0. ]], dtype=float32)
    """
    return W / jnp.maximum(feature_norms(W), NORM_CLAMP)[None, :]


def _self_and_total(W: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(What_i . W_i, sum_j (What_i . W_j)^2) for every i; both [F].

    The sum is What_i^T (W W^T) What_i, computed through the [H, H] frame operator in
    O(F H^2) instead of the [F, F] Gram matrix.
    """
    w_hat = unit_columns(W)
    frame = jnp.einsum("hj,kj->hk", W, W, precision=_HIGHEST)
    total = jnp.einsum("hi,hk,ki->i", w_hat, frame, w_hat, precision=_HIGHEST)
    return jnp.sum(w_hat * W, axis=0), total


def superposition(W: jax.Array) -> jax.Array:
    """Interference of each feature, sum_{j != i} (What_i . W_j)^2 (the paper's).

    0 means orthogonal to every other feature; >= 1 means some group of other features
    activates W_i as strongly as feature i itself.

    Args:
      W: [H, F] weights.

    Returns:
      [F] interference; 0 for a zero column (norms are clamped at 1e-6).

    Example:
      >>> superposition(jnp.array([[1.0, -1.0, 0.0]]))
      Array([1., 1., 0.], dtype=float32)
    """
    own, total = _self_and_total(W)
    return jnp.maximum(total - jnp.square(own), 0.0)


def _ratio_or_zero(num: jax.Array, den: jax.Array) -> jax.Array:
    """num / den where den > 0, else exactly 0 (no NaN, also under autodiff)."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


def feature_dimensionality(W: jax.Array) -> jax.Array:
    """Fractional dimensionality D_i = ||W_i||^2 / sum_j (What_i . W_j)^2.

    Known values: 1 dedicated, 3/4 tetrahedron, 2/3 triangle, 1/2 antipodal pair,
    2/5 pentagon, 3/8 square antiprism, 0 unlearned. Always 0 <= D_i <= 1 and
    sum_i D_i <= rank(W) <= H. Computed as (What_i . W_i)^2 / sum_j (What_i . W_j)^2,
    which does not depend on how What_i was normalised: it equals the formula above
    whenever ||W_i|| >= 1e-6 and, unlike the clamped formula, stays in [0, 1] below it.

    Args:
      W: [H, F] weights.

    Returns:
      [F] dimensionalities; exactly 0 for a zero column.

    Example:
      >>> feature_dimensionality(jnp.array([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]))
      Array([0.5, 0.5, 1. ], dtype=float32)
    """
    own, total = _self_and_total(W)
    return jnp.minimum(_ratio_or_zero(jnp.square(own), total), 1.0)


def dims_per_feature(W: jax.Array) -> jax.Array:
    """Dimensions per feature D* = H / ||W||_F^2 (REFERENCE 1.9's plot axis).

    Args:
      W: [H, F] weights.

    Returns:
      Scalar; `inf` for an all-zero W (no feature uses any dimension).

    Example:
      >>> dims_per_feature(jnp.array([[1.0, -1.0], [0.0, 0.0]]))
      Array(1., dtype=float32)
    """
    return W.shape[0] / jnp.sum(jnp.square(W))


def represented(W: jax.Array, threshold: float = REPRESENTED_NORM) -> jax.Array:
    """Which features are represented, ||W_i|| > threshold; [H, F] -> [F] bool.

    Example:
      >>> represented(jnp.array([[1.0, 0.4]]))
      Array([ True, False], dtype=bool)
    """
    return feature_norms(W) > threshold


def n_represented(W: jax.Array, threshold: float = REPRESENTED_NORM) -> jax.Array:
    """Number of features with ||W_i|| > threshold.

    Args:
      W: [H, F] weights.
      threshold: norm cut-off (default 0.5).

    Returns:
      Scalar int32 count.

    Example:
      >>> n_represented(jnp.array([[1.0, 0.4, -0.9]]))
      Array(2, dtype=int32)
    """
    return jnp.sum(represented(W, threshold), dtype=jnp.int32)


def represented_interference(W: jax.Array, feature: int = -1) -> jax.Array:
    """Interference of one feature with the represented others, [H, F] -> scalar.

    sum_{j != f, ||W_j|| > 0.5} (What_f . W_j)^2; unlearned vectors are left out.

    Example:
      >>> represented_interference(jnp.array([[1.0, 0.3, -0.6]]), feature=1)
      Array(1.36, dtype=float32)
    """
    row = jnp.einsum("h,hj->j", unit_columns(W)[:, feature], W, precision=_HIGHEST)
    others = jnp.arange(W.shape[1]) != jnp.arange(W.shape[1])[feature]
    return jnp.sum(jnp.where(represented(W) & others, jnp.square(row), 0.0))


def phase(W: jax.Array, feature: int = -1) -> jax.Array:
    """Phase-diagram outcome for one feature, as an index into `PHASES`.

    0 `unrepresented`: ||W_f|| <= 0.5. 1 `dedicated`: represented and its interference
    with the other represented features is <= 0.1. 2 `superposition`: otherwise.

    Args:
      W: [H, F] weights.
      feature: which feature (default the last, the paper's "extra" feature).

    Returns:
      Scalar int32 code; `PHASES[code]` is its name.

    Example:
      >>> PHASES[int(phase(jnp.array([[1.0, -1.0]])))]
      'superposition'
    """
    is_rep = represented(W)[feature]
    clean = represented_interference(W, feature) <= SUPERPOSITION_THRESHOLD
    return jnp.where(is_rep, jnp.where(clean, 1, 2), 0).astype(jnp.int32)
