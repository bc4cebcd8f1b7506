"""Running a sweep: config -> grid -> chunks -> jit(train) on every device -> store.

The grid's R runs are cut into chunks of one fixed size (the last one padded), so one
compiled program serves them all. Each chunk is split over every JAX device, each of which
runs the jitted `train` from `toymodels.train` on its block of runs, and lands in the store
atomically as soon as it is done; a rerun trains only the chunks that are missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import math
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from toymodels import data, evaluation, groups, store
from toymodels.config import SweepConfig, to_toml
from toymodels.errors import Interrupted, UserError
from toymodels.grid import Grid, expand
from toymodels.groups import SNAPSHOT
from toymodels.lock import held
from toymodels.models import get_model
from toymodels.spec import Spec
from toymodels.train import group_size, make_train

CHUNK_WORK = 1 << 35  # runs x steps x B x (F + H) per chunk: about a minute on 2 CPU cores
CHUNK_MEMORY_BYTES = 1 << 30  # parameters, optimiser state and snapshots of one chunk
MAX_CHUNK = 4096
FINAL_LOSS = ("population loss of the final weights (no dropout, no L1): exact for 0 and 1 "
              "active features, sampled for 2 or more (toymodels.evaluation)")
TRAIN_LOSS = ("loss of the final weights (no dropout, no L1) averaged over the run's "
              "dataset_size training examples (toymodels.data.training_set)")
TEST_LOSS = ("the same values as final_loss: the population loss on fresh samples, the "
             "test loss of the double-descent curve (test_loss against train_loss over T)")


def describe_devices(devices, n_processes: int = 1) -> str:
    """E.g. 'cpu x4 (cpu)', 'gpu x1 (NVIDIA H100 80GB HBM3)', 'cpu x4 (cpu) in 2 processes'."""
    text = f"{devices[0].platform} x{len(devices)} ({devices[0].device_kind})"
    return text + (f" in {n_processes} processes" if n_processes > 1 else "")


def default_chunk_size(spec: Spec, n_runs: int) -> int:
    """Runs per chunk: about a minute of work on 2 CPU cores (so progress shows and a crash
    loses little), within the memory of the kept parameters (and of a finite dataset's
    F x N training examples, a constant of the whole training), balanced so padding is
    small.

    Activations do not bound it: a chunk's groups of V runs are trained one after another.
    """
    trainer = trainer_of(spec)
    by_work = CHUNK_WORK // (spec.train.steps * trainer.work(spec))
    by_memory = CHUNK_MEMORY_BYTES // (4 * trainer.memory(spec))
    largest = max(1, min(MAX_CHUNK, by_work, by_memory, n_runs))
    return math.ceil(n_runs / math.ceil(n_runs / largest))


def useful_devices(devices: list, spec: Spec, n_runs: int) -> list:
    """No more devices than the sweep has groups of V runs: a device that would train only
    padding adds a compile and nothing else (the intro sweep, one group, takes 12-14 s on
    one CPU device and 17-18 s on two). Results do not depend on the device count. With
    several processes every device is used, so that every process has work."""
    if jax.process_count() > 1:
        return devices
    return devices[:max(1, min(len(devices), math.ceil(n_runs / trainer_of(spec).group_size(spec))))]


def round_chunk(chunk: int, spec: Spec, n_devices: int) -> int:
    """Rounds up to whole groups of V runs on every device (see `train.group_size`)."""
    unit = trainer_of(spec).group_size(spec) * n_devices
    return math.ceil(chunk / unit) * unit


def plan_chunks(done: np.ndarray, chunk: int) -> list[tuple[int, int]]:
    """(start, stop) of the blocks of `chunk` runs that hold a run still to train.

    Blocks start at multiples of `chunk`, so every run keeps its place in its group of V
    runs; a block finished in part under another chunk size is retrained whole (the same
    bits).
    """
    starts = range(0, len(done), chunk)
    return [(a, min(a + chunk, len(done))) for a in starts if not done[a:a + chunk].all()]


def make_chunk_runner(spec: Spec, root_seed: int, chunk: int, n_slots: int, devices):
    """`run(grid, start, stop) -> (first_run, arrays)` for runs start..stop-1.

    The chunk of `chunk` runs (padded by repeating the last run) is split into equal
    contiguous blocks, one per device, and every device runs the SAME single-device program
    on its block, dispatched asynchronously so that they all work at once (the program is
    compiled once per device on the first call, 1-2 s each on CPU). That is what makes
    a run's bits independent of the device count: with the run axis sharded by
    `jax.shard_map` instead, XLA compiled the per-device program of a 2-device mesh with
    other fusions than the 1-device one, and abs_computation weights moved by an ulp. Each
    block carries only the seed keys its own runs use (`n_slots`, padded). With several
    processes (`jax.distributed`) every process calls `run` and trains the blocks of its
    own devices: `arrays` hold runs first_run..first_run+n-1.
    """
    n_devices = len(devices)
    per_device = chunk // n_devices
    if per_device * n_devices != chunk:
        raise ValueError(f"chunk {chunk} does not split into {n_devices} equal blocks")
    mine = [i for i, d in enumerate(devices) if d.process_index == jax.process_index()]
    if mine != list(range(mine[0], mine[-1] + 1)):
        raise ValueError("this process's devices are not contiguous in the device list")
    trainer = trainer_of(spec)
    train_block, keys = jax.jit(trainer.make(spec, root_seed)), trainer.keys(spec)

    def block_inputs(grid: Grid, index: np.ndarray, device):
        seeds, slot = np.unique(grid.seed[index], return_inverse=True)
        seeds = np.concatenate([seeds, np.full(n_slots - len(seeds), seeds[0])])
        hyper = jax.tree.map(lambda a: a[index], grid.hyper)
        data_seeds = grid.data_seed[index].astype(np.int32)
        return jax.device_put((seeds, slot.astype(np.int32), hyper, data_seeds), device)

    def run(grid: Grid, start: int, stop: int) -> tuple[int, dict[str, np.ndarray]]:
        index = np.minimum(np.arange(start, start + chunk), stop - 1)
        blocks = [block_inputs(grid, index[i * per_device:(i + 1) * per_device], devices[i])
                  for i in mine]
        outs = [train_block(*args) for args in blocks]  # asynchronous: all devices at once
        wait_until_ready(outs)
        arrays = jax.tree.map(lambda *a: np.concatenate([np.asarray(x) for x in a]), *outs)
        first = mine[0] * per_device
        n = max(0, min(len(mine) * per_device, stop - start - first))  # not padding
        return start + first, {k: arrays[k][:n] for k in keys}

    return run


def wait_until_ready(tree, longest_sleep: float = 0.05) -> None:
    """Returns once every array of `tree` is computed. It polls, because Python runs signal
    handlers only between bytecodes: blocked in `np.asarray`, Ctrl-C or SIGTERM would
    wait until the chunk is done (up to a minute); polled, it is handled at once."""
    delay = 1e-4
    while not all(x.is_ready() for x in jax.tree.leaves(tree)):
        time.sleep(delay)
        delay = min(2 * delay, longest_sleep)


def run_sweep(config: SweepConfig, out: str | Path, *, chunk_size: int | None = None,
              quiet: bool = False) -> Path:
    """Trains every run of `config` not yet in `out`, then writes `out/results.nc`.

    A sweep with static axes (`SweepConfig.groups`) trains its groups one after another,
    each compiled once and chunked as a sweep of its own; the store holds every group's
    runs in one run index (group after group, `group_offsets`), so a crash in one group
    keeps every finished chunk of the others.

    Args:
      config: a validated sweep (`toymodels.load_config`).
      out: the results directory; created, or resumed if it holds the same config.
      chunk_size: runs per compiled call; default from the memory a run needs.
      quiet: no progress bar or messages.

    Returns:
      The results directory; `toymodels.load(out)` opens it.

    Raises:
      UserError: `out` cannot hold this sweep (another config, not a directory, another
        process is writing it: see `toymodels.lock`), or a write failed (a full disk).
        Finished chunks are kept; the same call resumes.
      Interrupted: Ctrl-C (or SIGTERM under the CLI); finished chunks are kept.
    """
    main = jax.process_index() == 0
    say = (lambda msg: None) if quiet or not main else (lambda msg: print(msg, file=sys.stderr))
    grids = [trainer_of(group.spec).expand(group) for group in config.groups]
    used = max((useful_devices(jax.devices(), g.spec, grid.n_runs)
                for g, grid in zip(config.groups, grids)), key=len)
    opening = (out, to_toml(config), config.n_runs, describe_devices(used, jax.process_count()))
    with contextlib.ExitStack() as lock:  # process 0 holds the directory's lock inside
        out = _open_locked(lock, opening, group_keys(config), say)
        try:
            _train(config, grids, out, chunk_size, quiet, say)
        except KeyboardInterrupt as e:
            raise _interrupted(e, out, config.n_runs) from None
    return out


def group_offsets(config: SweepConfig) -> np.ndarray:
    """[G + 1] where each static group's runs start in the store's run index (and the end)."""
    return np.cumsum([0] + [g.n_runs for g in config.groups])


def group_keys(config: SweepConfig):
    """`keys(start, stop)`: the arrays of a chunk of runs start..stop-1 (`chunk_keys` of its
    group), None if those runs are not all in one group."""
    offsets = group_offsets(config)

    def keys(start: int, stop: int) -> list[str] | None:
        g = int(np.searchsorted(offsets, start, side="right")) - 1
        spec = config.groups[g].spec
        return trainer_of(spec).keys(spec) if stop <= offsets[g + 1] else None

    return keys


def _open_locked(lock: contextlib.ExitStack, opening: tuple, keys: list[str], say) -> Path:
    """Process 0 takes the lock (held until `lock` closes), opens the store and readies it
    to resume; then the other processes open it. Process 0's error is raised on every
    process, so that none waits for it in a barrier."""
    main, out, error = jax.process_index() == 0, None, None
    if main:
        try:
            lock.enter_context(held(store.prepare_dir(opening[0]), "toymodels sweep", say))
            out = store.open_store(*opening)
            _ready_to_resume(out, opening[2], keys, say)
        except UserError as e:
            error = str(e)
    error = _agreed_error(error)
    if error:
        raise UserError(error)
    return out if main else store.open_store(*opening)


def _ready_to_resume(out: Path, n_runs: int, keys: list[str], say) -> None:
    """Holding the lock: recreates a missing chunks/, deletes what killed writes left and
    every damaged chunk file, saying so in one line each."""
    if store.restore_chunks_dir(out):
        say(f"{out}: {store.RESULTS} is missing and no chunk files remain: "
            f"retraining all {n_runs} runs")
    store.remove_leftovers(out)
    for line in store.drop_damaged_chunks(out, n_runs, keys):
        say(line)


def _train(config: SweepConfig, grids: list[Grid], out: Path, chunk_size: int | None,
           quiet: bool, say) -> None:
    """Trains the runs not yet in `out`, group by group, writing each chunk, then finishes
    the store."""
    main, n_runs = jax.process_index() == 0, config.n_runs
    done = _agreed(store.done_mask(out, n_runs))
    if done.all():
        if main and not store.is_complete(out):
            _finish(config, grids, out, say)
        say(f"{out}: complete ({n_runs} runs); nothing to do")
        return
    if done.any():
        say(f"{out}: resuming: {done.sum()} of {n_runs} runs already done")
    offsets = group_offsets(config)
    with tqdm(total=n_runs, initial=int(done.sum()), unit="run", desc=config.name,
              disable=quiet or not main, dynamic_ncols=True) as bar:
        for group, grid, first in zip(config.groups, grids, offsets):
            group_done = done[first:first + grid.n_runs]
            if not group_done.all():
                if config.static_groups:
                    bar.set_description(f"{config.name} [{_group_name(config, group)}]")
                _train_group(group, grid, group_done, first, out, n_runs, chunk_size, bar)
    _barrier("chunks written")
    if main:
        _finish(config, grids, out, say)
    _barrier("results written")


def _group_name(config: SweepConfig, group: SweepConfig) -> str:
    """E.g. 'n_hidden = 3, optimizer = "sgd"': the group's values of the static axes."""
    return group.source.removeprefix(f"{config.source} [").removesuffix("]")


