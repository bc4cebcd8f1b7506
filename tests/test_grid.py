"""toymodels.grid: a config's sweep axes as the flat run axis R (the cartesian product in
file order, the last axis fastest) and each run's resolved hyperparameters."""

import itertools

import numpy as np
import pytest
import xarray as xr

import toymodels as tm
from toymodels.grid import axis_columns, flat_runs, make_grid, run_values

from helpers import config, raw


def test_axes_are_the_cartesian_product_in_file_order():
    grid = tm.expand(config(sweep={"seed": [0, 1], "dropout": [0.0, 0.1, 0.2]}))
    assert grid.names == ("sparsity", "seed", "dropout")
    assert grid.shape == (3, 2, 3) and grid.n_runs == 18
    # last axis fastest
    np.testing.assert_allclose(grid.hyper.dropout[:4], [0.0, 0.1, 0.2, 0.0])
    np.testing.assert_array_equal(grid.seed[:6], [0, 0, 0, 1, 1, 1])


def test_sparsity_axis_replaces_data_feature_probability():
    r = raw()
    r["sweep"] = {"sparsity": [0.0, 0.75], "seed": [0, 1]}
    del r["data"]["sparsity"]
    r["data"]["feature_probability"] = 0.3
    grid = tm.expand(tm.parse_config(r))
    np.testing.assert_allclose(grid.hyper.feature_probability[:, 0], [1.0, 1.0, 0.25, 0.25])


def test_importance_forms():
    F = 5
    decay = tm.expand(config()).hyper.importance[0]
    np.testing.assert_allclose(decay, 0.9 ** np.arange(F), rtol=1e-6)
    r = raw()
    r["sweep"] = {"relative_importance": [0.5, 2.0]}
    del r["data"]["importance_decay"]
    rel = tm.expand(tm.parse_config(r)).hyper.importance
    np.testing.assert_allclose(rel[:, -1], [0.5, 2.0])
    np.testing.assert_allclose(rel[:, :-1], 1.0)
    r = raw(data={"importance": [5, 4, 3, 2, 1]})
    del r["data"]["importance_decay"]
    np.testing.assert_allclose(tm.expand(tm.parse_config(r)).hyper.importance[0], [5, 4, 3, 2, 1])


def test_per_feature_density_list_and_density_ratio():
    cfg = tm.parse_config({"model": {"n_features": 3, "n_hidden": 2},
                           "data": {"feature_probability": [0.5, 0.2, 0.1]},
                           "sweep": {"density_ratio": [1.0, 0.5, 4.0]}})
    p = tm.expand(cfg).hyper.feature_probability
    np.testing.assert_allclose(p, [[0.5, 0.2, 0.1], [0.25, 0.2, 0.1], [1.0, 0.2, 0.1]])
    cfg = tm.parse_config({"model": {"n_features": 2, "n_hidden": 1},
                           "data": {"sparsity": [0.9, 0.5]}})
    np.testing.assert_allclose(tm.expand(cfg).hyper.feature_probability, [[0.1, 0.5]], rtol=1e-6)


def test_every_run_is_one_point_of_the_product_in_file_order():
    """Run r of three axes is the r-th tuple of itertools.product over the axes in file
    order: each run's values, its seed and its hyperparameters."""
    c = config(sweep={"seed": [3, 1], "learning_rate": [1e-3, 1e-2, 1e-1],
                      "dropout": [0.0, 0.5]})
    axes = [name for name, _ in c.axes]
    assert axes == ["sparsity", "seed", "learning_rate", "dropout"]
    points = list(itertools.product(*(values for _, values in c.axes)))
    columns, grid = axis_columns(c), tm.expand(c)
    assert len(points) == c.n_runs == grid.n_runs == 36 and grid.shape == (3, 2, 3, 2)
    for r, point in enumerate(points):
        assert tuple(columns[name][r] for name in axes) == pytest.approx(point), r
        assert grid.seed[r] == point[1]
        np.testing.assert_allclose(grid.hyper.feature_probability[r], 1 - point[0], rtol=1e-6)
        np.testing.assert_allclose(grid.hyper.learning_rate[r], point[2], rtol=1e-6)
        np.testing.assert_allclose(grid.hyper.dropout[r], point[3])
    for name, values in c.axes:
        np.testing.assert_array_equal(grid.coords[axes.index(name)], values)


