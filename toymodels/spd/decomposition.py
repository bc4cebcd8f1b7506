"""Stochastic Parameter Decomposition (SPD) of ONE target, written for one decomposition
(vmapped over runs by `toymodels.trainers.spd`, in one place).

Bushnaq, Braun & Sharkey 2025, "Stochastic Parameter Decomposition" (arXiv 2506.20790):
every weight matrix W_l [d_out, d_in] of the target is approximated by C rank-1
subcomponents, W_l ≈ Σ_c U_c V_cᵀ = Uᵀ V with U [C, d_out], V [C, d_in]. Each subcomponent
has a causal-importance function g_c = σ_H(γ_c(h_c)) of its inner activation h_c = V_c · a
(a the target's activation entering W_l), γ_c a scalar MLP 1 -> d_gate (GELU) -> 1. On
each input, masks m_c = g_c + (1 − g_c) r_c, r_c ~ U(0, 1), S samples, scale the
subcomponents; the masked model must reproduce the target's output.

Losses (the paper's "Method" and its pseudocode in the appendix):
  faithfulness   (1/N) Σ_l ||W_l − Uᵀ V||²_F, N the decomposed matrices' parameter count;
  stochastic     (1/S) Σ_s MSE(f(x | W'(x, r_s)), f(x | W)), every matrix masked;
  layerwise      (1/(L S)) Σ_l Σ_s MSE(f(x | .., W'_l(x, r_s), ..), f(x | W)), one masked;
  importance     (1/B) Σ_b Σ_l Σ_c |σ_H,upper(γ_c(h_c))|^p;
  total = c_f faithfulness + c_s stochastic + c_l layerwise + β importance.
MSE is the mean over the batch and the output's n entries (torch's `mse_loss`).

The two leaky hard sigmoids are the paper's (appendix "Avoiding dead gradients with leaky
hard sigmoids"): the masks use the *lower-leaky* σ_H,lower(x) = 0.01 x below 0, x on
[0, 1], 1 above (so masks may dip below 0, never above 1); the importance loss uses the
*upper-leaky* σ_H,upper(x) = 0 below 0, x on [0, 1], 1 + 0.01 (x − 1) above. They are
piecewise linear in value AND gradient, as the paper writes them; `jax.custom_jvp` pins
the derivative at the kinks: slope 1 at x = 0 and x = 1 (a gate exactly at 0 or 1 still
learns). (The later public code's straight-through variant, value clipped at 0 with a
leak only in the backward pass, is not what the paper defines and is not used.)

Initialisation (the paper does not state it; taken from the public code of the paper's
time, `init_param_` Kaiming-normal): V ~ N(0, 1/d_out), U ~ N(0, 1/C); the CI MLPs'
input weights ~ N(0, 2) (fan-in 1, ReLU gain), output weights ~ N(0, 1/d_gate), biases 0.
GELU is the exact (erf) GELU, torch's default, as x Φ(x) with Φ(x) = (1 + erf(x/√2)) / 2
(`gelu`; jax.nn.gelu's erfc form is the same function, ~2x dearer on XLA CPU).

TMS hyperparameters taken from the paper (appendix "Training details and hyperparameters",
"Toy models of superposition"): C = 20 (figure 1, "this run of SPD used 20
subcomponents"), d_gate = 16, S = 1, coefficients faithfulness = stochastic = layerwise
= 1, importance β = 3e-3 with p = 1 for TMS 5-2 (and 5-2+ID; 40-10: β = 1e-4, p = 2),
Adam at lr 1e-3 with a cosine schedule, 40k steps, batch 4096, inputs Uniform[0, 1] with
probability 0.05 each (the target's law). The defaults of `toymodels.spd_config` are these.

Shapes: C subcomponents, d_gate gate width, B batch, S mask samples, n features, L matrices.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from toymodels import threefry
from toymodels.spd.targets import Target, forward, n_inputs, target_linear

LEAK = 0.01  # the slope of both leaky hard sigmoids outside [0, 1] (the paper's)
IMPORTANCE_EPS = 1e-12  # |g|^p as (|g| + eps)^p: a finite gradient at g = 0 for p < 1
PARTS = ("faithfulness", "stochastic", "layerwise", "importance")  # the four losses
GATE_PARTS = ("gate_in_w", "gate_in_b", "gate_out_w", "gate_out_b")
Params = dict  # {matrix name: {"U": [C, d_out], "V": [C, d_in], gate parts}}


@struct.dataclass
class SPDHyper:
    """The traced hyperparameters of ONE decomposition (scalars but feature_probability;
    [R] leading when stacked).

    Attributes:
      beta: the importance-minimality coefficient β (the paper's β_3).
      p: the exponent of the importance loss.
      faithfulness_coefficient, stochastic_coefficient, layerwise_coefficient: the other
        losses' coefficients (the paper's 1, β_1, β_2).
      learning_rate: Adam's peak learning rate (cosine decay to 0).
      feature_probability: [n] each input feature's probability of being on (Uniform[0,
        1] when on); a scalar broadcasts the same.
    """

    beta: jax.Array
    p: jax.Array
    faithfulness_coefficient: jax.Array
    stochastic_coefficient: jax.Array
    layerwise_coefficient: jax.Array
    learning_rate: jax.Array
    feature_probability: jax.Array


# ---- the leaky hard sigmoids


@jax.custom_jvp
def lower_leaky_hard_sigmoid(x: jax.Array) -> jax.Array:
    """σ_H,lower(x) = 0.01 x (x < 0), x (0 <= x <= 1), 1 (x > 1): the masks' gate.

    Example:
      >>> lower_leaky_hard_sigmoid(jnp.array([-2.0, 0.5, 3.0]))
      Array([-0.02,  0.5 ,  1.  ], dtype=float32)
    """
    return jnp.where(x < 0, LEAK * x, jnp.minimum(x, 1.0))


@lower_leaky_hard_sigmoid.defjvp
def _lower_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    slope = jnp.where(x < 0, LEAK, jnp.where(x <= 1, 1.0, 0.0)).astype(x.dtype)
    return lower_leaky_hard_sigmoid(x), slope * dx


@jax.custom_jvp
def upper_leaky_hard_sigmoid(x: jax.Array) -> jax.Array:
    """σ_H,upper(x) = 0 (x < 0), x (0 <= x <= 1), 1 + 0.01 (x − 1) (x > 1): the
    importance loss's gate.

    Example:
      >>> upper_leaky_hard_sigmoid(jnp.array([-2.0, 0.5, 3.0]))
      Array([0.  , 0.5 , 1.02], dtype=float32)
    """
    return jnp.where(x > 1, 1.0 + LEAK * (x - 1.0), jnp.maximum(x, 0.0))


@upper_leaky_hard_sigmoid.defjvp
def _upper_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    slope = jnp.where(x > 1, LEAK, jnp.where(x >= 0, 1.0, 0.0)).astype(x.dtype)
    return upper_leaky_hard_sigmoid(x), slope * dx


def hard_sigmoid(x: jax.Array) -> jax.Array:
    """σ_H(x) = clip(x, 0, 1): the causal importance as reported (not trained through)."""
    return jnp.clip(x, 0.0, 1.0)


# ---- the gates' GELU

SQRT_HALF = np.float32(np.sqrt(0.5))
INV_SQRT_2PI = np.float32(1 / np.sqrt(2 * np.pi))


@jax.custom_jvp
def gelu(x: jax.Array) -> jax.Array:
    """The exact GELU x Φ(x), Φ(x) = (1 + erf(x / √2)) / 2 (torch's default GELU); its
    derivative Φ(x) + x φ(x) (φ the normal density) by `custom_jvp`, from the same Φ.

    Example:
      >>> gelu(jnp.array([-1.0, 0.0, 2.0]))
      Array([-0.15865526,  0.        ,  1.9544997 ], dtype=float32)
    """
    return x * (0.5 + 0.5 * jax.lax.erf(x * SQRT_HALF))


@gelu.defjvp
def _gelu_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    cdf = 0.5 + 0.5 * jax.lax.erf(x * SQRT_HALF)
    return x * cdf, (cdf + x * INV_SQRT_2PI * jnp.exp(-0.5 * x * x)) * dx


# ---- parameters


def init(key: jax.Array, target_shapes: Mapping[str, tuple[int, int]], spec) -> Params:
    """One decomposition's parameters: per matrix U, V and the CI MLPs (see the module
    docstring for the initialisation); one key per matrix by `fold_in` of its position in
    sorted name order. The key is consumed.

    Args:
      target_shapes: {name: (d_out, d_in)}.
      spec: `toymodels.spd_config.SPDSpec` (C, d_gate read).
    """
    C, G = spec.C, spec.d_gate
    params = {}
    for i, name in enumerate(sorted(target_shapes)):
        d_out, d_in = target_shapes[name]
        k_v, k_u, k_in, k_out = jax.random.split(jax.random.fold_in(key, i), 4)
        params[name] = {
            "U": jax.random.normal(k_u, (C, d_out)) / jnp.sqrt(jnp.float32(C)),
            "V": jax.random.normal(k_v, (C, d_in)) / jnp.sqrt(jnp.float32(d_out)),
            "gate_in_w": jax.random.normal(k_in, (C, G)) * jnp.sqrt(jnp.float32(2.0)),
            "gate_in_b": jnp.zeros((C, G), jnp.float32),
            "gate_out_w": jax.random.normal(k_out, (C, G)) / jnp.sqrt(jnp.float32(G)),
            "gate_out_b": jnp.zeros((C,), jnp.float32),
        }
    return params


def weight(part: Params) -> jax.Array:
    """[d_out, d_in] the unmasked sum of one matrix's subcomponents, Σ_c U_c V_cᵀ = Uᵀ V."""
    return part["U"].T @ part["V"]