def _train_group(group: SweepConfig, grid: Grid, done: np.ndarray, first: int, out: Path,
                 n_runs: int, chunk_size: int | None, bar) -> None:
    """Trains the runs of one static group not yet done; they are runs first.. of the store."""
    spec = group.spec
    devices = useful_devices(jax.devices(), spec, grid.n_runs)
    chunk = round_chunk(chunk_size or default_chunk_size(spec, grid.n_runs), spec, len(devices))
    n_slots = min(len(np.unique(grid.seed)), chunk // len(devices))
    run = make_chunk_runner(spec, group.seed, chunk, n_slots, devices)
    for start, stop in plan_chunks(done, chunk):
        at, arrays = run(grid, start, stop)
        if _n_runs(arrays):
            _write_chunk(out, first + at, arrays, n_runs)
        bar.update(stop - start)


def _write_chunk(out: Path, first: int, arrays: dict, n_runs: int) -> None:
    """`store.write_chunk`; a failed write becomes one line saying what is safe."""
    try:
        store.write_chunk(out, first, arrays)
    except OSError as e:
        last = first + _n_runs(arrays) - 1
        raise _write_failed(e, f"runs {first}-{last}", out, n_runs) from None


def _n_runs(arrays: dict) -> int:
    """The runs a chunk's arrays hold (each array's leading axis)."""
    return len(next(iter(arrays.values())))


def _write_failed(error: OSError, what: str, out: Path, n_runs: int) -> UserError:
    """E.g. 'disk full writing runs 32-47 to DIR: 32 of 48 runs are saved; free space and
    rerun the same command to resume'."""
    saved = int(store.done_mask(out, n_runs).sum())
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        cause, fix = "disk full", "free space"
    else:
        cause, fix = " ".join((error.strerror or str(error)).split()), "fix that"
    return UserError(f"{cause} writing {what} to {out}: {saved} of {n_runs} runs are saved; "
                     f"{fix} and rerun the same command to resume")


def _interrupted(e: KeyboardInterrupt, out: Path, n_runs: int) -> Interrupted:
    """Ctrl-C or SIGTERM (an `Interrupted` with its `signum`), told in one line."""
    signum = getattr(e, "signum", int(signal.SIGINT))
    how = "interrupted" if signum == signal.SIGINT else f"interrupted by {signal.Signals(signum).name}"
    saved = int(store.done_mask(out, n_runs).sum())
    return Interrupted(f"{how}: {saved} of {n_runs} runs saved; "
                       "rerun the same command to resume", signum)


def make_toy_block(spec: Spec, root_seed: int):
    """`block(seeds, slot, hyper, data_seeds) -> arrays` of a block of toy-model runs:
    `toymodels.train.make_train` with the run keys of `root_seed`, its RunOutput as the
    chunk's named arrays (`chunk_keys`)."""
    train = make_train(spec)

    def block(seeds, slot, hyper, data_seeds):
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(root_seed), seeds)
        dataset_keys = jax.vmap(data.dataset_key, in_axes=(None, 0))(root_seed, data_seeds)
        out = train(keys, slot, hyper, evaluation.eval_key(root_seed), dataset_keys)
        return {**out.params, "loss": out.loss, "final_loss": out.final_loss,
                "final_loss_se": out.final_loss_se, "train_loss": out.train_loss,
                **{f"{k}{SNAPSHOT}": v for k, v in out.snapshots.items()}}

    return block


