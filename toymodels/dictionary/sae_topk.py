"""The k-sparse SAE kinds, for ONE SAE and one batch x: [d, B] (codes [N, B]): TopK (Gao et
al. 2024), BatchTopK (Bussmann, Leask and Nanda 2024), Matryoshka (Bussmann et al. 2025)
and MP-SAE (Costa et al. 2025). Registered in `toymodels.dictionary.sae`.

Shapes: B batch, N latents, d hidden dims.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toymodels.dictionary.pursuit import matching_pursuit
from toymodels.dictionary.sae_parts import (Params, aux_k_loss, batch_top_k, decode, matmul,
                                            random_directions, reconstruction, top_k, with_aux_k)

MATRYOSHKA_PREFIXES = (0.25, 0.5, 1.0)  # nested dictionaries: the first N/4, N/2 and N latents


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


# ---- MP-SAE (Costa, Fel, Lubana, Tolooshams and Ba 2025)


def mp_init(key: jax.Array, n_latents: int, d: int) -> Params:
    """Unit decoder rows in random directions (the other kinds' from the same key), b_dec 0;
    no encoder weights: the encoder is the pursuit over the decoder."""
    return {"decoder": random_directions(key, n_latents, d), "b_dec": jnp.zeros(d)}


def mp_encode(params, stats, x, hyper, max_k: int | None = None):
    """k steps of non-negative matching pursuit over the (unit) decoder rows on x − b_dec:
    each step picks the latent of largest positive <r, d_j>, adds that correlation to its
    code (a latent may be picked again) and removes it from the residual r ("From Flat to
    Hierarchical: Extracting Sparse Representations with Matching Pursuit", Costa et al.
    2025; `toymodels.dictionary.pursuit.matching_pursuit`). k is traced: the pursuit runs
    `max_k` (static; default N, the width) iterations and leaves those past k unchanged,
    so its cost is max_k's, not k's (the trainer passes the sweep's largest k:
    `SAESpec.pursuit_steps`). [d, B] -> [N, B]."""
    centred = (x - params["b_dec"][:, None]).T
    n = params["decoder"].shape[0]
    steps = n if max_k is None else min(max_k, n)
    return matching_pursuit(params["decoder"], centred, hyper.k, max_k=steps, nonnegative=True).T


def mp_loss(params, stats, x, hyper, progress, max_k: int | None = None):
    """||x − x̂||², x̂ = decoderᵀ f + b_dec with f the pursuit's codes: the decoder and b_dec
    learn through the pursuit's steps (the choice of latents is not differentiated; the
    coefficients <r, d_j> are). Unit decoder rows; no auxiliary loss."""
    codes = mp_encode(params, stats, x, hyper, max_k)
    return reconstruction(x, decode(params, codes)), codes

