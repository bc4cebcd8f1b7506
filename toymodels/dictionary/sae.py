"""Sparse autoencoder kinds: per-SAE pure functions (init, encode, loss) in a registry.

An SAE reads an activation x: [d] (a toy model's hidden vector h = W x) and writes codes
f: [N] over its N *latents*; x̂ = decoderᵀ f + b_dec. The ground-truth directions are the
*features* (the toy model's columns W_i). Every function here is written for ONE SAE and a
batch with one example per column, x: [d, B] and codes [N, B], the toy models' layout
(about 1.6x faster on CPU than rows for d = 5; BatchTopK's top values are taken over the
batch); the trainer (`toymodels.dictionary.train`) vmaps them over SAEs in one place.

Parameters (dataset dims in `SAEKind.dims`): encoder [latent, hidden], b_enc [latent],
decoder [latent, hidden] (row j is latent j's direction d_j), b_dec [hidden]; JumpReLU adds
log_threshold [latent], Gated r_mag and b_mag [latent]. Running statistics (`Stats`) are not
trained: how long each latent has been silent (dead latents, the AuxK loss) and BatchTopK's
inference threshold.

Shapes: B batch, N latents (the SAE's width), d hidden dims.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

from toymodels.kinds import SAE_READS

Params = dict[str, jax.Array]
LAMBDA_WARMUP = 0.05  # the sparsity coefficient ramps up linearly over this share of the steps
THRESHOLD_EMA = 0.99  # BatchTopK: theta <- 0.99 theta + 0.01 (smallest kept value of a batch)
JUMP_THRESHOLD_INIT = 0.001  # JumpReLU's initial theta (Gemma Scope, Lieberum et al. 2024)
RELU_DECODER_NORM = 0.1  # April 2024 update: decoder rows start at norm 0.1
MATRYOSHKA_PREFIXES = (0.25, 0.5, 1.0)  # nested dictionaries: the first N/4, N/2 and N latents


@struct.dataclass
class SAEHyper:
    """One SAE's traced hyperparameters and its source. A batch of R SAEs adds a leading R.

    Attributes:
      learning_rate, weight_decay, momentum, beta1, beta2, one_minus_beta1,
        one_minus_beta2, eps: [] the optimiser's, as in `toymodels.hyper.Hyper` (the
        trainer uses `toymodels.train.make_optimizer`; SAEs default to Adam, no decay).
      l1_coefficient: [] λ, the sparsity coefficient: of the decoder-norm-weighted L1
        ("relu"), of the L1 of the gate's pre-activations ("gated"), of the L0 ("jumprelu").
      k: [] int, active latents per example ("topk"; "batchtopk" and "matryoshka": on
        average over the batch).
      k_aux: [] int, dead latents the AuxK loss may use.
      aux_coefficient: [] α, the weight of the AuxK loss.
      bandwidth: [] ε, JumpReLU's straight-through kernel width.
      dead_steps: [] int, a latent silent for this many steps is dead (for AuxK and the
        dead-latent count).
      truth: [d, F] the source model's W (columns are the features, not normalised);
        [1, 1] zeros with a synthetic world (shared by the runs: `toymodels.dictionary.train.world_of`).
      feature_probability: [F] the source's p_i; [1] zeros with a synthetic world.
    """

    learning_rate: jax.Array
    weight_decay: jax.Array
    momentum: jax.Array
    beta1: jax.Array
    beta2: jax.Array
    one_minus_beta1: jax.Array
    one_minus_beta2: jax.Array
    eps: jax.Array
    l1_coefficient: jax.Array
    k: jax.Array
    k_aux: jax.Array
    aux_coefficient: jax.Array
    bandwidth: jax.Array
    dead_steps: jax.Array
    truth: jax.Array
    feature_probability: jax.Array


@struct.dataclass
class Stats:
    """What an SAE tracks besides its parameters, for one SAE.

    Attributes:
      since_fired: [N] int, steps since each latent was last non-zero in a batch.
      threshold: [] BatchTopK's inference threshold θ (an EMA of the smallest kept value);
        0 for the other kinds.
      count: [] int, steps taken.
    """

    since_fired: jax.Array
    threshold: jax.Array
    count: jax.Array


def init_stats(n_latents: int) -> Stats:
    """Fresh statistics: no latent has fired yet (they count as alive until `dead_steps`)."""
    return Stats(jnp.zeros(n_latents, jnp.int32), jnp.zeros([], jnp.float32),
                 jnp.zeros([], jnp.int32))


def update_stats(stats: Stats, codes: jax.Array, kept_min: jax.Array) -> Stats:
    """After one step on a batch with codes [N, B] (`kept_min`: the smallest non-zero code
    of the batch, BatchTopK's threshold sample)."""
    fired = jnp.any(codes != 0, axis=1)
    since = jnp.where(fired, 0, stats.since_fired + 1)
    threshold = jnp.where(stats.count == 0, kept_min,
                          THRESHOLD_EMA * stats.threshold + (1 - THRESHOLD_EMA) * kept_min)
    return Stats(since, threshold, stats.count + 1)


# ---- building blocks


def matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """a @ b in true float32 (`Precision.HIGHEST`, as the toy models: no TF32 on GPU)."""
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)



