"""The SPD phase-diagram figure (toymodels/plotting/spd_phase.py) on analysed SPD results
made by hand: four 2 -> 1 cells (source runs) x two seeds, whose targets represent 2, 2,
1 and 0 features, with known live counts and best cosines."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from toymodels import plotting  # noqa: E402
from toymodels.plotting import spd_phase as sp  # noqa: E402

# [source_run, hidden, feature]: antipodal, antipodal, one feature (the other at 0.4 <
# 0.5), none (both at 0.3)
W = np.array([[[1.0, -1.0]], [[0.9, -0.8]], [[1.0, 0.4]], [[0.3, 0.3]]])
LIVE_IN = np.array([[2, 1], [2, 2], [1, 1], [0, 1]])
LIVE_OUT = np.array([[1, 1], [2, 1], [1, 1], [0, 0]])
# [source_run, seed, feature]; run 0 seed 1 merges both features in W_in (0.71); W_out
# merges wherever it has one live subcomponent of two features; the unrepresented feature
# of run 2 is low (0.1) and must not count as a miss
COS_IN = np.ones((4, 2, 2))
COS_IN[0, 1] = 0.71
COS_IN[2, :, 1] = 0.1
COS_OUT = np.ones((4, 2, 2))
COS_OUT[0, :] = COS_OUT[1, 1] = 0.7
COS_OUT[2, :, 1] = 0.1


@pytest.fixture(scope="module")
def runs():
    dims = ("source_run", "seed")
    failed = ((COS_IN < 0.9) | (COS_OUT < 0.9)) & (np.linalg.norm(W, axis=1) > 0.5)[:, None]
    return xr.Dataset(
        {"target_W_in": (("source_run", "hidden", "feature"), W),
         "n_live_W_in": (dims, LIVE_IN), "n_live_W_out": (dims, LIVE_OUT),
         "best_cosine_W_in": ((*dims, "feature"), COS_IN),
         "best_cosine_W_out": ((*dims, "feature"), COS_OUT),
         "failed": (dims, failed.any(-1)), "missed_feature": (dims, np.full((4, 2), -1))},
        coords={"source_run": [0, 1, 2, 3], "seed": [0, 1]},
        attrs={"name": "phase", "trainer": "spd", "spd_source": "runs/x", "n_features": 2,
               "n_hidden": 1})


def test_represented_features_are_the_columns_of_norm_above_one_half(runs):
    np.testing.assert_array_equal(sp.represented_features(runs), [2, 2, 2, 2, 1, 1, 0, 0])


def test_each_matrix_counts_its_own_misses_and_live_subcomponents(runs):
    assert sp.cell_counts(runs, "W_in") == {(2, 2, False): 3, (2, 1, True): 1, (1, 1, False): 2,
                                            (0, 0, False): 1, (0, 1, False): 1}
    assert sp.cell_counts(runs, "W_out") == {(2, 1, True): 3, (2, 2, False): 1, (1, 1, False): 2,
                                             (0, 0, False): 2}


def test_the_figure_draws_one_marker_per_cell_with_its_count(runs):
    fig = plotting.PLOTS["spd_phase"](runs)
    left, right = fig.axes[:2]
    for ax, matrix in ((left, "W_in"), (right, "W_out")):
        expected = sp.cell_counts(runs, matrix)
        points = np.concatenate([c.get_offsets() for c in ax.collections])
        assert len(points) == len(expected)
        texts = sorted(int(t.get_text()) for t in ax.texts)
        assert texts == sorted(expected.values())
        assert sorted(zip(np.round(points[:, 0]).astype(int), points[:, 1].astype(int))) == sorted(
            (x, y) for x, y, _ in expected)
    assert "failed 3 of 8" in fig.get_suptitle()  # run 0's two seeds and run 1's second


def test_needs_an_analysed_spd_sweep(runs):
    assert plotting.why_not("spd_phase", runs) is None
    assert "toymodels analyze" in plotting.why_not("spd_phase", runs.drop_vars("n_live_W_in"))
    assert "SPD" in plotting.why_not("spd_phase", runs.assign_attrs(trainer="toy"))
