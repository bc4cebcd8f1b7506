"""SPD targets (toymodels.spd.targets): the TMS forward pass, the identity layer, the
hand-built geometries."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels.compute import model
from toymodels.residual_config import ResidualSpec
from toymodels.spd.targets import (forward, hand_W, n_inputs, residual_shapes, residual_target,
                                   shapes, target_linear, tms_target)


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


@pytest.mark.parametrize("task, readout", [("identity_relu", "transpose"), ("relu", "transpose"),
                                           ("abs", "learned")])
def test_the_residual_target_is_the_residual_mlp_of_one_layer(task, readout):
    """`forward` of a ResidualTarget with the target's own matrices is
    `toymodels.compute.model.forward` (the residual trainer's model) on random inputs;
    the activations it reports are r = W_E x and the neurons'."""
    spec = ResidualSpec(6, 9, 4, 1, (4,), True, "fixed", readout, task)
    params = model.init(jax.random.key(3), spec)
    params["b_in_0"] = jax.random.normal(jax.random.key(4), (4,))
    params["b_out_0"] = jax.random.normal(jax.random.key(5), (9,))
    W_U = params["W_U"] if readout == "learned" else params["W_E"].T
    target = residual_target({"W_E": params["W_E"], "W_in": params["W_in_0"],
                              "W_out": params["W_out_0"], "b_in": params["b_in_0"],
                              "b_out": params["b_out_0"], "W_U": W_U}, task == "identity_relu")
    x = jax.random.uniform(jax.random.key(6), (5, 6), minval=-1.0, maxval=1.0)
    y, acts = jax.vmap(lambda v: forward(target, target_linear(target), v))(x)
    np.testing.assert_allclose(y, jax.vmap(lambda v: model.forward(params, v, spec))(x),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["W_in"], x @ params["W_E"].T, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(acts["W_out"], jax.vmap(lambda v: model.activations(params, v, spec))(x),
                               rtol=1e-5, atol=1e-6)
    assert residual_shapes(9, 4) == {"W_in": (4, 9), "W_out": (9, 4)} and n_inputs(target) == 6
