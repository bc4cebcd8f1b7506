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

from toymodels import data, threefry
from toymodels.compute import model
from toymodels.residual_config import SIGNED_TASKS, ResidualSpec
from toymodels.spec import DataSpec, Spec

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


def sample_noise(key: jax.Array, spec: Spec, batch: int | None = None) -> data.Noise:
    """One seed's draw for one step of a residual sweep: the uniforms of
    `toymodels.data.sample_noise(key, spec, batch)`, the same bits, with values in the
    batch-major layout [B, n] (`threefry.uniform_transposed`: the inputs are [B, n], and
    XLA's transpose of [n, B] cost ~1.2 ms of a 5.4 ms step at n = 100, B = 2048), sets
    [n_set_rows, B] as drawn, and no dropout uniforms (a residual MLP has no dropout:
    [0, B]); the key is consumed."""
    values_key, _, sets_key = jax.random.split(key, 3)
    B = spec.train.batch_size if batch is None else batch
    n = spec.residual.n_features
    return data.Noise(values=threefry.uniform_transposed(values_key, (n, B)),
                      dropout=jnp.zeros((0, B), jnp.float32),
                      sets=threefry.uniform(sets_key, (data.n_set_rows(spec.data, n), B)))


def sample(noise: data.Noise, feature_probability: jax.Array, law: DataSpec,
           spec: ResidualSpec) -> jax.Array:
    """[B, n] a batch of inputs from one draw's uniforms (`sample_noise`, values [B, n]):
    the toy models' input law (`toymodels.data.sample_inputs`), signed for the
    real-valued tasks, boolean for uand."""
    law, signed = input_law(spec, law), spec.task in SIGNED_TASKS
    if law.inputs == "bernoulli" and law.correlation == "independent" and not law.unit_norm:
        # `data.bernoulli_inputs` written batch-major: the same values, no transpose
        u, p = noise.values, feature_probability[None, :]
        unit = jnp.where(u < p, u / jnp.maximum(p, 1e-30), 0.0)
        return jnp.where(u < p, data.magnitude(unit, law, signed), 0.0)
    x = data.sample_inputs(noise.replace(values=noise.values.T), feature_probability, law,
                           signed=signed)
    return x.T


def output_weights(importance: jax.Array, spec: ResidualSpec) -> jax.Array:
    """[n_outputs] the weight of each output's squared error: I, or 1 for uand."""
    return jnp.ones(spec.n_outputs, jnp.float32) if spec.task == "uand" else importance


def error_map(read: jax.Array | None, gram: jax.Array, s: jax.Array) -> jax.Array:
    """[n, n] the part of ŷ − y linear in x of a real-valued task: the readout's direct
    map `read` (W_U W_E, or None: 0) less the labels' mixing s (G − I), G = W_EᵀW_E, so
    that each example pays one [n, n] product instead of two."""
    mixing = s * (gram - jnp.eye(gram.shape[0], dtype=gram.dtype))
    return -mixing if read is None else read - mixing


def squared_errors(params: model.Params, x: jax.Array, s: jax.Array, spec: ResidualSpec,
                   gram: jax.Array | None = None) -> jax.Array:
    """[B, n_outputs] (ŷ − y)² of a batch x [B, n] for one model (`model.forward` by
    way of `model.fold`: the maps between n, d_mlp and the outputs, once per batch, then
    `model.forward_folded` on the batch).

    `gram` [n, n] = W_EᵀW_E if known (a fixed W_E: `toymodels.compute.train` computes it
    once per run), else computed here. For the real-valued tasks ŷ − y is one folded
    forward pass whose direct map is `error_map` (the labels' x-linear part folded in),
    less the task's base labels."""
    forward = model.forward_folded  # on the whole batch: see its docstring
    if spec.task == "uand":
        y = jax.vmap(labels, in_axes=(0, None, None, None))(x, None, s, spec)
        return (forward(model.fold(params, spec), params["R"], x, spec) - y) ** 2
    W_E = params["W_E"]
    gram = W_E.T @ W_E if gram is None else gram
    folded = model.fold(params, spec, gram)
    folded["read"][0] = error_map(folded["read"][0], gram, s)
    return (forward(folded, None, x, spec) - BASE_LABELS[spec.task](x)) ** 2


def example_losses(params: model.Params, x: jax.Array, s: jax.Array, importance: jax.Array,
                   spec: ResidualSpec, gram: jax.Array | None = None) -> jax.Array:
    """[B] Σ_i I_i (ŷ_i − y_i)² / n_outputs of each example of x [B, n] (`gram`: as
    `squared_errors`)."""
    errors = squared_errors(params, x, s, spec, gram)
    return errors @ output_weights(importance, spec) / spec.n_outputs


def loss(params: model.Params, x: jax.Array, s: jax.Array, importance: jax.Array,
         spec: ResidualSpec, gram: jax.Array | None = None) -> jax.Array:
    """[] the importance-weighted per-output mean squared error, averaged over the batch
    (`gram`: as `squared_errors`). The batch mean is taken before the weighted sum over
    outputs (the same value: a [n] weighting, not a [B, n] @ [n] product and its gradient,
    at every step)."""
    errors = squared_errors(params, x, s, spec, gram)
    return jnp.mean(errors, axis=0) @ output_weights(importance, spec) / spec.n_outputs
