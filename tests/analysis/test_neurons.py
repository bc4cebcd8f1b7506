"""Neuron-basis measures and the asymmetric-superposition detector, hand-built weights."""

import jax.numpy as jnp
import numpy as np
import xarray as xr

from toymodels import get_model
from toymodels.analysis import (
    analyze,
    asymmetric_inhibited,
    asymmetric_pairs,
    asymmetric_superposition,
    balance,
    features_per_neuron,
    monosemantic,
    n_monosemantic,
    neuron_polysemanticity,
)


def permutation(H=5, F=8) -> np.ndarray:
    """Features 0..H-1 each on its own neuron (shuffled), the rest near zero."""
    W = np.full((H, F), 0.01, np.float32)
    W[:, :H] = 0.0
    W[[3, 0, 4, 1, 2], np.arange(H)] = [1.0, -0.9, 1.1, 0.8, 1.0]
    return W


def test_permutation_is_all_monosemantic():
    W = permutation()
    np.testing.assert_array_equal(features_per_neuron(W), [1, 1, 1, 1, 1])
    assert bool(monosemantic(W).all()) and int(n_monosemantic(W)) == 5
    np.testing.assert_allclose(neuron_polysemanticity(W), 0.0, atol=1e-3)


def test_shared_neuron_counts_both_features_and_dead_neurons_count_none():
    W = np.array(
        [[1.0, 0.9, 0.0, 0.0], [0.0, 0.0, 1.0, 0.3], [0.0, 0.0, 0.0, 0.05]], np.float32
    )
    np.testing.assert_array_equal(features_per_neuron(W), [2, 1, 0])
    np.testing.assert_array_equal(monosemantic(W), [False, True, False])
    assert float(neuron_polysemanticity(W)[0]) > 0.4
    W[1, 3] = 0.35  # a secondary weight a third of the primary: now it counts
    assert int(features_per_neuron(W)[1]) == 2
    live = W[:2]  # shares do not depend on a neuron's scale (the floor does)
    np.testing.assert_array_equal(features_per_neuron(3 * live),
                                  features_per_neuron(live))


def test_binary_code_neurons_hold_three_features():
    """The calibrated p = 0.3 code (REFERENCE 9): three features on two neurons."""
    W = np.array([[0.89, -0.82, 0.82], [0.87, 0.86, -0.72]], np.float32)
    np.testing.assert_array_equal(features_per_neuron(W), [3, 3])
    assert int(n_monosemantic(W)) == 0


def motif(inhibitor: bool = False):
    """The paper's asymmetric pair on neuron 0 (W1 = [2, -1/2], W2 = [1/2, 2]), a
    plain neuron for feature 2, optionally a neuron inhibiting output 1 when x_0 > 0."""
    W1 = [[2.0, -0.5, 0.0], [0.0, 0.0, 1.0]]
    W2 = [[0.5, 0.0], [2.0, 0.0], [0.0, 1.0]]
    if inhibitor:
        W1.append([1.0, 0.0, 0.0])
        for row, w in zip(W2, [0.0, -5.0, 0.0], strict=True):
            row.append(w)
    return np.array(W1, np.float32), np.array(W2, np.float32)


def test_asymmetric_pair_is_detected_and_symmetric_one_is_not():
    W1, W2 = motif()
    np.testing.assert_array_equal(asymmetric_superposition(W1, W2), [True, False])
    pairs = np.asarray(asymmetric_pairs(W1, W2))
    assert np.argwhere(pairs).tolist() == [[0, 0, 1]]  # strong-in 0, strong-out 1
    symmetric = W1.copy(), W2.copy()
    symmetric[0][0, :2] = [1.0, -1.0]
    symmetric[1][:2, 0] = [1.0, 1.0]
    assert not bool(asymmetric_superposition(*symmetric).any())
    same_way = W1, W2[[1, 0, 2]]  # strong in AND strong out for feature 0: no motif
    assert not bool(asymmetric_superposition(*same_way).any())
    weak = W1.copy(), W2.copy()
    weak[0][0, :2], weak[1][:2, 0] = [1.9, -1.0], [1.0 / 1.9, 1.0]  # ratio 1.9 < 2
    assert not bool(asymmetric_superposition(*weak).any())


def test_detector_ignores_the_rescaling_symmetry():
    W1, W2 = motif(inhibitor=True)
    alpha = np.array([10.0, 0.2, 3.0], np.float32)
    scaled = W1 * alpha[:, None], W2 / alpha[None, :]
    for fn in (asymmetric_superposition, asymmetric_inhibited):
        np.testing.assert_array_equal(fn(*scaled), fn(W1, W2))
    b1, b2 = balance(*scaled)
    np.testing.assert_allclose(
        np.linalg.norm(b1, axis=1), np.linalg.norm(b2, axis=0), rtol=1e-5
    )
    model, x = get_model("abs_computation"), jnp.linspace(-1, 1, 15).reshape(3, 5)
    keep, b = jnp.ones((3, 5)), jnp.zeros(3)
    before = model.forward({"W1": W1, "W2": W2, "b": b}, x, keep)[0]
    after = model.forward({"W1": b1, "W2": b2, "b": b}, x, keep)[0]
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)


def test_inhibiting_neuron():
    np.testing.assert_array_equal(asymmetric_inhibited(*motif()), [False, False])
    np.testing.assert_array_equal(
        asymmetric_inhibited(*motif(inhibitor=True)), [True, False, False]
    )


def test_analyze_adds_abs_variables_only_for_abs_datasets():
    W1, W2 = motif(inhibitor=True)
    runs = np.stack([W1, np.zeros_like(W1)]), np.stack([W2, np.zeros_like(W2)])
    ds = xr.Dataset(
        {
            "W1": (("seed", "hidden", "feature"), runs[0]),
            "W2": (("seed", "feature", "hidden"), runs[1]),
        },
        attrs={"model_kind": "abs_computation"},
    )
    out = analyze(ds)
    assert out["asymmetric_neurons"].dims == ("seed",)
    assert out["asymmetric_neurons"].values.tolist() == [1, 0]
    assert out["asymmetric_inhibited"].values.tolist() == [1, 0]
    assert out["features_per_neuron"].dims == ("seed", "hidden")
    balanced = np.asarray(balance(W1, W2)[0])
    np.testing.assert_array_equal(
        out["features_per_neuron"].isel(seed=0), features_per_neuron(balanced)
    )
    assert "vulnerability" not in out
    tied = analyze(xr.Dataset({"W": (("hidden", "feature"), permutation())}))
    assert "asymmetric_neurons" not in tied and int(tied["n_monosemantic"]) == 5