# ---- causal importance and masks (one example)


def gate_logits(part: Params, h: jax.Array) -> jax.Array:
    """[C] γ_c(h_c), the CI MLPs' raw outputs on the inner activations h [C]."""
    hidden = gelu(part["gate_in_w"] * h[:, None] + part["gate_in_b"])
    return jnp.sum(part["gate_out_w"] * hidden, axis=-1) + part["gate_out_b"]


def causal_importance(params: Params, target: Target, x: jax.Array) -> dict[str, jax.Array]:
    """{name: [C] γ_c(V_c · a)}: the raw CI logits of every matrix on ONE input x [n], a the
    target's own activation entering the matrix (apply a sigmoid of this module)."""
    _, inputs = forward(target, target_linear(target), x)
    return {name: gate_logits(params[name], params[name]["V"] @ inputs[name]) for name in params}


def masks(g: jax.Array, r: jax.Array) -> jax.Array:
    """m = g + (1 − g) r: [..., C] stochastic masks from CI values g and uniforms r."""
    return g + (1.0 - g) * r


def masked_linear(params: Params, target: Target, mask: Mapping[str, jax.Array]):
    """`linear(name, a)`: Uᵀ (m ⊙ V a) for the matrices in `mask` ({name: [C]}), the
    target's own W a for the others (= Σ_c m_c U_c V_cᵀ a, without forming the matrix)."""
    def linear(name, a):
        if name in mask:
            return params[name]["U"].T @ (mask[name] * (params[name]["V"] @ a))
        return target.weights[name] @ a
    return linear


