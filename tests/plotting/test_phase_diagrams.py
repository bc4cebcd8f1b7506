"""Phase diagrams and heatmaps (toymodels/plotting/phase_diagrams.py) on synthetic results
datasets, with no training."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from toymodels import plotting, theory  # noqa: E402

from helpers import synthetic_results  # noqa: E402

PHASES = ("unrepresented", "dedicated", "superposition")


def _new_ax(**kwargs):
    return Figure().add_subplot(**kwargs)


def test_phase_draws_the_theory_boundary(ds):
    ax = _new_ax()
    artists = plotting.phase(ax, ds, theory="2_1")
    (curve,) = [a for a in artists[2:] if a.get_gid() == "theory-boundary"]
    r, p = curve.get_xdata(), curve.get_ydata()
    assert r.min() < 1 < r.max()
    np.testing.assert_allclose(p, theory.boundary_2_1(r))
    assert ax.get_xlabel() == "relative importance r"
    assert ax.get_ylabel() == "feature density 1−S"


def test_phase_theory_inferred_from_attrs_only_for_known_shapes():
    axes = {"sparsity": [0.0, 0.9, 0.99], "relative_importance": [0.1, 1.0, 10.0]}
    gids = lambda ax: {l.get_gid() for l in ax.lines}  # noqa: E731,E741
    ax = _new_ax()
    plotting.phase(ax, synthetic_results(axes, F=3, H=2))
    assert "theory-boundary" in gids(ax)
    curve = next(l for l in ax.lines if l.get_gid() == "theory-boundary")  # noqa: E741
    np.testing.assert_allclose(
        curve.get_ydata(), theory.boundary_3_2(curve.get_xdata())
    )
    ax = _new_ax()
    plotting.phase(ax, synthetic_results(axes, F=5, H=2))
    assert "theory-boundary" not in gids(ax)
    ax = _new_ax()
    plotting.phase(ax, synthetic_results(axes, F=2, H=1), theory=None)
    assert not ax.lines


def test_phase_colours_each_cell_by_the_best_seed(ds):
    mesh = plotting.phase(_new_ax(), ds, theory=None)[0]
    best = ds.isel(seed=ds.final_loss.argmin("seed"))["phase"]
    expected = (
        best.sortby("sparsity").transpose("sparsity", "relative_importance").values
    )
    codes = np.asarray(mesh.get_array()).reshape(expected.shape)
    assert [[PHASES[int(c)] for c in row] for row in codes] == expected.tolist()


def test_heatmap_best_and_mean_over_seeds(ds):
    mesh, colorbar = plotting.heatmap(_new_ax(), ds, "n_represented", reduce="best")
    best = ds.isel(seed=ds.final_loss.argmin("seed"))["n_represented"]
    expected = (
        best.sortby("sparsity").transpose("sparsity", "relative_importance").values
    )
    np.testing.assert_array_equal(
        np.asarray(mesh.get_array()).reshape(expected.shape), expected
    )
    mesh, _ = plotting.heatmap(_new_ax(), ds, "final_loss", reduce="mean")
    mean = (
        ds.final_loss.mean("seed").sortby("sparsity").transpose("sparsity", ...).values
    )
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(mean.shape), mean)
    with pytest.raises(ValueError, match="mean"):
        plotting.heatmap(_new_ax(), ds, "final_loss", reduce="median")
    with pytest.raises(ValueError, match="numeric"):
        plotting.heatmap(_new_ax(), ds, "phase")


def test_a_count_gets_a_discrete_colour_scale_with_integer_ticks(ds):
    counts = np.array([[[2, 2], [3, 3]], [[3, 4], [5, 5]], [[4, 4], [5, 5]]])  # [S, r, seed]
    ax = _new_ax()
    mesh, colorbar = plotting.heatmap(ax, ds.assign(n_represented=(ds.final_loss.dims, counts)),
                                      "n_represented", reduce="best")
    ax.figure.canvas.draw()
    assert mesh.cmap.N == 4  # one colour per count, 2 to 5
    assert list(colorbar.get_ticks()) == [2, 3, 4, 5]
    labels = [t.get_text() for t in colorbar.ax.get_yticklabels() if t.get_text()]
    assert labels == ["2", "3", "4", "5"]
    mesh, _ = plotting.heatmap(_new_ax(), ds, "final_loss")
    assert mesh.cmap.N == 256  # a loss stays continuous


def test_log_axes_for_geometric_coordinates_linear_otherwise():
    ds2 = synthetic_results(
        {
            "relative_importance": np.geomspace(0.1, 10, 4),
            "dropout": np.linspace(0.0, 0.3, 3),
            "seed": [0, 1],
        }
    )
    ax = _new_ax()
    plotting.heatmap(ax, ds2, "final_loss", x="relative_importance", y="dropout")
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "linear")
    ax = _new_ax()
    plotting.heatmap(ax, ds2, "final_loss", x="dropout", y="relative_importance")
    assert (ax.get_xscale(), ax.get_yscale()) == ("linear", "log")
    assert plotting.is_log_spaced(1 - (1 - np.geomspace(1, 1e-3, 10)))
    assert not plotting.is_log_spaced(np.linspace(1, 10, 10))
    assert not plotting.is_log_spaced([0.0, 0.5, 1.0])
    assert not plotting.is_log_spaced([3.0])