def make_sae_block(spec: Spec, root_seed: int):
    """`block(seeds, slot, hyper, data_seeds) -> arrays` of a block of SAEs
    (`toymodels.dictionary.train.make_train_sae`; no dataset keys)."""
    from toymodels.dictionary.train import make_train_sae

    train = make_train_sae(spec)

    def block(seeds, slot, hyper, data_seeds):
        del data_seeds
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(root_seed), seeds)
        return train(keys, slot, hyper)

    return block


@dataclasses.dataclass(frozen=True)
class Trainer:
    """One kind of run the engine trains: the same chunks, devices, store and resume for
    each (toy models; sparse autoencoders; LLC estimates, `toymodels.llc`).

    Attributes:
      expand: `expand(group config) -> Grid`, the runs of a static group.
      group_size: `group_size(spec) -> V`, the runs one compiled step updates at once.
      make: `make(spec, root_seed) -> block(seeds, slot, hyper, data_seeds) -> arrays`.
      keys: `keys(spec)`, the names of the arrays of every chunk.
      dataset: `dataset(group config, grid, columns, manifest) -> Dataset` of a group.
      work: per run and step, in units of `CHUNK_WORK`; memory: 4-byte values per run.
    """

    expand: Callable
    group_size: Callable[[Spec], int]
    make: Callable
    keys: Callable[[Spec], list[str]]
    dataset: Callable
    work: Callable[[Spec], int]
    memory: Callable[[Spec], int]