def example_losses(params: Params, target: Target, x: jax.Array, r: dict, p: jax.Array):
    """(stochastic, layerwise, importance) of ONE input x [n] with uniforms r {name: [S, C]}:
    the squared errors summed over the n outputs (mean over S, and L for layerwise)."""
    y, inputs = forward(target, target_linear(target), x)
    logits = {name: gate_logits(params[name], params[name]["V"] @ inputs[name]) for name in params}
    g = {name: lower_leaky_hard_sigmoid(v) for name, v in logits.items()}
    importance = sum(jnp.sum((jnp.abs(upper_leaky_hard_sigmoid(v)) + IMPORTANCE_EPS) ** p)
                     for v in logits.values())
    error = lambda mask: jnp.sum((forward(target, masked_linear(params, target, mask), x)[0] - y) ** 2)

    def one_sample(r_s):
        m = {name: masks(g[name], r_s[name]) for name in params}
        layerwise = sum(error({name: m[name]}) for name in params) / len(params)
        return error(m), layerwise

    stochastic, layerwise = jax.vmap(one_sample)(r)
    return jnp.mean(stochastic), jnp.mean(layerwise), importance


def faithfulness(params: Params, target: Target) -> jax.Array:
    """(1/N) Σ_l ||W_l − Uᵀ V||²_F, N = Σ_l d_out d_in."""
    total = sum(jnp.sum((target.weights[name] - weight(params[name])) ** 2) for name in params)
    return total / sum(target.weights[name].size for name in params)


