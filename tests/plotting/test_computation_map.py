"""The computation-map figure (toymodels/plotting/computation_map.py) on analysed
residual results made by hand: known ratios over task, p, d_mlp, learning rate, seed."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from toymodels import plotting  # noqa: E402
from toymodels.plotting import computation_map as cm  # noqa: E402

TASKS, P, D_MLP, LR, SEEDS = ["relu", "abs"], [0.01, 0.1, 0.3], [3, 6], [0.003, 0.01], [0, 1]


@pytest.fixture(scope="module")
def runs():
    dims = ("task", "d_mlp", "feature_probability", "learning_rate", "seed")
    shape = tuple(map(len, (TASKS, D_MLP, P, LR, SEEDS)))
    # ratio = 1 + task/10 + d_mlp index/100 + p index/1000 + lr index*0.05 + seed*0.02
    idx = np.indices(shape)
    ratio = 1 + idx[0] / 10 + idx[1] / 100 + idx[2] / 1000 + idx[3] * 0.05 + idx[4] * 0.02
    ratio[0, 0, 2, 1, 1] = 0.8  # one run below 1: relu, d_mlp 3, p 0.3, lr 0.01, seed 1
    return xr.Dataset(
        {"loss_ratio": (dims, ratio), "loss_ratio_se": (dims, np.full(shape, 0.01)),
         "linear_ratio": (dims, ratio + 0.2), "final_loss": (dims, ratio * 1e-3)},
        coords={"task": TASKS, "d_mlp": D_MLP, "feature_probability": P,
                "learning_rate": LR, "seed": SEEDS},
        attrs={"name": "map", "trainer": "residual", "n_features": 24, "d_embed": 48})


def _images(fig):
    return [im for ax in fig.axes for im in ax.images]


def test_cells_are_the_lowest_seed_then_the_lowest_learning_rate(runs):
    fig = plotting.PLOTS["computation_map"](runs)
    images = _images(fig)
    assert len(images) == 2, "one panel per task"
    relu = np.asarray(images[0].get_array())  # [d_mlp, p]
    expected = 1 + np.arange(2)[:, None] / 100 + np.arange(3)[None, :] / 1000
    expected[0, 2] = 0.8
    np.testing.assert_allclose(relu, expected)
    np.testing.assert_allclose(np.asarray(images[1].get_array()),
                               1.1 + np.arange(2)[:, None] / 100 + np.arange(3)[None, :] / 1000)
    assert images[0].norm.vcenter == 1.0, "the colour scale diverges at the naive baseline"
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["task = relu", "task = abs"]


def test_the_mean_over_seeds(runs):
    cells = cm.cell_ratios(runs, reduce="mean")
    assert cells.dims == ("task", "d_mlp", "feature_probability")
    assert float(cells.sel(task="abs", d_mlp=6, feature_probability=0.01)) == pytest.approx(
        1 + 0.1 + 0.01 + 0.01)  # p index 0, lr 0.003 (no 0.05), seeds 0 and 1 (mean 0.01)


def test_needs_loss_ratio_and_named_axes(runs):
    assert plotting.why_not("computation_map", runs) is None
    assert "toymodels analyze" in plotting.why_not("computation_map",
                                                   runs.drop_vars("loss_ratio"))
    assert "residual" in plotting.why_not("computation_map", runs.assign_attrs(trainer="toy"))
    with pytest.raises(ValueError, match="not a sweep axis"):
        cm.cell_ratios(runs, x="d_embed")
    with pytest.raises(ValueError, match="reduce"):
        cm.cell_ratios(runs, reduce="median")
