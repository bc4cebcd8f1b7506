"""The SPD failure-statistics figure (toymodels/plotting/spd_failures.py) on analysed SPD
results made by hand: six decompositions (two source runs x three seeds) of a 5 -> 2
model with known best cosines, two of which fail (on features 3 and 1)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from scipy import stats  # noqa: E402

from toymodels import plotting  # noqa: E402
from toymodels.plotting import spd_failures as sf  # noqa: E402

# [source_run, seed, feature]: run (0, 1) misses feature 3 in W_in (0.5), run (1, 2)
# feature 1 in W_out (0.3); the others' worst features are 0.95 and 0.99
GOOD = np.full(5, 0.99)
IN = np.stack([np.stack([GOOD, GOOD, GOOD]), np.stack([GOOD, GOOD, GOOD])])
OUT = IN.copy()
IN[0, 1, 3] = 0.5
OUT[1, 2, 1] = 0.3
IN[1, 0, 0] = 0.95
FAILED = np.array([[False, True, False], [False, False, True]])
MISSED = np.where(FAILED, np.array([[0, 3, 0], [0, 0, 1]]), -1)
# [source_run, seed, step]: the final losses, failures higher (2.0, 2.1) than successes
LOSS = np.stack([np.full((2, 3), 9.0), [[1.0, 2.0, 1.1], [1.2, 1.3, 2.1]]], -1)


@pytest.fixture(scope="module")
def runs():
    dims = ("source_run", "seed")
    return xr.Dataset(
        {"best_cosine_W_in": ((*dims, "feature"), IN),
         "best_cosine_W_out": ((*dims, "feature"), OUT),
         "failed": (dims, FAILED), "missed_feature": (dims, MISSED),
         "loss": ((*dims, "step"), LOSS)},
        coords={"source_run": [0, 1], "seed": [0, 1, 2], "step": [100, 200]},
        attrs={"name": "failures", "trainer": "spd", "spd_source": "runs/x",
               "n_features": 5, "n_hidden": 2})


def test_every_run_is_counted_once_and_the_missed_features_are_the_failed_runs(runs):
    fig = plotting.PLOTS["spd_failures"](runs)
    left, right, losses = fig.axes
    failed = sum(p.get_height() for p in left.patches if p.get_facecolor()[0] > 0.7)
    assert sum(p.get_height() for p in left.patches) == 6 and failed == 2
    np.testing.assert_array_equal([b.get_height() for b in right.patches], [0, 1, 0, 1, 0])
    threshold = [ln for ln in left.lines if ln.get_linestyle() == "--"]
    assert threshold[0].get_xdata()[0] == pytest.approx(0.9)
    assert "failed 2 of 6" in left.get_title()
    red = [p.get_height() for p in losses.patches if p.get_facecolor()[0] > 0.7]
    blue = [p.get_height() for p in losses.patches if p.get_facecolor()[0] <= 0.7]
    assert sum(red) == 2 and sum(blue) == 4
    np.testing.assert_allclose(sf.final_losses(runs), [1.0, 2.0, 1.1, 1.2, 1.3, 2.1])
    assert "k=1 33%, k=2 0%" in losses.get_title()


def test_the_lowest_loss_is_kept_among_the_seeds_of_one_target_only(runs):
    """Each source run has 3 seeds, one failed of highest loss: the lowest of 2 seeds
    never fails (the failure is never the lowest of a pair), the lowest of 1 fails 1/3. Pooled
    over the 6 runs, pairs across the two targets would pick run (0, 1) (loss 2.0) over
    run (1, 2) (2.1) and so fail 1/15."""
    assert sf.kept_failure_rates(runs) == pytest.approx({1: 1 / 3, 2: 0.0})
    one_seed = runs.isel(seed=[1])  # a failure and a success, one seed each
    assert sf.kept_failure_rates(one_seed) == pytest.approx({1: 0.5})


def test_the_worst_cosine_is_the_lowest_over_features_and_matrices(runs):
    np.testing.assert_allclose(sf.worst_cosines(runs), [0.99, 0.5, 0.99, 0.95, 0.99, 0.3])


@pytest.mark.parametrize("k, n", [(0, 10), (3, 64), (64, 64), (20, 256)])
def test_the_wilson_interval_matches_its_closed_form_in_scipy(k, n):
    """scipy's binomtest(k, n).proportion_ci(method="wilson") is the Wilson score interval."""
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    np.testing.assert_allclose(sf.wilson(k, n), (ci.low, ci.high), atol=1e-9)


def test_needs_an_analysed_spd_sweep(runs):
    assert plotting.why_not("spd_failures", runs) is None
    assert "toymodels analyze" in plotting.why_not("spd_failures", runs.drop_vars("failed"))
    assert "SPD" in plotting.why_not("spd_failures", runs.assign_attrs(trainer="toy"))