def _toy_memory(spec: Spec) -> int:
    F, H = spec.model.n_features, spec.model.n_hidden
    return (F * H + F) * (spec.train.n_snapshots + 5) + F * spec.data.dataset_size


def _sae_memory(spec: Spec) -> int:
    N, d, F = spec.sae.width, spec.model.n_hidden, spec.model.n_features
    return (2 * N * d + 4 * N + d) * 5 + d * F


def trainer_of(spec: Spec) -> Trainer:
    """The trainer of a static group: LLC estimates if `spec.llc` is set
    (`toymodels.llc`), SAEs if `spec.sae` is, else toy models."""
    if spec.llc is not None:
        from toymodels.llc import llc_trainer
        return llc_trainer()
    if spec.sae is None:
        return Trainer(expand, group_size, make_toy_block, chunk_keys, build_dataset,
                       lambda s: s.train.batch_size * (s.model.n_features + s.model.n_hidden),
                       _toy_memory)
    from toymodels.dictionary.results import build_sae_dataset, expand_sae
    from toymodels.dictionary.train import sae_group_size, sae_keys

    return Trainer(expand_sae, sae_group_size, make_sae_block, sae_keys, build_sae_dataset,
                   lambda s: s.train.batch_size * (s.sae.width + s.model.n_hidden + s.model.n_features),
                   _sae_memory)


