"""The absorption figure (toymodels/plotting/absorption.py) on analysed SAE results made
by hand: known absorption gaps and hedging per kind × tied × seed."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from toymodels import plotting  # noqa: E402
from toymodels.plotting import absorption as a  # noqa: E402

GAP = np.array([[[0.2, 0.3, 0.4], [0.0, 0.0, 0.0]],
                [[0.1, 0.0, 0.05], [0.0, 0.0, 0.0]]])  # [kind, tied, seed]


@pytest.fixture(scope="module")
def saes():
    dims = ("kind", "tied", "seed")
    return xr.Dataset(
        {"absorption_gap_mean": (dims, GAP), "hedging_mean": (dims, GAP / 2)},
        coords={"kind": ["batchtopk", "matryoshka"], "tied": [False, True], "seed": [0, 1, 2]},
        attrs={"name": "absorb", "trainer": "sae", "n_features": 20, "n_hidden": 20})


def test_variants_are_every_kind_and_tied_with_their_seeds(saes):
    groups = a.variants(saes.absorption_gap_mean)
    assert [name for name, _ in groups] == [
        "batchtopk, tied = False", "batchtopk, tied = True",
        "matryoshka, tied = False", "matryoshka, tied = True"]
    np.testing.assert_array_equal(groups[2][1], [0.1, 0.0, 0.05])


def test_each_seed_is_a_point_and_each_median_a_bar(saes):
    fig = plotting.PLOTS["absorption"](saes)
    left, right = fig.axes
    points = [c.get_offsets() for c in left.collections]
    assert [len(p) for p in points] == [3, 3, 3, 3]
    np.testing.assert_allclose(points[0][:, 1], [0.2, 0.3, 0.4])
    medians = [line.get_ydata()[0] for line in left.lines if line.get_color() == "black"]
    np.testing.assert_allclose(medians, [0.3, 0.0, 0.05, 0.0])
    np.testing.assert_allclose(right.collections[0].get_offsets()[:, 1], [0.1, 0.15, 0.2])
    assert plotting.why_not("absorption", saes) is None


def test_absorption_needs_the_hierarchy_scores(saes):
    without = saes.drop_vars("absorption_gap_mean")
    assert "absorption_gap_mean" in plotting.why_not("absorption", without)
    with pytest.raises(ValueError, match="toymodels analyze"):
        plotting.PLOTS["absorption"](saes.drop_vars("hedging_mean"))
