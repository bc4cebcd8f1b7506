"""The results store: one directory per sweep, crash-safe, resumable.

Layout of a results directory:
  manifest.json       the resolved config (TOML text), versions and device; written first
  lock                who is writing the directory, while a sweep or analysis runs
                      (`toymodels.lock`: one writer per directory)
  chunks/A-B.npz      runs A..B-1 of a sweep in progress; each file appears atomically
  results.nc          the finished dataset (netCDF4), written atomically once all runs are
                      done; the chunk files are then removed

`load(dir)` returns the `xarray.Dataset`; plain xarray opens it too:
`xarray.open_dataset("DIR/results.nc")` (needs the h5netcdf package).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from toymodels.errors import UserError
from toymodels.lock import LOCK

SCHEMA_VERSION = 3  # 2: final_loss on train.eval_samples fresh samples; 3: stratified
# final_loss (exact for 0 and 1 active features) on samples shared by all runs, with SE
MANIFEST, RESULTS, CHUNKS = "manifest.json", "results.nc", "chunks"
_CHUNK_NAME = re.compile(r"^(\d+)-(\d+)\.npz$")
_TMP_NAME = re.compile(r"^\..+\.tmp-\d+$")  # see _atomic_write


def _atomic_write(path: Path, write) -> None:
    """Calls write(tmp_path), fsyncs and renames: `path` is either absent or complete."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def why(error: OSError) -> str:
    """An OSError's reason in one line, e.g. 'No space left on device'."""
    return " ".join((error.strerror or str(error)).split())


def versions() -> dict[str, str]:
    """Versions of Python and the packages that made a result."""
    out = {"python": sys.version.split()[0]}
    for pkg in ("toymodels", "jax", "jaxlib", "flax", "optax", "numpy", "xarray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def open_store(out: str | Path, config_toml: str, n_runs: int, device: str,
               same: Callable[[str, str], bool] | None = None) -> Path:
    """Creates the directory for a sweep, or checks that an existing one holds this config.

    `same(stored, wanted)` compares the stored config's TOML with this one's; the engine
    compares them parsed, with defaults filled in, so that a key added to the schema later
    (with a default) does not orphan existing results. Default: the same TOML data.

    Raises:
      UserError: the directory holds another config, or is not a results directory.
    """
    out = prepare_dir(out)
    manifest = out / MANIFEST
    if manifest.exists():
        previous = read_manifest(out)
        if not (same or _same_toml)(previous["config"], config_toml):
            raise UserError(
                f"{out}: holds results of a different config (see {manifest}); "
                "use another --out or delete the directory"
            )
        return out
    (out / CHUNKS).mkdir(exist_ok=True)
    info = {"schema_version": SCHEMA_VERSION, "config": config_toml, "n_runs": n_runs,
            "versions": versions(), "device": device}
    try:
        _atomic_write(manifest, lambda p: p.write_text(json.dumps(info, indent=1)))
    except OSError as e:
        raise UserError(f"{manifest}: cannot write it ({why(e)}); "
                        "free space or choose another --out") from None
    return out


def prepare_dir(out: str | Path) -> Path:
    """Checks that `out` can be a results directory, and creates it if it does not exist.

    Raises:
      UserError: `out` is a file, a directory of other files, or cannot be created.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file, not a directory; --out names a results "
                        "directory (a new one, or one to resume)")
    if out.is_dir() and _foreign(out):
        raise UserError(f"{out}: exists, is not empty and is not a results directory; "
                        "choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out}: cannot create the directory ({why(e)}); "
                        "choose another --out") from None
    return out


def _foreign(out: Path) -> bool:
    """Whether directory `out` holds files that no results directory holds. Without a
    manifest, a lock, chunks/ and temporary files are a sweep's that is starting."""
    if (out / MANIFEST).exists():
        return False
    return any(name not in (LOCK, CHUNKS) and not _TMP_NAME.match(name)
               for name in os.listdir(out))


def _same_toml(a: str, b: str) -> bool:
    try:
        return tomllib.loads(a) == tomllib.loads(b)
    except tomllib.TOMLDecodeError:
        return False


def read_manifest(out: str | Path) -> dict:
    """The manifest of a results directory, whole and of this results schema: what every
    command reads first (`load`, `open_store`, info, analyze, llc, plot, explore).

    Raises:
      UserError: there is none, it is damaged (not JSON, a key missing or of another type,
        its config not TOML: `manifest_problem`), or it is of another results schema
        (`check_schema`).
    """
    path = Path(out) / MANIFEST
    if not path.exists():
        raise UserError(f"{out}: not a results directory (no {MANIFEST}); run `toymodels sweep` first")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _damaged_manifest(out, f"{type(e).__name__}: {e}") from None
    if isinstance(manifest, dict) and "schema_version" in manifest:
        check_schema(out, manifest["schema_version"])
    problem = manifest_problem(manifest)
    if problem:
        raise _damaged_manifest(out, problem)
    return manifest


MANIFEST_KEYS = {"schema_version": int, "config": str, "n_runs": int, "versions": dict, "device": str}


