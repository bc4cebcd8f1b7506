"""The SynthSAEBench metrics of ONE sparse autoencoder against known ground truth.

Role in the data flow: `toymodels.dictionary.analysis.score_one` calls `benchmark_one` for
each SAE of a sweep (vmapped there, once) and adds the one host step, `decoder_mcc`'s
Hungarian matching. Every function here is for ONE SAE; none is vmapped here.

Terminology and shapes as in `toymodels.dictionary.scores`: ``truth`` [F, d] unit feature
directions, ``latents`` [N, d] the SAE's decoder rows, ``codes`` [B, N] its encoder's codes
on a batch of B examples whose true codes are ``true_codes`` [B, F]; a latent *fires* where
its code is non-zero, a feature is *on* where its true code is non-zero. ``represented``
[F] bool marks the features that are targets (all of them when None). A hierarchy is
``parent`` [F] int: each feature's parent feature, -1 for a root.

Definitions and their sources:

- `decoder_mcc`, `uniqueness`, `firing_scores` (per-latent precision, recall, F1 and
  accuracy), `norm_shrinkage`, `explained_variance`: SynthSAEBench (Chanin &
  Garriga-Alonso 2026) as SAELens 6.54 computes it (``sae_lens/synthetic/evals.py``); every
  match there is by ABSOLUTE cosine. L0 and dead latents are `scores.l0` and
  `scores.dead_fraction` (the benchmark's dead-latent count is that fraction times N).
- `absorption_gap`, `hedging`: the hierarchy metrics of issue 26 (after Chanin et al.
  2024, "A is for absorption", and Chanin et al. 2025, "Feature hedging"), with a parent
  feature's latent its best match by absolute cosine (`best_latents`, the benchmark's
  convention; SAELens 6.54 has no hierarchy metric to follow).
- `decoder_projection_profile`, `nth_decoder_projection`: s_n of "Sparse but wrong"
  (Chanin & Garriga-Alonso 2025), as the authors' code computes it: pooled over the batch.

Example:
  >>> truth = jnp.eye(2)
  >>> float(uniqueness(truth, jnp.array([[1.0, 0.1], [0.2, -1.0]])))
  1.0
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from toymodels.dictionary import scores

_HIGHEST = jax.lax.Precision.HIGHEST


# --- matching by absolute cosine ------------------------------------------------------


def abs_cosines(truth: jax.Array, latents: jax.Array, represented=None) -> jax.Array:
    """|cos| of every feature with every latent, -1 in the rows of features not
    represented (so that no match picks them); [F, d], [N, d] -> [F, N].
    """
    similarity = jnp.abs(scores.cosines(truth, latents))
    return similarity if represented is None else jnp.where(represented[:, None], similarity, -1.0)


def latent_matches(truth: jax.Array, latents: jax.Array, represented=None) -> jax.Array:
    """Each latent's best-matching represented feature by |cos| (ties: the first); [N] int32."""
    return jnp.argmax(abs_cosines(truth, latents, represented), axis=0).astype(jnp.int32)


def best_latents(truth: jax.Array, latents: jax.Array) -> jax.Array:
    """Each feature's best-matching latent by |cos| (ties: the first); [F] int32."""
    return jnp.argmax(abs_cosines(truth, latents), axis=1).astype(jnp.int32)


def matched_pairs_mean(similarity) -> float:
    """Mean similarity of the pairs of a one-to-one matching of rows to columns that
    maximises the sum (`scipy.optimize.linear_sum_assignment`): min(rows, cols) pairs, so
    an unmatched row or column counts nothing (unlike `scores.matched_mean`, where an
    unmatched row counts 0); NaN for an empty matrix. Host (numpy); [F, N] -> float.

    Example:
      >>> matched_pairs_mean(np.array([[0.9, 0.8, 0.0], [0.85, 0.1, 0.0]]))
      0.825
    """
    similarity = np.asarray(similarity, float)
    if similarity.size == 0:
        return float("nan")
    rows, cols = scipy.optimize.linear_sum_assignment(similarity, maximize=True)
    return float(similarity[rows, cols].mean())


def decoder_mcc(truth, latents) -> float:
    """SynthSAEBench's MCC: the mean |cos| of the pairs of the one-to-one (Hungarian)
    matching of decoder latents to features that maximises the summed |cos|, over
    min(F, N) pairs (SAELens ``mean_correlation_coefficient``). Not `scores.hungarian_mcc`,
    which correlates codes. Host; truth [F, d], latents [N, d] -> float in [0, 1].

    Example:
      >>> decoder_mcc(jnp.eye(2), jnp.array([[0.0, -3.0], [2.0, 0.0], [1.0, 1.0]]))
      1.0
    """
    unit = lambda a: np.asarray(a, float) / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    return matched_pairs_mean(np.abs(unit(truth) @ unit(latents).T))


