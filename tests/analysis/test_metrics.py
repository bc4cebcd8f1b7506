"""Per-feature metrics on hand-built weights (no training): REFERENCE 1.5 values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels.analysis import (
    PHASES,
    dims_per_feature,
    feature_dimensionality,
    feature_norms,
    n_represented,
    phase,
    superposition,
)


def polygon(k: int) -> np.ndarray:
    """Regular k-gon of unit vectors in 2-D, [2, k]."""
    t = 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(t), np.sin(t)]).astype(np.float32)


def rotation(angle: float) -> np.ndarray:
    """Rotation of the plane by `angle`, [2, 2]."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]], np.float32)


DIGON = np.array([[1.0, -1.0]], np.float32)


def test_dimensionality_of_simple_geometries():
    np.testing.assert_allclose(feature_dimensionality(np.eye(4, dtype=np.float32)), 1)
    np.testing.assert_allclose(feature_dimensionality(DIGON), 0.5, atol=1e-6)
    for k in range(3, 9):  # regular k-gon: 2/k, rotated or not (D depends on W^T W)
        np.testing.assert_allclose(feature_dimensionality(polygon(k)), 2 / k, atol=1e-5)
        rotated = rotation(0.3 * k) @ polygon(k)
        np.testing.assert_allclose(feature_dimensionality(rotated), 2 / k, atol=1e-5)
    zero_col = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    np.testing.assert_array_equal(feature_dimensionality(zero_col), [1, 1, 0])


def test_hand_computed_values():
    W = np.array([[1.0, 0.5], [0.0, 1.0]], np.float32)
    np.testing.assert_allclose(feature_norms(W), [1.0, np.sqrt(1.25)], rtol=1e-6)
    # (What_0 . W_1)^2 = 0.5^2; (What_1 . W_0)^2 = 0.5^2 / 1.25.
    np.testing.assert_allclose(superposition(W), [0.25, 0.2], rtol=1e-5)
    # D_0 = 1 / (1 + 0.25); D_1 = 1.25 / (1.25 + 0.2).
    np.testing.assert_allclose(feature_dimensionality(W), [0.8, 1.25 / 1.45], rtol=1e-5)
    np.testing.assert_allclose(dims_per_feature(W), 2 / 2.25, rtol=1e-6)


def test_superposition_of_polytopes():
    np.testing.assert_allclose(superposition(np.eye(3, dtype=np.float32)), 0, atol=1e-6)
    np.testing.assert_allclose(superposition(DIGON), [1, 1], atol=1e-6)
    # Pentagon: sum_{j != i} cos^2 = 2 cos^2(72) + 2 cos^2(144) = 1.5.
    np.testing.assert_allclose(superposition(polygon(5)), 1.5, atol=1e-5)
    # Scaling a feature up scales its interference on others by the square.
    scaled = np.array([[1.0, -2.0]], np.float32)
    np.testing.assert_allclose(superposition(scaled), [4, 1], atol=1e-5)


def test_dims_per_feature():
    assert dims_per_feature(np.eye(3, 5, dtype=np.float32)) == pytest.approx(1.0)
    assert dims_per_feature(polygon(5)) == pytest.approx(2 / 5)
    assert dims_per_feature(DIGON) == pytest.approx(1 / 2)
    assert dims_per_feature(0.5 * DIGON) == pytest.approx(2.0)  # norms, not counts


def test_zero_weights_give_no_nan():
    for W in (np.zeros((3, 5), np.float32), np.zeros((1, 1), np.float32)):
        for fn in (feature_norms, superposition, feature_dimensionality):
            out = np.asarray(fn(W))
            assert not np.isnan(out).any()
            np.testing.assert_array_equal(out, 0.0)
        assert np.isinf(dims_per_feature(W))
        assert n_represented(W) == 0
        assert PHASES[int(phase(W))] == "unrepresented"


def test_tiny_columns_stay_in_range():
    W = np.array([[1.0, 1e-8, 1e-30], [0.0, 1e-8, 0.0]], np.float32)
    D = np.asarray(feature_dimensionality(W))
    assert np.all((D >= 0) & (D <= 1)) and not np.isnan(D).any()
    assert np.isfinite(np.asarray(superposition(W))).all()


@pytest.mark.parametrize("h,f", [(1, 1), (2, 5), (3, 3), (5, 20), (8, 40), (30, 100)])
def test_sum_of_dimensionalities_at_most_rank(h, f):
    rng = np.random.default_rng(h * 1000 + f)
    n = 300  # random models per shape, of random rank, norms and zero columns
    rank = rng.integers(1, h + 1, size=n)
    a = rng.normal(size=(n, h, h)) * (np.arange(h) < rank[:, None])[:, None, :]
    W = a @ rng.normal(size=(n, h, f)) * rng.lognormal(sigma=1.5, size=(n, 1, f))
    W *= rng.random((n, 1, f)) > 0.2
    D = np.asarray(jax.jit(jax.vmap(feature_dimensionality))(W.astype(np.float32)))
    assert np.all((D >= 0) & (D <= 1 + 1e-6)) and not np.isnan(D).any()
    assert np.all(D.sum(axis=1) <= rank + 1e-4 * f)  # sum_i D_i <= rank(W) <= H


def test_n_represented_threshold():
    W = np.array([[0.49, 0.51, -0.9, 0.0]], np.float32)
    assert int(n_represented(W)) == 2
    assert int(n_represented(W, threshold=0.3)) == 3
    assert n_represented(W).dtype == jnp.int32


def test_phase_labels():
    code = {name: i for i, name in enumerate(PHASES)}
    assert PHASES == ("unrepresented", "dedicated", "superposition")
    assert int(phase(np.eye(3, dtype=np.float32))) == code["dedicated"]
    assert int(phase(DIGON)) == code["superposition"]
    zero_last = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    assert int(phase(zero_last)) == code["unrepresented"]
    assert int(phase(np.array([[1.0, 0.4]], np.float32))) == code["unrepresented"]
    assert int(phase(DIGON, feature=0)) == code["superposition"]


def test_phase_thresholds_and_ignored_unrepresented():
    code = {name: i for i, name in enumerate(PHASES)}

    def with_overlap(c):  # last feature sees interference c^2 from the first
        return np.array([[1.0, c], [0.0, np.sqrt(1 - c**2)]], np.float32)

    assert int(phase(with_overlap(0.3))) == code["dedicated"]  # 0.09 <= 0.1
    assert int(phase(with_overlap(0.33))) == code["superposition"]  # 0.109 > 0.1
    # A tiny unlearned vector along the last feature is not superposition.
    W = np.array([[1.0, 0.0, 0.0], [0.0, -0.3, 1.0]], np.float32)
    assert int(phase(W)) == code["dedicated"]
    assert float(superposition(W)[-1]) == pytest.approx(0.09, rel=1e-5)


def test_jit_and_vmap_match_single_model():
    rng = np.random.default_rng(1)
    Ws = rng.normal(size=(5, 3, 7)).astype(np.float32)
    fns = (feature_norms, superposition, feature_dimensionality, dims_per_feature,
           n_represented, phase)
    for fn in fns:
        batched = np.asarray(jax.jit(jax.vmap(fn))(Ws))
        single = np.stack([np.asarray(fn(W)) for W in Ws])
        np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)
