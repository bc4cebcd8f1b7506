"""The science of toymodels.dictionary.scores: the scores are exact.

Expected values come from hand derivations, closed forms, brute force or Monte Carlo in
numpy, never from the code under test.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels.dictionary.scores import (
    best_cosines,
    cosines,
    dead_fraction,
    fvu,
    hungarian_mcc,
    l0,
    latent_features,
    mmcs,
    random_dictionary,
    random_mmcs,
    random_recovered,
    recovered,
    shrinkage,
    support_precision_recall,
    support_recovery,
)


# --- dictionary geometry -------------------------------------------------------------


def test_cosines_signed_and_zero_rows_give_zero():
    cosines_, best_cosines_ = jax.jit(cosines), jax.jit(best_cosines)
    truth = jnp.array([[3.0, 0.0], [0.0, 0.0]])
    latents = jnp.array([[-2.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    expected = [[-1.0, 2**-0.5, 0.0], [0.0, 0.0, 0.0]]
    np.testing.assert_allclose(cosines_(truth, latents), expected, atol=1e-6)
    np.testing.assert_allclose(best_cosines_(truth, latents), [2**-0.5, 0.0], atol=1e-6)


def test_mmcs_is_signed():
    """{e1, -e1} against {e1}: (1 + -1) / 2 = 0, not 1; a negated copy scores -1."""
    mmcs_ = jax.jit(mmcs)
    e1 = jnp.array([[1.0, 0.0, 0.0]])
    assert float(mmcs_(jnp.concatenate([e1, -e1]), e1)) == pytest.approx(0.0, abs=1e-7)
    rng = np.random.default_rng(6)
    truth = jnp.asarray(rng.standard_normal((6, 4)), jnp.float32)
    permuted = 2.5 * truth[jnp.asarray(rng.permutation(6))]
    assert float(mmcs_(truth, permuted)) == pytest.approx(1.0, abs=1e-6)
    assert float(mmcs_(e1, -e1)) == pytest.approx(-1.0)


def test_recovered_and_latent_features_hand_example():
    truth = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    cos95 = np.sqrt(1 - 0.95**2)
    latents = jnp.array([[0.95, cos95], [0.0, 1.0], [0.6, 0.8], [0.0, -1.0]])
    # best cosines: 0.95 (latent 0), 1 (latent 1), 0 (latent 3, as -e2 is orthogonal)
    recovered_, latent_features_ = jax.jit(recovered), jax.jit(latent_features)
    assert float(recovered_(truth, latents, 0.9)) == pytest.approx(2 / 3)
    assert float(recovered_(truth, latents, 0.99)) == pytest.approx(1 / 3)
    np.testing.assert_array_equal(latent_features_(truth, latents, 0.9), [0, 1, -1, -1])
    np.testing.assert_array_equal(latent_features_(truth, latents, 0.7), [0, 1, 1, -1])


def test_random_dictionary_rows_are_unit_and_isotropic():
    n, d = 20_000, 4
    rows = np.asarray(random_dictionary(jax.random.key(7), n, d), float)
    assert rows.shape == (n, d)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    # each coordinate: mean 0, sd 1/2 -> standard error 0.0035; v v^T: I/4, se ~0.002
    np.testing.assert_allclose(rows.mean(axis=0), 0.0, atol=0.015)
    np.testing.assert_allclose(rows.T @ rows / n, np.eye(d) / d, atol=0.01)


def _monte_carlo_best_cosines(rng, n_latents, d, trials):
    """[trials] best cosine of a random unit vector with N random unit vectors."""
    latents = rng.standard_normal((trials, n_latents, d))
    latents /= np.linalg.norm(latents, axis=2, keepdims=True)
    target = rng.standard_normal((trials, d))
    target /= np.linalg.norm(target, axis=1, keepdims=True)
    return np.max(np.einsum("tnd,td->tn", latents, target), axis=1)


@pytest.mark.parametrize("n_latents, d", [(5, 2), (20, 5), (40, 3), (6, 1), (1, 1)])
def test_random_baselines_match_monte_carlo(n_latents, d):
    rng = np.random.default_rng(8)
    trials = 20_000
    best = _monte_carlo_best_cosines(rng, n_latents, d, trials)
    se = best.std() / np.sqrt(trials)
    assert abs(random_mmcs(n_latents, d) - best.mean()) < 4 * se + 1e-9
    for threshold in (0.5, 0.9):
        fraction = np.mean(best > threshold)
        expected = random_recovered(n_latents, d, threshold)
        se = np.sqrt(max(expected * (1 - expected), 1e-12) / trials)
        assert abs(expected - fraction) < 4 * se + 1e-9


def test_random_mmcs_closed_forms():
    """d = 3: the cosine is Uniform[-1, 1] (Archimedes), so E[max] = (N - 1) / (N + 1)
    and P(max > t) = 1 - ((1 + t) / 2)^N; d = 1: E = 1 - 2^(1 - N). Large N tests the
    quadrature where the integrand jumps within 1/N of 1."""
    for n in (1, 2, 10, 1000, 100_000):
        assert random_mmcs(n, 3) == pytest.approx((n - 1) / (n + 1), abs=1e-9)
        assert random_recovered(n, 3, 0.9) == pytest.approx(1 - 0.95**n, abs=1e-12)
        assert random_mmcs(n, 1) == pytest.approx(1 - 2.0 ** (1 - n), abs=1e-15)
    values = [random_mmcs(n, 16) for n in (1, 10, 1000, 10**6)]
    assert values[0] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(values) > 0) and values[-1] < 1


def test_mmcs_of_random_dictionaries_matches_random_mmcs():
    """Averaged over many random_dictionary draws, MMCS is random_mmcs for any n."""
    n_latents, d = 20, 5
    truth = jnp.asarray(np.random.default_rng(9).standard_normal((3, d)), jnp.float32)
    keys = jax.random.split(jax.random.key(9), 4000)
    def random_score(key):
        return mmcs(truth, random_dictionary(key, n_latents, d))

    scores = np.asarray(jax.jit(jax.vmap(random_score))(keys))
    se = scores.std() / np.sqrt(len(scores))
    assert abs(scores.mean() - random_mmcs(n_latents, d)) < 4 * se


# --- matching of codes ---------------------------------------------------------------


def _brute_force_mcc(true_codes, codes):
    """Max over all one-to-one matchings of the summed Pearson correlations, / n."""
    n, n_latents = true_codes.shape[1], codes.shape[1]
    correlation = np.corrcoef(true_codes.T, codes.T)[:n, n:]
    if n_latents >= n:
        matchings = itertools.permutations(range(n_latents), n)
        return max(correlation[np.arange(n), list(p)].sum() for p in matchings) / n
    matchings = itertools.permutations(range(n), n_latents)
    return max(correlation[list(p), np.arange(n_latents)].sum() for p in matchings) / n


@pytest.mark.parametrize("n, n_latents", [(4, 4), (5, 5), (4, 3), (3, 5)])
def test_hungarian_mcc_equals_brute_force(n, n_latents):
    rng = np.random.default_rng(10 + n + n_latents)
    true_codes = rng.exponential(size=(200, n)) * (rng.random((200, n)) < 0.5)
    mixing = rng.standard_normal((n, n_latents))
    codes = true_codes @ mixing + rng.standard_normal((200, n_latents))
    assert hungarian_mcc(true_codes, codes) == pytest.approx(
        _brute_force_mcc(true_codes, codes), abs=1e-12
    )


def test_hungarian_mcc_of_a_permuted_rescaled_copy_is_one_and_dead_latents_zero():
    rng = np.random.default_rng(11)
    true_codes = rng.exponential(size=(100, 5)) * (rng.random((100, 5)) < 0.3)
    codes = true_codes[:, rng.permutation(5)] * rng.uniform(0.1, 10.0, 5)
    assert hungarian_mcc(true_codes, codes) == pytest.approx(1.0, abs=1e-12)
    for value in (0.0, 0.1):  # a constant latent (0.1: its mean is not exact in floats)
        dead = np.stack([true_codes[:, 0], np.full(100, value)], axis=1)
        assert hungarian_mcc(true_codes[:, :2], dead) == pytest.approx(0.5, abs=1e-12)


# --- reconstruction metrics ----------------------------------------------------------


def test_fvu_and_shrinkage():
    fvu_, shrinkage_ = jax.jit(fvu), jax.jit(shrinkage)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((50, 6)).astype(np.float32) + 3.0
    assert float(fvu_(x, x)) == 0.0
    mean = np.broadcast_to(x.mean(axis=0, keepdims=True), x.shape)
    assert float(fvu_(x, mean)) == pytest.approx(1.0, rel=1e-5)
    assert float(fvu_(x, 0.0 * x)) == pytest.approx(
        np.sum(x**2) / np.sum((x - mean) ** 2), rel=1e-5
    )
    assert float(shrinkage_(x, 0.8 * x)) == pytest.approx(0.8, rel=1e-6)
    assert float(shrinkage_(x, x)) == pytest.approx(1.0, rel=1e-6)
    # the definition, gamma = argmin_g E||x_hat / g - x||², on a grid of g
    x_hat = 0.7 * x + 0.5 * rng.standard_normal(x.shape).astype(np.float32)
    grid = np.linspace(0.5, 1.5, 10_001)
    errors = [np.sum((x_hat / g - x) ** 2) for g in grid]
    best = grid[np.argmin(errors)]
    assert float(shrinkage_(x, x_hat)) == pytest.approx(best, abs=2e-4)


def test_l0_and_dead_fraction():
    codes = np.array([[0.0, 1.0, 0.0, 2.0, 0.0], [0.0, 0.0, -1.0, 3.0, 0.0]])
    assert float(jax.jit(l0)(codes)) == 2.0
    assert float(jax.jit(dead_fraction)(codes)) == pytest.approx(0.4)  # latents 0, 4


def test_support_recovery_hand_cases():
    """Features 3, latents 4 matched to features [2, 0, none, 0]."""
    latent_feature = jnp.array([2, 0, -1, 0])
    true_codes = jnp.array(
        [
            [1.0, 0.0, 2.0],  # support {0, 2}
            [1.0, 0.0, 0.0],  # {0}
            [1.0, 0.0, 0.0],  # {0}
            [0.0, 1.0, 0.0],  # {1}
            [0.0, 0.0, 0.0],  # {}
        ]
    )
    codes = jnp.array(
        [
            [1.0, 1.0, 0.0, 0.0],  # features {2, 0}: right
            [0.0, 1.0, 0.0, 1.0],  # two latents of feature 0: {0}, right
            [0.0, 1.0, 1.0, 0.0],  # an unmatched latent: wrong
            [0.0, 1.0, 0.0, 0.0],  # {0} instead of {1}: wrong
            [0.0, 0.0, 0.0, 0.0],  # {} = {}: right
        ]
    )
    rate = jax.jit(support_recovery)(true_codes, codes, latent_feature)
    assert float(rate) == pytest.approx(0.6)
    precision, recall = jax.jit(support_precision_recall)(
        true_codes, codes, latent_feature
    )
    assert float(precision) == pytest.approx(5 / 7)  # 7 chosen latents, 5 in support
    assert float(recall) == pytest.approx(4 / 5)  # 5 true features, 4 chosen
