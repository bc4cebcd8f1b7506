"""toymodels.spd.hand: the hand-built target is the sum of its known rank-1 pieces."""

import jax
import numpy as np
import pytest

from toymodels.spd.hand import PIECE_NORMS, hand_built


@pytest.mark.parametrize("aligned", [True, False])
def test_hand_built_is_the_sum_of_its_pieces(aligned):
    d_in = 4 if aligned else 6
    hand = hand_built(jax.random.key(3), 4, 3, d_in, aligned=aligned)
    W, U, V = (np.asarray(a, np.float64) for a in hand)
    assert W.shape == (3, d_in) and U.shape == (4, 3) and V.shape == (4, d_in)
    np.testing.assert_allclose(W, sum(np.outer(U[k], V[k]) for k in range(4)), atol=1e-6)
    np.testing.assert_allclose(V @ V.T, np.eye(4), atol=1e-6)  # orthonormal reading rows
    if aligned:
        np.testing.assert_array_equal(V, np.eye(4, d_in))
        np.testing.assert_allclose(W, U.T, atol=1e-7)  # piece k is column k of W
    else:  # generic: no V_k is close to a coordinate axis
        assert np.max(np.abs(V)) < 0.99
    norms = np.linalg.norm(U, axis=1)
    assert np.all((norms >= PIECE_NORMS[0]) & (norms <= PIECE_NORMS[1]))
    assert np.linalg.matrix_rank(W) == min(3, 4)


def test_hand_built_depends_on_the_key_only():
    a, b = hand_built(jax.random.key(3), 4, 3, 4), hand_built(jax.random.key(3), 4, 3, 4)
    c = hand_built(jax.random.key(4), 4, 3, 4)
    np.testing.assert_array_equal(a.W, b.W)
    assert not np.allclose(a.W, c.W)


def test_hand_built_needs_at_most_d_in_pieces():
    with pytest.raises(ValueError, match="n_pieces must be in 1..d_in = 4, got 5"):
        hand_built(jax.random.key(0), 5, 3, 4)
