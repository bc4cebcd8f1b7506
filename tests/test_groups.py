"""toymodels.groups: static groups in one Dataset (`combine`: the static axes as dims,
ragged shapes padded) and split back into groups (`split`: the padding cut off).

The checks that train compare a sweep with static axes against the same groups trained
as separate plain sweeps (an independent path through the engine), bit for bit on this
machine: the grid split, the padding and the combined analysis must add nothing. The
others combine and split made-up Datasets (tests/helpers.py `group_parts`).
"""

import numpy as np
import pytest
import xarray as xr

import toymodels as tm
from toymodels.analysis import analyze
from toymodels.groups import PADDED_DIMS, combine, coordinate, group_coordinates, split

from helpers import FAST, config, group_parts, same_arrays, static_config


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


@pytest.mark.slow  # the widths fixture's 26 s (the default suite's 7-minute budget; CI runs it)
def test_static_axes_are_dims_of_one_dataset_in_config_order(widths):
    ds = widths["three"]
    assert ds.W.dims == ("n_hidden", "sparsity", "seed", "hidden", "feature")
    assert ds.n_hidden.values.tolist() == [2, 3, 5] and ds.sizes["hidden"] == 5
    assert ds.attrs["static_axes"] == "n_hidden"


@pytest.mark.slow  # the widths fixture's 26 s (the default suite's 7-minute budget; CI runs it)
def test_a_group_is_the_same_as_its_sweep_alone_and_adding_a_group_changes_nothing(widths):
    """Adding n_hidden = 5 changes no bit of the n_hidden = 2 and 3 runs, and each group
    equals the same sweep run without static axes."""
    for H in (2, 3):
        a = widths["two"].sel(n_hidden=H).isel(hidden=slice(0, H))
        b = widths["three"].sel(n_hidden=H).isel(hidden=slice(0, H))
        same_arrays(a, b)
    for H, alone in widths["alone"].items():
        same_arrays(widths["three"].sel(n_hidden=H).isel(hidden=slice(0, H)), alone)


@pytest.mark.slow  # the widths fixture's 26 s (the default suite's 7-minute budget; CI runs it)
def test_smaller_shapes_are_padded_with_nan_and_say_so(widths):
    W = widths["three"].W
    assert np.isnan(W.sel(n_hidden=2).isel(hidden=slice(2, None))).all()
    assert not np.isnan(W.sel(n_hidden=2).isel(hidden=slice(0, 2))).any()
    assert not np.isnan(W.sel(n_hidden=5)).any()
    assert "NaN" in W.attrs["padding"] and "hidden" in W.attrs["padding"]
    assert "padding" not in widths["three"].final_loss.attrs


@pytest.mark.slow  # the widths fixture's 26 s (the default suite's 7-minute budget; CI runs it)
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


@pytest.mark.slow  # 9-12 s (the default suite took 441 s of its 420; CI runs it)
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


@pytest.mark.slow  # 9 s (the default suite's 7-minute budget; CI runs it)
def test_kind_axis_keeps_each_kinds_parameters(tmp_path):
    c = config(model={"n_features": 4, "n_hidden": 3}, train=FAST,
               sweep={"kind": ["relu_output", "abs_computation"], "seed": [0]})
    ds = analyze(tm.load(tm.run_sweep(c, tmp_path / "k", quiet=True)))
    assert np.isnan(ds.W.sel(kind="abs_computation")).all()
    assert not np.isnan(ds.W1.sel(kind="abs_computation")).any()
    assert "abs_computation" in ds.W.attrs["absent"]
    assert not np.isnan(ds.feature_norm).any()  # each group analysed from its own weights


@pytest.mark.slow  # 6 s (the default suite's 7-minute budget; CI runs it)
def test_steps_axis_pads_the_shorter_loss_curves(tmp_path):
    c = config(train=FAST, sweep={"steps": [40, 60], "seed": [0]})
    ds = tm.load(tm.run_sweep(c, tmp_path / "s", quiet=True))
    assert ds.step.values.tolist() == [20, 40, 60]
    assert np.isnan(ds.loss.sel(steps=40, step=60)).all()
    assert not np.isnan(ds.loss.sel(steps=60)).any()


# ---- combine and split without training