def decode(params: Params, codes: jax.Array) -> jax.Array:
    """x̂ = decoderᵀ f + b_dec: [N, B] -> [d, B]."""
    return matmul(params["decoder"].T, codes) + params["b_dec"][:, None]


def reconstruction(x: jax.Array, x_hat: jax.Array) -> jax.Array:
    """[] the mean over the batch (columns) of ||x − x̂||²."""
    return jnp.mean(jnp.sum((x - x_hat) ** 2, axis=0))


def unit_rows(matrix: jax.Array) -> jax.Array:
    """Each row scaled to unit norm (a zero row stays zero)."""
    norm = jnp.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / jnp.maximum(norm, 1e-12)


def random_directions(key: jax.Array, n: int, d: int) -> jax.Array:
    """[n, d] independent uniformly random unit rows."""
    return unit_rows(jax.random.normal(key, (n, d), jnp.float32))


def order_keys(values: jax.Array) -> jax.Array:
    """uint32 keys in the order of the float32 `values` (-inf and +inf included): the
    sign bit flipped for non-negative floats, every bit for negative ones."""
    bits = jax.lax.bitcast_convert_type(values.astype(jnp.float32), jnp.uint32)
    return jnp.where(bits >> 31 == 0, bits | jnp.uint32(0x80000000), ~bits)


def kth_largest(values: jax.Array, k: jax.Array) -> jax.Array:
    """The k-th largest entry of `values` along the last axis ([..., N] -> [...]), exactly,
    for a traced k in 1..N (so that k can be a sweep axis inside one program).

    A bisection over the 2^32 float keys (`order_keys`): 32 counts of the entries above a
    key, each one pass over the values. On CPU this is 7x faster than a sort
    (`jnp.sort`) or `lax.top_k` of [1024, 80] rows, and it serves BatchTopK's k·B of B·N
    values as well.
    """
    keys = order_keys(values)
    k = jnp.clip(k, 1, values.shape[-1])

    def halve(_, bounds):  # invariant: at least k keys >= lo, fewer than k keys > hi
        lo, hi = bounds
        gap = hi - lo
        mid = lo + gap // 2 + gap % 2
        enough = jnp.sum(keys >= mid[..., None], axis=-1) >= k
        return jnp.where(enough, mid, lo), jnp.where(enough, hi, mid - 1)

    start = (jnp.zeros(values.shape[:-1], jnp.uint32), jnp.full(values.shape[:-1], 0xFFFFFFFF, jnp.uint32))
    lo, _ = jax.lax.fori_loop(0, 32, halve, start)
    return jnp.min(jnp.where(keys >= lo[..., None], values, jnp.inf), axis=-1)


def top_k(pre: jax.Array, k: jax.Array) -> jax.Array:
    """ReLU(TopK_k(pre)) of each example (column) of pre [N, B]: the k largest
    pre-activations kept, then negatives zeroed (Gao et al. 2024, eq. 2)."""
    keep = pre >= kth_largest(pre.T, k)[None, :]
    return jnp.where(keep, jnp.maximum(pre, 0.0), 0.0)


