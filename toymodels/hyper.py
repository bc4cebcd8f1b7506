"""Swept hyperparameters: a pytree of traced arrays, one entry per run when batched.

A swept value is never closed over as a Python float (that would recompile per value);
it travels through `jax.vmap` as a leaf of `Hyper`.
"""

from __future__ import annotations

import jax
import numpy as np
from flax import struct


@struct.dataclass
class Hyper:
    """Per-run hyperparameters. Shapes for one run; a batch of R runs adds a leading axis.

    Attributes:
      feature_probability: [F] probability that each feature is non-zero (p = 1 - S).
      importance: [F] weight of each feature's squared error.
      dropout: [] inverted-dropout rate on the hidden vector during training.
      learning_rate: [] peak AdamW learning rate.
      weight_decay: [] decoupled AdamW weight decay (applied to every parameter).
      l1_hidden: [] weight of the L1 penalty on the hidden activations (mean over the
        batch of Σ_k |h_k|; the paper's way to remove superposition).
    """

    feature_probability: jax.Array
    importance: jax.Array
    dropout: jax.Array
    learning_rate: jax.Array
    weight_decay: jax.Array
    l1_hidden: jax.Array


def make_hyper(
    n_features: int,
    *,
    feature_probability: float | np.ndarray = 1.0,
    importance: float | np.ndarray = 1.0,
    dropout: float = 0.0,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.01,
    l1_hidden: float = 0.0,
) -> Hyper:
    """Builds one run's `Hyper` from Python values, broadcasting per-feature entries to [F].

    Example:
      >>> h = make_hyper(3, feature_probability=0.1, importance=[1.0, 0.7, 0.49])
      >>> h.feature_probability.shape, h.importance.shape
      ((3,), (3,))
    """
    per_feature = lambda v: np.broadcast_to(np.asarray(v, np.float32), (n_features,)).copy()
    return Hyper(
        feature_probability=per_feature(feature_probability),
        importance=per_feature(importance),
        dropout=np.float32(dropout),
        learning_rate=np.float32(learning_rate),
        weight_decay=np.float32(weight_decay),
        l1_hidden=np.float32(l1_hidden),
    )