def test_coordinates_of_a_static_axis_are_text_only_where_values_mix():
    assert coordinate([2, 3, 5]).tolist() == [2, 3, 5]
    assert coordinate(["adam", "sgd"]).tolist() == ["adam", "sgd"]
    assert coordinate([256, "full"]).tolist() == ["256", "full"]


def test_group_coordinates_are_the_product_of_the_static_axes_in_the_order_of_the_groups():
    c = config(sweep={"n_hidden": [2, 3, 5], "optimizer": ["adam", "sgd"], "seed": [0]})
    coords = group_coordinates(c)
    assert coords == [(h, o) for h in (2, 3, 5) for o in ("adam", "sgd")]
    assert [(g.spec.model.n_hidden, g.spec.train.optimizer) for g in c.groups] == coords


def test_combine_pads_and_split_gives_back_each_part():
    """n_hidden 2, 3 and steps 40, 60 as static axes: combine pads W along hidden and the
    loss along step with NaN (saying so), leaves unpadded variables unmarked, and split
    returns every part with the same values and its own sizes and config."""
    c = static_config(n_hidden=[3, 2], steps=[60, 40])
    parts = group_parts(c)
    ds = combine(parts, c)
    assert ds.W.dims == ("n_hidden", "steps", "sparsity", "seed", "hidden", "feature")
    assert ds.sizes["hidden"] == 3 and ds.sizes["step"] == 3 and ds.attrs == {}
    assert ds.n_hidden.values.tolist() == [3, 2] and ds.steps.values.tolist() == [60, 40]
    assert "hidden" in ds.W.attrs["padding"] and "NaN" in ds.W.attrs["padding"]
    assert "step" in ds.loss.attrs["padding"]
    for name in ("b", "final_loss", "polytope"):
        assert "padding" not in ds[name].attrs, name
    assert np.isnan(ds.W.sel(n_hidden=2).isel(hidden=2)).all()
    assert np.isnan(ds.loss.sel(steps=40).isel(step=2)).all()
    assert not np.isnan(ds.loss.sel(steps=60)).any()
    assert set(PADDED_DIMS) >= {"hidden", "step"}
    back = split(ds, c)
    assert len(back) == len(parts) == 4
    for got, part, group in zip(back, parts, c.groups):
        assert got.attrs["config"] == tm.to_toml(group) and got.attrs["n_hidden"] == group.spec.model.n_hidden
        got = got.drop_vars(["n_hidden", "steps"])
        assert dict(got.sizes) == dict(part.sizes)
        for name in part.data_vars:
            assert "padding" not in got[name].attrs
            np.testing.assert_array_equal(got[name].values, part[name].values, err_msg=name)
        xr.testing.assert_equal(got, part)


def test_a_variable_some_groups_lack_is_filled_and_said_absent():
    """kind = relu_output (W, b) and abs_computation (W1, W2, b): each group's missing
    parameters are NaN and named absent; split keeps only a group's own parameters."""
    c = config(model={"n_features": 4, "n_hidden": 3},
               sweep={"kind": ["relu_output", "abs_computation"], "seed": [0, 1]})
    parts = group_parts(c)
    ds = combine(parts, c)
    assert np.isnan(ds.W.sel(kind="abs_computation")).all()
    assert np.isnan(ds.W1.sel(kind="relu_output")).all()
    assert "kind = abs_computation" in ds.W.attrs["absent"]
    assert "kind = relu_output" in ds.W2.attrs["absent"] and "absent" not in ds.b.attrs
    relu, absolute = split(ds, c)
    assert set(relu.data_vars) == set(parts[0].data_vars) and "W1" not in relu
    assert set(absolute.data_vars) == set(parts[1].data_vars) and "W" not in absolute
    for got, part in ((relu, parts[0]), (absolute, parts[1])):
        xr.testing.assert_equal(got.drop_vars("kind"), part)


def test_labels_are_padded_with_empty_text():
    c = static_config(n_features=[3, 5])
    ds = combine(group_parts(c), c)
    small = ds.polytope.sel(n_features=3)
    assert (small.isel(feature=slice(3, None)) == "").all() and (small.isel(feature=slice(0, 3)) == "g0").all()
    assert '""' in ds.polytope.attrs["padding"]
    assert [p.sizes["feature"] for p in split(ds, c)] == [3, 5]
