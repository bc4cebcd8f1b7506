"""The residual-MLP SPD figure (toymodels/plotting/spd_residual.py) on analysed results
made by hand: two decompositions of a 3-feature model, the first failing (feature 2 at
0.5), the second exact (W_in's one-hot pattern a permuted identity plus a dead
subcomponent)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from toymodels import plotting  # noqa: E402
from toymodels.plotting import spd_residual as sr  # noqa: E402

BEST = np.array([[0.99, 0.98, 0.5], [0.99, 0.995, 0.97]])
CI_IN = np.zeros((2, 3, 4))
CI_IN[0] = 0.5
CI_IN[1, [0, 1, 2], [2, 0, 3]] = [0.9, 0.8, 1.0]  # feature i opens subcomponent (2, 0, 3)[i]
CI_OUT = np.zeros((2, 3, 4))
CI_OUT[1, :, 1] = 0.7  # one W_out subcomponent, open on every feature


@pytest.fixture(scope="module")
def runs():
    return xr.Dataset(
        {"best_cosine_W_in": (("seed", "feature"), BEST), "failed": ("seed", [True, False]),
         "n_live_W_out": ("seed", [4, 1]),
         "ci_W_in": (("seed", "feature", "component"), CI_IN),
         "ci_W_out": (("seed", "feature", "component"), CI_OUT)},
        coords={"seed": [0, 1]}, attrs={"name": "r", "trainer": "spd", "threshold": 0.1})


def test_the_default_run_is_the_first_that_did_not_fail_and_its_pattern_is_ordered(runs):
    assert sr.chosen_run(runs) == 1 and sr.chosen_run(runs, 0) == 0
    np.testing.assert_array_equal(sr.ordered_live(CI_IN[1], 0.1), [2, 0, 3])
    fig = plotting.PLOTS["spd_residual"](runs)
    left, middle, right = fig.axes[:3]
    np.testing.assert_allclose(middle.images[0].get_array(), np.diag([0.9, 0.8, 1.0]))
    assert "(3)" in middle.get_xlabel() and "(1)" in right.get_xlabel()
    np.testing.assert_allclose(right.images[0].get_array(), np.full((3, 1), 0.7))
    points = np.concatenate([c.get_offsets()[:, 1] for c in left.collections])
    np.testing.assert_allclose(np.sort(points), np.sort(BEST.ravel()))
    assert "failed 1 of 2" in left.get_title()


def test_needs_an_analysed_residual_spd_sweep(runs):
    assert plotting.why_not("spd_residual", runs) is None
    assert "toymodels analyze" in plotting.why_not("spd_residual", runs.drop_vars("failed"))
    assert "SPD" in plotting.why_not("spd_residual", runs.assign_attrs(trainer="toy"))
