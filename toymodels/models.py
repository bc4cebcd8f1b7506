"""Model kinds: per-model parameter init and a forward pass for ONE model.

Each kind is an entry of the `MODELS` registry; the trainer never names a kind, so new
kinds need no change elsewhere. Weights follow the paper's layout: `W` is `[H, F]` and
column `W[:, i]` is feature i's direction. A batch is a matrix with one example per column,
`x: [F, B]`, so the forward pass is `W.T @ (W @ x)`: two matmuls with a long B axis, about
twice as fast on CPU as a per-example function vmapped over the batch (benchmarks/).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from toymodels.spec import ModelSpec

Params = dict[str, jax.Array]
HIGHEST = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class ModelKind:
    """One entry of the registry.

    Attributes:
      init: (key, ModelSpec) -> Params for one model; the key is consumed.
      forward: (params, x [F, B], keep [H, B]) -> x_hat [F, B]; `keep` is the dropout
        multiplier on the hidden vectors (all ones at evaluation).
      dims: the dataset dims of each parameter, e.g. {"W": ("hidden", "feature")}.
      description: one line for `--help` and docs.
    """

    init: Callable[[jax.Array, ModelSpec], Params]
    forward: Callable[[Params, jax.Array, jax.Array], jax.Array]
    dims: dict[str, tuple[str, ...]]
    description: str


def init_tied(key: jax.Array, spec: ModelSpec) -> Params:
    """Xavier-normal `W: [H, F]` per model (std sqrt(2 / (F + H))) and a zero bias `b: [F]`."""
    std = jnp.sqrt(2.0 / (spec.n_features + spec.n_hidden))
    W = std * jax.random.normal(key, (spec.n_hidden, spec.n_features), jnp.float32)
    return {"W": W, "b": jnp.zeros((spec.n_features,), jnp.float32)}


def _tied(params: Params, x: jax.Array, keep: jax.Array) -> jax.Array:
    """Wᵀ (keep ⊙ W x) + b for a batch x: [F, B]; returns [F, B]."""
    h = jnp.dot(params["W"], x, precision=HIGHEST) * keep
    return jnp.dot(params["W"].T, h, precision=HIGHEST) + params["b"][:, None]


def forward_linear(params: Params, x: jax.Array, keep: jax.Array) -> jax.Array:
    """x' = Wᵀ W x + b (the paper's linear model)."""
    return _tied(params, x, keep)


def forward_relu_output(params: Params, x: jax.Array, keep: jax.Array) -> jax.Array:
    """x' = ReLU(Wᵀ W x + b) (the paper's ReLU-output model)."""
    return jax.nn.relu(_tied(params, x, keep))


TIED_DIMS = {"W": ("hidden", "feature"), "b": ("feature",)}

MODELS: dict[str, ModelKind] = {
    "linear": ModelKind(init_tied, forward_linear, TIED_DIMS, "x' = WᵀWx + b"),
    "relu_output": ModelKind(
        init_tied, forward_relu_output, TIED_DIMS, "x' = ReLU(WᵀWx + b)"
    ),
}


def get_model(kind: str) -> ModelKind:
    """Looks up a model kind; an unknown name raises a ValueError listing the valid ones."""
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}; valid: {', '.join(MODELS)}")
    return MODELS[kind]
