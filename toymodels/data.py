"""Per-step random draws and the batches built from them.

Runs that share a seed share their draws (common random numbers): the uniforms are drawn
once per seed and step (`sample_noise`), and each run turns them into its own batch with
its own traced hyperparameters (`make_batch`, `dropout_keep`). One uniform per entry
serves both the on/off decision and the value: given u < p, u / p is Uniform[0, 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from toymodels import threefry
from toymodels.spec import DataSpec, Spec


@struct.dataclass
class Noise:
    """The uniforms one seed draws for one step.

    Batches are matrices with one example per column ([F, B]): the layout that makes the
    model's matmuls fastest on CPU (measured in benchmarks/).

    Attributes:
      values: [F, B] Uniform[0, 1): independent features are active iff values < p_i;
        otherwise the values of active features.
      dropout: [H, B] Uniform[0, 1): hidden unit k is kept iff dropout >= rate.
      sets: [F // set_size, B] Uniform[0, 1) (correlated and anticorrelated sets only;
        [0, B] otherwise): set s is on iff sets < p, and u / p picks its active member.
    """

    values: jax.Array
    dropout: jax.Array
    sets: jax.Array


def sample_noise(key: jax.Array, spec: Spec, batch: int | None = None) -> Noise:
    """Draws one step's uniforms for one seed; the key is consumed.

    The values are those of `jax.random.uniform`, computed by `toymodels.threefry`.
    `batch` overrides B (the evaluation uses `toymodels.spec.EVAL_BATCH`).
    """
    values_key, dropout_key, sets_key = jax.random.split(key, 3)
    B = spec.train.batch_size if batch is None else batch
    F, H = spec.model.n_features, spec.model.n_hidden
    n_sets = 0 if spec.data.correlation == "independent" else F // spec.data.set_size
    return Noise(
        values=threefry.uniform(values_key, (F, B)),
        dropout=threefry.uniform(dropout_key, (H, B)),
        sets=threefry.uniform(sets_key, (n_sets, B)),
    )


def sample_inputs(noise: Noise, feature_probability: jax.Array, data: DataSpec,
                  signed: bool = False) -> jax.Array:
    """Inputs x: [F, B] for one run: which features are on, then their magnitudes.

    Args:
      noise: the seed's draws for this step.
      feature_probability: [F] p_i (for sets, the set's probability is its members' p).
      data: the static structure (correlation, set size, magnitude).
      signed: values in [-1, 1) instead of [0, 1) (the absolute-value task).
    """
    if data.correlation == "independent":
        unit = make_batch(noise.values, feature_probability)
        active = noise.values < feature_probability[:, None]
    else:
        active = set_active(noise.sets, feature_probability, data)
        unit = jnp.where(active, noise.values, 0.0)
    value = MAGNITUDES[data.magnitude](unit)
    value = 2.0 * value - 1.0 if signed else value
    return jnp.where(active, value, 0.0)


def set_active(sets: jax.Array, feature_probability: jax.Array, data: DataSpec) -> jax.Array:
    """[F, B] bool: which features of correlated / anticorrelated sets are on."""
    k = data.set_size
    u = jnp.repeat(sets, k, axis=0)  # [F, B]: each feature sees its set's uniform
    p = feature_probability[:, None]
    on = u < p
    if data.correlation == "correlated":
        return on
    member = jnp.floor(u / jnp.maximum(p, 1e-30) * k)  # Uniform over 0..k-1 given on
    position = (jnp.arange(sets.shape[0] * k) % k)[:, None]
    return on & (member == position)


MAGNITUDES = {
    "uniform": lambda u: u,
    "exponential": lambda u: -0.5 * jnp.log1p(-u),  # mean 1/2, like Uniform[0, 1)
    "constant": lambda u: jnp.ones_like(u),
}


def make_batch(values: jax.Array, feature_probability: jax.Array) -> jax.Array:
    """Sparse inputs x: [F, B] from uniforms `values: [F, B]` and p: [F].

    Each feature is non-zero with probability p_i and then Uniform[0, 1).

    Example:
      >>> make_batch(jnp.array([[0.05], [0.5]]), jnp.array([0.1, 0.1]))
      Array([[0.5],
             [0. ]], dtype=float32)
    """
    p = feature_probability[:, None]
    return jnp.where(values < p, values / jnp.maximum(p, 1e-30), 0.0)


def dropout_keep(values: jax.Array, rate: jax.Array) -> jax.Array:
    """Inverted-dropout multipliers `[H, B]`: 0 with probability `rate`, else 1/(1-rate)."""
    return jnp.where(values >= rate, 1.0 / (1.0 - rate), 0.0)
