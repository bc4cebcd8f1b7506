"""Closed-form phase diagrams: boundaries and labels against a separate brute force."""

import numpy as np
import pytest

from toymodels import theory

P_GRID = np.linspace(1e-5, 1.0, 200_001)  # step 5e-6


def _dropped(p, importance):
    return importance * (p / 3 - p**2 / 4)


def _antipodal(p, importance_i, importance_j):
    return (importance_i + importance_j) * p**2 / 6


def _brute_losses(p, r, n_features):
    """Candidate losses written out by hand (REFERENCE 1.8), keyed by the phase."""
    if n_features == 2:
        return {
            "unrepresented": [_dropped(p, r)],  # W = [1, 0]
            "dedicated": [_dropped(p, 1.0)],  # W = [0, 1]
            "superposition": [_antipodal(p, 1.0, r)],  # W = [1, -1]
        }
    return {
        "unrepresented": [_dropped(p, r)],  # W ⊥ [0,0,1]
        "dedicated": [
            _dropped(p, 1.0),
            _antipodal(p, 1.0, 1.0),
        ],  # W ⊥ [1,0,0], W ⊥ [1,1,0]
        "superposition": [_antipodal(p, 1.0, r)],  # W ⊥ [0,1,1]
    }


def _brute_phase(p, r, n_features):
    losses = _brute_losses(p, r, n_features)
    names = list(losses)
    best = np.stack([np.min(np.stack(losses[k]), axis=0) for k in names])
    return np.array(names)[np.argmin(best, axis=0)]


def _brute_boundary(r, n_features):
    """Largest density on the grid where superposition is optimal (NaN if never)."""
    sup = _brute_phase(P_GRID, r, n_features) == "superposition"
    return P_GRID[sup].max() if sup.any() else np.nan


@pytest.mark.parametrize(
    "r, expected",
    [
        (0.1, 0.160),
        (10.0, 0.160),
        (0.3, 0.343),
        (0.5, 0.444),
        (2.0, 0.444),
        (3.0, 0.364),
        (1.0, 4 / 7),
    ],
)
def test_boundary_2_1_matches_reference_and_brute_force(r, expected):
    brute = _brute_boundary(r, 2)
    assert brute == pytest.approx(expected, abs=1e-3)
    assert theory.boundary_2_1(r) == pytest.approx(brute, abs=1e-5)


@pytest.mark.parametrize("r, expected", [(0.1, 0.160), (0.3, 0.343), (0.5, 0.444)])
def test_boundary_3_2_below_one_matches_brute_force(r, expected):
    brute = _brute_boundary(r, 3)
    assert brute == pytest.approx(expected, abs=1e-3)
    assert theory.boundary_3_2(r) == pytest.approx(brute, abs=1e-5)


@pytest.mark.parametrize("r", [1.5, 2.0, 10.0])
def test_extra_feature_always_dedicated_for_3_2_above_one(r):
    assert np.isnan(_brute_boundary(r, 3))
    assert np.isnan(theory.boundary_3_2(r))
    assert set(theory.phase_3_2(P_GRID[::1000], r)) == {"dedicated"}


def test_triple_point():
    r, p = theory.TRIPLE_POINT
    assert (r, p) == (1.0, pytest.approx(4 / 7))
    assert theory.boundary_2_1(r) == pytest.approx(4 / 7)
    losses = theory.candidate_losses_2_1(p, r)
    assert np.allclose(losses, losses[0])  # all three candidates tie


@pytest.mark.parametrize("r", [0.1, 0.3, 0.5, 0.9, 1.1, 2.0, 3.0, 10.0])
def test_phase_labels_on_both_sides_of_2_1_boundary(r):
    p_star = float(theory.boundary_2_1(r))
    below, above = theory.phase_2_1([p_star * 0.98, min(p_star * 1.02, 1.0)], r)
    assert below == "superposition"
    assert above == ("unrepresented" if r < 1 else "dedicated")


@pytest.mark.parametrize("r", [0.1, 0.3, 0.5, 0.9])
def test_phase_labels_on_both_sides_of_3_2_boundary(r):
    p_star = float(theory.boundary_3_2(r))
    below, above = theory.phase_3_2([p_star * 0.98, p_star * 1.02], r)
    assert (below, above) == ("superposition", "unrepresented")


@pytest.mark.parametrize(
    "n_features, phase_fn", [(2, theory.phase_2_1), (3, theory.phase_3_2)]
)
def test_phase_matches_brute_force_on_a_grid(n_features, phase_fn):
    p, r = np.meshgrid(
        np.geomspace(0.01, 1, 61), np.geomspace(0.1, 10, 58), indexing="ij"
    )  # r = 1 (ties) excluded
    assert (phase_fn(p, r) == _brute_phase(p, r, n_features)).all()
    assert phase_fn(p, r).shape == p.shape


def test_candidate_losses_are_sums_of_the_reference_terms():
    p, r = np.geomspace(0.01, 1, 7)[:, None], np.geomspace(0.1, 10, 5)[None, :]
    expected_2_1 = [_dropped(p, r), _dropped(p, 1.0), _antipodal(p, 1.0, r)]
    np.testing.assert_allclose(
        theory.candidate_losses_2_1(p, r), np.broadcast_arrays(*expected_2_1)
    )
    expected_3_2 = [
        _dropped(p, r),
        _dropped(p, 1.0),
        (1 + r) * p**2 / 6,
        p**2 / 3 + 0 * r,
    ]
    np.testing.assert_allclose(
        theory.candidate_losses_3_2(p, r), np.broadcast_arrays(*expected_3_2)
    )
    assert theory.candidate_losses_2_1(p, r).dtype == np.float64


def test_scalar_inputs_give_scalars():
    assert isinstance(theory.phase_2_1(0.1, 0.5), str)
    assert np.ndim(theory.boundary_2_1(0.5)) == 0


def test_candidate_loss_rejects_non_closed_form_weights():
    with pytest.raises(ValueError, match="norm"):
        theory.candidate_loss(np.array([[0.5, 1.0]]), 0.1, [1.0, 1.0])
    pentagon = np.stack(
        [np.cos(2 * np.pi * np.arange(5) / 5), np.sin(2 * np.pi * np.arange(5) / 5)]
    )
    with pytest.raises(ValueError, match="interferes"):
        theory.candidate_loss(pentagon, 0.1, [1.0] * 5)


def test_phase_names_are_the_shared_ones():
    assert theory.PHASES == ("unrepresented", "dedicated", "superposition")
    for candidates in (theory.CANDIDATES_2_1, theory.CANDIDATES_3_2):
        assert {c.phase for c in candidates} <= set(theory.PHASES)