def chunk_keys(spec: Spec) -> list[str]:
    """The arrays every chunk file holds (see `make_chunk_runner` and `build_dataset`);
    `train_loss` only with a finite dataset."""
    params = list(get_model(spec.model.kind).dims)
    snapshots = [name + SNAPSHOT for name in params] if spec.train.snapshot_every else []
    fit = ["train_loss"] if spec.data.dataset_size else []
    return [*params, "loss", "final_loss", "final_loss_se", *snapshots, *fit]


def _finish(config: SweepConfig, grids: list[Grid], out: Path, say) -> None:
    manifest = store.read_manifest(out)
    parts = [trainer_of(group.spec).dataset(group, grid, store.read_chunks(out, grid.n_runs, int(first)), manifest)
             for group, grid, first in zip(config.groups, grids, group_offsets(config))]
    ds = parts[0] if not config.static_groups else _combined(parts, config, manifest)
    report_nonfinite(ds, say)
    try:
        store.finish(out, ds)  # the chunk files are deleted only once results.nc is written
    except OSError as e:
        raise _write_failed(e, store.RESULTS, out, config.n_runs) from None
    say(f"{out}: done; open with toymodels.load({str(out)!r})")


def _combined(parts: list[xr.Dataset], config: SweepConfig, manifest: dict) -> xr.Dataset:
    """The groups' Datasets as one (`toymodels.groups.combine`), with the sweep's attrs:
    those every group shares, and `static_axes` naming the static dims."""
    ds = groups.combine(parts, config)
    shared = {k: v for k, v in parts[0].attrs.items()
              if all(k in p.attrs and np.array_equal(p.attrs[k], v) for p in parts)}
    static = " ".join(n for n, _ in config.static_axes)
    return ds.assign_attrs({**shared, "config": manifest["config"], "static_axes": static})


