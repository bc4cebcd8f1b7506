"""The science of toymodels.dictionary: pursuits recover sparse codes, scores are exact.

Expected values come from hand derivations, closed forms, brute force or Monte Carlo in
numpy, never from the code under test.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels.dictionary.pursuit import (
    gradient_pursuit,
    matching_pursuit,
    omp,
    orthogonal_matching_pursuit,
)
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

PURSUITS = {
    "mp": matching_pursuit,
    "gp": gradient_pursuit,
    "omp": orthogonal_matching_pursuit,
}


def _orthonormal(rng, d):
    """[d, d] random orthogonal matrix (rows orthonormal), float32."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return jnp.asarray(q, jnp.float32)


def _random_atoms(rng, n_atoms, d):
    """[N, d] random unit rows, float32, from numpy."""
    atoms = rng.standard_normal((n_atoms, d))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    return jnp.asarray(atoms, jnp.float32)


def _sparse_codes(rng, sizes, n_atoms, *, low=0.5, high=1.5, signed=False):
    """[B, N] codes: sizes[b] distinct random atoms in example b, |c| ~ U[low, high)."""
    ranks = np.argsort(np.argsort(rng.random((len(sizes), n_atoms)), axis=1), axis=1)
    support = ranks < np.asarray(sizes)[:, None]
    values = rng.uniform(low, high, support.shape)
    if signed:
        values *= rng.choice([-1.0, 1.0], support.shape)
    return np.where(support, values, 0.0).astype(np.float32)


# --- pursuits ------------------------------------------------------------------------


@pytest.mark.parametrize("nonnegative", [True, False])
@pytest.mark.parametrize("name", PURSUITS)
def test_pursuits_exact_on_orthonormal_dictionary(name, nonnegative):
    """k-sparse codes over an orthonormal basis are recovered exactly (int, array k)."""
    rng = np.random.default_rng(1)
    d, n_examples = 12, 24
    dictionary = _orthonormal(rng, d)
    pursuit = PURSUITS[name]

    codes = _sparse_codes(rng, np.full(n_examples, 3), d, signed=not nonnegative)
    static_k = jax.jit(pursuit, static_argnames=("k", "nonnegative"))
    out = static_k(dictionary, codes @ dictionary, k=3, nonnegative=nonnegative)
    np.testing.assert_allclose(out, codes, atol=1e-5)

    sizes = rng.integers(0, 5, n_examples)  # per-example sparsity, 0 to 4 atoms
    codes = _sparse_codes(rng, sizes, d, signed=not nonnegative)
    ks = sizes + rng.integers(0, 3, n_examples)  # k > support: exact fit, then stop
    array_k = jax.jit(pursuit, static_argnames=("max_k", "nonnegative"))
    x = codes @ dictionary
    out = array_k(dictionary, x, jnp.asarray(ks), max_k=6, nonnegative=nonnegative)
    np.testing.assert_allclose(out, codes, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(out) != 0, codes != 0)  # no spurious atoms


def test_omp_alias_and_max_k_defaults():
    assert omp is orthogonal_matching_pursuit
    x = jnp.array([[0.0, 2.0, -1.0], [3.0, 0.0, 0.0]])
    codes = matching_pursuit(jnp.eye(3), x, np.array([2, 1]))  # max_k = max(k) = 2
    np.testing.assert_allclose(codes, x)
    with pytest.raises(ValueError, match="max_k"):
        jax.jit(matching_pursuit)(jnp.eye(3), x, jnp.array([2, 1]))


@pytest.mark.parametrize("name", PURSUITS)
def test_array_k_matches_int_k_on_an_overcomplete_dictionary(name):
    """An example with k < max_k stops after k: its code is the one int k would give."""
    rng = np.random.default_rng(2)
    dictionary = _random_atoms(rng, 40, 10)
    x = jnp.asarray(rng.standard_normal((9, 10)), jnp.float32)
    ks = np.array([1, 2, 3] * 3)
    array_k = jax.jit(PURSUITS[name], static_argnames=("max_k",))
    int_k = jax.jit(PURSUITS[name], static_argnames=("k",))
    out = array_k(dictionary, x, jnp.asarray(ks), max_k=3)
    for k in (1, 2, 3):
        expected = int_k(dictionary, x[ks == k], k=k)
        np.testing.assert_allclose(out[ks == k], expected, atol=1e-6)
    assert np.all(np.sum(np.asarray(out) != 0, axis=1) <= ks)


def test_matching_pursuit_accumulates_and_stops_hand_example():
    """Atoms a = (1, 0), b = (0.6, 0.8); x = (0, 1). By hand, signed MP:
    b gets 0.8, r = (-0.48, 0.36); a gets -0.48, r = (0, 0.36); b again gets 0.288.
    Non-negative MP stops after b: then <r, a> = -0.48 and <r, b> = 0."""
    dictionary = jnp.array([[1.0, 0.0], [0.6, 0.8]])
    x = jnp.array([[0.0, 1.0]])
    signed = matching_pursuit(dictionary, x, 3)
    np.testing.assert_allclose(signed, [[-0.48, 1.088]], atol=1e-6)
    np.testing.assert_allclose(
        matching_pursuit(dictionary, x, 3, nonnegative=True), [[0.0, 0.8]], atol=1e-6
    )


