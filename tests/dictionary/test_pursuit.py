"""The science of toymodels.dictionary.pursuit: the pursuits recover sparse codes.

Expected values come from hand derivations, closed forms, brute force or Monte Carlo in
numpy, never from the code under test.
"""

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
from toymodels.dictionary.scores import support_recovery

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
