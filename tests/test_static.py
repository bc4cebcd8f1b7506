"""Static axes: shapes, kinds and step counts as sweep axes, one Dataset for all groups.

Each check compares a sweep with static axes against the same groups trained as
separate plain sweeps (an independent path through the engine), bit for bit on this
machine: the grid split, the padding and the combined analysis must add nothing.
"""

import errno

import numpy as np
import pytest

import toymodels as tm
from toymodels import store
from toymodels.analysis import analyze
from toymodels.errors import UserError

from helpers import config, raw, run_cli, same_arrays

FAST = {"steps": 60, "batch_size": 64, "log_every": 20}


def static_config(**sweep):
    """TINY with the static axes `sweep` first, then sparsity and seed."""
    c = raw(train=FAST)
    c["sweep"] = {**sweep, "sparsity": [0.0, 0.9], "seed": [0, 1]}
    return tm.parse_config(c)


@pytest.fixture(scope="module")
def widths(tmp_path_factory):
    """n_hidden = [2, 3] and [2, 3, 5] as static axes, and n_hidden = 2 and 5 alone."""
    root = tmp_path_factory.mktemp("static")
    run = lambda name, c: tm.load(tm.run_sweep(c, root / name, quiet=True))
    alone = {H: run(f"alone{H}", config(model={"n_hidden": H}, train=FAST,
                                        sweep={"sparsity": [0.0, 0.9], "seed": [0, 1]}))
             for H in (2, 5)}
    return {"two": run("two", static_config(n_hidden=[2, 3])),
            "three": run("three", static_config(n_hidden=[2, 3, 5])), "alone": alone}


def test_static_axes_are_dims_of_one_dataset_in_config_order(widths):
    ds = widths["three"]
    assert ds.W.dims == ("n_hidden", "sparsity", "seed", "hidden", "feature")
    assert ds.n_hidden.values.tolist() == [2, 3, 5] and ds.sizes["hidden"] == 5
    assert ds.attrs["static_axes"] == "n_hidden"


def test_a_group_is_the_same_as_its_sweep_alone_and_adding_a_group_changes_nothing(widths):
    """Adding n_hidden = 5 changes no bit of the n_hidden = 2 and 3 runs, and each group
    equals the same sweep run without static axes."""
    for H in (2, 3):
        a = widths["two"].sel(n_hidden=H).isel(hidden=slice(0, H))
        b = widths["three"].sel(n_hidden=H).isel(hidden=slice(0, H))
        same_arrays(a, b)
    for H, alone in widths["alone"].items():
        same_arrays(widths["three"].sel(n_hidden=H).isel(hidden=slice(0, H)), alone)


def test_smaller_shapes_are_padded_with_nan_and_say_so(widths):
    W = widths["three"].W
    assert np.isnan(W.sel(n_hidden=2).isel(hidden=slice(2, None))).all()
    assert not np.isnan(W.sel(n_hidden=2).isel(hidden=slice(0, 2))).any()
    assert not np.isnan(W.sel(n_hidden=5)).any()
    assert "NaN" in W.attrs["padding"] and "hidden" in W.attrs["padding"]
    assert "padding" not in widths["three"].final_loss.attrs


def test_analysis_of_padded_groups_equals_the_groups_alone(widths):
    """The padding is not analysed: every metric of a group equals that of its sweep
    alone (n_hidden 2 padded to 5 rows would otherwise be a different model)."""
    ds = analyze(widths["three"])
    for H, alone in widths["alone"].items():
        ref, got = analyze(alone), ds.sel(n_hidden=H)
        for name in ("feature_norm", "feature_dimensionality", "n_represented", "polytope",
                     "phase", "dims_per_feature"):
            np.testing.assert_array_equal(got[name].values, ref[name].values, err_msg=name)
        np.testing.assert_array_equal(got.features_per_neuron.isel(hidden=slice(0, H)),
                                      ref.features_per_neuron)
    assert np.isnan(ds.features_per_neuron.sel(n_hidden=2).isel(hidden=slice(2, None))).all()


def test_padded_features_are_absent_not_unrepresented(tmp_path):
    """n_features = [3, 6]: the 3-feature runs have 3 features, not 3 + 3 unrepresented."""
    c = config(model={"n_hidden": 2}, data={"sparsity": 0.9}, train=FAST,
               sweep={"n_features": [3, 6], "seed": [0, 1]})
    ds = analyze(tm.load(tm.run_sweep(c, tmp_path / "f", quiet=True)))
    small = ds.sel(n_features=3)
    assert (small.polytope.isel(feature=slice(3, None)) == "").all()
    assert np.isnan(small.feature_norm.isel(feature=slice(3, None))).all()
    assert (small.polytope_counts.sum("polytope_kind") == 3).all()
    assert (ds.sel(n_features=6).polytope_counts.sum("polytope_kind") == 6).all()
    assert (small.n_represented <= 3).all()


