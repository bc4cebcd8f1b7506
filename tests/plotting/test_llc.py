"""The LLC figures (toymodels/plotting/llc.py) from tiny synthetic datasets, with no
training: the k-gon trajectories, and the LLC phase figure (`llc_phase`) on a synthetic
phase sweep."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from toymodels import llc_calibration, plotting, theory  # noqa: E402
from toymodels.plotting import PLOTS  # noqa: E402
from toymodels.plotting import llc as llc_plots  # noqa: E402

from helpers import synthetic_results  # noqa: E402

C, STEPS, SNAPS = 6, np.arange(100, 2100, 100), np.arange(0, 2500, 500)
G4, G5 = theory.kgon(C, 4), theory.kgon(C, 5)


def trajectory(escape_at: int | None):
    """(W [S, 2, C], b [S, C], loss [T]) of a run at the 4-gon that jumps to the 5-gon at
    step `escape_at` (never for None)."""
    g4, g5 = G4, G5
    late = lambda s: escape_at is not None and s >= escape_at  # noqa: E731
    W = np.stack([(g5 if late(s) else g4).W for s in SNAPS])
    b = np.stack([(g5 if late(s) else g4).b for s in SNAPS])
    loss = np.array([(g5 if late(s) else g4).loss for s in STEPS])
    return W, b, loss


def dataset(llc=True, axes=True):
    """init_noise [2] x seed [3] runs (or one run without run axes), half escaping."""
    escapes = [[None, 1000, 1500], [500, None, 2000]]
    runs = [[trajectory(e) for e in row] for row in escapes] if axes else [[trajectory(1000)]]
    W, b, loss = (np.array([[r[i] for r in row] for row in runs]) for i in range(3))
    run = ("init_noise", "seed") if axes else ()
    if not axes:
        W, b, loss = W[0, 0], b[0, 0], loss[0, 0]
    coords = {"step": STEPS, "snapshot": SNAPS, "hidden": [0, 1], "feature": np.arange(C)}
    if axes:
        coords.update(init_noise=[0.05, 0.1], seed=[0, 1, 2])
    ds = xr.Dataset({
        "loss": (run + ("step",), loss),
        "final_loss": (run, loss[..., -1]),
        "W_snapshots": (run + ("snapshot", "hidden", "feature"), W),
        "b_snapshots": (run + ("snapshot", "feature"), b),
    }, coords=coords, attrs={"name": "tiny_kgon"})
    if llc:
        rng = np.random.default_rng(0)
        shape = ds.b_snapshots.shape[:-1]
        ds["llc_snapshots"] = (run + ("snapshot",), 3.0 + rng.uniform(size=shape))
        ds["llc_snapshots_se"] = (run + ("snapshot",), 0.1 * np.ones(shape))
    return ds


def texts(ax):
    return [t.get_text() for t in ax.texts]


def test_two_panels_share_a_symlog_step_axis_with_levels_curves_and_labels(tmp_path):
    fig = plotting.PLOTS["kgon_trajectories"](dataset(), runs=4)
    top, bottom = fig.axes
    assert top.get_shared_x_axes().joined(top, bottom)
    assert bottom.get_xscale() == "symlog" and bottom.get_xlabel() == "training step"
    assert len(top.get_lines()) == 4 + 5  # 4 runs, the 2..6-gon levels
    assert {f"{k}-gon" for k in range(2, 7)} <= set(texts(top))  # the level labels
    assert "$4$-gon" in texts(top) and "$5$-gon" in texts(top)  # plateaus labelled
    assert "$5$-gon" in texts(bottom) and len(bottom.containers) == 4  # LLC error bars
    assert "LLC" in bottom.get_ylabel()
    fig.savefig(tmp_path / "kgon.png", dpi=60)
    assert (tmp_path / "kgon.png").stat().st_size > 1000


def test_untrusted_llc_points_are_hollow_and_outside_the_y_range():
    ds = dataset()
    trusted = np.ones(ds.llc_snapshots.shape, bool)
    trusted[..., 0] = False  # the perturbed start: not a critical point
    ds["llc_snapshots"][..., 0] = -40.0
    ds["llc_snapshots_trusted"] = (ds.llc_snapshots.dims, trusted)
    fig = plotting.PLOTS["kgon_trajectories"](ds, runs=6)
    bottom = fig.axes[1]
    hollow = [line for line in bottom.get_lines() if line.get_gid() == "untrusted"]
    assert len(hollow) == 6 and all(len(line.get_xdata()) == 1 for line in hollow)
    assert all(line.get_ydata()[0] == -40.0 for line in hollow)
    low, high = bottom.get_ylim()
    assert low == 0.0 and 4.0 <= high < 5.0  # the trusted values are 3 + U[0, 1)
    assert not any("−40" in t or "-40" in t for t in texts(bottom))


def test_untrusted_llc_points_are_small_faint_and_in_the_legend():
    ds = dataset()
    trusted = np.ones(ds.llc_snapshots.shape, bool)
    trusted[..., 0] = False
    ds["llc_snapshots_trusted"] = (ds.llc_snapshots.dims, trusted)
    bottom = plotting.PLOTS["kgon_trajectories"](ds, runs=4).axes[1]
    faint = [line for line in bottom.get_lines() if line.get_gid() == "untrusted"]
    trusted_marker = bottom.containers[0].lines[0]
    assert all(line.get_markersize() < trusted_marker.get_markersize() for line in faint)
    assert all(line.get_alpha() is not None and line.get_alpha() <= 0.5 for line in faint)
    labels = [t.get_text() for t in bottom.get_legend().get_texts()]
    assert any(text.startswith("not trusted") for text in labels), labels


def test_plateau_labels_are_not_repeated_or_drawn_on_each_other():
    top = plotting.PLOTS["kgon_trajectories"](dataset(), runs=4).axes[0]
    assert texts(top).count("$4$-gon") == 1  # every run starts on the same 4-gon plateau
    ax = Figure().add_subplot()
    ax.plot([0, 10], [0, 1])
    x, y = np.array([0.0, 5.0]), np.array([0.5, 0.5])
    drawn = llc_plots.annotate_plateaus(ax, x, [y, y, y], [[(1, "4^{1+}-gon")], [(1, "4-gon")],
                                                           [(1, "4-gon")]], ["r", "g", "b"])
    assert [t.get_text() for t in drawn] == ["$4^{1+}$-gon", "$4$-gon"]
    FigureCanvasAgg(ax.figure).draw()
    first, second = (t.get_window_extent() for t in drawn)
    assert first.height > 1 and second.height > 1
    assert not first.overlaps(second)


def test_llc_phase_legend_once_per_label_and_plain_numbers_in_its_title(phase_sweep):
    ds = phase_sweep
    ds["llc"].attrs.update(nbeta_used=1000.0, gamma=100.0, loss="online")
    right = plotting.PLOTS["llc_phase"](ds).axes[1]
    labels = [t.get_text() for t in right.get_legend().get_texts()]
    assert len(labels) == len(set(labels)) and "theory (n=2, m=1)" in labels, labels
    assert right.get_title() == "LLC of the same runs (online loss, nβ = 1000, γ = 100)"


def test_the_picked_runs_span_the_final_losses():
    fig = llc_plots.kgon_trajectories(dataset(), runs=2)
    finals = sorted(line.get_ydata()[-1] for line in fig.axes[0].get_lines()[:2])
    assert finals == pytest.approx([G5.loss, G4.loss])
    assert llc_plots.pick_runs(np.array([0.3, 0.1, 0.2]), 10).tolist() == [1, 2, 0]


def test_without_llc_the_loss_panel_alone_and_the_title_says_so():
    fig = llc_plots.kgon_trajectories(dataset(llc=False))
    assert len(fig.axes) == 1
    assert "toymodels llc" in fig._suptitle.get_text()
    assert "$5$-gon" in texts(fig.axes[0])


def test_one_run_without_run_axes_and_bad_options():
    fig = llc_plots.kgon_trajectories(dataset(axes=False), runs=3)
    assert len(fig.axes[0].get_lines()) == 1 + 5
    with pytest.raises(ValueError, match="runs must be a whole number >= 1"):
        llc_plots.kgon_trajectories(dataset(), runs=0)
    with pytest.raises(ValueError, match="needs the loss curve"):
        llc_plots.kgon_trajectories(dataset().drop_vars("loss"))


# ---- the LLC over a phase diagram (llc_phase)


@pytest.fixture
def phase_sweep():
    """A synthetic 2 -> 1 phase sweep (r x p x seed) with an `llc` and `llc_trusted` per run."""
    axes = {"relative_importance": np.geomspace(0.1, 10, 4),
            "feature_probability": np.geomspace(0.01, 1, 3), "seed": [0, 1, 2]}
    ds = synthetic_results(axes, F=2, H=1, attrs={"n_features": 2, "n_hidden": 1})
    rng = np.random.default_rng(1)
    llc = rng.uniform(0.2, 2.0, ds.final_loss.shape)
    trusted = rng.uniform(size=llc.shape) > 0.3
    return ds.assign(llc=(ds.final_loss.dims, llc), llc_trusted=(ds.final_loss.dims, trusted))


def test_llc_of_the_best_seed_beside_the_phase(phase_sweep):
    ds = phase_sweep
    fig = plotting.PLOTS["llc_phase"](ds)
    left, right = fig.axes[:2]
    best = ds.isel(seed=ds.final_loss.argmin("seed"))
    order = lambda da: da.sortby(["relative_importance", "feature_probability"]).transpose(
        "feature_probability", "relative_importance").values
    mesh = right.collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(3, 4), order(best.llc))
    crosses = [line for line in right.lines if line.get_gid() == "untrusted"][0]
    assert len(crosses.get_xdata()) == int((~order(best.llc_trusted)).sum())
    assert any(line.get_gid() == "theory-boundary" for line in right.lines)  # p*(r) on both
    assert any(line.get_gid() == "theory-boundary" for line in left.lines)


def test_needs_llc(phase_sweep):
    ds = phase_sweep
    with pytest.raises(ValueError, match="toymodels llc"):
        plotting.PLOTS["llc_phase"](ds.drop_vars("llc"))


def _calibration(trusted_gamma_1: bool) -> xr.Dataset:
    """A calibration Dataset by hand: 2 runs x 2 scales x 2 gammas x 1 nbeta x 3 lengths;
    at gamma 1 every length but the last is trusted and flat (or nothing is trusted)."""
    shape = (2, 2, 2, 1, 3)
    llc = np.broadcast_to(np.array([2.0, 2.02, 2.5]), shape).copy()
    trusted = np.zeros(shape, bool)
    trusted[:, :, 0] = trusted_gamma_1
    var = lambda a: (llc_calibration.AXES + ("length",), a)
    return xr.Dataset(
        {"llc": var(llc), "llc_se": var(np.full(shape, 0.01)), "llc_trusted": var(trusted),
         "llc_settings_ratio": var(np.full(shape, 1.0))},
        coords={"run": [0, 5], "epsilon_scale": [0.1, 0.2], "gamma": [1.0, 100.0],
                "nbeta": [144.8], "length": [0, 1, 2], "burn_in": ("length", [100, 500, 1000]),
                "draws": ("length", [200, 1000, 2000])},
        attrs={"trainer": "llc_calibration"})


@pytest.mark.parametrize("trusted", [True, False])
def test_llc_calibration_panels_and_its_recommendation_in_the_title(trusted):
    fig = PLOTS["llc_calibration"](_calibration(trusted))
    axes = fig.get_axes()
    assert len(axes) == 2 * 2 * 2  # (estimate, ratio) rows per run x a column per gamma
    titles = [a.get_title() for a in axes if a.get_title()]
    assert titles[:2] == ["run 0, gamma = 1", "run 0, gamma = 100"]
    title = fig._suptitle.get_text()
    if trusted:  # the cheapest flat trusted setting: gamma 1, (100, 200), ratio 1
        assert "--gamma 1 " in title and "--burn-in 100 --draws 200" in title, title
    else:
        assert title.startswith("no setting"), title
    # the estimate's x axis is the chain length, ticked at the lengths themselves
    assert [t.get_text() for t in axes[-2].get_xticklabels()] == ["300", "1500", "3000"]  # the last row


def test_no_plateau_label_of_the_kgon_figure_covers_another_once_drawn():
    fig = plotting.PLOTS["kgon_trajectories"](dataset(), runs=4)
    FigureCanvasAgg(fig).draw()
    for ax in fig.axes:
        boxes = [t.get_window_extent() for t in ax.texts if t.get_text().endswith("-gon")
                 and t.get_text().startswith("$")]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert not a.overlaps(b), (ax.get_title(), a, b)