def test_run_values_are_the_axis_or_the_default():
    c = config(sweep={"seed": [0, 1]})
    value = run_values(c)
    np.testing.assert_array_equal(value("seed", 7), [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(value("dropout", 0.25), np.full(6, 0.25))


def test_seed_and_data_seed_default_to_zero():
    """Without a seed axis every run has seed 0 (one key); without a data_seed every
    run's data_seed is the config's (0 unless given); a grid without data seeds reads
    only its hyperparameters."""
    r = raw(sweep={"sparsity": [0.0, 0.9]})
    del r["sweep"]["seed"]
    grid = tm.expand(tm.parse_config(r))
    np.testing.assert_array_equal(grid.seed, [0, 0])
    np.testing.assert_array_equal(grid.data_seed, [0, 0])
    assert len(grid.runs) == 2 and grid.runs[1].dtype == np.int32
    finite = tm.expand(config(data={"dataset_size": 16, "data_seed": 4},
                                train={"batch_size": 16}))
    np.testing.assert_array_equal(finite.data_seed, np.full(6, 4))
    plain = make_grid(tm.parse_config(r), grid.hyper)
    assert plain.data_seed is None and len(plain.runs) == 1 and plain.runs[0] is grid.hyper


def test_the_l1_penalty_is_in_the_objective_only_where_asked():
    assert tm.expand(config()).hyper.l1_weights is None
    np.testing.assert_allclose(tm.expand(config(train={"l1_weights": 0.01})).hyper.l1_weights, 0.01)
    swept = tm.expand(config(sweep={"l1_weights": [0.0, 0.1]})).hyper.l1_weights
    np.testing.assert_allclose(swept, [0.0, 0.1] * 6)


def test_a_config_with_static_axes_is_expanded_per_group():
    c = config(sweep={"n_hidden": [2, 3], "seed": [0, 1]})
    with pytest.raises(ValueError, match="has static axes; expand each of config.groups"):
        axis_columns(c)
    with pytest.raises(ValueError, match="static axes"):
        tm.expand(c)
    grids = [tm.expand(group) for group in c.groups]
    assert [g.names for g in grids] == [("sparsity", "seed")] * 2
    assert [g.n_runs for g in grids] == [6, 6]


def test_flat_runs_orders_runs_as_the_sweep_the_last_axis_fastest():
    """Whatever the order of the sweep axes among the DataArray's leading dims, run r of
    `flat_runs` is the r-th point of the product of the axes in the order given."""
    sparsity, seed = [0.0, 0.5, 0.9], [0, 1]
    values = np.arange(3 * 2 * 4, dtype=np.float32).reshape(3, 2, 4)
    da = xr.DataArray(values, dims=("sparsity", "seed", "feature"),
                      coords={"sparsity": sparsity, "seed": seed})
    for arranged in (da, da.transpose("seed", "sparsity", "feature")):
        runs = flat_runs(arranged, ("sparsity", "seed"))
        assert runs.shape == (6, 4)
        for r, (p, s) in enumerate(itertools.product(sparsity, seed)):
            np.testing.assert_array_equal(runs[r], da.sel(sparsity=p, seed=s).values)
    np.testing.assert_array_equal(flat_runs(da, ("seed", "sparsity"))[1],
                                  da.sel(seed=0, sparsity=0.5).values)
    # the run's own dims may come first too (a feature-major DataArray)
    runs = flat_runs(da.transpose("feature", "seed", "sparsity"), ("sparsity", "seed"))
    assert runs.shape == (6, 4)
    np.testing.assert_array_equal(runs[1], da.sel(sparsity=0.0, seed=1).values)