def _barrier(name: str) -> None:
    """Waits for every process (no-op in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)


def _agreed_error(message: str | None) -> str | None:
    """Process 0's error message (None: no error), told to every process."""
    if jax.process_count() == 1:
        return message
    data = np.zeros(4096, np.uint8)
    text = (message or "").encode()[:len(data)]
    data[:len(text)] = np.frombuffer(text, np.uint8)
    return _agreed(data).tobytes().rstrip(b"\0").decode(errors="replace") or None


def _agreed(array: np.ndarray) -> np.ndarray:
    """Process 0's copy of `array` on every process (e.g. the finished runs, so that every
    process plans the same chunks)."""
    if jax.process_count() == 1:
        return array
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.broadcast_one_to_all(array))


def build_dataset(config: SweepConfig, grid: Grid, columns: dict, manifest: dict) -> xr.Dataset:
    """Labelled results: dims (*axes, hidden, feature, step); see `toymodels.store.load`."""
    axes, shape = grid.names, grid.shape
    as_grid = lambda a: np.asarray(a).reshape(shape + np.shape(a)[1:])
    kind = get_model(config.spec.model.kind)
    variables = {name: (axes + kind.dims[name], as_grid(columns[name])) for name in kind.dims}
    T, K = config.spec.train.n_logs, config.spec.train.log_every
    steps = K * np.arange(1, T + 1)
    variables.update(
        loss=(axes + ("step",), as_grid(columns["loss"])),
        final_loss=(axes, as_grid(columns["final_loss"]), {"long_name": FINAL_LOSS}),
        final_loss_se=(axes, as_grid(columns["final_loss_se"]),
                       {"long_name": "standard error of final_loss (its sampled part)"}),
        importance=(axes + ("feature",), as_grid(grid.hyper.importance)),
        density=(axes + ("feature",), as_grid(grid.hyper.feature_probability)),
        nonfinite_step=(axes, as_grid(first_nonfinite(columns["loss"], columns["final_loss"], steps))),
    )
    if config.spec.data.dataset_size:
        fit = as_grid(columns["train_loss"])
        variables["train_loss"] = (axes, fit, {"long_name": TRAIN_LOSS})
        variables["test_loss"] = (axes, as_grid(columns["final_loss"]), {"long_name": TEST_LOSS})
    if config.spec.train.snapshot_every:
        variables.update({name + SNAPSHOT: (axes + ("snapshot",) + kind.dims[name],
                                            as_grid(columns[name + SNAPSHOT])) for name in kind.dims})
    coords = {n: c for n, c in zip(axes, grid.coords)}
    coords.update(hidden=np.arange(config.spec.model.n_hidden),
                  feature=np.arange(config.spec.model.n_features), step=steps)
    if config.spec.train.snapshot_every:
        coords["snapshot"] = config.spec.train.snapshot_every * np.arange(config.spec.train.n_snapshots + 1)
    attrs = {"name": config.name, "config": manifest["config"], "model_kind": config.spec.model.kind,
             "n_features": config.spec.model.n_features, "n_hidden": config.spec.model.n_hidden,
             "device": manifest["device"], "schema_version": manifest["schema_version"]}
    attrs.update({f"version_{k}": v for k, v in manifest["versions"].items()})
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def first_nonfinite(loss: np.ndarray, final_loss: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """[R] the first logged step whose loss is not finite (final: last step), else -1."""
    bad = ~np.isfinite(loss)
    first = np.where(bad.any(axis=1), steps[np.argmax(bad, axis=1)], -1)
    return np.where((first < 0) & ~np.isfinite(final_loss), steps[-1], first).astype(np.int64)


def report_nonfinite(ds: xr.Dataset, say) -> None:
    """Says which runs had a non-finite loss, and at which step."""
    bad = ds.nonfinite_step.values >= 0
    if not bad.any():
        return
    where = np.argwhere(bad)[:3]
    dims = ds.nonfinite_step.dims
    runs = ["(" + ", ".join(f"{d}={ds[d].values[i]}" for d, i in zip(dims, idx)) +
            f") at step {ds.nonfinite_step.values[tuple(idx)]}" for idx in where]
    say(f"warning: {bad.sum()} of {bad.size} runs had a non-finite loss: {'; '.join(runs)}"
        f"{' ...' if bad.sum() > 3 else ''}; see the variable nonfinite_step")
