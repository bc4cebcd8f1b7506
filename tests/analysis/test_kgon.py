"""Labelling solutions by their nearest k^{σ+}-gon (toymodels.analysis.kgon)."""

import numpy as np
import pytest

from toymodels import theory
from toymodels.analysis.kgon import (
    classify_kgon,
    kgon_counts,
    kgon_label,
    kgon_losses,
    kgon_name,
    nearest_kgon,
)

C = 6
KS = [(k, s) for k in range(2, C + 1) for s in range(C - k + 1)]


@pytest.fixture(scope="module")
def polygons():
    return {(k, s): theory.kgon(C, k, sigma=s) for k, s in KS}


def test_the_levels_are_theory_kgon_losses(polygons):
    levels = kgon_losses(C)
    for key, g in polygons.items():
        assert levels[key] == pytest.approx(g.loss, abs=1e-12), key
    assert levels[(0, 0)] == pytest.approx(1 / 3)
    one = np.zeros((2, C))
    one[0, 0] = 1.0
    assert levels[(1, 0)] == pytest.approx(theory.exactly_one_loss(one, np.zeros(C)))
    table = [0.2222, 0.1667, 0.1111, 0.0687, 0.0482]
    np.testing.assert_allclose([levels[(k, 0)] for k in range(2, 7)], table, atol=5e-5)


def test_classify_finds_k_and_sigma_of_every_kgon_also_perturbed_and_batched(polygons):
    rng = np.random.default_rng(0)
    W = np.stack([g.W for g in polygons.values()])  # [N, 2, 6]
    b = np.stack([g.b for g in polygons.values()])
    want = np.array(list(polygons)).T
    for scale in (0.0, 0.01):  # σ+ biases 4 std above the cut at 1/(4c)
        k, s = classify_kgon(W + scale * rng.normal(size=W.shape), b + scale * rng.normal(size=b.shape))
        np.testing.assert_array_equal(k, want[0])
        np.testing.assert_array_equal(s, want[1])
    # any leading axes: [2, N] of them, and H > 2 (the plane embedded)
    W3 = np.concatenate([W, np.zeros((len(W), 1, C))], axis=1)
    k, s = classify_kgon(np.stack([W3, W3]), np.stack([b, b]))
    assert k.shape == (2, len(W)) and (k == want[0]).all() and (s == want[1]).all()


def test_the_nearest_level_labels_exact_and_nearby_losses(polygons):
    loss = np.array([g.loss for g in polygons.values()])
    for shift in (0.0, 0.002, -0.002):
        k, s = nearest_kgon(loss + shift, C)
        np.testing.assert_array_equal(np.stack([k, s]), np.array(list(polygons)).T)
    names = kgon_label(loss.reshape(2, -1) if loss.size % 2 == 0 else loss, C)
    assert names.ravel().tolist() == [kgon_name(k, s) for k, s in polygons]
    assert kgon_label(0.1111, C) == "4-gon" and kgon_label(0.0973, C) == "4^{2+}-gon"


def test_counts_are_in_order_of_loss(polygons):
    g4, g5, g6 = (polygons[(k, 0)] for k in (4, 5, 6))
    W = np.stack([g4.W, g6.W, g4.W, g5.W])
    b = np.stack([g4.b, g6.b, g4.b, g5.b])
    assert list(kgon_counts(W, b).items()) == [("6-gon", 1), ("5-gon", 1), ("4-gon", 2)]
    assert kgon_name(3, 3) == "3^{3+}-gon"