def uniqueness(truth: jax.Array, latents: jax.Array, represented=None) -> jax.Array:
    """SynthSAEBench's uniqueness: the number of distinct features that are some latent's
    best match (`latent_matches`) over the number of latents N (every latent counts, dead
    ones too, as in SAELens ``feature_uniqueness``); [] in (0, 1].
    """
    matched = latent_matches(truth, latents, represented)
    hit = jnp.zeros(truth.shape[0], bool).at[matched].set(True)
    return jnp.sum(hit) / latents.shape[0]


# --- firing as a classifier of the matched feature ------------------------------------


def firing_scores(true_codes: jax.Array, codes: jax.Array, latent_match: jax.Array) -> dict:
    """Each latent's firing as a detector of its matched feature being on, counted over the
    batch: precision TP / (TP + FP), recall TP / (TP + FN), F1 their harmonic mean (each 0
    where its denominator is 0, as SAELens), accuracy (TP + TN) / B. SynthSAEBench
    reports the plain means over the N latents (`mean_firing_scores`).

    Args:
      true_codes: [B, F]; codes: [B, N]; latent_match: [N] int, each latent's feature.

    Returns:
      {"precision", "recall", "f1", "accuracy"}: each [N].
    """
    fires = codes != 0  # [B, N]
    on = (true_codes != 0)[:, latent_match]  # [B, N]: the matched feature is on
    count = lambda a: jnp.sum(a, axis=0, dtype=jnp.float32)
    tp, fp, fn = count(fires & on), count(fires & ~on), count(~fires & on)
    ratio = lambda a, b: jnp.where(b > 0, a / jnp.where(b > 0, b, 1.0), 0.0)
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    return {"precision": precision, "recall": recall,
            "f1": ratio(2 * precision * recall, precision + recall),
            "accuracy": count(fires == on) / codes.shape[0]}


def mean_firing_scores(true_codes: jax.Array, codes: jax.Array, latent_match: jax.Array) -> dict:
    """`firing_scores` averaged over the latents: {"precision", ...}: each []."""
    return {k: jnp.mean(v) for k, v in firing_scores(true_codes, codes, latent_match).items()}


# --- reconstruction ---------------------------------------------------------------------


def explained_variance(x: jax.Array, x_hat: jax.Array) -> jax.Array:
    """1 - `scores.fvu`: 1 - E||x - x_hat||² / (E||x||² - ||E x||²), SynthSAEBench's
    explained variance (SAELens's special case of a constant batch, variance < 1e-10, is
    not made: it gives NaN or inf here); [B, d], [B, d] -> [].
    """
    return 1.0 - scores.fvu(x, x_hat)


def norm_shrinkage(x: jax.Array, x_hat: jax.Array, min_norm: float = 1e-6) -> jax.Array:
    """SynthSAEBench's shrinkage: the mean over the examples with ||x|| > min_norm of
    ||x_hat|| / ||x|| (1: none, < 1: shrunk; 0 if no example counts). Not `scores.shrinkage`
    (the relative reconstruction bias E||x_hat||² / E[x_hat . x]); [B, d], [B, d] -> [].
    """
    norm = jnp.sqrt(jnp.sum(x * x, axis=1))
    counted = norm > min_norm
    ratio = jnp.sqrt(jnp.sum(x_hat * x_hat, axis=1)) / jnp.where(counted, norm, 1.0)
    return jnp.sum(jnp.where(counted, ratio, 0.0)) / jnp.maximum(jnp.sum(counted), 1)


# --- hierarchy: absorption and hedging --------------------------------------------------


def _pairs(parent: jax.Array, represented=None) -> tuple[jax.Array, jax.Array]:
    """(is a pair [F] bool: the feature has a parent, both represented; its parent [F],
    0 where not a pair, safe to index with)."""
    has = parent >= 0
    safe = jnp.where(has, parent, 0)
    if represented is not None:
        has = has & represented & represented[safe]
    return has, safe


def absorption_gap(true_codes: jax.Array, codes: jax.Array, parent: jax.Array,
                   parent_latent: jax.Array, represented=None) -> jax.Array:
    """Per child feature c with parent p: P(latent j fires | p on, c off) − P(j fires | p on,
    c on), j = parent_latent[p] the parent's latent. 1: j never fires when the child is on
    (the child absorbed the parent); 0: no absorption.

    Args:
      true_codes: [B, F]; codes: [B, N]; parent: [F] int, -1 for roots;
      parent_latent: [F] int, each feature's latent (`best_latents`);
      represented: [F] bool, or None (all).

    Returns:
      [F] the gap of each child's pair; NaN for roots, pairs with a feature not represented
      and pairs where either condition never occurs in the batch.
    """
    pair, safe = _pairs(parent, represented)
    on = true_codes != 0  # [B, F]
    fires = (codes != 0)[:, parent_latent[safe]]  # [B, F]: child c's parent's latent fires
    parent_on = on[:, safe]
    rate = lambda given: (jnp.sum(fires & given, axis=0, dtype=jnp.float32)
                          / jnp.sum(given, axis=0, dtype=jnp.float32))
    gap = rate(parent_on & ~on) - rate(parent_on & on)  # 0/0 = NaN where never seen
    return jnp.where(pair, gap, jnp.nan)