def manifest_problem(manifest) -> str | None:
    """What is wrong with a manifest's parsed JSON, or None if it is whole.

    Example:
      >>> manifest_problem({"schema_version": 3, "config": "", "versions": {}, "device": "cpu"})
      'no n_runs'
    """
    if not isinstance(manifest, dict):
        return f"not a JSON object but {type(manifest).__name__}"
    for key, kind in MANIFEST_KEYS.items():
        if key not in manifest:
            return f"no {key}"
        value = manifest[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"{key} is not {'an' if kind is int else 'a'} {kind.__name__}: {str(value)[:40]!r}"
    if manifest["n_runs"] < 1:
        return f"n_runs is {manifest['n_runs']}, not a positive number of runs"
    try:
        tomllib.loads(manifest["config"])
    except tomllib.TOMLDecodeError as e:
        return f"its config is not TOML: {e}"
    return None


def check_schema(out: str | Path, version) -> None:
    """UserError unless `version` (a manifest's schema_version) is `SCHEMA_VERSION`: results
    of another schema are neither read, nor resumed, nor rewritten."""
    if version == SCHEMA_VERSION:
        return
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise UserError(f"{out}: made by a newer toymodels (results schema {version}, this one "
                        f"reads {SCHEMA_VERSION}); upgrade toymodels to read it")
    raise UserError(f"{out}: made by an older toymodels (results schema {version!r}, this one "
                    f"reads {SCHEMA_VERSION}); rerun its sweep into a new directory")


def _damaged_manifest(out, problem: str) -> UserError:
    problem = _one_line(problem)
    return UserError(f"{Path(out) / MANIFEST}: damaged ({problem}); toymodels cannot read or "
                     f"resume {out}: rerun its sweep into a new directory")


def _one_line(text: str, limit: int = 160) -> str:
    """`text` on one line, at most `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def is_complete(out: str | Path) -> bool:
    return (Path(out) / RESULTS).exists()


def done_ranges(out: str | Path) -> list[tuple[int, int]]:
    """The (start, stop) run ranges of the chunk files present, sorted."""
    folder = Path(out) / CHUNKS
    names = os.listdir(folder) if folder.exists() else []
    found = (_CHUNK_NAME.match(n) for n in names)
    return sorted((int(m[1]), int(m[2])) for m in found if m)


def done_mask(out: str | Path, n_runs: int) -> np.ndarray:
    """[R] bool: which runs are finished (all of them once results.nc exists)."""
    if is_complete(out):
        return np.ones(n_runs, bool)
    mask = np.zeros(n_runs, bool)
    for start, stop in done_ranges(out):
        mask[start:stop] = True
    return mask


def chunk_path(out: str | Path, start: int, stop: int) -> Path:
    """The file of runs start..stop-1."""
    return Path(out) / CHUNKS / f"{start:08d}-{stop:08d}.npz"


def write_chunk(out: str | Path, start: int, arrays: dict[str, np.ndarray]) -> None:
    """Writes runs start..start+n-1 atomically; arrays share a leading axis n.

    The file is closed inside the write, so that an error on its last bytes (a full disk)
    is raised here instead of being lost when the file object is collected.
    """
    n = len(next(iter(arrays.values())))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    _atomic_write(chunk_path(out, start, start + n), write)


def restore_chunks_dir(out: str | Path) -> bool:
    """Recreates `chunks/` for an unfinished sweep that has none (its results.nc was
    deleted after it finished, which removed the chunks); True if it did."""
    folder = Path(out) / CHUNKS
    if is_complete(out) or folder.is_dir():
        return False
    folder.mkdir()
    return True


def remove_leftovers(out: str | Path) -> None:
    """Deletes the temporary files of writes cut short (by a killed process), and the chunk
    files of a finished sweep whose removal was cut short. Call it holding the lock."""
    out = Path(out)
    if is_complete(out):
        shutil.rmtree(out / CHUNKS, ignore_errors=True)
    for folder in (out, out / CHUNKS):
        for name in os.listdir(folder) if folder.is_dir() else ():
            if _TMP_NAME.match(name):
                (folder / name).unlink(missing_ok=True)


def drop_damaged_chunks(out: str | Path, n_runs: int,
                        keys: list[str] | Callable[[int, int], list[str] | None]) -> list[str]:
    """Deletes every chunk file that does not load whole (`chunk_problem`), so that its
    runs are retrained. Returns one line per deleted file, naming it and why.

    `keys` are the arrays every chunk holds, or `keys(start, stop)` those of the chunk of
    runs start..stop-1 (a sweep with static groups: each group's own), None if such a
    chunk cannot exist (it straddles two groups)."""
    keys_of = keys if callable(keys) else (lambda start, stop: keys)
    lines = []
    for start, stop in done_ranges(out):
        path = chunk_path(out, start, stop)
        expected = keys_of(start, stop) if stop <= n_runs else None
        problem = (f"runs beyond the sweep's {n_runs}" if stop > n_runs
                   else "runs of two static groups" if expected is None
                   else chunk_problem(path, stop - start, expected))
        if problem:
            path.unlink(missing_ok=True)
            lines.append(f"{path}: damaged chunk file ({problem}); deleted it, "
                         f"runs {start}-{stop - 1} will be retrained")
    return lines


def chunk_problem(path: Path, n: int, keys: list[str]) -> str | None:
    """What is wrong with a chunk file of `n` runs, or None if it is whole.

    Every array is read in full, so that zipfile checks each member's CRC-32; each must
    hold `n` runs on its leading axis, and every name in `keys` must be there.
    """
    try:
        with np.load(path) as z:
            missing = [k for k in keys if k not in z.files]
            short = [k for k in z.files if z[k].shape[:1] != (n,)]
    except Exception as e:  # a damaged file fails in many ways (zip, header, CRC): all count
        return " ".join(f"{type(e).__name__}: {e}".split())
    if missing:
        return f"no array {missing[0]!r}"
    return f"array {short[0]!r} does not hold {n} runs" if short else None


def read_chunks(out: str | Path, n_runs: int, first: int = 0) -> dict[str, np.ndarray]:
    """The chunk files of runs first..first+n_runs-1 joined into arrays with leading axis
    n_runs (every one of those runs must be done; the runs of one static group)."""
    columns: dict[str, np.ndarray] = {}
    for start, stop in done_ranges(out):
        if start < first or stop > first + n_runs:
            continue
        with np.load(chunk_path(out, start, stop)) as z:
            for key in z.files:
                if key not in columns:
                    columns[key] = np.empty((n_runs, *z[key].shape[1:]), z[key].dtype)
                columns[key][start - first:stop - first] = z[key]
    return columns


def write_dataset(out: str | Path, ds: xr.Dataset) -> None:
    """Writes `results.nc` atomically (used when a sweep completes and by `analyze`).

    The file is made in memory and then written as plain bytes: when the disk filled up
    during a direct write, h5py raised and then crashed the process (SIGSEGV) on closing.
    """
    data = ds.to_netcdf(engine="h5netcdf")
    _atomic_write(Path(out) / RESULTS, lambda p: p.write_bytes(data))


def finish(out: str | Path, ds: xr.Dataset) -> None:
    """Writes the final dataset, then drops the chunk files it was made from."""
    write_dataset(out, ds)
    shutil.rmtree(Path(out) / CHUNKS, ignore_errors=True)


def load(out: str | Path) -> xr.Dataset:
    """Opens a finished sweep as an `xarray.Dataset` (held in memory, file closed).

    Dims: the sweep axes in config order, then hidden, feature, step. Variables: W, b,
    loss, final_loss, importance, density (each feature's probability of being
    non-zero, 1 - S), nonfinite_step, and the analysis
    variables once `toymodels analyze` has run.

    Example (after `toymodels sweep sweeps/intro.toml --out runs/intro`)::

      import toymodels as tm
      ds = tm.load("runs/intro")
      ds.W.sel(seed=0).isel(sparsity=-1)   # [hidden, feature]

    Raises:
      UserError: one line saying what to do: not a results directory, a damaged manifest
        or one of another results schema (`read_manifest`), an unfinished sweep, or a
        damaged results.nc.
    """
    out = Path(out)
    _finished_manifest(out)
    return _read_results(out, lambda ds: ds.load())


def require_finished(out: str | Path) -> dict:
    """The manifest (`read_manifest`) of a finished sweep whose results.nc opens: what a
    command that reads results checks before anything else.

    Raises:
      UserError: `read_manifest`'s, the sweep is not finished (no results.nc), or its
        results.nc is damaged (`check_results`).
    """
    manifest = _finished_manifest(out)
    check_results(out)
    return manifest


def _finished_manifest(out: str | Path) -> dict:
    manifest = read_manifest(out)
    if not is_complete(out):
        done = int(done_mask(out, manifest["n_runs"]).sum())
        raise UserError(f"{out}: the sweep is not finished ({done}/{manifest['n_runs']} runs); "
                        "rerun the same `toymodels sweep` command to finish it")
    return manifest


def check_results(out: str | Path) -> None:
    """UserError if `out/results.nc` exists and does not open (a truncated or damaged file);
    reads its header only."""
    if is_complete(out):
        _read_results(Path(out), lambda ds: None)


def peek(out: str | Path, use: Callable[[xr.Dataset], object]):
    """`use(ds)` of `out/results.nc` opened lazily (its names, dims, coordinates and attrs
    are read; data only where `use` reads it), or None when there is none yet (an
    unfinished sweep). A damaged file is `check_results`'s UserError.

    Example::

      names = store.peek("runs/intro", lambda ds: list(ds.data_vars))
    """
    return _read_results(Path(out), use) if is_complete(out) else None


def _read_results(out: Path, use: Callable[[xr.Dataset], object]):
    """`use(ds)` of `out/results.nc` opened; every way the file fails to read (h5py,
    h5netcdf, netCDF, xarray: many exceptions) is one UserError that says what to do."""
    path = out / RESULTS
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            return use(ds)
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 -- a damaged file fails in many ways: all count
        raise UserError(f"{path}: damaged, cannot be read ({_one_line(f'{type(e).__name__}: {e}')}); "
                        f"delete it and rerun the same `toymodels sweep` into {out}: it "
                        "retrains every run") from None