def batch_top_k(pre: jax.Array, k: jax.Array) -> jax.Array:
    """BatchTopK (Bussmann et al. 2024): of the non-negative pre-activations [N, B] the
    B·k largest over the whole batch are kept, so L0 is k on average, not per example."""
    keep = pre >= kth_largest(pre.reshape(-1), k * pre.shape[1])
    return jnp.where(keep & (pre > 0), pre, 0.0)


def smallest_kept(codes: jax.Array) -> jax.Array:
    """[] the smallest positive code (0 if none), BatchTopK's threshold sample."""
    positive = codes > 0
    return jnp.where(positive.any(), jnp.min(jnp.where(positive, codes, jnp.inf)), 0.0)


def aux_k_loss(params: Params, stats: Stats, x: jax.Array, x_hat: jax.Array, pre: jax.Array,
               hyper: SAEHyper) -> jax.Array:
    """Gao et al. 2024's AuxK loss: ||e − ê||² with e = x − x̂ under stop-gradient and ê the
    decoding (no bias) of the k_aux largest pre-activations among the dead latents; 0 when
    no latent is dead."""
    dead = stats.since_fired >= hyper.dead_steps
    masked = jnp.where(dead[:, None], pre, -jnp.inf)
    keep = dead[:, None] & (masked >= kth_largest(masked.T, hyper.k_aux)[None, :])
    aux_codes = jnp.where(keep, jnp.maximum(pre, 0.0), 0.0)
    error = jax.lax.stop_gradient(x - x_hat)
    loss = reconstruction(error, matmul(params["decoder"].T, aux_codes))
    return jnp.where(dead.any(), loss, 0.0)


def with_aux_k(params: Params, stats: Stats, x, hyper: SAEHyper, pre, codes):
    """(||x − x̂||² + α AuxK, codes): the objective of the kinds with a k."""
    x_hat = decode(params, codes)
    aux = aux_k_loss(params, stats, x, x_hat, pre, hyper)
    return reconstruction(x, x_hat) + hyper.aux_coefficient * aux, codes


def warmed_up(coefficient: jax.Array, progress: jax.Array) -> jax.Array:
    """λ ramped linearly from 0 over the first `LAMBDA_WARMUP` of training (`progress` is
    the step over the steps, in [0, 1))."""
    return coefficient * jnp.minimum(1.0, progress / LAMBDA_WARMUP)


def tied_init(key: jax.Array, n_latents: int, d: int, norm: float = 1.0) -> Params:
    """Decoder rows random directions of length `norm`, encoder = decoder (W_e = W_dᵀ in
    the column convention), biases 0."""
    decoder = norm * random_directions(key, n_latents, d)
    return {"encoder": decoder, "b_enc": jnp.zeros(n_latents), "decoder": decoder,
            "b_dec": jnp.zeros(d)}


# ---- ReLU + L1 (Anthropic, April 2024)


def relu_init(key: jax.Array, n_latents: int, d: int) -> Params:
    """April 2024 update: decoder rows of norm 0.1 in random directions, W_e = W_dᵀ, 0 biases."""
    return tied_init(key, n_latents, d, RELU_DECODER_NORM)


def relu_encode(params: Params, stats: Stats, x: jax.Array, hyper: SAEHyper) -> jax.Array:
    """f = ReLU(W_e x + b_e) (no b_dec subtracted, as in the April 2024 update)."""
    return jax.nn.relu(matmul(params["encoder"], x) + params["b_enc"][:, None])


def relu_loss(params, stats, x, hyper, progress):
    """||x − x̂||² + λ Σ_j f_j ||d_j||₂ (Anthropic, "Circuits Updates - April 2024": the L1
    weighted by decoder norms, no norm constraint), λ warmed up over the first 5%."""
    codes = relu_encode(params, stats, x, hyper)
    norms = jnp.linalg.norm(params["decoder"], axis=-1)
    penalty = jnp.mean(matmul(norms, codes))
    loss = reconstruction(x, decode(params, codes)) + warmed_up(hyper.l1_coefficient, progress) * penalty
    return loss, codes


# ---- TopK + AuxK (Gao et al. 2024)