def hedging(truth: jax.Array, latents: jax.Array, parent: jax.Array,
            parent_latent: jax.Array, represented=None) -> jax.Array:
    """Per child feature c with parent p: cos(latents[parent_latent[p]], truth[c]), the
    component of the child's unit direction along the parent latent's unit decoder row
    (signed). 0 when the parent latent is the parent's direction and the two features are
    orthogonal; with non-orthogonal features a perfect SAE scores cos(truth[p], truth[c]).

    Args:
      truth: [F, d]; latents: [N, d]; parent, parent_latent, represented: as in
        `absorption_gap`.

    Returns:
      [F]; NaN for roots and pairs with a feature not represented.

    Example:
      >>> hedging(jnp.eye(2), jnp.array([[0.8, 0.6], [0.0, 1.0]]), jnp.array([-1, 0]),
      ...         jnp.array([0, 1]))
      Array([nan, 0.6], dtype=float32)
    """
    pair, safe = _pairs(parent, represented)
    rows = scores.cosines(truth, latents)[jnp.arange(truth.shape[0]), parent_latent[safe]]
    return jnp.where(pair, rows, jnp.nan)


def nan_mean(values: jax.Array) -> jax.Array:
    """Mean of the non-NaN values; NaN when there are none; [n] -> []."""
    seen = ~jnp.isnan(values)
    return jnp.where(jnp.any(seen), jnp.sum(jnp.where(seen, values, 0.0)) / jnp.sum(seen), jnp.nan)


# --- nth decoder projection ---------------------------------------------------------------


def decoder_projection_profile(x: jax.Array, b_dec: jax.Array, latents: jax.Array) -> jax.Array:
    """s_n for every n = 0 .. N-1 ("Sparse but wrong", Chanin & Garriga-Alonso 2025): the
    B·N decoder projections (x_b - b_dec) · latents[j], pooled over the batch and sorted
    decreasingly, read at 0-based position n·B, as the authors' ``nth_decoder_projection``
    computes it: the value with n·B projections above it, i.e. the largest one a BatchTopK
    keeping n latents per example on average would drop. The paper's decoder rows are unit
    (pass unit latents for its scale). Plotted against the SAE's L0 across a sweep, s_n at
    an n a little above the true L0 locates the right L0 at its elbow (the paper).

    Args:
      x: [B, d] the SAE's inputs; b_dec: [d]; latents: [N, d].

    Returns:
      [N] non-increasing.

    Example:
      >>> x = jnp.array([[3.0, 1.0], [2.0, 0.0]])
      >>> decoder_projection_profile(x, jnp.zeros(2), jnp.eye(2))  # sorted: 3, 2, 1, 0
      Array([3., 1.], dtype=float32)
    """
    projections = jnp.matmul(x - b_dec[None, :], latents.T, precision=_HIGHEST)  # [B, N]
    pooled = -jnp.sort(-projections.ravel())
    return pooled[jnp.arange(latents.shape[0]) * x.shape[0]]


def nth_decoder_projection(x: jax.Array, b_dec: jax.Array, latents: jax.Array, n: int) -> jax.Array:
    """s_n: `decoder_projection_profile` at n (0 <= n < N); []."""
    return decoder_projection_profile(x, b_dec, latents)[n]


# --- everything for one SAE ----------------------------------------------------------------


def benchmark_one(truth, represented, latents, b_dec, x, x_hat, codes, true_codes,
                  parent=None) -> dict:
    """Every metric here of ONE SAE but the host's `decoder_mcc` (see the module docstring).

    Args:
      truth: [F, d] unit features (rows of features not represented: any);
      represented: [F] bool; latents: [N, d] unit decoder rows; b_dec: [d];
      x, x_hat: [B, d] inputs and reconstructions; codes: [B, N]; true_codes: [B, F];
      parent: [F] int (-1 roots), or None: no hierarchy metrics.

    Returns:
      A dict of arrays: uniqueness, firing_{precision,recall,f1,accuracy} [] and
      latent_firing_{precision,recall,f1} [N], explained_variance, norm_shrinkage [],
      decoder_projection [N] (s_n, n = 0 .. N-1); with a parent also absorption_gap,
      hedging [F] and their means absorption_gap_mean, hedging_mean [].
    """
    match = latent_matches(truth, latents, represented)
    firing = firing_scores(true_codes, codes, match)
    out = {"uniqueness": uniqueness(truth, latents, represented),
           **{f"firing_{k}": jnp.mean(v) for k, v in firing.items()},
           **{f"latent_firing_{k}": firing[k] for k in ("precision", "recall", "f1")},
           "explained_variance": explained_variance(x, x_hat),
           "norm_shrinkage": norm_shrinkage(x, x_hat),
           "decoder_projection": decoder_projection_profile(x, b_dec, latents)}
    if parent is not None:
        chosen = best_latents(truth, latents)
        gap = absorption_gap(true_codes, codes, parent, chosen, represented)
        hedge = hedging(truth, latents, parent, chosen, represented)
        out.update(absorption_gap=gap, hedging=hedge, absorption_gap_mean=nan_mean(gap),
                   hedging_mean=nan_mean(hedge))
    return out
