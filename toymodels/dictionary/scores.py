"""Scores of a learned dictionary against the ground truth, and reconstruction metrics.

Role in the data flow: after a sparse autoencoder (or a pursuit) has been fitted to a
toy model's activations, these functions say how well its dictionary matches the
features that generated the data, and how well it reconstructs a batch.

Terminology: *features* are the ground-truth directions, ``truth`` [n, d]; the SAE's
dictionary elements are *latents*, ``latents`` [N, d]. Codes are [B, n] (true) or
[B, N] (the SAE's or a pursuit's), for B examples.

Geometry and batch metrics are in JAX (per-example functions vmapped once); the
one-to-one matching (`hungarian_mcc`) and the random-dictionary baselines
(`random_mmcs`, `random_recovered`) are numpy / scipy on the host.

Example:
  >>> truth = jnp.array([[1.0, 0.0], [0.0, 1.0]])
  >>> float(mmcs(truth, jnp.array([[0.0, 2.0], [1.0, 0.0], [1.0, 1.0]])))
  1.0
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate
import scipy.optimize
import scipy.special

_HIGHEST = jax.lax.Precision.HIGHEST  # float32 matmuls on CPU and GPU alike


# --- geometry of the dictionary -------------------------------------------------------


def _unit(v: jax.Array) -> jax.Array:
    """v / ||v||, and 0 for v = 0; [d] -> [d]."""
    norm = jnp.sqrt(v @ v)
    return v / jnp.where(norm > 0, norm, 1.0)


def cosines(truth: jax.Array, latents: jax.Array) -> jax.Array:
    """Signed cosine similarity of every feature with every latent.

    Args:
      truth: [n, d] feature directions (any norms; normalised here).
      latents: [N, d] latent directions (any norms; normalised here).

    Returns:
      [n, N] cosines; a zero row gives cosine 0 (no NaN).

    Example:
      >>> latents = jnp.array([[1.0, 1.0], [-3.0, 0.0], [0.0, 0.0]])
      >>> cosines(jnp.array([[2.0, 0.0]]), latents)
      Array([[ 0.70710677, -1.        ,  0.        ]], dtype=float32)
    """
    unit_truth, unit_latents = jax.vmap(_unit)(truth), jax.vmap(_unit)(latents)
    return jnp.matmul(unit_truth, unit_latents.T, precision=_HIGHEST)


def best_cosines(truth: jax.Array, latents: jax.Array) -> jax.Array:
    """Each feature's best SIGNED cosine with any latent; [n, d], [N, d] -> [n].

    Example:
      >>> best_cosines(jnp.array([[1.0, 0.0], [-1.0, 0.0]]), jnp.array([[1.0, 0.0]]))
      Array([ 1., -1.], dtype=float32)
    """
    return jnp.max(cosines(truth, latents), axis=1)


def mmcs(truth: jax.Array, latents: jax.Array) -> jax.Array:
    """Mean max cosine similarity: the mean over features of `best_cosines`; [].

    SIGNED on purpose: in a toy model antipodal pairs W_j = -W_i are common, and with
    |cos| one latent would match both features of a pair and count twice. With signed
    cosines {e1, -e1} against the single latent e1 scores (1 - 1) / 2 = 0, not 1.

    Example:
      >>> float(mmcs(jnp.array([[1.0, 0.0], [-1.0, 0.0]]), jnp.array([[1.0, 0.0]])))
      0.0
    """
    return jnp.mean(best_cosines(truth, latents))


def recovered(truth: jax.Array, latents: jax.Array, threshold: float) -> jax.Array:
    """Fraction of features whose best cosine exceeds threshold (e.g. 0.9, 0.99); [].

    Example:
      >>> truth = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> float(recovered(truth, jnp.array([[1.0, 0.1], [1.0, 1.0]]), 0.9))
      0.5
    """
    return jnp.mean(best_cosines(truth, latents) > threshold)


def latent_features(
    truth: jax.Array, latents: jax.Array, threshold: float = 0.9
) -> jax.Array:
    """Each latent's best-matching feature if that cosine >= threshold, else -1.

    Args:
      truth: [n, d] features.
      latents: [N, d] latents.
      threshold: smallest signed cosine that counts as a match.

    Returns:
      [N] int32 feature indices, -1 for latents that match no feature.

    Example:
      >>> truth = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> latent_features(truth, jnp.array([[0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]))
      Array([ 1, -1, -1], dtype=int32)
    """
    similarity = cosines(truth, latents)  # [n, N]
    best = jnp.argmax(similarity, axis=0).astype(jnp.int32)
    return jnp.where(jnp.max(similarity, axis=0) >= threshold, best, -1)


def random_dictionary(key: jax.Array, n_latents: int, d: int) -> jax.Array:
    """Uniformly random unit rows (normal / norm); the key is consumed.

    Returns:
      [N, d] with N = n_latents.

    Example:
      >>> rows = random_dictionary(jax.random.key(0), 3, 4)
      >>> jnp.allclose(jnp.linalg.norm(rows, axis=1), 1.0)
      Array(True, dtype=bool)
    """
    return jax.vmap(_unit)(jax.random.normal(key, (n_latents, d)))


# --- random-dictionary baselines (exact, numpy / scipy) ------------------------------


def _cosine_cdf(t, d: int):
    """P(<u, v> <= t) for a fixed unit u and a uniform unit v in d >= 2 dimensions.

    (1 + <u, v>) / 2 ~ Beta((d - 1) / 2, (d - 1) / 2).
    """
    a = (d - 1) / 2
    return scipy.special.betainc(a, a, np.clip((1.0 + np.asarray(t)) / 2.0, 0.0, 1.0))


_QUANTILES = (
    *(1e-15, 1e-9, 1e-5, 1e-3, 0.02, 0.1, 0.3),
    *(0.5, 0.7, 0.9, 0.98, 0.999, 1 - 1e-6),
)
"""Quantiles of the best cosine at which `random_mmcs` splits its integral."""


def _max_quantiles(n_latents: int, d: int, quantiles) -> np.ndarray:
    """-1, the given quantiles of the max of N cosines (d >= 2), and 1; sorted, unique.

    F(t)^N = q at t = 2 I^-1(q^(1/N)) - 1 (I^-1: the inverse regularised incomplete
    beta function). For large N the integrand of `random_mmcs` rises from 0 to 1 in a
    narrow band near t = 1 (of width about 1/N for d = 3), too narrow for one adaptive
    quadrature; splitting it at these quantiles keeps every piece smooth on its scale.
    """
    a = (d - 1) / 2
    levels = np.exp(np.log(np.asarray(quantiles)) / n_latents)
    inner = 2.0 * scipy.special.betaincinv(a, a, levels) - 1.0
    return np.unique(np.clip(np.concatenate([[-1.0], inner, [1.0]]), -1.0, 1.0))


def _quad(fn, lo: float, hi: float) -> float:
    """int_lo^hi fn, to about 1e-13 absolute."""
    return scipy.integrate.quad(fn, lo, hi, limit=200, epsabs=1e-13, epsrel=1e-10)[0]


def random_mmcs(n_latents: int, d: int) -> float:
    """Exact expected MMCS of a dictionary of N uniformly random unit latents.

    The best cosine of a fixed unit vector with N = n_latents independent uniform unit
    vectors has CDF F(t)^N, where F is the CDF of one cosine: t = 2u - 1 with
    u ~ Beta((d-1)/2, (d-1)/2). Integrating by parts,
    E[max] = 1 - int_{-1}^{1} F(t)^N dt, computed with `scipy.integrate.quad` in
    theta = arccos(t) (smooth at t = +-1 even for d = 2), piecewise between quantiles
    of the max (`_max_quantiles`); accurate to about 1e-9. By linearity this is also
    the expected MMCS of a random dictionary for any number of features n. For d = 1
    the cosines are +-1 with probability 1/2 each and the max is -1 only when all N
    are, so E = 1 - 2 * 2^-N.

    Args:
      n_latents: N >= 1.
      d: dimension >= 1.

    Returns:
      The expected best cosine, a float.

    Example:
      >>> round(random_mmcs(1, 3), 6), random_mmcs(2, 1)
      (0.0, 0.5)
    """
    if d == 1:
        return 1.0 - 2.0 * 0.5**n_latents

    def integrand(theta):  # F(t)^N dt with t = cos(theta)
        return _cosine_cdf(np.cos(theta), d) ** n_latents * np.sin(theta)

    edges = np.arccos(_max_quantiles(n_latents, d, _QUANTILES))[::-1]
    integral = sum(_quad(integrand, lo, hi) for lo, hi in zip(edges[:-1], edges[1:]))
    return 1.0 - integral


def random_recovered(n_latents: int, d: int, threshold: float) -> float:
    """Exact expected fraction recovered (best cosine > threshold) by random latents.

    Equals P(max of N cosines > threshold) = 1 - F(threshold)^N, F as in `random_mmcs`
    (for d = 1, F(t) = 1/2 on [-1, 1) and 1 from t = 1 on).

    Example:
      >>> round(random_recovered(1, 2, 0.0), 6)
      0.5
    """
    if d == 1:
        cdf = 0.0 if threshold < -1 else (0.5 if threshold < 1 else 1.0)
    else:
        cdf = float(_cosine_cdf(threshold, d))
    return 1.0 - cdf**n_latents


def _standardise(a: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit norm; a constant column becomes 0; [B, n]."""
    centred = a - a.mean(axis=0)
    norm = np.linalg.norm(centred, axis=0)
    constant = np.ptp(a, axis=0) == 0  # exactly, not up to the mean's rounding
    return np.where(constant, 0.0, centred / np.where(constant, 1.0, norm))


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of a with every column of b.

    a [B, n], b [B, N] -> [n, N]; a constant column correlates 0 with everything.
    """
    return _standardise(a).T @ _standardise(b)


def hungarian_mcc(true_codes, codes) -> float:
    """Mean correlation coefficient after the best one-to-one matching (one SAE).

    Pearson correlations over the B examples between each feature's true activations
    and each latent's activations; features are matched one-to-one to latents so that
    the sum of the (signed) correlations is largest (Hungarian algorithm,
    `scipy.optimize.linear_sum_assignment`), and the matched correlations are averaged
    over the n features. Constant columns correlate 0. When N < n, the n - N unmatched
    features count 0; extra latents (N > n) are simply left unmatched.

    Args:
      true_codes: [B, n] ground-truth feature activations.
      codes: [B, N] latent activations.

    Returns:
      The MCC, a float in [-1, 1].

    Example:
      >>> t = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
      >>> round(hungarian_mcc(t, 5.0 * t[:, ::-1]), 6)
      1.0
    """
    correlation = _pearson(np.asarray(true_codes, float), np.asarray(codes, float))
    return matched_mean(correlation)


def matched_mean(similarity: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean over the rows (of `mask`, e.g. the represented features; all by default) of a
    one-to-one matching of rows to columns maximising the summed similarity
    (`scipy.optimize.linear_sum_assignment`); an unmatched row counts 0; NaN if no row.

    Example:
      >>> matched_mean(np.array([[0.9, 0.8], [0.85, 0.1]]))
      0.825
    """
    rows = np.asarray(similarity) if mask is None else np.asarray(similarity)[mask]
    if not len(rows):
        return float("nan")
    i, j = scipy.optimize.linear_sum_assignment(rows, maximize=True)
    return float(rows[i, j].sum() / len(rows))


# --- reconstruction metrics of one batch ---------------------------------------------


def fvu(x: jax.Array, x_hat: jax.Array) -> jax.Array:
    """Fraction of variance unexplained, sum ||x - x_hat||² / sum ||x - mean(x)||²; [].

    Args:
      x: [B, d] inputs; the mean is over the batch, per dimension.
      x_hat: [B, d] reconstructions.

    Example:
      >>> x = jnp.array([[1.0, 0.0], [3.0, 2.0]])
      >>> float(fvu(x, x)), float(fvu(x, jnp.array([[2.0, 1.0], [2.0, 1.0]])))
      (0.0, 1.0)
    """
    centred = x - jnp.mean(x, axis=0, keepdims=True)
    return jnp.sum(jnp.square(x - x_hat)) / jnp.sum(jnp.square(centred))


def l0(codes: jax.Array) -> jax.Array:
    """Mean number of non-zero codes per example; [B, N] -> [].

    Example:
      >>> float(l0(jnp.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]])))
      1.5
    """
    return jnp.mean(jnp.sum(codes != 0, axis=1))


def dead_fraction(codes: jax.Array) -> jax.Array:
    """Fraction of latents that are zero on every example of the batch; [B, N] -> [].

    Example:
      >>> float(dead_fraction(jnp.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]])))
      0.5
    """
    return jnp.mean(~jnp.any(codes != 0, axis=0))


def shrinkage(x: jax.Array, x_hat: jax.Array) -> jax.Array:
    """Relative reconstruction bias gamma (Rajamanoharan et al. 2024, Gated SAEs); [].

    gamma = argmin_g E||x_hat / g - x||² = E||x_hat||² / E[x_hat . x]: gamma < 1 means
    the reconstructions are shrunk towards 0, 1 means no bias.

    Args:
      x: [B, d] inputs.
      x_hat: [B, d] reconstructions.

    Example:
      >>> x = jnp.array([[1.0, 2.0], [0.0, -1.0]])
      >>> round(float(shrinkage(x, 0.5 * x)), 6)
      0.5
    """
    return jnp.sum(jnp.square(x_hat)) / jnp.sum(x_hat * x)


# --- support recovery -----------------------------------------------------------------


def _support_one(true_code, code, latent_feature) -> jax.Array:
    """Support counts of ONE example; true_code [n], code [N], latent_feature [N].

    Returns:
      [5] int32: (chosen set == true support, chosen latents, chosen latents whose
      feature is in the true support, true features, true features chosen).
    """
    true = true_code != 0  # [n]
    chosen = code != 0  # [N]
    matched = latent_feature >= 0  # [N]
    feature = jnp.where(matched, latent_feature, 0)  # [N], safe to index with
    votes = (chosen & matched).astype(jnp.int32)
    picked = jnp.zeros(true.shape, jnp.int32).at[feature].add(votes) > 0  # [n] chosen
    right = chosen & matched & true[feature]  # [N] chosen latents of true features
    exact = ~jnp.any(chosen & ~matched) & jnp.all(picked == true)
    counts = (exact, chosen, right, true, picked & true)
    return jnp.stack([jnp.sum(c, dtype=jnp.int32) for c in counts])


def support_counts(true_codes, codes, latent_feature) -> jax.Array:
    """[B, 5] each example's support counts (`_support_one`: exact match, chosen latents,
    chosen latents of true features, true features, true features chosen); the one place
    `_support_one` is vmapped over the batch."""
    per_example = jax.vmap(_support_one, in_axes=(0, 0, None))
    return per_example(true_codes, codes, latent_feature)


def support_recovery(
    true_codes: jax.Array, codes: jax.Array, latent_feature: jax.Array
) -> jax.Array:
    """Fraction of examples whose chosen features are exactly the true support; [].

    The chosen set is {latent_feature[j] : codes[j] != 0}; the true support is
    {i : true_codes[i] != 0}. A chosen latent with latent_feature -1 (it matches no
    feature) is a wrong pick, so that example's sets differ. Two chosen latents of the
    same feature choose it once.

    Args:
      true_codes: [B, n] ground-truth codes.
      codes: [B, N] codes over the latents.
      latent_feature: [N] int, each latent's feature (from `latent_features`) or -1.

    Example:
      >>> true = jnp.array([[1.0, 0.0], [1.0, 1.0]])
      >>> codes = jnp.array([[0.0, 0.5, 0.0], [0.0, 2.0, 0.0]])
      >>> float(support_recovery(true, codes, jnp.array([1, 0, -1])))
      0.5
    """
    return jnp.mean(support_counts(true_codes, codes, latent_feature)[:, 0])


def support_precision_recall(
    true_codes: jax.Array, codes: jax.Array, latent_feature: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Precision and recall of the chosen supports, pooled over the batch.

    precision = (chosen latents whose feature is in the example's true support) /
    (chosen latents); recall = (true features chosen by some latent) / (true
    features), both summed over all examples (1.0 when the denominator is 0).
    Arguments as in `support_recovery`.

    Returns:
      (precision [], recall []).

    Example:
      >>> true = jnp.array([[1.0, 0.0], [1.0, 1.0]])
      >>> codes = jnp.array([[0.0, 0.5, 1.0], [0.0, 2.0, 0.0]])
      >>> p, r = support_precision_recall(true, codes, jnp.array([1, 0, -1]))
      >>> round(float(p), 4), round(float(r), 4)
      (0.6667, 0.6667)
    """
    totals = jnp.sum(support_counts(true_codes, codes, latent_feature), axis=0)
    _, chosen, right, true, found = totals
    precision = jnp.where(chosen > 0, right / jnp.maximum(chosen, 1), 1.0)
    recall = jnp.where(true > 0, found / jnp.maximum(true, 1), 1.0)
    return precision, recall
