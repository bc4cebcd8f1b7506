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
      learning_rate: [] peak learning rate of the schedule.
      weight_decay: [] weight decay on every parameter: decoupled for "adamw", an L2
        term added to the gradient for "adam", "sgd" and "momentum"
        (`toymodels.train.OPTIMIZERS`). Negative values pull the weights outward.
      l1_hidden: [] weight of the L1 penalty on the hidden activations (mean over the
        batch of Σ_k |h_k|; the paper's way to remove superposition).
      momentum: [] heavy-ball momentum of "momentum", in [0, 1).
      beta1, beta2: [] decay rates of Adam's first and second moments ("adam", "adamw").
      one_minus_beta1, one_minus_beta2: [] 1 − beta1 and 1 − beta2, taken in float64 on
        the host and then rounded (`complement`): a float32 subtraction on the device
        would lose 1.3e-5 of 1 − 0.999. Set with the betas; never set them alone.
      eps: [] Adam's ε, added to the root of the second moment.
      l1_weights: [] weight λ of the L1 penalty λ Σ|W| on the weight matrices (every
        entry of `ModelKind.weights`; not the bias), added to the training objective;
        or None: no such term at all (a static choice, so a run without the term keeps
        the bits it had before the term existed; λ = 0 gives the same weights up to
        rounding).
    """

    feature_probability: jax.Array
    importance: jax.Array
    dropout: jax.Array
    learning_rate: jax.Array
    weight_decay: jax.Array
    l1_hidden: jax.Array
    momentum: jax.Array
    beta1: jax.Array
    beta2: jax.Array
    one_minus_beta1: jax.Array
    one_minus_beta2: jax.Array
    eps: jax.Array
    l1_weights: jax.Array | None


def make_hyper(
    n_features: int,
    *,
    feature_probability: float | np.ndarray = 1.0,
    importance: float | np.ndarray = 1.0,
    dropout: float = 0.0,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.01,
    l1_hidden: float = 0.0,
    momentum: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    l1_weights: float | None = None,
) -> Hyper:
    """Builds one run's `Hyper` from Python values, broadcasting per-feature entries to [F].

    `l1_weights=None` (the default) leaves the L1 penalty on the weights out of the
    objective; a number, 0 included, puts it in (see `Hyper`).

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
        momentum=np.float32(momentum),
        beta1=np.float32(beta1),
        beta2=np.float32(beta2),
        one_minus_beta1=complement(beta1),
        one_minus_beta2=complement(beta2),
        eps=np.float32(eps),
        l1_weights=None if l1_weights is None else np.float32(l1_weights),
    )


def complement(beta: float | np.ndarray) -> np.ndarray:
    """1 − beta in float64, rounded to float32 (exact where a float32 1 − beta is not).

    Example:
      >>> float(complement(0.999)) == float(np.float32(0.001))
      True
    """
    return np.asarray(1.0 - np.asarray(beta, np.float64), np.float32)
