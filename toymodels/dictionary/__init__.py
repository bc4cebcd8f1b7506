"""Dictionary learning on toy models: sparse autoencoders, pursuits, ground-truth scores.

The toy models are where the truth is known: feature i of a trained model is W[:, i], and
its hidden vectors h = W x are sums of those directions. This package trains sparse
autoencoders (SAEs) on those activations with the sweep engine (an `[sae]` table in a
sweep file: `toymodels.dictionary.config`), codes activations by inference-time
optimisation against a fixed dictionary (`pursuit`), and scores learned dictionaries
against the truth (`scores`; `toymodels analyze` adds them to an SAE sweep: `analysis`).
The SAE's dictionary elements are *latents*; the ground truth are *features*.
"""

from toymodels.dictionary.pursuit import (
    gradient_pursuit,
    matching_pursuit,
    omp,
    orthogonal_matching_pursuit,
)
from toymodels.dictionary.sae import SAE_KINDS, SAEHyper, SAEKind, get_sae
from toymodels.dictionary.scores import (
    best_cosines,
    cosines,
    dead_fraction,
    fvu,
    hungarian_mcc,
    l0,
    latent_features,
    matched_mean,
    mmcs,
    random_dictionary,
    random_mmcs,
    random_recovered,
    recovered,
    shrinkage,
    support_precision_recall,
    support_recovery,
)

__all__ = [
    "SAE_KINDS", "SAEHyper", "SAEKind", "best_cosines", "cosines", "dead_fraction",
    "fvu", "get_sae", "gradient_pursuit", "hungarian_mcc", "l0", "latent_features",
    "matched_mean", "matching_pursuit", "mmcs", "omp", "orthogonal_matching_pursuit",
    "random_dictionary", "random_mmcs", "random_recovered", "recovered", "shrinkage",
    "support_precision_recall", "support_recovery",
]
