"""Finite datasets as a static axis: the double-descent sweep's machinery end to end
(dataset_size as a sweep axis, data points analysed per group, the memorisation figures),
and the one-line errors of the new keys from the command line."""

import numpy as np
import pytest

import toymodels as tm
from toymodels.analysis import analyze
from toymodels.analysis.data_points import hidden_points

from helpers import run_cli, same_arrays

SWEEP = """
name = "dd"
[model]
n_features = 30
n_hidden = 2
[data]
sparsity = 0.9
unit_norm = true
[train]
steps = 300
batch_size = "full"
learning_rate = 0.01
schedule = "cosine"
warmup_steps = 15
log_every = 50
eval_samples = 8192
[sweep]
dataset_size = [4, 40]
data_seed = [0, 1]
seed = [0, 1]
"""


@pytest.fixture(scope="module")
def sizes(tmp_path_factory):
    """The sweep with dataset_size = [4, 40], and its T = 4 group run alone."""
    root = tmp_path_factory.mktemp("dd")
    (root / "dd.toml").write_text(SWEEP)
    (root / "t4.toml").write_text(SWEEP.replace("dataset_size = [4, 40]\n", "")
                                  .replace("unit_norm = true", "unit_norm = true\ndataset_size = 4"))
    load = lambda name: tm.load(tm.run_sweep(tm.load_config(root / f"{name}.toml"), root / name,
                                             quiet=True))
    return root, load("dd"), load("t4")


def test_a_dataset_size_group_equals_its_sweep_alone(sizes):
    _, ds, alone = sizes
    same_arrays(ds.sel(dataset_size=4), alone, ("W", "b", "loss", "final_loss", "train_loss"))
    np.testing.assert_array_equal(ds.test_loss.values, ds.final_loss.values)


def test_data_points_are_analysed_in_their_own_group(sizes):
    """data_dimensionality regenerates each group's own T examples: the T = 4 group of the
    combined sweep equals the T = 4 sweep alone, and its padding beyond 4 is NaN."""
    _, ds, alone = sizes
    got, ref = analyze(ds).sel(dataset_size=4), analyze(alone)
    np.testing.assert_array_equal(got.data_dimensionality.isel(example=slice(0, 4)),
                                  ref.data_dimensionality)
    assert np.isnan(got.data_dimensionality.isel(example=slice(4, None))).all()
    np.testing.assert_array_equal(got.data_dimensionality_mean, ref.data_dimensionality_mean)


def test_hidden_points_of_a_run_of_the_combined_sweep(sizes):
    _, ds, alone = sizes
    run = dict(data_seed=1, seed=0)
    h = hidden_points(ds.sel(dataset_size=4, **run))
    assert h.shape == (2, 4)
    np.testing.assert_array_equal(h.values, hidden_points(alone.sel(**run)).values)


@pytest.mark.parametrize("kind, options", [
    ("double_descent", []), ("memorisation_dimensionality", []),
    ("memorisation_geometry", ["-o", "sizes=[4, 40]"]), ("loss_grid", ["-o", "y=data_seed"]),
])
@pytest.mark.slow  # moved behind slow (issue 22's test budget); CI runs it
def test_memorisation_figures(sizes, kind, options):
    root = sizes[0]
    out = root / f"{kind}.png"
    done = run_cli("plot", kind, str(root / "dd"), "--out", str(out), *options)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("line, key, allowed", [
    ('optimizer = "adamx"', "train.optimizer", "adamw, adam, sgd, momentum"),
    ("dataset_size = 0", "data.dataset_size", ">= 1"),
    ('batch_size = "fulll"', "train.batch_size", '"full"'),
    ('inputs = "one_hot"\ndataset_size = 10', "data", "one_hot"),
])
def test_bad_new_keys_are_one_line_from_the_cli(tmp_path, line, key, allowed):
    table = "train" if key.startswith("train") else "data"
    path = tmp_path / "bad.toml"
    path.write_text(f"[{table}]\n{line}\n")
    done = run_cli("sweep", str(path), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert str(path) in done.stderr and key in done.stderr and allowed in done.stderr
    assert not (tmp_path / "out").exists()