def topk_pre(params: Params, x: jax.Array) -> jax.Array:
    """W_enc (x − b_pre) + b_enc, the pre-activations (b_pre is b_dec)."""
    return matmul(params["encoder"], x - params["b_dec"][:, None]) + params["b_enc"][:, None]


def topk_encode(params, stats, x, hyper):
    """f = ReLU(TopK_k(W_enc (x − b_dec) + b_enc)) (Gao et al. 2024, "Scaling and evaluating
    sparse autoencoders")."""
    return top_k(topk_pre(params, x), hyper.k)


def topk_loss(params, stats, x, hyper, progress):
    """||x − x̂||² + α AuxK (α = 1/32 by default, k_aux dead latents); unit decoder rows."""
    pre = topk_pre(params, x)
    return with_aux_k(params, stats, x, hyper, pre, top_k(pre, hyper.k))


# ---- BatchTopK (Bussmann, Leask and Nanda 2024)


def batchtopk_pre(params: Params, x: jax.Array) -> jax.Array:
    return jax.nn.relu(topk_pre(params, x))


def batchtopk_encode(params, stats, x, hyper):
    """At inference, one threshold for every latent: f = z · 1[z > θ], z = ReLU(W_enc (x −
    b_dec) + b_enc), θ the EMA of the smallest value kept in training (a JumpReLU with one
    shared θ; Bussmann et al. 2024)."""
    pre = batchtopk_pre(params, x)
    return jnp.where(pre > stats.threshold, pre, 0.0)


def batchtopk_loss(params, stats, x, hyper, progress):
    """||x − x̂||² + α AuxK with the B·k largest values of the batch kept."""
    pre = batchtopk_pre(params, x)
    return with_aux_k(params, stats, x, hyper, pre, batch_top_k(pre, hyper.k))


# ---- Matryoshka (Bussmann et al. 2025; Nabeshima 2024)


def prefixes(n_latents: int) -> tuple[int, ...]:
    """The nested dictionary sizes: the first N/4, N/2 and N latents (at least 1 each)."""
    return tuple(sorted({max(1, round(f * n_latents)) for f in MATRYOSHKA_PREFIXES}))


def matryoshka_loss(params, stats, x, hyper, progress):
    """BatchTopK codes; the reconstruction loss is the mean over the nested prefixes m of
    ||x − (f_{:m} @ decoder_{:m} + b_dec)||², so that the first latents must reconstruct
    alone ("Learning Multi-Level Features with Matryoshka Sparse Autoencoders",
    Bussmann et al. 2025), plus α AuxK."""
    pre = batchtopk_pre(params, x)
    codes = batch_top_k(pre, hyper.k)
    n = codes.shape[0]
    losses = [reconstruction(x, decode(params, jnp.where(jnp.arange(n)[:, None] < m, codes, 0.0)))
              for m in prefixes(n)]  # a static handful of prefixes, not a loop over data
    aux = aux_k_loss(params, stats, x, decode(params, codes), pre, hyper)
    return sum(losses) / len(losses) + hyper.aux_coefficient * aux, codes


# ---- JumpReLU (Rajamanoharan et al. 2024b; Gemma Scope, Lieberum et al. 2024)


def rectangle(u: jax.Array) -> jax.Array:
    """K(u) = 1[|u| < 1/2], the straight-through kernel."""
    return (jnp.abs(u) < 0.5).astype(u.dtype)


@jax.custom_vjp
def jump_relu(z: jax.Array, threshold: jax.Array, bandwidth: jax.Array) -> jax.Array:
    """z · H(z − θ). Gradients: ∂/∂z = H(z − θ); ∂/∂θ := −(θ/ε) K((z − θ)/ε) (the
    straight-through estimator of "Jumping Ahead", eq. 11); none for ε."""
    return z * (z > jnp.broadcast_to(threshold, z.shape))


def _jump_relu_fwd(z, threshold, bandwidth):
    return jump_relu(z, threshold, bandwidth), (z, threshold, bandwidth)


