"""toymodels.store: the results directory's files, written atomically and read back whole.

The engine's use of the store (resume, damaged chunks retrained end to end, a full disk,
signals) is tested where a user meets it: tests/test_misuse.py and tests/test_sweep.py."""

import errno
import json
import pathlib
import signal
import time

import numpy as np
import pytest
import xarray as xr

import toymodels as tm
from toymodels import store

from helpers import files_in

CHUNK = 16


def _arrays(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"W": rng.normal(size=(n, 5, 20)).astype(np.float32),
            "loss": rng.normal(size=(n, 3)).astype(np.float32),
            "nonfinite_step": rng.integers(-1, 60, n).astype(np.int32)}


@pytest.fixture
def out(tmp_path):
    return store.open_store(tmp_path / "run", 'name = "s"\n', n_runs=40, device="cpu")


def test_a_new_store_holds_its_manifest_and_an_empty_chunks_folder(out):
    manifest = store.read_manifest(out)
    assert manifest["schema_version"] == store.SCHEMA_VERSION and manifest["n_runs"] == 40
    assert manifest["config"] == 'name = "s"\n' and manifest["device"] == "cpu"
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert files_in(out) == ["manifest.json"] and (out / "chunks").is_dir()
    assert store.done_ranges(out) == [] and not store.done_mask(out, 40).any()
    assert store.open_store(out, 'name = "s"\n', n_runs=40, device="cpu") == out  # the same config
    with pytest.raises(tm.UserError, match="holds results of a different config"):
        store.open_store(out, 'name = "t"\n', n_runs=40, device="cpu")


def test_chunks_written_are_read_back_as_the_same_arrays(out):
    """Three chunks of runs 0-15, 16-31 and 32-39, written out of order, read back as the
    arrays of runs 0..39 with their dtypes, bit for bit; a group's runs read alone."""
    whole = _arrays(40)
    for start, stop in ((16, 32), (0, 16), (32, 40)):
        store.write_chunk(out, start, {k: v[start:stop] for k, v in whole.items()})
    assert store.done_ranges(out) == [(0, 16), (16, 32), (32, 40)]
    assert store.done_mask(out, 40).all()
    back = store.read_chunks(out, 40)
    assert set(back) == set(whole)
    for name, array in whole.items():
        assert back[name].dtype == array.dtype
        np.testing.assert_array_equal(back[name], array, err_msg=name)
    tail = store.read_chunks(out, 24, first=16)
    for name, array in whole.items():
        np.testing.assert_array_equal(tail[name], array[16:], err_msg=name)


def test_a_damaged_chunk_is_dropped_so_that_its_runs_are_retrained(out):
    """A truncated file, a file missing an array and one of another run count are deleted
    with a line each, and their runs count as not done; whole chunks stay."""
    whole = _arrays(40)
    for start, stop in ((0, 16), (16, 32), (32, 40)):
        store.write_chunk(out, start, {k: v[start:stop] for k, v in whole.items()})
    keys = list(whole)
    assert store.drop_damaged_chunks(out, 40, keys) == []
    truncated = store.chunk_path(out, 0, 16)
    data = truncated.read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    lines = store.drop_damaged_chunks(out, 40, keys)
    assert len(lines) == 1 and lines[0].startswith(f"{truncated}: damaged chunk file (BadZipFile")
    assert lines[0].endswith("deleted it, runs 0-15 will be retrained")
    assert not truncated.exists() and store.done_mask(out, 40).tolist() == [False] * 16 + [True] * 24
    assert store.drop_damaged_chunks(out, 40, [*keys, "b"]) == [
        f"{store.chunk_path(out, a, b)}: damaged chunk file (no array 'b'); deleted it, "
        f"runs {a}-{b - 1} will be retrained" for a, b in ((16, 32), (32, 40))]
    assert store.done_ranges(out) == []
    store.write_chunk(out, 0, {k: v[:8] for k, v in whole.items()})
    with open(store.chunk_path(out, 0, 8), "wb") as f:  # 8 runs under a name of 8, 4 inside
        np.savez(f, **{k: v[:4] for k, v in whole.items()})
    assert store.chunk_problem(store.chunk_path(out, 0, 8), 8, keys) == "array 'W' does not hold 8 runs"
    assert len(store.drop_damaged_chunks(out, 40, keys)) == 1 and store.done_ranges(out) == []


def _dataset(value: float) -> xr.Dataset:
    return xr.Dataset({"W": (("seed", "hidden", "feature"), np.full((2, 2, 5), value, np.float32)),
                       "polytope": (("seed",), np.array(["digon", ""]))},
                      coords={"seed": [0, 1]}, attrs={"config": 'name = "s"\n'})


def test_results_nc_is_written_atomically(out, monkeypatch):
    """A written results.nc loads back as the same Dataset; a rewrite that fails half-way
    (the disk full after half the bytes) leaves the previous file whole and no
    temporary file."""
    first = _dataset(1.0)
    store.write_dataset(out, first)
    assert store.is_complete(out)
    xr.testing.assert_identical(store.load(out), first)
    before = (out / "results.nc").read_bytes()

    def half_then_full(path, data):
        with open(path, "wb") as f:
            f.write(data[:len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_bytes", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        store.write_dataset(out, _dataset(2.0))
    monkeypatch.undo()
    assert (out / "results.nc").read_bytes() == before
    assert files_in(out) == ["manifest.json", "results.nc"]
    xr.testing.assert_identical(store.load(out), first)


def test_finish_writes_the_results_and_drops_the_chunks(out):
    store.write_chunk(out, 0, _arrays(40))
    assert not store.is_complete(out)
    with pytest.raises(tm.UserError, match=r"not finished \(40/40 runs\)"):
        store.load(out)
    store.finish(out, _dataset(3.0))
    assert files_in(out) == ["manifest.json", "results.nc"] and not (out / "chunks").exists()
    assert store.done_mask(out, 40).all()


class _SignalsWhenWritten:
    """An array-like whose conversion sends this process SIGINT, as Ctrl-C mid-write."""

    def __array__(self, dtype=None, copy=None):
        signal.raise_signal(signal.SIGINT)
        time.sleep(5)  # the handler raises KeyboardInterrupt here
        raise AssertionError("SIGINT was not handled")


def test_an_interrupt_while_a_chunk_is_written_leaves_no_file(tmp_path):
    (tmp_path / "chunks").mkdir()
    arrays = {"W": np.zeros((CHUNK, 5, 20), np.float32), "loss": _SignalsWhenWritten()}
    # Ctrl-C's handler as in a terminal: a test worker may have inherited another one
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            store.write_chunk(tmp_path, 0, arrays)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert files_in(tmp_path) == []