@pytest.mark.slow
def test_chunk_size_changes_no_bit_inside_static_groups(widths, tmp_path):
    """Slow; the default suite covers it per group (tests/test_data.py's chunk-size and
    second-group tests, and adding a group here)."""
    c = static_config(n_hidden=[2, 3, 5])
    one = tm.load(tm.run_sweep(c, tmp_path / "c1", chunk_size=1, quiet=True))
    same_arrays(one, widths["three"])


@pytest.mark.slow
def test_a_failure_in_one_group_keeps_the_finished_groups(tmp_path, monkeypatch):
    """Slow; tests/test_misuse.py's full-disk test covers one group. The disk fills up in the second group: the first group's chunks stay, and the same
    call resumes with only the missing runs."""
    c = static_config(n_hidden=[2, 3])
    out, writes, real = tmp_path / "r", [], store.write_chunk

    def full_disk(out_, first, arrays):
        if first >= c.groups[0].n_runs:
            raise OSError(errno.ENOSPC, "No space left on device")
        writes.append(first)
        real(out_, first, arrays)

    monkeypatch.setattr(store, "write_chunk", full_disk)
    with pytest.raises(UserError, match=r"disk full .* 4 of 8 runs are saved"):
        tm.run_sweep(c, out, quiet=True)
    assert store.done_mask(out, c.n_runs).tolist() == [True] * 4 + [False] * 4
    monkeypatch.setattr(store, "write_chunk", real)
    resumed = tm.load(tm.run_sweep(c, out, quiet=True))
    same_arrays(resumed, tm.load(tm.run_sweep(c, tmp_path / "whole", quiet=True)))


def test_kind_axis_keeps_each_kinds_parameters(tmp_path):
    c = config(model={"n_features": 4, "n_hidden": 3}, train=FAST,
               sweep={"kind": ["relu_output", "abs_computation"], "seed": [0]})
    ds = analyze(tm.load(tm.run_sweep(c, tmp_path / "k", quiet=True)))
    assert np.isnan(ds.W.sel(kind="abs_computation")).all()
    assert not np.isnan(ds.W1.sel(kind="abs_computation")).any()
    assert "abs_computation" in ds.W.attrs["absent"]
    assert not np.isnan(ds.feature_norm).any()  # each group analysed from its own weights


@pytest.mark.slow  # 35 s of subprocesses (CI runs it); each step is tested by default
def test_cli_sweep_analyze_plot_on_static_axes(tmp_path):
    """The issue's example: n_hidden = [2, 3, 5] and optimizer = ["adam", "sgd"] in
    [sweep] give one directory, one Dataset with those dims, analysed and plotted."""
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\n[model]\nn_features = 5\n[train]\nsteps = 40\n'
                    'batch_size = 64\nlog_every = 20\n[sweep]\nn_hidden = [2, 3, 5]\n'
                    'optimizer = ["adam", "sgd"]\nseed = [0, 1]\n')
    out = tmp_path / "out"
    for args in (["sweep", str(path), "--out", str(out), "--quiet"], ["analyze", str(out)],
                 ["plot", "features", str(out), "--out", str(tmp_path / "f.png"),
                  "-o", "axis=n_hidden"],
                 ["plot", "heatmap", str(out), "--out", str(tmp_path / "h.png"),
                  "-o", "var=n_represented", "-o", "x=n_hidden", "-o", "y=optimizer"],
                 ["info", str(out)]):
        done = run_cli(*args)
        assert done.returncode == 0, done.stderr
    assert "static groups: 6 (n_hidden x optimizer)" in done.stdout
    ds = tm.load(out)
    assert ds.W.dims == ("n_hidden", "optimizer", "seed", "hidden", "feature")
    assert ds.optimizer.values.tolist() == ["adam", "sgd"]
    assert (ds.n_represented.sel(n_hidden=2) <= 5).all() and "polytope" in ds
    assert not np.array_equal(ds.W.sel(optimizer="adam"), ds.W.sel(optimizer="sgd"))


def test_steps_axis_pads_the_shorter_loss_curves(tmp_path):
    c = config(train=FAST, sweep={"steps": [40, 60], "seed": [0]})
    ds = tm.load(tm.run_sweep(c, tmp_path / "s", quiet=True))
    assert ds.step.values.tolist() == [20, 40, 60]
    assert np.isnan(ds.loss.sel(steps=40, step=60)).all()
    assert not np.isnan(ds.loss.sel(steps=60)).any()


@pytest.mark.parametrize("sweep, message", [
    ({"n_hidden": [2, 0]}, r"sweep\.n_hidden: must be an integer >= 1, got 0"),
    ({"kind": ["relu_output", "relu_out"]}, r"sweep\.kind: must be one of linear, relu_output"),
    ({"steps": [60, 50]}, r"\[steps = 50\]: train\.log_every: must divide train\.steps = 50"),
    ({"n_features": [5, 4]}, r"\[n_features = 4\]: .*importance"),
])
def test_bad_static_axes_name_the_axis_or_the_group(sweep, message):
    bad = raw(train=FAST, sweep={**sweep, "seed": [0]})
    if "n_features" in sweep:
        bad["data"] = {"importance": [1.0] * 5}
    with pytest.raises(UserError, match=message):
        tm.parse_config(bad)