def _jump_relu_bwd(saved, g):
    z, threshold, bandwidth = saved
    theta = jnp.broadcast_to(threshold, z.shape)  # θ [N, 1] over a batch z [N, B]
    dz = g * (z > theta)
    dtheta = -(theta / bandwidth) * rectangle((z - theta) / bandwidth) * g
    return dz, _sum_to(dtheta, threshold.shape), jnp.zeros_like(bandwidth)


jump_relu.defvjp(_jump_relu_fwd, _jump_relu_bwd)


@jax.custom_vjp
def step(z: jax.Array, threshold: jax.Array, bandwidth: jax.Array) -> jax.Array:
    """H(z − θ). Gradients: ∂/∂z = 0; ∂/∂θ := −(1/ε) K((z − θ)/ε)."""
    return (z > jnp.broadcast_to(threshold, z.shape)).astype(z.dtype)


def _step_fwd(z, threshold, bandwidth):
    return step(z, threshold, bandwidth), (z, threshold, bandwidth)


def _step_bwd(saved, g):
    z, threshold, bandwidth = saved
    theta = jnp.broadcast_to(threshold, z.shape)
    dtheta = -(1.0 / bandwidth) * rectangle((z - theta) / bandwidth) * g
    return jnp.zeros_like(z), _sum_to(dtheta, threshold.shape), jnp.zeros_like(bandwidth)


step.defvjp(_step_fwd, _step_bwd)


