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

from toymodels.spec import Spec


@struct.dataclass
class Noise:
    """The uniforms one seed draws for one step.

    Batches are matrices with one example per column ([F, B]): the layout that makes the
    model's matmuls fastest on CPU (measured in benchmarks/).

    Attributes:
      values: [F, B] Uniform[0, 1): feature i is active iff values < p_i.
      dropout: [H, B] Uniform[0, 1): hidden unit k is kept iff dropout >= rate.
    """

    values: jax.Array
    dropout: jax.Array


def sample_noise(key: jax.Array, spec: Spec) -> Noise:
    """Draws one step's uniforms for one seed; the key is consumed."""
    values_key, dropout_key = jax.random.split(key)
    B, F, H = spec.train.batch_size, spec.model.n_features, spec.model.n_hidden
    return Noise(
        values=jax.random.uniform(values_key, (F, B), jnp.float32),
        dropout=jax.random.uniform(dropout_key, (H, B), jnp.float32),
    )


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
