"""Model kinds: per-model parameter init and a forward pass for ONE model.

Each kind is an entry of the `MODELS` registry; the trainer never names a kind, so new
kinds need no change elsewhere. Weights follow the paper's layout: `W` is `[H, F]` and
column `W[:, i]` is feature i's direction. A batch is a matrix with one example per column,
`x: [F, B]`, so the forward pass is `W.T @ (W @ x)`: two matmuls with a long B axis, about
twice as fast on CPU as a per-example function vmapped over the batch (benchmarks/).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from toymodels.kinds import KGON_KINDS  # noqa: F401 (its home is kinds; read here too)
from toymodels.spec import ModelSpec
from toymodels.theory.kgons import kgon

Params = dict[str, jax.Array]
HIGHEST = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class ModelKind:
    """One entry of the registry.

    The output is `readout(z)` of the output pre-activations `z`, and every kind's hidden
    layer is positively homogeneous (h(t x) = t h(x) for t >= 0: no hidden bias). So
    along one input direction the pre-activations are affine in the input's size, which
    `toymodels.evaluation` uses to integrate the one-feature loss exactly.

    Attributes:
      init: (key, ModelSpec) -> Params for one model; the key is consumed.
      logits: (params, x [F, B], keep [H, B]) -> (z [F, B], h [H, B]): the output
        pre-activations and the hidden activations (for an L1 penalty); `keep` is the
        dropout multiplier on the hidden vectors (all ones at evaluation).
      dims: the dataset dims of each parameter, e.g. {"W": ("hidden", "feature")}.
      weights: the names of the weight matrices (what `[train] l1_weights` penalises),
        e.g. ("W",); every other parameter is a bias.
      description: one line for `--help` and docs.
      readout: the output nonlinearity, ReLU or the identity (piecewise linear with its
        only kink at 0).
      signed_inputs: active features are Uniform[-1, 1) instead of [0, 1).
      target: the output the model is trained to give for input x (default x itself);
        linear in x on each side of 0.
      homogeneous: the pre-activations are affine in t along each input direction t·x
        (True for every registered kind; False once a norm is applied to h, see
        `with_norm`: `toymodels.evaluation` then samples what it would integrate).
    """

    init: Callable[[jax.Array, ModelSpec], Params]
    logits: Callable[[Params, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
    dims: dict[str, tuple[str, ...]]
    weights: tuple[str, ...]
    description: str
    readout: Callable[[jax.Array], jax.Array] = jax.nn.relu
    signed_inputs: bool = False
    target: Callable[[jax.Array], jax.Array] = lambda x: x
    homogeneous: bool = True

    def forward(self, params: Params, x: jax.Array, keep: jax.Array):
        """(x_hat [F, B], h [H, B]) = (readout(z), h) for inputs x: [F, B]."""
        z, h = self.logits(params, x, keep)
        return self.readout(z), h


def init_tied(key: jax.Array, spec: ModelSpec) -> Params:
    """Xavier-normal `W: [H, F]` per model (std sqrt(2 / (F + H))) and a zero bias `b: [F]`."""
    std = jnp.sqrt(2.0 / (spec.n_features + spec.n_hidden))
    W = std * jax.random.normal(key, (spec.n_hidden, spec.n_features), jnp.float32)
    return {"W": W, "b": jnp.zeros((spec.n_features,), jnp.float32)}


def init_untied(key: jax.Array, spec: ModelSpec) -> Params:
    """Xavier-normal `W1: [H, F]` and `W2: [F, H]`, zero bias `b: [F]`."""
    key1, key2 = jax.random.split(key)
    std = jnp.sqrt(2.0 / (spec.n_features + spec.n_hidden))
    F, H = spec.n_features, spec.n_hidden
    return {"W1": std * jax.random.normal(key1, (H, F), jnp.float32),
            "W2": std * jax.random.normal(key2, (F, H), jnp.float32),
            "b": jnp.zeros((F,), jnp.float32)}


def kgon_params(spec: ModelSpec, k: int) -> Params:
    """The regular k-gon critical point (`toymodels.theory.kgon(F, k)`, Chen et al. 2023)
    as tied params: `W: [H, F]` with the k-gon's [2, F] in hidden dims 0 and 1 (zero
    below), `b: [F]`, float32. Computed on the host (the k-gon's length and bias come
    from a small optimisation), so call it once per compiled program, not per run.

    k = 1 is feature 0 alone, W[:, 0] = e_0 with bias 0 (its exact optimum); k >= 2 needs
    H >= 2. The unused features' columns and biases are 0.

    Example:
      >>> p = kgon_params(ModelSpec("relu_output", 6, 3), 4)
      >>> p["W"].shape, p["b"].shape, float(p["W"][0, 0]), float(p["W"][2].max())
      ((3, 6), (6,), 1.0, 0.0)
    """
    F, H = spec.n_features, spec.n_hidden
    if not 1 <= k <= F or (k > 1 and H < 2):
        raise ValueError(f"a {k}-gon needs 1 <= k <= n_features = {F} and n_hidden >= 2 "
                         f"(k > 1), got n_hidden = {H}")
    W, b = np.zeros((H, F)), np.zeros(F)
    if k == 1:
        W[0, 0] = 1.0
    else:
        polygon = kgon(F, k)
        W[:2], b[:] = polygon.W, polygon.b
    return {"W": jnp.asarray(W, jnp.float32), "b": jnp.asarray(b, jnp.float32)}


def perturb(params: Params, key: jax.Array, std: float) -> Params:
    """params + std · N(0, 1) on every entry, one independent draw per parameter (in
    name order, from `split(key)`); std = 0 returns the params themselves. The key is
    consumed."""
    if std == 0:
        return params
    names = sorted(params)
    keys = dict(zip(names, jax.random.split(key, len(names))))
    return {n: params[n] + std * jax.random.normal(keys[n], params[n].shape, params[n].dtype)
            for n in names}


def _decode(W_out: jax.Array, h: jax.Array, b: jax.Array) -> jax.Array:
    """W_out h + b for hidden vectors h: [H, B]; W_out: [F, H]; returns [F, B]."""
    return jnp.dot(W_out, h, precision=HIGHEST) + b[:, None]


def _identity(h: jax.Array) -> jax.Array:
    return h


def logits_tied(params: Params, x: jax.Array, keep: jax.Array, norm=_identity):
    """z = Wᵀ norm(W x) + b (the linear model's output; ReLU(z) for the ReLU-output
    model); `norm` of the hidden vectors [H, B] is the identity unless `with_norm`."""
    h = jnp.dot(params["W"], x, precision=HIGHEST) * keep
    return _decode(params["W"].T, norm(h), params["b"]), h


def logits_relu_hidden(params: Params, x: jax.Array, keep: jax.Array, norm=_identity):
    """h = ReLU(W x), z = Wᵀ norm(h) + b (the privileged-basis model; x' = ReLU(z))."""
    h = jax.nn.relu(jnp.dot(params["W"], x, precision=HIGHEST)) * keep
    return _decode(params["W"].T, norm(h), params["b"]), h


def logits_abs(params: Params, x: jax.Array, keep: jax.Array, norm=_identity):
    """h = ReLU(W1 x), z = W2 norm(h) + b, untied (computation in superposition:
    y' = ReLU(z), target |x|)."""
    h = jax.nn.relu(jnp.dot(params["W1"], x, precision=HIGHEST)) * keep
    return _decode(params["W2"], norm(h), params["b"]), h


TIED_DIMS = {"W": ("hidden", "feature"), "b": ("feature",)}
UNTIED_DIMS = {"W1": ("hidden", "feature"), "W2": ("feature", "hidden"), "b": ("feature",)}

TIED_WEIGHTS, UNTIED_WEIGHTS = ("W",), ("W1", "W2")  # the weight matrices of each layout

# Keyed by `toymodels.kinds.MODEL_KINDS` (which parsing checks without JAX), in that order.
MODELS: dict[str, ModelKind] = {
    "linear": ModelKind(init_tied, logits_tied, TIED_DIMS, TIED_WEIGHTS, "x' = WᵀWx + b",
                        readout=lambda z: z),
    "relu_output": ModelKind(init_tied, logits_tied, TIED_DIMS, TIED_WEIGHTS,
                             "x' = ReLU(WᵀWx + b)"),
    "relu_hidden": ModelKind(
        init_tied, logits_relu_hidden, TIED_DIMS, TIED_WEIGHTS,
        "x' = ReLU(Wᵀ ReLU(Wx) + b), privileged basis"
    ),
    "abs_computation": ModelKind(
        init_untied, logits_abs, UNTIED_DIMS, UNTIED_WEIGHTS,
        "y' = ReLU(W₂ ReLU(W₁x) + b) trained on |x|, x in [-1, 1)",
        signed_inputs=True, target=jnp.abs,
    ),
}


def get_model(kind: str) -> ModelKind:
    """Looks up a model kind; an unknown name raises a ValueError listing the valid ones."""
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}; valid: {', '.join(MODELS)}")
    return MODELS[kind]


