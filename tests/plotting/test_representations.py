"""Single models along an axis (toymodels/plotting/representations.py): WᵀW and norms,
feature directions, dimensionality, loss curves; Agg figures from tiny synthetic results
datasets, with no training."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from toymodels import plotting  # noqa: E402

from helpers import synthetic_results  # noqa: E402


def _new_ax(**kwargs):
    return Figure().add_subplot(**kwargs)


def test_geometry_in_3d_and_its_artists():
    ds3 = synthetic_results({"feature_probability": [1.0, 0.1, 0.01]}, F=4, H=3)
    fig = plotting.PLOTS["geometry"](ds3)
    assert len(fig.axes) == 3 and all(hasattr(ax, "get_zlim") for ax in fig.axes)
    ax = _new_ax()
    artists = plotting.geometry(ax, np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]))
    assert (
        len(artists) == 1 + 2 * 3
    )  # unit circle, then an arrow and a label per feature
    assert [t.get_text() for t in ax.texts if t.get_text()] == ["0", "1", "2"]
    with pytest.raises(ValueError, match="3-D"):
        plotting.geometry(_new_ax(), np.ones((3, 4)))


def test_geometry_labels_its_axes_and_names_unrepresented_features_once():
    ax = _new_ax()
    W = np.array([[1.0, 0.0, 0.01, -0.02, 0.3], [0.0, 0.9, 0.02, 0.01, 0.3]])  # 2, 3, 4: short
    plotting.geometry(ax, W)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("hidden dim 0", "hidden dim 1")
    texts = [t.get_text() for t in ax.texts if t.get_text()]  # arrows are empty texts
    assert texts == ["0", "1", "not represented: 2, 3, 4"]  # no labels piled at the centre
    ax3 = _new_ax(projection="3d")
    plotting.geometry(ax3, np.array([[1.0, 0.0], [0.0, 0.1], [0.0, 0.0]]))
    assert ax3.get_zlabel() == "hidden dim 2"
    assert [t.get_text() for t in ax3.texts] == ["0", "not represented: 1"]


def test_features_colour_bars_sit_next_to_the_panels_gram_first():
    ds = synthetic_results({"sparsity": np.linspace(0.0, 0.99, 10)}, F=5, H=2)
    fig = plotting.PLOTS["features"](ds)
    fig.draw_without_rendering()
    bars = sorted((a for a in fig.axes if a.get_label() == "<colorbar>"),
                  key=lambda a: a.get_position().x0)
    right = max(a.get_position().x1 for a in fig.axes if a.get_label() != "<colorbar>")
    assert [b.get_ylabel() for b in bars] == ["WᵀW", "√superposition (bar colour)"]
    assert bars[0].get_position().x0 - right < 0.02  # of the figure's width


def test_features_draws_the_lowest_loss_seed(ds):
    fig = Figure()
    axes = np.array(fig.subplots(3, 2), dtype=object)
    drawn = plotting.features(axes, ds, axis="sparsity")
    assert len(drawn) == 3
    for k, (image, bars) in enumerate(drawn):
        runs = ds.isel(sparsity=k, relative_importance=0)
        best = int(runs.final_loss.argmin("seed"))
        W = runs.W.isel(seed=best).values.astype(np.float64)
        np.testing.assert_allclose(image.get_array(), W.T @ W, rtol=1e-6)
        assert [b.get_width() for b in bars] == pytest.approx(np.linalg.norm(W, axis=0))
    assert {
        int(ds.final_loss.isel(relative_importance=0).argmin("seed")[k])
        for k in range(3)
    } == {0, 1}  # the fixture exercises both seeds
    with pytest.raises(ValueError, match="shape"):
        plotting.features(axes[:2], ds, axis="sparsity")


def test_dimensionality_plots_every_feature_and_reference_lines(ds):
    ax = _new_ax()
    line, scatter, *rest = plotting.dimensionality(ax, ds)
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(sorted(line.get_xdata()), [1.0, 10.0, 100.0])
    assert len(scatter.get_offsets()) == 3 * ds.sizes["feature"]
    assert {t.get_text() for t in ax.texts} == {"1", "3/4", "2/3", "1/2", "2/5", "3/8"}


def test_loss_labels_few_runs_and_uses_log_y(ds):
    ax = _new_ax()
    artists = plotting.loss(ax, ds.isel(seed=0, sparsity=[0, 1]))
    assert ax.get_yscale() == "log" and len(ax.lines) == 4
    assert "S = 0.9, r = 0.1" in [t.get_text() for t in artists[-1].get_texts()]
    plotting.loss(_new_ax(), ds, max_labels=3)  # many runs: a colorbar instead


def test_dimensionality_reads_density_from_a_feature_probability_axis():
    ds_p = synthetic_results({"feature_probability": [1.0, 0.1, 0.01], "seed": [0, 1]})
    line = plotting.dimensionality(_new_ax(), ds_p)[0]
    np.testing.assert_allclose(line.get_xdata(), [1.0, 10.0, 100.0])
