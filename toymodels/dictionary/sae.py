"""Sparse autoencoder kinds: per-SAE pure functions (init, encode, loss) in a registry.

An SAE reads an activation x: [d] (a toy model's hidden vector h = W x) and writes codes
f: [N] over its N *latents*; x̂ = decoderᵀ f + b_dec. The ground-truth directions are the
*features* (the toy model's columns W_i). Every function here is written for ONE SAE and a
batch with one example per column, x: [d, B] and codes [N, B], the toy models' layout
(about 1.6x faster on CPU than rows for d = 5; BatchTopK's top values are taken over the
batch); the trainer (`toymodels.dictionary.train`) vmaps them over SAEs in one place.

Parameters (dataset dims in `SAEKind.dims`): encoder [latent, hidden], b_enc [latent],
decoder [latent, hidden] (row j is latent j's direction d_j), b_dec [hidden]; JumpReLU adds
log_threshold [latent], Gated r_mag and b_mag [latent]; MP-SAE has only the decoder and
b_dec (its encoder is a matching pursuit over the decoder). Running statistics (`Stats`) are not
trained: how long each latent has been silent (dead latents, the AuxK loss) and BatchTopK's
inference threshold.

The kinds are defined by family: `toymodels.dictionary.sae_topk` (topk, batchtopk,
matryoshka, mp) and `sae_penalty` (relu, jumprelu, gated), on the shared pieces of
`sae_parts` (`SAEHyper`, `Stats`, top-k, AuxK); this module is their registry.

Shapes: B batch, N latents (the SAE's width), d hidden dims.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from toymodels.dictionary.sae_parts import SAEHyper, Stats, tied_init
from toymodels.dictionary.sae_penalty import (gated_encode, gated_init, gated_loss, jumprelu_encode,
                                              jumprelu_init, jumprelu_loss, relu_encode, relu_init,
                                              relu_loss)
from toymodels.dictionary.sae_topk import (batchtopk_encode, batchtopk_loss, matryoshka_loss,
                                           mp_encode, mp_init, mp_loss, topk_encode, topk_loss)
from toymodels.kinds import SAE_READS

__all__ = ["BASE_DIMS", "SAE_KINDS", "SAEHyper", "SAEKind", "Stats", "get_sae"]

BASE_DIMS = {"encoder": ("latent", "hidden"), "b_enc": ("latent",),
             "decoder": ("latent", "hidden"), "b_dec": ("hidden",)}


@dataclasses.dataclass(frozen=True)
class SAEKind:
    """One kind of SAE.

    Attributes:
      init: `init(key, N, d) -> params` (a kind that reads `init_threshold`:
        `init(key, N, d, threshold=θ₀)`).
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
    "mp": SAEKind(mp_init, mp_encode, mp_loss,
                  {"decoder": BASE_DIMS["decoder"], "b_dec": BASE_DIMS["b_dec"]},
                  SAE_READS["mp"], True),
}


def get_sae(name: str) -> SAEKind:
    """Looks up an SAE kind; an unknown name raises a ValueError listing the valid ones."""
    if name not in SAE_KINDS:
        raise ValueError(f"unknown SAE kind {name!r}; valid: {', '.join(SAE_KINDS)}")
    return SAE_KINDS[name]
