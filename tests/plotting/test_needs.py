"""What each plot kind needs (toymodels.plotting.needs, issue 24), checked against the
kinds themselves: on real sweeps, the kinds that `kinds_for` lists are exactly those that
draw. A kind that does not apply is one line naming the reason and the kinds that do,
and `toymodels info` lists them."""

import shutil
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import toymodels as tm  # noqa: E402
from toymodels import store  # noqa: E402
from toymodels.info import describe  # noqa: E402
from toymodels.plotting import PLOTS, common  # noqa: E402
from toymodels.plotting.needs import NEEDS, Needs, kinds_for, why_not  # noqa: E402

from helpers import refused, synthetic_results  # noqa: E402

TRAIN = {"steps": 20, "batch_size": 64, "log_every": 10, "eval_samples": 8192}


def sweep(root, name, sweep, model=None, data=None, **train):
    raw = {"name": name, "model": model or {"kind": "relu_output", "n_features": 5, "n_hidden": 2},
           "data": data or {"importance_decay": 0.9}, "train": {**TRAIN, **train},
           "sweep": sweep}
    return tm.run_sweep(tm.parse_config(raw), root / name, quiet=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three tiny sweeps of 5 features in 2 dims (the shapes of one compiled analysis): the
    quickstart's sparsity x seed (intro), a two-axis one, and one of seeds only with
    snapshots of the weights."""
    root = tmp_path_factory.mktemp("needs")
    return {
        "intro": sweep(root, "intro", {"sparsity": [0.0, 0.9], "seed": [0, 1]}),
        "two_axes": sweep(root, "two_axes", {"sparsity": [0.0, 0.9],
                                             "relative_importance": [0.5, 2.0], "seed": [0]},
                          data={"sparsity": 0.0}),
        "snapshots": sweep(root, "snapshots", {"seed": [0, 1, 2, 3]}, snapshot_every=10,
                           data={"importance_decay": 0.9, "feature_probability": 0.1}),
    }


def draws(kind: str, ds: xr.Dataset) -> str | None:
    """None if `PLOTS[kind](ds)` makes a figure with something drawn, else what went
    wrong (an exception of any type, or empty axes)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = PLOTS[kind](ds)
    except Exception as e:  # noqa: BLE001 -- every failure counts: it is the ground truth
        return f"{type(e).__name__}: {e}"
    return None if any(ax.has_data() for ax in fig.axes) else "nothing drawn"


def test_every_plot_kind_has_its_needs():
    assert list(NEEDS) == list(PLOTS)
    assert all(isinstance(n, Needs) for n in NEEDS.values())


@pytest.mark.parametrize("name", ["intro", "two_axes", "snapshots"])
def test_the_kinds_that_apply_are_those_that_draw(runs, name):
    """Every kind is drawn (no analysis beforehand, as `toymodels plot` draws): a kind in
    kinds_for that fails, or one left out that draws, is a mismatch. Meaningful as well
    as valid: norms on the intro sweep draws one line (the sweep's own norm, none), by
    design (`plotting.norms._with_axis`)."""
    ds = tm.load(runs[name])
    listed = kinds_for(ds)
    wrong = []
    for kind in PLOTS:
        failure = draws(kind, ds)
        if (failure is None) != (kind in listed):
            wrong.append(f"{kind}: listed {kind in listed}, drawn: {failure or 'yes'}, "
                         f"why_not: {why_not(kind, ds)}")
    assert not wrong, "\n".join(wrong)
    sure = {"intro": ({"features", "geometry", "loss", "vulnerability"},
                      {"heatmap", "phase", "phase_grid", "dynamics", "computation", "sae_width"}),
            "two_axes": ({"phase", "heatmap", "phase_grid"}, {"dynamics", "dropout_phase"}),
            "snapshots": ({"dynamics", "features", "neurons"},
                          {"heatmap", "norms", "kgon_trajectories", "double_descent"})}
    yes, no = sure[name]
    assert yes <= set(listed) and not no & set(listed), listed


def test_the_kinds_that_apply_to_a_dataset_made_by_hand():
    """The plotting tests' synthetic results (random W, analysed by hand, no config), on a
    2 x 2 grid (4 runs: the analysis compiled for the sweeps above is reused)."""
    ds = synthetic_results({"sparsity": [0.0, 0.9], "relative_importance": [0.1, 10.0],
                            "seed": [0]})
    listed = kinds_for(ds)
    assert {"phase", "heatmap", "features"} <= set(listed)
    assert [k for k in PLOTS if (draws(k, ds) is None) != (k in listed)] == []


@pytest.mark.parametrize("kind, reason", [
    ("heatmap", "needs two sweep axes besides seed; this sweep has one: sparsity"),
    ("phase_grid", "needs two sweep axes besides seed; this sweep has one: sparsity"),
    ("dynamics", "needs snapshots of the weights: set train.snapshot_every and rerun the sweep"),
    ("computation", "needs an abs_computation model; this sweep's model is relu_output"),
    ("sae_width", "needs an SAE sweep (a sweep file with an [sae] table); this is a sweep of toy "
                  "models"),
    ("double_descent", "needs a sweep axis dataset_size (a finite training set per size: [sweep] "
                       "dataset_size = [...]); this sweep's axes: sparsity, seed"),
    ("incidental", "needs a sweep axis n_hidden; this sweep's axes: sparsity, seed"),
])
def test_a_kind_that_does_not_apply_is_one_line(runs, tmp_path, capsys, kind, reason):
    d = runs["intro"]
    image = tmp_path / "x.png"
    applies = ", ".join(kinds_for(tm.load(d)))
    line = refused(capsys, ["plot", kind, d, "--out", image], f"plot {kind} of {d}: {reason}")
    assert line.endswith(f"{reason}; kinds that apply here: {applies}")
    assert applies.startswith("features, dimensionality, geometry, loss")
    assert not image.exists()


def test_the_kgon_reason_is_the_figure_s_own(runs, tmp_path, capsys):
    d = runs["snapshots"]
    refused(capsys, ["plot", "kgon_trajectories", d, "--out", tmp_path / "k.png"],
            f"plot kgon_trajectories of {d}: needs a k-gon sweep: a relu_output model in 2 "
            "hidden dims on data.inputs = \"exactly_one\" of uniform magnitude, unit importance "
            "(e.g. sweeps/kgon_trajectories.toml); this sweep has data.inputs = 'bernoulli', "
            "importance = 'not all 1'")


def test_info_lists_the_variables_and_the_kinds_that_apply(runs, tmp_path):
    d = runs["two_axes"]
    ds = tm.load(d)
    lines = describe(d).splitlines()
    assert f"variables: {', '.join(ds.data_vars)}" in lines
    plots = next(line for line in lines if line.startswith("plots: "))
    assert plots.startswith(f"plots: {', '.join(kinds_for(ds))} (")
    assert "phase, heatmap, phase_grid" in plots and "dynamics" not in plots
    unfinished = shutil.copytree(d, tmp_path / "unfinished")
    (unfinished / store.RESULTS).unlink()
    lines = describe(unfinished).splitlines()
    assert "in progress: 0/4 runs done" in lines[0]
    assert "variables: none yet (results.nc is written once every run is done)" in lines
    assert "plots: none yet (the sweep is not finished)" in lines


def test_why_not_reads_names_only(runs, monkeypatch):
    """On results.nc opened lazily, with the analysis made to fail: the same kinds."""
    def no_analysis(*args, **kwargs):
        raise AssertionError("why_not ran the analysis")

    monkeypatch.setattr(common, "analyze", no_analysis)
    for d in runs.values():
        assert store.peek(d, kinds_for) == kinds_for(tm.load(d))


def by_hand(axes: dict, **attrs) -> xr.Dataset:
    shape = tuple(len(v) for v in axes.values())
    W = np.zeros((*shape, 2, 5), np.float32)
    return xr.Dataset({"W": ((*axes, "hidden", "feature"), W),
                       "final_loss": (tuple(axes), np.ones(shape))},
                      coords=axes, attrs={"model_kind": "relu_output", **attrs})


def test_options_that_change_the_needs():
    """loss_grid's y names an axis it needs; optimizer_phase's basis panel needs a density
    axis, not two axes besides optimizer and learning_rate. (Drawn on real sweeps in
    tests/test_double_descent.py and the optimizers' reproduce.)"""
    finite = by_hand({"dataset_size": [4, 40], "data_seed": [0, 1], "seed": [0, 1]})
    assert why_not("loss_grid", finite).startswith("needs a sweep axis n_hidden for its y")
    assert why_not("loss_grid", finite, y="data_seed") is None
    assert why_not("loss_grid", finite, y="seed").startswith("needs a sweep axis besides seed")
    wider = by_hand({"dataset_size": [4, 40], "weight_decay": [0.0, 0.1], "data_seed": [0]})
    assert why_not("loss_grid", wider, y="data_seed") == (
        "takes no sweep axes but dataset_size, data_seed and seed; this sweep also has "
        "weight_decay")
    optimizers = by_hand({"optimizer": ["adamw", "sgd"], "learning_rate": [1e-3, 1e-2],
                          "sparsity": [0.0, 0.9], "seed": [0, 1]})
    assert why_not("optimizer_phase", optimizers) == (
        "needs two sweep axes besides seed, optimizer and learning_rate; this sweep has one: "
        "sparsity")
    assert why_not("optimizer_phase", optimizers, panel="basis") is None
    assert why_not("geometry", by_hand({"n_hidden": [2, 5]})) == "needs n_hidden 2 or 3; this " \
        "sweep has 2 and 5"
    with pytest.raises(ValueError, match="did you mean heatmap"):
        why_not("heatmapp", finite)
