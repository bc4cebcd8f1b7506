"""The penalised SAE kinds, for ONE SAE and one batch x: [d, B] (codes [N, B]): ReLU + L1
(Anthropic, April 2024), JumpReLU (Rajamanoharan et al. 2024b, with its straight-through
estimator) and Gated (Rajamanoharan et al. 2024a). Registered in
`toymodels.dictionary.sae`.

Shapes: B batch, N latents, d hidden dims.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toymodels.dictionary.sae_parts import (Params, SAEHyper, Stats, decode, matmul,
                                            reconstruction, tied_init, warmed_up)

JUMP_THRESHOLD_INIT = 0.001  # JumpReLU's initial theta (Gemma Scope, Lieberum et al. 2024)
RELU_DECODER_NORM = 0.1  # April 2024 update: decoder rows start at norm 0.1


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


def jumprelu_init(key, n_latents, d, threshold=JUMP_THRESHOLD_INIT):
    """Unit decoder rows, W_e = W_dᵀ, zero biases, every θ_j = `threshold` ([] a number or
    a traced scalar: `sae.init_threshold`; default 0.001, Gemma Scope's)."""
    params = tied_init(key, n_latents, d)
    log_threshold = jnp.full(n_latents, jnp.log(jnp.asarray(threshold, jnp.float32)))
    return {**params, "log_threshold": log_threshold}


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