def _sum_to(grad: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """A broadcast argument's gradient: summed over the axes it was broadcast along (the
    leading axes it lacks, and its axes of size 1)."""
    lead = grad.ndim - len(shape)
    axes = (*range(lead), *(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1))
    return jnp.sum(grad, axis=axes).reshape(shape)


def jumprelu_init(key, n_latents, d):
    """Unit decoder rows, W_e = W_dᵀ, zero biases, θ = 0.001 (Gemma Scope)."""
    params = tied_init(key, n_latents, d)
    return {**params, "log_threshold": jnp.full(n_latents, jnp.log(JUMP_THRESHOLD_INIT))}


def jumprelu_pre(params, x):
    return matmul(params["encoder"], x) + params["b_enc"][:, None]


def jumprelu_encode(params, stats, x, hyper):
    """f = JumpReLU_θ(W_enc x + b_enc), θ = exp(log_threshold) per latent."""
    threshold = jnp.exp(params["log_threshold"])[:, None]
    return jump_relu(jumprelu_pre(params, x), threshold, hyper.bandwidth)


def jumprelu_loss(params, stats, x, hyper, progress):
    """||x − x̂||² + λ Σ_j H(z_j − θ_j), the L0 penalty trained through the
    straight-through estimator (Rajamanoharan et al. 2024b); λ warmed up; unit decoder rows
    (Gemma Scope)."""
    pre = jumprelu_pre(params, x)
    threshold = jnp.exp(params["log_threshold"])[:, None]  # [N, 1] over the batch
    codes = jump_relu(pre, threshold, hyper.bandwidth)
    l0 = jnp.mean(jnp.sum(step(pre, threshold, hyper.bandwidth), axis=0))
    loss = reconstruction(x, decode(params, codes)) + warmed_up(hyper.l1_coefficient, progress) * l0
    return loss, codes


# ---- Gated (Rajamanoharan et al. 2024a)


def gated_init(key, n_latents, d):
    """Unit decoder rows, W_gate = W_dᵀ, r_mag = 0 (W_mag = W_gate), zero biases."""
    params = tied_init(key, n_latents, d)
    return {**params, "r_mag": jnp.zeros(n_latents), "b_mag": jnp.zeros(n_latents)}


def gated_parts(params, x):
    """(π_gate, f): π_gate = W_gate (x − b_dec) + b_gate; f = 1[π_gate > 0] ·
    ReLU(W_mag (x − b_dec) + b_mag) with W_mag = exp(r_mag) ⊙ W_gate (row scale)."""
    centred = x - params["b_dec"][:, None]
    projected = matmul(params["encoder"], centred)
    gate = projected + params["b_enc"][:, None]
    magnitude = jax.nn.relu(jnp.exp(params["r_mag"])[:, None] * projected + params["b_mag"][:, None])
    return gate, jnp.where(gate > 0, magnitude, 0.0)


def gated_encode(params, stats, x, hyper):
    return gated_parts(params, x)[1]


def gated_loss(params, stats, x, hyper, progress):
    """||x − x̂||² + λ ||ReLU(π_gate)||₁ + ||x − x̂_frozen(ReLU(π_gate))||², the last
    decoding the gate's activations with the decoder under stop-gradient ("Improving
    Dictionary Learning with Gated Sparse Autoencoders", eq. 8); λ warmed up."""
    gate, codes = gated_parts(params, x)
    active = jax.nn.relu(gate)
    frozen = {"decoder": jax.lax.stop_gradient(params["decoder"]),
              "b_dec": jax.lax.stop_gradient(params["b_dec"])}
    sparsity = jnp.mean(jnp.sum(active, axis=0))
    loss = (reconstruction(x, decode(params, codes)) + warmed_up(hyper.l1_coefficient, progress) * sparsity
            + reconstruction(x, decode(frozen, active)))
    return loss, codes


# ---- the registry

BASE_DIMS = {"encoder": ("latent", "hidden"), "b_enc": ("latent",),
             "decoder": ("latent", "hidden"), "b_dec": ("hidden",)}


@dataclasses.dataclass(frozen=True)
class SAEKind:
    """One kind of SAE.

    Attributes:
      init: `init(key, N, d) -> params`.
      encode: `encode(params, stats, x [d, B], hyper) -> codes [N, B]`, the codes at
        inference (analysis).
      loss: `loss(params, stats, x [d, B], hyper, progress) -> (objective, codes [N, B])`,
        the training objective on one batch and its training-time codes; `progress` is
        the step over the steps.
      dims: the dataset dims of each parameter.
      reads: the `[sae]` keys of `SAEHyper` it uses (others are refused by the config).
      unit_decoder: whether the decoder rows are renormalised to unit norm after every
        step (and the gradient's component along each row projected out before it).
      threshold: whether `Stats.threshold` is part of the model (stored as `threshold`).
    """

    init: Callable
    encode: Callable
    loss: Callable
    dims: dict[str, tuple[str, ...]]
    reads: tuple[str, ...]
    unit_decoder: bool
    threshold: bool = False


# Keyed by `toymodels.kinds.SAE_KIND_NAMES`, each with the keys it reads from there (`SAE_READS`:
# parsing checks them without JAX).
SAE_KINDS: dict[str, SAEKind] = {
    "relu": SAEKind(relu_init, relu_encode, relu_loss, BASE_DIMS, SAE_READS["relu"], False),
    "topk": SAEKind(tied_init, topk_encode, topk_loss, BASE_DIMS, SAE_READS["topk"], True),
    "batchtopk": SAEKind(tied_init, batchtopk_encode, batchtopk_loss, BASE_DIMS,
                         SAE_READS["batchtopk"], True, True),
    "jumprelu": SAEKind(jumprelu_init, jumprelu_encode, jumprelu_loss,
                        {**BASE_DIMS, "log_threshold": ("latent",)},
                        SAE_READS["jumprelu"], True),
    "gated": SAEKind(gated_init, gated_encode, gated_loss,
                     {**BASE_DIMS, "r_mag": ("latent",), "b_mag": ("latent",)},
                     SAE_READS["gated"], True),
    "matryoshka": SAEKind(tied_init, batchtopk_encode, matryoshka_loss, BASE_DIMS,
                          SAE_READS["matryoshka"], True, True),
}


def get_sae(name: str) -> SAEKind:
    """Looks up an SAE kind; an unknown name raises a ValueError listing the valid ones."""
    if name not in SAE_KINDS:
        raise ValueError(f"unknown SAE kind {name!r}; valid: {', '.join(SAE_KINDS)}")
    return SAE_KINDS[name]


def project_out_rows(grad: jax.Array, decoder: jax.Array) -> jax.Array:
    """The decoder gradient without its component along each (unit) decoder row, so that
    Adam's step moves rows along the unit sphere (Gao et al. 2024, section 2.4)."""
    rows = unit_rows(decoder)
    return grad - jnp.sum(grad * rows, axis=-1, keepdims=True) * rows
