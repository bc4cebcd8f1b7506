"""The toy models' trainer (toymodels.trainers.toy): the Dataset of a toy sweep and the
arrays of its chunk files."""

import numpy as np
import pytest

import toymodels as tm
from toymodels import store
from toymodels.models import get_model
from toymodels.trainers.toy import build_dataset, chunk_keys

from helpers import TWELVE_RUNS as CFG
from helpers import config


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tm.run_sweep(config(**CFG), tmp_path_factory.mktemp("ref") / "run", quiet=True)
    return tm.load(out)


def test_dataset_layout(reference):
    ds = reference
    assert list(ds.W.dims) == ["sparsity", "seed", "dropout", "hidden", "feature"]
    assert ds.W.shape == (3, 2, 2, 2, 5) and ds.b.dims == ("sparsity", "seed", "dropout", "feature")
    assert ds.loss.dims == ("sparsity", "seed", "dropout", "step")
    np.testing.assert_array_equal(ds.step, [20, 40, 60])
    np.testing.assert_allclose(ds.sparsity, [0.0, 0.5, 0.9])
    np.testing.assert_allclose(ds.density.sel(sparsity=0.9), 0.1, rtol=1e-6)
    assert np.isfinite(ds.final_loss).all() and (ds.nonfinite_step == -1).all()
    assert tm.parse_config(__import__("tomllib").loads(ds.attrs["config"])) == config(**CFG)
    assert ds.attrs["version_jax"] and ds.attrs["device"].startswith("cpu")


def test_final_loss_is_a_fresh_large_batch_not_the_last_minibatch(reference):
    """final_loss estimates the expected loss: close to the logged training loss late in
    training, and different from the last block's mean (other samples)."""
    last = reference.loss.isel(step=-1)
    assert not np.array_equal(reference.final_loss.values, last.values)
    np.testing.assert_allclose(reference.final_loss, last, rtol=0.5)


def test_chunk_keys_name_the_parameters_the_curves_snapshots_and_the_training_loss():
    assert chunk_keys(config().spec) == ["W", "b", "loss", "final_loss", "final_loss_se"]
    spec = config(model={"kind": "abs_computation"}, train={"snapshot_every": 20},
                  data={"dataset_size": 64}).spec
    assert chunk_keys(spec) == ["W1", "W2", "b", "loss", "final_loss", "final_loss_se",
                                "W1_snapshots", "W2_snapshots", "b_snapshots", "train_loss"]


def test_the_chunk_files_hold_the_chunk_keys_and_build_the_dataset(tmp_path, monkeypatch):
    """A sweep left unfinished (no results.nc): every chunk file holds exactly
    `chunk_keys`, one row per run, and `build_dataset` labels them (snapshots along
    training, train_loss, test_loss the same values as final_loss)."""
    cfg = config(model={"kind": "abs_computation"}, train={"snapshot_every": 20},
                 data={"dataset_size": 64}, sweep={"seed": [0, 1]})
    monkeypatch.setattr(store, "finish", lambda out, ds: None)
    out = tm.run_sweep(cfg, tmp_path / "run", quiet=True)
    assert not store.is_complete(out) and store.done_mask(out, cfg.n_runs).all()
    keys = chunk_keys(cfg.spec)
    for start, stop in store.done_ranges(out):
        with np.load(store.chunk_path(out, start, stop)) as z:
            assert sorted(z.files) == sorted(keys)
            assert all(z[k].shape[0] == stop - start for k in keys)
    ds = build_dataset(cfg, tm.expand(cfg), store.read_chunks(out, cfg.n_runs),
                       store.read_manifest(out))
    axes = ("sparsity", "seed")
    for name, dims in get_model("abs_computation").dims.items():
        assert ds[name].dims == axes + dims
        assert ds[f"{name}_snapshots"].dims == axes + ("snapshot",) + dims
    np.testing.assert_array_equal(ds.snapshot, [0, 20, 40, 60])
    assert "W" not in ds and ds.train_loss.dims == axes and "long_name" in ds.train_loss.attrs
    np.testing.assert_array_equal(ds.test_loss, ds.final_loss)
    assert np.isfinite(ds.train_loss).all() and (ds.nonfinite_step == -1).all()
    np.testing.assert_array_equal(ds.b_snapshots.isel(snapshot=-1), ds.b)
