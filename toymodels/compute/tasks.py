"""The tasks: labels of ONE example, the input law of a batch, the weighted loss.

Labels (x [n] one example, G = W_EᵀW_E [n, n], s the traced `label_mixing`):
  identity_relu  y = x + ReLU(x) + s (G − I) x   (Braun et al. 2025's compressed computation)
  relu           y = ReLU(x) + s (G − I) x
  abs            y = |x| + s (G − I) x
  uand           y = (x_i x_j for i < j, row-major) [n(n − 1)/2]   (Hänni et al. 2024)
Inputs: the toy models' laws (`toymodels.data.sample_inputs`) from the same uniforms, with
signed values Uniform[-1, 1) for the real-valued tasks and 0/1 for uand (magnitude 1).
Loss of one example: Σ_i I_i (ŷ_i − y_i)² / n_outputs (I the importances; 1 for uand).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from toymodels import data
from toymodels.compute import model
from toymodels.residual_config import SIGNED_TASKS, ResidualSpec
from toymodels.spec import DataSpec

BASE_LABELS = {"identity_relu": lambda x: x + jax.nn.relu(x), "relu": jax.nn.relu,
               "abs": jnp.abs}


def pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(i [P], j [P]) the pairs i < j in row-major order, P = n(n − 1)/2 (static)."""
    return np.triu_indices(n, 1)


def labels(x: jax.Array, gram: jax.Array, s: jax.Array, spec: ResidualSpec) -> jax.Array:
    """y [n_outputs] of ONE example x [n]; gram [n, n] = W_EᵀW_E; s [] the label mixing.

    Example:
      >>> spec = ResidualSpec(3, 4, 2, 1, (2,))
      >>> labels(jnp.array([-0.5, 0.0, 1.0]), jnp.eye(3), 0.0, spec).tolist()
      [-0.5, 0.0, 2.0]
    """
    if spec.task == "uand":
        i, j = pairs(spec.n_features)
        return x[i] * x[j]
    return BASE_LABELS[spec.task](x) + s * (gram @ x - x)


def input_law(spec: ResidualSpec, law: DataSpec) -> DataSpec:
    """The input law of a task: uand's values are exactly 1 (boolean inputs)."""
    return dataclasses.replace(law, magnitude="constant") if spec.task == "uand" else law


def sample(noise: data.Noise, feature_probability: jax.Array, law: DataSpec,
           spec: ResidualSpec) -> jax.Array:
    """[B, n] a batch of inputs from one draw's uniforms (`toymodels.data.sample_noise`):
    the toy models' input law, signed for the real-valued tasks, boolean for uand."""
    x = data.sample_inputs(noise, feature_probability, input_law(spec, law),
                           signed=spec.task in SIGNED_TASKS)
    return x.T


def output_weights(importance: jax.Array, spec: ResidualSpec) -> jax.Array:
    """[n_outputs] the weight of each output's squared error: I, or 1 for uand."""
    return jnp.ones(spec.n_outputs, jnp.float32) if spec.task == "uand" else importance


def squared_errors(params: model.Params, x: jax.Array, s: jax.Array,
                   spec: ResidualSpec) -> jax.Array:
    """[B, n_outputs] (ŷ − y)² of a batch x [B, n] for one model (`model.forward` by
    way of `model.fold`: the maps between n, d_mlp and the outputs, once per batch)."""
    W_E = params["W_E"]
    gram = W_E.T @ W_E
    folded = model.fold(params, spec)
    forward = jax.vmap(model.forward_folded, in_axes=(None, None, 0, None))
    y_hat = forward(folded, params.get("R"), x, spec)
    y = jax.vmap(labels, in_axes=(0, None, None, None))(x, gram, s, spec)
    return (y_hat - y) ** 2


def example_losses(params: model.Params, x: jax.Array, s: jax.Array, importance: jax.Array,
                   spec: ResidualSpec) -> jax.Array:
    """[B] Σ_i I_i (ŷ_i − y_i)² / n_outputs of each example of x [B, n]."""
    errors = squared_errors(params, x, s, spec)
    return errors @ output_weights(importance, spec) / spec.n_outputs


def loss(params: model.Params, x: jax.Array, s: jax.Array, importance: jax.Array,
         spec: ResidualSpec) -> jax.Array:
    """[] the importance-weighted per-output mean squared error, averaged over the batch."""
    return jnp.mean(example_losses(params, x, s, importance, spec))