def loss(params: Params, target: Target, x: jax.Array, key: jax.Array, hyper: SPDHyper,
         n_mask_samples: int = 1) -> tuple[jax.Array, dict]:
    """The SPD loss of one decomposition on a batch x [B, n]. The key is consumed: matrix
    i of the sorted names draws its uniforms r [B, S, C] from `split(key, L)[i]` (the
    values of `jax.random.uniform`, `toymodels.threefry`).

    Every input goes through the gates here (the definition, and the tests' reference);
    the trainer takes the value and gradient from `value_and_grad`, the same numbers
    computed on the nonzero inputs only.

    Returns:
      (total, {"faithfulness", "stochastic", "layerwise", "importance"}: each loss before
      its coefficient).
    """
    keys = jax.random.split(key, len(params))
    B = x.shape[0]
    r = {name: threefry.uniform(k, (B, n_mask_samples, params[name]["U"].shape[0]))
         for name, k in zip(sorted(params), keys)}
    sq_stochastic, sq_layerwise, importance = jax.vmap(
        example_losses, in_axes=(None, None, 0, 0, None))(params, target, x, r, hyper.p)
    n = x.shape[1]
    parts = {"faithfulness": faithfulness(params, target),
             "stochastic": jnp.mean(sq_stochastic) / n,
             "layerwise": jnp.mean(sq_layerwise) / n,
             "importance": jnp.mean(importance)}
    total = (hyper.faithfulness_coefficient * parts["faithfulness"]
             + hyper.stochastic_coefficient * parts["stochastic"]
             + hyper.layerwise_coefficient * parts["layerwise"]
             + hyper.beta * parts["importance"])
    return total, parts


def one_hot_importance(params: Params, target: Target) -> dict[str, jax.Array]:
    """{name: [n, C]} σ_H(γ_c) (clipped to [0, 1]) on the one-hot inputs x = e_i."""
    n = n_inputs(target)
    logits = jax.vmap(causal_importance, in_axes=(None, None, 0))(params, target, jnp.eye(n))
    return {name: hard_sigmoid(v) for name, v in logits.items()}


