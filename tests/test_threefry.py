"""toymodels.threefry gives exactly the numbers of jax.random.uniform, only faster."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels import threefry


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (400, 1024), (2, 3, 4), (0, 16)])
def test_uniform_is_bit_identical_to_jax_random_uniform(shape):
    with jax.threefry_partitionable(True):
        for seed in (0, 1, 12345, 2**31 - 1):
            key = jax.random.fold_in(jax.random.key(seed), 7)
            ours = np.asarray(jax.jit(threefry.uniform, static_argnums=1)(key, shape))
            theirs = np.asarray(jax.random.uniform(key, shape, jnp.float32))
            assert ours.dtype == np.float32 and ours.shape == shape
            np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32))


def test_uniform_under_vmap_matches_per_key_draws():
    keys = jax.random.split(jax.random.key(3), 5)
    batched = jax.jit(jax.vmap(lambda k: threefry.uniform(k, (30, 64))))(keys)
    for key, row in zip(keys, batched):
        np.testing.assert_array_equal(row, threefry.uniform(key, (30, 64)))


def test_uniform_at_is_the_draw_at_those_indices():
    """uniform_at(key, i) = jax.random.uniform(key, shape).ravel()[i], any index shape."""
    key = jax.random.key(11)
    full = np.asarray(jax.random.uniform(key, (64, 3, 5), jnp.float32)).ravel()
    index = np.array([[0, 959], [17, 3], [500, 500]], np.uint32)
    ours = np.asarray(jax.jit(threefry.uniform_at)(key, jnp.asarray(index)))
    np.testing.assert_array_equal(ours.view(np.uint32), full[index].view(np.uint32))


def test_hash_matches_the_published_known_answers():
    """Random123's known-answer vectors for Threefry-2x32 with 20 rounds."""
    cases = [((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
             ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
             ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0))]
    for key, counter, expected in cases:
        out = threefry.hash_2x32(tuple(jnp.uint32(k) for k in key),
                                 jnp.uint32(counter[0]), jnp.uint32(counter[1]))
        assert tuple(int(o) for o in out) == expected


def test_uniform_is_in_the_unit_interval_and_flat():
    u = np.asarray(threefry.uniform(jax.random.key(0), (1 << 20,)))
    assert u.min() >= 0.0 and u.max() < 1.0
    counts = np.histogram(u, bins=16, range=(0, 1))[0]
    assert np.abs(counts / counts.mean() - 1).max() < 0.02  # 65,536 per bin: 4 sigma is 1.6%


@pytest.mark.parametrize("shape", [(3, 5), (100, 2048), (1, 7), (0, 4)])
def test_uniform_transposed_is_the_transpose_of_jax_random_uniform(shape):
    with jax.threefry_partitionable(True):
        for seed in (0, 9, 2**31 - 1):
            key = jax.random.fold_in(jax.random.key(seed), 3)
            ours = np.asarray(jax.jit(threefry.uniform_transposed, static_argnums=1)(key, shape))
            theirs = np.asarray(jax.random.uniform(key, shape, jnp.float32)).T
            assert ours.shape == shape[::-1]
            np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32))
