"""SPD targets (toymodels.spd.targets): the TMS forward pass, the identity layer, the
hand-built geometries."""

import jax.numpy as jnp
import numpy as np
import pytest

from toymodels.spd.targets import forward, hand_W, shapes, target_linear, tms_target


def test_the_tms_target_is_the_relu_output_model_with_or_without_identity():
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(3, 7)).astype(np.float32), rng.normal(size=7).astype(np.float32)
    x = rng.uniform(size=7).astype(np.float32)
    want = np.maximum(W.T @ (W @ x) + b, 0)  # x' = ReLU(WᵀWx + b), Elhage et al.
    for identity in (False, True):
        t = tms_target(W, b, identity)
        y, acts = forward(t, target_linear(t), jnp.asarray(x))
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(acts["W_out"], W @ x, rtol=1e-5)
        assert {k: v.shape for k, v in t.weights.items()} == shapes(7, 3, identity)
    assert "W_hidden" in acts and np.array_equal(t.weights["W_hidden"], np.eye(3))


def test_a_linear_maps_each_matrix_by_name():
    """forward applies W_in, then W_hidden, then W_out: a linear that doubles only W_hidden
    doubles the pre-activation of the output."""
    t = tms_target(hand_W(4, 2), np.zeros(4), identity=True)
    x = jnp.array([1.0, 0.0, 0.0, 0.0])
    doubled = lambda name, a: (2.0 if name == "W_hidden" else 1.0) * (t.weights[name] @ a)
    y, _ = forward(t, doubled, x)
    np.testing.assert_allclose(y, 2 * np.maximum(hand_W(4, 2).T @ hand_W(4, 2)[:, 0], 0), atol=1e-6)


def test_hand_built_targets_are_a_regular_polygon_or_dedicated_directions():
    W = hand_W(5, 2)
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), 1, rtol=1e-6)
    np.testing.assert_allclose(W[:, 0] @ W[:, 1], np.cos(2 * np.pi / 5), rtol=1e-6)
    np.testing.assert_array_equal(hand_W(3, 4), np.eye(4, 3))
    with pytest.raises(ValueError, match="n_hidden = 2 or n_hidden >= n_features"):
        hand_W(5, 3)
