"""The pieces every SAE kind shares: hyperparameters, running statistics, decoding, the
exact traced top-k, AuxK, the sparsity warm-up, initialisation and the unit-decoder
projection. The kinds themselves are `toymodels.dictionary.sae_topk` (the k-sparse family)
and `sae_penalty` (the penalised family); their registry is `toymodels.dictionary.sae`.

Every function here is written for ONE SAE and a batch with one example per column,
x: [d, B] and codes [N, B] (see `toymodels.dictionary.sae`).

Shapes: B batch, N latents (the SAE's width), d hidden dims.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

Params = dict[str, jax.Array]
LAMBDA_WARMUP = 0.05  # the sparsity coefficient ramps up linearly over this share of the steps
THRESHOLD_EMA = 0.99  # BatchTopK: theta <- 0.99 theta + 0.01 (smallest kept value of a batch)


@struct.dataclass
class SAEHyper:
    """One SAE's traced hyperparameters and its source. A batch of R SAEs adds a leading R.

    Attributes:
      learning_rate, weight_decay, momentum, beta1, beta2, one_minus_beta1,
        one_minus_beta2, eps: [] the optimiser's, as in `toymodels.hyper.Hyper` (the
        trainer uses `toymodels.train.make_optimizer`; SAEs default to Adam, no decay).
      l1_coefficient: [] λ, the sparsity coefficient: of the decoder-norm-weighted L1
        ("relu"), of the L1 of the gate's pre-activations ("gated"), of the L0 ("jumprelu").
      k: [] float32, active latents per example: an integer ("topk"; "mp": its pursuit
        steps), or a real number ("batchtopk", "matryoshka": round(k·B) codes kept of a
        batch of B, k on average).
      k_aux: [] int, dead latents the AuxK loss may use.
      aux_coefficient: [] α, the weight of the AuxK loss.
      bandwidth: [] ε, JumpReLU's straight-through kernel width.
      init_threshold: [] θ₀, JumpReLU's threshold at initialisation (every latent's).
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
    init_threshold: jax.Array
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
    round(k·B) largest over the whole batch are kept, so L0 is k on average, not per
    example; k may be real (k = 1.8, B = 10: 18 codes). Ties at the smallest kept value are
    all kept."""
    keep = pre >= kth_largest(pre.reshape(-1), jnp.round(k * pre.shape[1]))
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


def project_out_rows(grad: jax.Array, decoder: jax.Array) -> jax.Array:
    """The decoder gradient without its component along each (unit) decoder row, so that
    Adam's step moves rows along the unit sphere (Gao et al. 2024, section 2.4)."""
    rows = unit_rows(decoder)
    return grad - jnp.sum(grad * rows, axis=-1, keepdims=True) * rows
