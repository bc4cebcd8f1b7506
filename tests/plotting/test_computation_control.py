"""The computation-control figure (toymodels/plotting/computation_control.py) on
analysed residual results made by hand: known ratios per label_mixing and seed."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from toymodels import plotting  # noqa: E402
from toymodels.plotting import computation_control as cc  # noqa: E402

MIXING = [0.0, 0.5, 1.0]
RATIO = np.array([[0.55, 0.56, 0.54], [0.75, 0.77, 0.76], [1.01, 0.99, 1.00]])  # [s, seed]
LINEAR = np.array([0.84, 1.16, 1.49])


@pytest.fixture(scope="module")
def runs():
    dims = ("label_mixing", "seed")
    return xr.Dataset(
        {"loss_ratio": (dims, RATIO), "loss_ratio_se": (dims, np.full((3, 3), 0.01)),
         "linear_ratio": (dims, np.repeat(LINEAR[:, None], 3, 1)),
         "final_loss": (dims, RATIO * 1e-3)},
        coords={"label_mixing": MIXING, "seed": [0, 1, 2]},
        attrs={"name": "control", "trainer": "residual", "task": "identity_relu",
               "n_features": 50, "d_embed": 500, "d_mlp": 25})


def test_the_mean_line_is_the_seeds_mean_and_the_linear_map_dashed(runs):
    fig = plotting.PLOTS["computation_control"](runs)
    ax = fig.axes[0]
    solid = [ln for ln in ax.lines if ln.get_linestyle() == "-" and len(ln.get_xdata()) == 3]
    np.testing.assert_allclose(solid[0].get_ydata(), RATIO.mean(1))
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    np.testing.assert_allclose(dashed[0].get_ydata(), LINEAR)
    points = [ln for ln in ax.lines if ln.get_marker() == "o"]
    np.testing.assert_allclose(np.stack([p.get_ydata() for p in points], 1), RATIO)
    naive = [ln for ln in ax.lines if np.allclose(ln.get_ydata(), 1.0)]
    assert naive, "the naive baseline (1) is marked"
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert "0\npublished" in labels and "1\nclean" in labels


def test_needs_an_analysed_residual_sweep_with_a_label_mixing_axis(runs):
    assert plotting.why_not("computation_control", runs) is None
    assert "toymodels analyze" in plotting.why_not("computation_control",
                                                   runs.drop_vars("loss_ratio"))
    toy = runs.assign_attrs(trainer="toy")
    assert "residual" in plotting.why_not("computation_control", toy)
    other = runs.rename(label_mixing="embed_seed")
    assert "label_mixing" in plotting.why_not("computation_control", other)


def test_relu_names_clean_at_zero():
    assert cc.landmarks("relu") == {-1.0: "published", 0.0: "clean"}
