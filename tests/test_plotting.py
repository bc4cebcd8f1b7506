"""Plots draw on Agg figures from tiny synthetic results datasets, with no training."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from toymodels import plotting, theory  # noqa: E402

PHASES = ("unrepresented", "dedicated", "superposition")


def _analysis_by_hand(W: np.ndarray) -> dict[str, np.ndarray]:
    """Per-run metrics of W [..., H, F] from the paper's formulas (REFERENCE 1.5)."""
    norms = np.linalg.norm(W, axis=-2)
    unit = W / np.maximum(norms, 1e-6)[..., None, :]
    overlaps = np.einsum("...hi,...hj->...ij", unit, W) ** 2  # (Ŵ_i·W_j)²
    diag = np.diagonal(overlaps, axis1=-2, axis2=-1)
    return {
        "feature_norm": norms,
        "superposition": overlaps.sum(-1) - diag,
        "feature_dimensionality": np.where(
            norms > 1e-6, norms**2 / overlaps.sum(-1), 0.0
        ),
        "dims_per_feature": W.shape[-2] / (W**2).sum((-2, -1)),
        "n_represented": (norms > 0.5).sum(-1),
    }


def make_dataset(
    axes: dict,
    F: int = 5,
    H: int = 2,
    T: int = 4,
    seed: int = 0,
    attrs: dict | None = None,
) -> xr.Dataset:
    """A results dataset shaped like ``toymodels.load`` + ``analyze`` output."""
    rng = np.random.default_rng(seed)
    names, shape = list(axes), tuple(len(v) for v in axes.values())
    W = rng.normal(size=(*shape, H, F)).astype(np.float32)
    W /= np.linalg.norm(W, axis=-2, keepdims=True)
    run = lambda *d: (*names, *d)  # noqa: E731
    density = np.ones((*shape, F))
    for name, to_density in (("sparsity", lambda v: 1 - v), ("feature_probability", lambda v: v)):
        if name in axes:
            v = np.asarray(axes[name]).reshape([-1 if n == name else 1 for n in names])
            density = density * to_density(v)[..., None]
    data = {
        "W": (run("hidden", "feature"), W),
        "b": (run("feature"), rng.normal(size=(*shape, F)).astype(np.float32) * 0.1),
        "loss": (
            run("step"),
            np.exp(-np.linspace(0, 2, T)) * rng.uniform(0.1, 1, (*shape, 1)),
        ),
        "final_loss": (names, rng.uniform(0.01, 1.0, shape)),
        "importance": (run("feature"), np.ones((*shape, F))),
        "phase": (names, rng.choice(PHASES, shape)),
        "polytope": (run("feature"), np.full((*shape, F), "digon")),
    }
    data["density"] = (run("feature"), density)
    for name, value in _analysis_by_hand(W.astype(np.float64)).items():
        data[name] = (run("feature") if value.ndim == len(shape) + 1 else names, value)
    coords = {
        **axes,
        "feature": np.arange(F),
        "hidden": np.arange(H),
        "step": (np.arange(T) + 1) * 100,
    }
    base = {
        "name": "synthetic",
        "model_kind": "relu_output",
        "n_features": F,
        "n_hidden": H,
        "config": f'name = "synthetic"\n[model]\nkind = "relu_output"\n'
        f"n_features = {F}\nn_hidden = {H}\n[train]\nsteps = 400\n",
    }
    return xr.Dataset(data, coords=coords, attrs={**base, **(attrs or {})})


@pytest.fixture(scope="module")
def ds():
    """3 x 2 grid with 2 seeds, F = 5, H = 2."""
    return make_dataset(
        {
            "sparsity": [0.0, 0.9, 0.99],
            "relative_importance": [0.1, 10.0],
            "seed": [0, 1],
        }
    )


def _new_ax(**kwargs):
    return Figure().add_subplot(**kwargs)


@pytest.mark.parametrize(
    "kind", ["features", "phase", "dimensionality", "geometry", "loss", "heatmap"]
)
def test_every_kind_makes_a_figure_that_saves(kind, ds, tmp_path):
    fig = plotting.PLOTS[kind](ds)
    assert isinstance(fig, Figure)
    assert fig.axes and any(ax.has_data() for ax in fig.axes)
    path = tmp_path / f"{kind}.png"
    fig.savefig(path, dpi=50)
    assert path.stat().st_size > 1000


def test_geometry_in_3d_and_its_artists():
    ds3 = make_dataset({"feature_probability": [1.0, 0.1, 0.01]}, F=4, H=3)
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
    plotting.phase(ax, make_dataset(axes, F=3, H=2))
    assert "theory-boundary" in gids(ax)
    curve = next(l for l in ax.lines if l.get_gid() == "theory-boundary")  # noqa: E741
    np.testing.assert_allclose(
        curve.get_ydata(), theory.boundary_3_2(curve.get_xdata())
    )
    ax = _new_ax()
    plotting.phase(ax, make_dataset(axes, F=5, H=2))
    assert "theory-boundary" not in gids(ax)
    ax = _new_ax()
    plotting.phase(ax, make_dataset(axes, F=2, H=1), theory=None)
    assert not ax.lines


def test_phase_colours_each_cell_by_the_best_seed(ds):
    mesh = plotting.phase(_new_ax(), ds, theory=None)[0]
    best = ds.isel(seed=ds.final_loss.argmin("seed"))["phase"]
    expected = (
        best.sortby("sparsity").transpose("sparsity", "relative_importance").values
    )
    codes = np.asarray(mesh.get_array()).reshape(expected.shape)
    assert [[PHASES[int(c)] for c in row] for row in codes] == expected.tolist()


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


def test_log_axes_for_geometric_coordinates_linear_otherwise():
    ds2 = make_dataset(
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


def test_unknown_kind_lists_the_valid_ones(ds):
    with pytest.raises(ValueError, match="valid: features, dimensionality, geometry, loss, phase, heatmap"):
        plotting.PLOTS["violin"]
    with pytest.raises(ValueError, match="heatmap"):
        plotting.make_figure("violin", ds)


def test_labels_and_titles_come_from_the_data(ds):
    assert plotting.label("sparsity") == "sparsity S"
    assert plotting.label("feature_probability") == "feature density 1−S"
    assert plotting.label("relative_importance") == "relative importance r"
    assert plotting.label("some_new_axis") == "some new axis"
    assert plotting.title(ds).startswith("synthetic (relu_output, n=5, m=2, 400 steps)")


def test_plotting_never_imports_pyplot():
    code = (
        "import sys; from toymodels import plotting; "
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_dimensionality_reads_density_from_a_feature_probability_axis():
    ds_p = make_dataset({"feature_probability": [1.0, 0.1, 0.01], "seed": [0, 1]})
    line = plotting.dimensionality(_new_ax(), ds_p)[0]
    np.testing.assert_allclose(line.get_xdata(), [1.0, 10.0, 100.0])
