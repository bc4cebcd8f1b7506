"""The analytic L2 attack and the vulnerability ratio on hand-built models."""

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from toymodels import get_model
from toymodels.analysis import (
    analyze,
    attack_directions,
    attack_inputs,
    attack_noise,
    loss_increases,
    reference_loss_increase,
    vulnerability,
)
from toymodels.analysis.adversarial import average_input_norm
from toymodels.spec import DataSpec


def pentagon() -> np.ndarray:
    t = 2 * np.pi * np.arange(5) / 5
    return np.stack([np.cos(t), np.sin(t)]).astype(np.float32)


def inputs(F: int, p: float, spec: DataSpec = DataSpec()) -> jnp.ndarray:
    return attack_inputs(attack_noise(F, spec), jnp.full(F, p, jnp.float32), spec)


def test_directions_are_unit_rows_of_the_gram_matrix():
    W = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0]], np.float32)
    D = np.asarray(attack_directions(W))
    G = W.T @ W
    np.testing.assert_allclose(np.linalg.norm(D[:2], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(D[:2] * np.linalg.norm(G[:2], axis=1)[:, None], G[:2],
                               rtol=1e-6)
    np.testing.assert_array_equal(D[2], 0.0)  # an unlearned feature: no attack, no NaN


@pytest.mark.parametrize("relu", [True, False])
def test_loss_increases_match_attacking_the_real_model(relu):
    """L'_i - L from the closed form equals running the model on x + delta_i."""
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 6)).astype(np.float32) * 0.7
    b = rng.uniform(-0.2, 0.1, 6).astype(np.float32)
    importance = 0.8 ** np.arange(6, dtype=np.float32)
    x = inputs(6, 0.2)
    eps = 0.1 * float(average_input_norm(x))
    kind = get_model("relu_output" if relu else "linear")
    params, keep = {"W": jnp.asarray(W), "b": jnp.asarray(b)}, jnp.ones((3, x.shape[1]))

    def loss(inp):
        out = kind.forward(params, inp, keep)[0]
        return float(jnp.mean(importance[:, None] * jnp.square(x - out)))

    expected = [
        loss(x + eps * attack_directions(W)[i][:, None]) - loss(x) for i in range(6)
    ]
    got = loss_increases(W, b, x, importance, eps, relu)
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-8)
    assert max(expected) > 0


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("p", [0.3, 0.05])
def test_orthogonal_model_has_vulnerability_one(relu, p):
    W = np.eye(2, 5, dtype=np.float32)  # the two most important features, dedicated
    b = np.array([0, 0, p / 2, p / 2, p / 2], np.float32)
    importance = 0.9 ** np.arange(5, dtype=np.float32)
    v = float(vulnerability(W, b, inputs(5, p), importance, relu))
    assert v == pytest.approx(1.0, abs=1e-4)


def test_reference_is_the_orthogonal_models_own_increase():
    importance = jnp.array([0.5, 2.0, 1.0])
    x = inputs(3, 0.5)
    increases = loss_increases(jnp.eye(3), jnp.zeros(3), x, importance, 0.07)
    np.testing.assert_allclose(
        increases.max(), reference_loss_increase(importance, 0.07), rtol=1e-4
    )


@pytest.mark.parametrize("p", [0.3, 0.05])
def test_superposition_is_more_vulnerable(p):
    """Antipodal pairs (2 features per dimension) ~2x, a pentagon (2.5) more."""
    antipodal = np.array([[1.0, -1.0, 0, 0], [0, 0, 1.0, -1.0]], np.float32)
    v_pair = float(vulnerability(antipodal, jnp.zeros(4), inputs(4, p), jnp.ones(4)))
    v_pent = float(vulnerability(pentagon(), jnp.zeros(5), inputs(5, p), jnp.ones(5)))
    assert 1.8 < v_pair < 2.3
    assert v_pent > 2.8 and v_pent > v_pair + 0.5


def test_no_inputs_means_no_attack():
    x = inputs(5, 0.0)
    assert float(average_input_norm(x)) == 0.0
    assert float(vulnerability(pentagon(), jnp.zeros(5), x, jnp.ones(5))) == 0.0


def test_correlated_batches_follow_the_data_spec():
    spec = DataSpec("correlated", 2)
    on = np.asarray(inputs(4, 0.5, spec)) > 0
    np.testing.assert_array_equal(on[0], on[1])
    assert 0.4 < on[0].mean() < 0.6


def grid(kind: str | None) -> xr.Dataset:
    Ws = np.stack([np.eye(2, 5, dtype=np.float32), pentagon()])
    attrs = {} if kind is None else {"model_kind": kind}
    return xr.Dataset(
        {
            "W": (("sparsity", "hidden", "feature"), Ws),
            "b": (("sparsity", "feature"), np.zeros((2, 5), np.float32)),
            "density": (("sparsity", "feature"), np.full((2, 5), 0.1, np.float32)),
        },
        coords={"sparsity": [0.0, 0.9]},
        attrs=attrs,
    )


def test_analyze_adds_vulnerability_where_it_is_defined():
    out = analyze(grid(None), adversarial=True)
    assert out["vulnerability"].dims == ("sparsity",)
    x = inputs(5, 0.1)
    for k in range(2):
        W = grid(None)["W"].values[k]
        expected = vulnerability(W, jnp.zeros(5), x, jnp.ones(5))
        np.testing.assert_allclose(out["vulnerability"][k], expected, rtol=1e-5)
    assert out["vulnerability"].attrs["description"]
    linear = analyze(grid("linear"), adversarial=True)["vulnerability"].values
    assert linear[0] == pytest.approx(1.0, abs=1e-4)
    assert linear[1] > out["vulnerability"][1]
    assert "vulnerability" not in analyze(grid("relu_hidden"), adversarial=True)
    assert "vulnerability" not in analyze(grid(None).drop_vars("density"), adversarial=True)