@pytest.mark.parametrize("name", PURSUITS)
def test_nonnegative_pursuits_add_nothing_without_positive_correlation(name):
    x = -jnp.eye(3)[:1]  # correlation -1 with atom 0, 0 with the others
    out = PURSUITS[name](jnp.eye(3), x, 2, nonnegative=True)
    np.testing.assert_array_equal(out, np.zeros((1, 3)))


@pytest.mark.parametrize("name, k", [("mp", 10), ("gp", 10), ("omp", 4)])
def test_nonnegative_pursuits_give_nonnegative_codes_with_at_most_k_atoms(name, k):
    """10 atoms in 4 dimensions and dense random x: here unclipped gradient steps and
    least-squares fits do go negative (OMP: k <= d keeps the Gram system regular)."""
    rng = np.random.default_rng(3)
    dictionary = _random_atoms(rng, 10, 4)
    x = jnp.asarray(rng.standard_normal((256, 4)), jnp.float32)
    codes = np.asarray(PURSUITS[name](dictionary, x, k, nonnegative=True))
    assert np.all(codes >= 0)
    assert np.all(np.sum(codes != 0, axis=1) <= k)
    assert np.mean(np.sum(codes != 0, axis=1)) > 0.5  # and it did add atoms


def test_gradient_pursuit_steps_are_exact_line_searches_along_the_support_gradient():
    """Signed GP, checked from outside: c_{t+1} - c_t = a g_S with g = D r_t restricted
    to the new support, a > 0, and the new residual orthogonal to D^T (c_{t+1} - c_t)
    (the exact line search: f(c + a g_S) is minimal in a)."""
    rng = np.random.default_rng(3)
    dictionary = _random_atoms(rng, 30, 8)
    d_np = np.asarray(dictionary, float)
    x = rng.standard_normal(8)
    steps = 7
    xs = jnp.asarray(np.tile(x, (steps + 1, 1)), jnp.float32)
    ks = jnp.arange(steps + 1)
    codes = gradient_pursuit(dictionary, xs, ks, max_k=steps, nonnegative=False)
    codes = np.asarray(codes, float)  # codes[t]: after t iterations
    residual_norms = []
    for t in range(steps):  # a handful of checks on one example's trajectory
        residual = x - codes[t] @ d_np
        change = codes[t + 1] - codes[t]
        support = codes[t + 1] != 0
        gradient = np.where(support, d_np @ residual, 0.0)
        assert np.all(change[~support] == 0)
        norms = np.linalg.norm(change) * np.linalg.norm(gradient)
        assert change @ gradient / norms > 1 - 1e-5  # parallel, positive step
        new_residual = x - codes[t + 1] @ d_np
        image = change @ d_np
        norms = np.linalg.norm(image) * np.linalg.norm(x)
        assert abs(new_residual @ image) < 1e-4 * norms
        residual_norms.append(np.linalg.norm(new_residual))
    assert np.all(np.diff(residual_norms) <= 1e-6)
    assert np.sum(codes[3] != 0) == 3  # third step: g_S has two non-zeros, a != 1


def test_omp_residual_is_orthogonal_to_its_support():
    rng = np.random.default_rng(4)
    dictionary = _random_atoms(rng, 50, 12)
    x = rng.standard_normal((6, 12)).astype(np.float32)
    codes = np.asarray(omp(dictionary, jnp.asarray(x), 5), float)
    residual = x - codes @ np.asarray(dictionary, float)
    correlations = residual @ np.asarray(dictionary, float).T  # [B, N]
    assert np.all(np.sum(codes != 0, axis=1) == 5)
    np.testing.assert_allclose(np.where(codes != 0, correlations, 0.0), 0.0, atol=1e-5)


@pytest.mark.parametrize(
    "name, nonnegative, floor",
    [("gp", True, 0.97), ("omp", False, 0.97), ("mp", True, 0.9)],
)
def test_support_recovery_of_5_sparse_codes_over_512_random_atoms_in_256_dims(
    name, nonnegative, floor
):
    """5 distinct atoms per example, coefficients ~ U[0.5, 1.5); the k = 5 code's
    support must equal the true support. Measured: 100% for GP, OMP and MP."""
    rng = np.random.default_rng(5)
    dictionary = _random_atoms(rng, 512, 256)
    true_codes = _sparse_codes(rng, np.full(1000, 5), 512)
    pursuit = jax.jit(PURSUITS[name], static_argnames=("k", "nonnegative"))
    x = jnp.asarray(true_codes) @ dictionary
    codes = pursuit(dictionary, x, k=5, nonnegative=nonnegative)
    rate = np.mean(np.all((np.asarray(codes) != 0) == (true_codes != 0), axis=1))
    print(f"{name}: support recovered in {rate:.1%} of examples")
    assert rate >= floor
    identity = jnp.arange(512)  # latents are the true features
    recovered_supports = jax.jit(support_recovery)(true_codes, codes, identity)
    assert float(recovered_supports) == pytest.approx(rate)


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