def tile_rows(batch: int) -> int:
    """T, the rows `value_and_grad` computes at once: B / 32, at least 8 and at most B
    (at B = 4096 tiles of 64-512 rows cost the same within noise; 4096 at once, 9x more).

    Example:
      >>> tile_rows(4096), tile_rows(64), tile_rows(4)
      (128, 8, 4)
    """
    return min(batch, max(8, batch // 32))


def inert(target) -> jax.Array:
    """[] bool: whether every activation entering a decomposed matrix is 0 on x = 0 (then
    it is 0 whatever the masks: each is a masked matrix times the one before, 0, plus a
    fixed bias, the target's own). Always for a TMS target; for a residual MLP, where
    ReLU(b_in) = 0 (no biases, or b_in <= 0)."""
    _, entering = forward(target, target_linear(target), jnp.zeros(n_inputs(target)))
    return jnp.all(jnp.stack([jnp.all(a == 0) for a in entering.values()]))


def value_and_grad(params: Params, target: Target, x: jax.Array, key: jax.Array,
                   hyper: SPDHyper, n_mask_samples: int = 1, tile: int | None = None):
    """`jax.value_and_grad(loss, has_aux=True)` of the same arguments, computed only on the
    inputs that are not all zero: ((total, parts), grads), equal to float rounding.

    Why it is exact: on an input x = 0 of an `inert` target every matrix's entering
    activation is 0, whatever the masks (a TMS target: the matrices are linear and only the
    output has a bias; a residual MLP: r = W_E 0 = 0 enters W_in and ReLU(b_in) enters
    W_out, 0 only where b_in <= 0, so a residual MLP with a positive b_in is not inert and
    every row is computed), so every inner activation V_c · a is 0, the masked output
    equals the target's and that input's reconstruction errors and their gradients are 0;
    its importance is the one value Σ_l Σ_c |σ_H,upper(γ_c(0))|^p. So the B − k zero
    inputs add (B − k) times the loss of one zero input (its importance only), and the k
    others (any sign) are computed as in `loss`,
    taken in order T at a time (`tile_rows`) in a `lax.while_loop` that runs ceil(k / T)
    tiles, each tile's value and gradient summed (the loss is a sum over rows; a last
    tile's filler rows weigh 0). Under vmap the loop runs the most tiles of the batched
    decompositions. At the TMS settings (p = 0.05, n = 5) 77% of the rows are zero.

    Each nonzero row gets the mask uniforms `loss` draws for it (the entries of the same
    [B, S, C] stream per matrix, `threefry.uniform_at` its indices; the zero rows' are
    never drawn: they multiply zeros), so both compute the same numbers, summed in
    another order.

    Args:
      x: [B, n] the batch; the rest as `loss`.
      tile: T rows a tile (static); default `tile_rows(B)`.
    """
    B, n = x.shape
    T = tile_rows(B) if tile is None else tile
    S, names = n_mask_samples, sorted(params)
    keys = dict(zip(names, jax.random.split(key, len(params))))
    nonzero = jnp.any(x != 0, axis=1) | ~inert(target)  # [B] the rows computed
    count = jnp.sum(nonzero)
    # the nonzero rows in order, then row B (a zero row appended) to fill the last tile
    order = jnp.nonzero(nonzero, size=B + T, fill_value=B)[0]
    x_rows = jnp.concatenate([x, jnp.zeros((1, n), x.dtype)])

    def tile_of(t):
        """Tile t: x [T, n], its uniforms {name: [T, S, C]} (those `loss` draws for these
        rows: entry (b, s, c) of the [B, S, C] draw has flat index (b S + s) C + c) and
        the rows' weights [T] (1 for a nonzero row)."""
        rows = jax.lax.dynamic_slice(order, (t * T,), (T,))
        r_t = {}
        for name in names:
            C = params[name]["U"].shape[0]
            flat = ((rows[:, None, None] * S + jnp.arange(S)[None, :, None]) * C
                    + jnp.arange(C)[None, None, :])
            r_t[name] = threefry.uniform_at(keys[name], flat.astype(jnp.uint32))
        return x_rows[rows], r_t, (rows < B).astype(x.dtype)

    def objective(sums):
        """The loss's share of [3] sums of (stochastic, layerwise, importance) over rows."""
        return ((hyper.stochastic_coefficient * sums[0]
                 + hyper.layerwise_coefficient * sums[1]) / (B * n)
                + hyper.beta * sums[2] / B)

    def row_sums(params, x_t, r_t, w_t):
        """(the objective's share of the rows of one tile, their [3] weighted loss sums)."""
        per_row = jax.vmap(example_losses, in_axes=(None, None, 0, 0, None))(
            params, target, x_t, r_t, hyper.p)
        sums = jnp.stack([jnp.sum(w_t * v) for v in per_row])
        return objective(sums), sums

    def body(carry):
        t, grads, sums = carry
        (_, tile_sums), tile_grads = jax.value_and_grad(row_sums, has_aux=True)(
            params, *tile_of(t))
        return t + 1, jax.tree.map(jnp.add, grads, tile_grads), sums + tile_sums

    zero = jax.tree.map(jnp.zeros_like, params)
    _, grads, sums = jax.lax.while_loop(lambda c: c[0] * T < count, body,
                                        (jnp.int32(0), zero, jnp.zeros(3, x.dtype)))

    def rest(params):
        """Faithfulness and the zero rows' importance, weighted as in the loss."""
        no_r = {name: jnp.zeros((S, params[name]["U"].shape[0]), x.dtype) for name in names}
        zero_importance = example_losses(params, target, jnp.zeros(n, x.dtype), no_r,
                                         hyper.p)[2]
        zero_sum = (B - count).astype(x.dtype) * zero_importance
        faith = faithfulness(params, target)
        return (hyper.faithfulness_coefficient * faith + hyper.beta * zero_sum / B,
                (faith, zero_sum))

    (_, (faith, zero_sum)), rest_grads = jax.value_and_grad(rest, has_aux=True)(params)
    sums = sums.at[2].add(zero_sum)
    parts = {"faithfulness": faith, "stochastic": sums[0] / (B * n),
             "layerwise": sums[1] / (B * n), "importance": sums[2] / B}
    total = (hyper.faithfulness_coefficient * parts["faithfulness"]
             + hyper.stochastic_coefficient * parts["stochastic"]
             + hyper.layerwise_coefficient * parts["layerwise"]
             + hyper.beta * parts["importance"])
    return (total, parts), jax.tree.map(jnp.add, grads, rest_grads)


__all__ = ["GATE_PARTS", "LEAK", "PARTS", "Params", "SPDHyper", "causal_importance",
           "example_losses", "faithfulness", "gate_logits", "gelu", "hard_sigmoid", "inert",
           "init", "loss", "lower_leaky_hard_sigmoid", "masked_linear", "masks",
           "one_hot_importance", "tile_rows", "upper_leaky_hard_sigmoid", "value_and_grad",
           "weight"]
