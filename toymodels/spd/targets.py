"""Targets of a parameter decomposition: the model whose weight matrices SPD splits.

A target is its decomposed weight matrices `{name: W [d_out, d_in]}` plus the fixed parts
of its forward pass (here the output bias b and the ReLU), written for ONE example.
For the toy model of superposition (relu_output, x' = ReLU(Wᵀ(W x) + b), W [d, n]) the
matrices are `W_in = W` [d, n] and `W_out = Wᵀ` [n, d], decomposed separately (as the SPD
paper does for its tied TMS), and with `identity` a third `W_hidden = I_d` [d, d] between
them (h -> I h, the paper's TMS+ID). The bias is not decomposed.

`forward(target, linear, x)` runs the target with each matrix applied by `linear(name, a)`:
the target's own `W a`, or a decomposition's masked `Uᵀ (m ⊙ V a)`
(`toymodels.spd.decomposition`). It also returns the activation `a` entering every matrix,
what the causal-importance functions read.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

TMS_MATRICES = ("W_in", "W_hidden", "W_out")  # in forward order; W_hidden with identity
# dims of each matrix in a Dataset: (rows, columns) = (d_out, d_in)
MATRIX_DIMS = {"W_in": ("hidden", "feature"), "W_hidden": ("hidden_out", "hidden"),
               "W_out": ("feature", "hidden")}
Linear = Callable[[str, jax.Array], jax.Array]  # linear(name, a [d_in]) -> [d_out]


@struct.dataclass
class Target:
    """One TMS target (a pytree: vmapped over runs by the trainer).

    Attributes:
      weights: {name: [d_out, d_in]}: W_in [d, n], W_out [n, d] and, with identity,
        W_hidden [d, d].
      b: [n] the output bias (fixed, not decomposed).
    """

    weights: dict
    b: jax.Array


def matrix_names(identity: bool) -> tuple[str, ...]:
    """The decomposed matrices of a TMS target, in forward order."""
    return TMS_MATRICES if identity else ("W_in", "W_out")


def shapes(n_features: int, n_hidden: int, identity: bool) -> dict[str, tuple[int, int]]:
    """{name: (d_out, d_in)} of a TMS target with n features and d hidden dims."""
    n, d = n_features, n_hidden
    all_shapes = {"W_in": (d, n), "W_hidden": (d, d), "W_out": (n, d)}
    return {name: all_shapes[name] for name in matrix_names(identity)}


def tms_target(W, b, identity: bool = False) -> Target:
    """The target of a relu_output toy model W [d, n], b [n] (numpy or jax, one model).

    Example:
      >>> t = tms_target(np.ones((2, 5)), np.zeros(5), identity=True)
      >>> {k: v.shape for k, v in sorted(t.weights.items())}
      {'W_hidden': (2, 2), 'W_in': (2, 5), 'W_out': (5, 2)}
    """
    W = jnp.asarray(W, jnp.float32)
    weights = {"W_in": W, "W_out": W.T}
    if identity:
        weights["W_hidden"] = jnp.eye(W.shape[0], dtype=jnp.float32)
    return Target(weights, jnp.asarray(b, jnp.float32))


def forward(target: Target, linear: Linear, x: jax.Array) -> tuple[jax.Array, dict]:
    """The TMS forward pass of ONE example with each matrix applied by `linear`.

    Args:
      target: its bias is read (the matrices are `linear`'s business).
      linear: `linear(name, a)` -> the matrix `name` applied to a.
      x: [n] one input.

    Returns:
      (y [n] = ReLU(W_out (W_hidden) W_in x + b), {name: the activation a entering it}).
    """
    inputs = {"W_in": x}
    h = linear("W_in", x)
    if "W_hidden" in target.weights:
        inputs["W_hidden"] = h
        h = linear("W_hidden", h)
    inputs["W_out"] = h
    return jax.nn.relu(linear("W_out", h) + target.b), inputs


def target_linear(target: Target) -> Linear:
    """`linear` of the target's own matrices: W a."""
    return lambda name, a: target.weights[name] @ a


def hand_W(n_features: int, n_hidden: int) -> np.ndarray:
    """[d, n] a hand-built model of k = n known rank-1 pieces per matrix (feature i's
    piece of W_in is W[:, i] e_iᵀ): with d = 2 the n unit vectors of a regular n-gon
    (angle 2πi/n), with d >= n the first n basis vectors (every feature dedicated).

    Raises:
      ValueError: 2 < d < n (no hand-built geometry).
    """
    n, d = n_features, n_hidden
    if d == 2:
        angle = 2 * np.pi * np.arange(n) / n
        return np.stack([np.cos(angle), np.sin(angle)]).astype(np.float32)
    if d >= n:
        return np.eye(d, n, dtype=np.float32)
    raise ValueError(f"a hand-built target needs n_hidden = 2 or n_hidden >= n_features, got "
                     f"{n} -> {d}")


def hand_b(n_features: int, n_hidden: int) -> np.ndarray:
    """[n] the hand-built model's bias: 0 (its pieces need no bias to be identifiable)."""
    del n_hidden
    return np.zeros(n_features, np.float32)


__all__ = ["MATRIX_DIMS", "TMS_MATRICES", "Linear", "Target", "forward", "hand_W", "hand_b",
           "matrix_names", "shapes", "target_linear", "tms_target"]
