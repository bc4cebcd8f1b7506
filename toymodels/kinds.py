"""The names a sweep file chooses from, as data: model kinds, norms, optimizers and the
hyperparameters each reads, SAE kinds and the keys each reads, LLC losses.

Parsing checks a file against these names without importing JAX (`toymodels.config`,
`toymodels.sae_config`, `toymodels.llc_config`); the registries of what each name does
(`toymodels.models.MODELS` and `NORMS`, `toymodels.train.OPTIMIZERS`,
`toymodels.dictionary.sae.SAE_KINDS`) are keyed by the same names in the same order
(tests/test_imports.py holds that). A new kind is added in both places.
"""

from __future__ import annotations

MODEL_KINDS = ("linear", "relu_output", "relu_hidden", "abs_computation")  # model.kind
KGON_KINDS = ("relu_output", "linear")  # the kinds whose params are a tied W and a bias b
NORM_KINDS = ("none", "rms", "layer")  # model.norm

# The Hyper fields that only some optimizers read (every one reads learning_rate and
# weight_decay, and decays every parameter, the bias too, by weight_decay, which may be
# negative); `toymodels.config` refuses such a key given for an optimizer that ignores it.
OPTIMIZER_READS: dict[str, tuple[str, ...]] = {  # train.optimizer -> the keys it reads
    "adamw": ("beta1", "beta2", "eps"), "adam": ("beta1", "beta2", "eps"),
    "sgd": (), "momentum": ("momentum",),
}
OPTIMIZER_NAMES = tuple(OPTIMIZER_READS)

_TOPK_READS = ("k", "k_aux", "aux_coefficient", "dead_steps")
SAE_READS: dict[str, tuple[str, ...]] = {  # sae.kind -> the [sae] keys of SAEHyper it uses
    "relu": ("l1_coefficient",),
    "topk": _TOPK_READS,
    "batchtopk": _TOPK_READS,
    "jumprelu": ("l1_coefficient", "bandwidth", "init_threshold"),
    "gated": ("l1_coefficient",),
    "matryoshka": _TOPK_READS,
    "mp": ("k",),
}
SAE_KIND_NAMES = tuple(SAE_READS)
SAE_REAL_K = ("batchtopk", "matryoshka")  # k keeps round(k·B) codes of a batch: a real k
# sae.tied: W_e = W_dᵀ, for the kinds with an encoder
SAE_TIED = ("relu", "topk", "batchtopk", "jumprelu", "gated", "matryoshka")
SAE_DICTIONARIES = ("learned", "truth")  # sae.dictionary: the decoder trained, or the truth

LLC_LOSSES = ("dataset", "online", "exact")  # llc.loss
