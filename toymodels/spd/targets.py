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

The residual MLP of one layer (`toymodels.compute.model`, issue 27) is the second kind of
target (`ResidualTarget`): x [n] -> r = W_E x -> a = ReLU(W_in r + b_in) -> y = W_U (r +
W_out a + b_out) (identity_relu; relu and abs drop the stream r). Its decomposed matrices
are the MLP's `W_in` [d_mlp, d_embed] and `W_out` [d_embed, d_mlp], as in the SPD paper's
residual-MLP experiments; the embedding W_E, the readout W_U (W_Eᵀ or learned) and the
biases b_in, b_out are fixed parts of the forward pass, not decomposed (like the TMS bias).
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
RESIDUAL_MATRICES = ("W_in", "W_out")  # the residual MLP's, in forward order
RESIDUAL_MATRIX_DIMS = {"W_in": ("neuron", "embed"), "W_out": ("embed", "neuron")}
RESIDUAL_ARRAYS = ("W_E", "W_in", "W_out", "b_in", "b_out", "W_U")  # a residual run's
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


@struct.dataclass
class ResidualTarget:
    """One residual-MLP target of one layer (a pytree: vmapped over runs by the trainer).

    Attributes:
      weights: {"W_in": [k, D], "W_out": [D, k]} the decomposed matrices (k = d_mlp,
        D = d_embed).
      W_E: [D, n] the embedding; W_U: [n, D] the readout (W_Eᵀ or learned); b_in: [k];
        b_out: [D] (zeros for a model without biases). Fixed, not decomposed.
      stream: whether the output reads the residual stream r too (identity_relu), static.
    """

    weights: dict
    W_E: jax.Array
    W_U: jax.Array
    b_in: jax.Array
    b_out: jax.Array
    stream: bool = struct.field(pytree_node=False, default=True)


def residual_target(arrays: dict, stream: bool) -> ResidualTarget:
    """The target of a one-layer residual MLP from its arrays {W_E [D, n], W_in [k, D],
    W_out [D, k], b_in [k], b_out [D], W_U [n, D]} (one model; `RESIDUAL_ARRAYS`)."""
    a = {k: jnp.asarray(arrays[k], jnp.float32) for k in RESIDUAL_ARRAYS}
    return ResidualTarget({"W_in": a["W_in"], "W_out": a["W_out"]}, a["W_E"], a["W_U"],
                          a["b_in"], a["b_out"], stream)


def residual_shapes(d_embed: int, d_mlp: int) -> dict[str, tuple[int, int]]:
    """{name: (d_out, d_in)} of a one-layer residual MLP's decomposed matrices."""
    return {"W_in": (d_mlp, d_embed), "W_out": (d_embed, d_mlp)}


def n_inputs(target) -> int:
    """n, the input features of a target (static)."""
    return target.W_E.shape[1] if isinstance(target, ResidualTarget) else target.b.shape[0]


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


def forward(target, linear: Linear, x: jax.Array) -> tuple[jax.Array, dict]:
    """The forward pass of ONE example with each matrix applied by `linear`: a TMS
    `Target` (below) or a `ResidualTarget` (`residual_forward`).

    Args:
      target: its bias is read (the matrices are `linear`'s business).
      linear: `linear(name, a)` -> the matrix `name` applied to a.
      x: [n] one input.

    Returns:
      (y [n] = ReLU(W_out (W_hidden) W_in x + b), {name: the activation a entering it}).
    """
    if isinstance(target, ResidualTarget):
        return residual_forward(target, linear, x)
    inputs = {"W_in": x}
    h = linear("W_in", x)
    if "W_hidden" in target.weights:
        inputs["W_hidden"] = h
        h = linear("W_hidden", h)
    inputs["W_out"] = h
    return jax.nn.relu(linear("W_out", h) + target.b), inputs


def residual_forward(target: ResidualTarget, linear: Linear, x: jax.Array
                     ) -> tuple[jax.Array, dict]:
    """The one-layer residual MLP on ONE example x [n] with W_in, W_out applied by `linear`.

    Returns:
      (y [n] = W_U (r + W_out a + b_out) (without r unless `stream`), {"W_in": r = W_E x
      [D], "W_out": a = ReLU(W_in r + b_in) [k]}).
    """
    r = target.W_E @ x
    a = jax.nn.relu(linear("W_in", r) + target.b_in)
    out = linear("W_out", a) + target.b_out
    return target.W_U @ (r + out if target.stream else out), {"W_in": r, "W_out": a}


def target_linear(target) -> Linear:
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


__all__ = ["MATRIX_DIMS", "RESIDUAL_ARRAYS", "RESIDUAL_MATRICES", "RESIDUAL_MATRIX_DIMS",
           "TMS_MATRICES", "Linear", "ResidualTarget", "Target", "forward", "hand_W", "hand_b",
           "matrix_names", "n_inputs", "residual_forward", "residual_shapes",
           "residual_target", "shapes", "target_linear", "tms_target"]