# ---- normalisation of the hidden vector before the readout ([model] norm, norm_eps)


def rms_norm(h: jax.Array, eps: float) -> jax.Array:
    """h / sqrt(mean_k h_k² + eps) of each hidden vector (column) of h: [H, B]; no affine
    part. h = 0 maps to 0."""
    return h * jax.lax.rsqrt(jnp.mean(h * h, axis=0, keepdims=True) + eps)


def layer_norm(h: jax.Array, eps: float) -> jax.Array:
    """(h − mean_k h_k) / sqrt(var_k h + eps) of each column of h: [H, B] (biased
    variance, as `torch.nn.LayerNorm` without its affine part): `rms_norm` of the
    mean-removed h."""
    return rms_norm(h - jnp.mean(h, axis=0, keepdims=True), eps)


# Keyed by `toymodels.kinds.NORM_KINDS` (which parsing checks without JAX), in that order.
NORMS: dict[str, Callable[[jax.Array, float], jax.Array] | None] = {
    "none": None, "rms": rms_norm, "layer": layer_norm,
}


def with_norm(kind: ModelKind, norm: str, eps: float = ModelSpec.norm_eps,
              scale: float | jax.Array = 1.0,
              pre_scale: float | jax.Array = 1.0) -> ModelKind:
    """`kind` with `NORMS[norm]` applied to the hidden vectors before the readout, times
    `scale`, of `pre_scale` times h: z = W_out (scale · norm(pre_scale · h)) + b ("none"
    and both scales 1: `kind` itself). The two scales are for
    `toymodels.analysis.norms`: `pre_scale` rescales h before the norm (which a norm
    undoes up to its eps), `scale` what the readout reads; without a norm both give
    z = W_out (scale · pre_scale · h) + b. The returned h (for the L1 penalty) is the
    hidden vector before the norm and either scale. A norm makes the pre-activations
    non-affine along an input direction (`ModelKind.homogeneous` False); scales alone
    keep them affine.

    Example:
      >>> kind = with_norm(get_model("relu_output"), "rms", 0.0)
      >>> p = {"W": jnp.array([[1.0, 0.0], [0.0, 1.0]]), "b": jnp.zeros(2)}
      >>> z, _ = kind.logits(p, jnp.array([[3.0], [4.0]]), jnp.ones(()))
      >>> [round(float(v), 4) for v in z[:, 0] ** 2]  # h / rms(h): mean of squares 1
      [0.72, 1.28]
    """
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
    fn = NORMS[norm]
    unscaled = all(isinstance(c, float) and c == 1.0 for c in (scale, pre_scale))
    if fn is None and unscaled:
        return kind
    if fn is None:
        normed = lambda h: scale * (pre_scale * h)
    else:
        normed = lambda h: scale * fn(pre_scale * h, eps)
    return dataclasses.replace(kind, logits=functools.partial(kind.logits, norm=normed),
                               homogeneous=kind.homogeneous and fn is None)


def model_of(spec: ModelSpec) -> ModelKind:
    """The model kind of a spec with its norm (`with_norm(get_model(kind), norm, eps)`)."""
    return with_norm(get_model(spec.kind), spec.norm, spec.norm_eps)
