"""The sweep engine: config -> grid -> chunks of V-run blocks -> devices -> store -> finish.

It knows no trainer by name: each config's trainer (`toymodels.trainers`) gives the runs of
every static group, the compiled program of a block of V runs, the arrays it returns and
how they become a Dataset. The engine does the rest, the same for every trainer: a static
group's R runs are cut into chunks of one fixed size (whole blocks; the last chunk padded),
so one compiled program serves them all; each chunk is split over every JAX device (and
process), and lands in the store atomically as soon as it is done; a rerun trains only the
chunks that are missing. The results directory's lock, resume, progress bar, clean
interrupts and the finish (one Dataset, `Trainer.finish`) are here.
"""

from __future__ import annotations

import contextlib
import errno
import math
import signal
import sys
import time
import tomllib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import jax
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from jax.experimental import multihost_utils

from toymodels import groups, health, store
from toymodels.config import SweepConfig, to_toml
from toymodels.errors import Interrupted, UserError
from toymodels.grid import Grid
from toymodels.limits import check_sizes
from toymodels.machine import machine_memory
from toymodels.lock import held
from toymodels.progress import Meter
from toymodels.spec import Spec
from toymodels.trainers import Place, Trainer, stored_config, trainer_of

CHUNK_WORK = 1 << 33  # values touched per chunk (`Trainer.work`; a toy model's runs x steps
# x B x (F + H)). Small models move 1-2e8 of them a second on 2 CPU cores (intro: 2.9e9 in
# 29.5 s; phase_2_1: 3.0e10 in 35-39 s), so a chunk is 10-60 s there: what a kill loses and
# how often the bar moves. 1 << 35 made phase_2_1 one 35 s chunk; 1 << 33 makes it four of
# about 10 s, in the same total time (39.6 s against 35.0 and 38.9 s, within the noise).
CHUNK_MEMORY_BYTES = 1 << 30  # parameters, optimiser state and snapshots of one chunk
MAX_CHUNK = 4096
BAR = "{l_bar}{bar}| {n:.0f}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"  # tqdm's,
# with the runs shown whole: the bar moves by fractions of runs while a chunk trains


def describe_devices(devices, n_processes: int = 1, available: int | None = None) -> str:
    """E.g. 'cpu x4 (cpu)', 'gpu x1 (NVIDIA H100 80GB HBM3)', 'cpu x4 (cpu) in 2 processes',
    'cpu x1 of 2 (cpu; no more devices than blocks of runs)' when `useful_devices` left
    some of the `available` ones idle."""
    kind = devices[0].device_kind
    if available is not None and available > len(devices):
        kind += "; no more devices than blocks of runs"
        return f"{devices[0].platform} x{len(devices)} of {available} ({kind})"
    text = f"{devices[0].platform} x{len(devices)} ({kind})"
    return text + (f" in {n_processes} processes" if n_processes > 1 else "")


def default_chunk_size(trainer: Trainer, spec: Spec, n_runs: int) -> int:
    """Runs per chunk: about a minute of work on 2 CPU cores (so progress shows and a crash
    loses little), within the memory of the kept parameters (and of a finite dataset's
    F x N training examples, a constant of the whole training), balanced so padding is
    small.

    Activations do not bound it: a chunk's groups of V runs are trained one after another.
    """
    by_work = CHUNK_WORK // max(1, trainer.work(spec))
    by_memory = CHUNK_MEMORY_BYTES // (4 * trainer.memory(spec))
    largest = max(1, min(MAX_CHUNK, by_work, by_memory, n_runs))
    return math.ceil(n_runs / math.ceil(n_runs / largest))


def useful_devices(devices: list, trainer: Trainer, spec: Spec, n_runs: int) -> list:
    """No more devices than the sweep has blocks of V runs: a device that would train only
    padding adds a compile and nothing else (the intro sweep, one group, takes 12-14 s on
    one CPU device and 17-18 s on two). Results do not depend on the device count. With
    several processes every device is used, so that every process has work. A trainer
    may ask for at most `Trainer.cpu_devices` CPU devices per process."""
    if trainer.cpu_devices and devices[0].platform == "cpu":
        devices = first_per_process(devices, trainer.cpu_devices)
    if jax.process_count() > 1:
        return devices
    return devices[:max(1, min(len(devices), math.ceil(n_runs / trainer.block_size(spec))))]


def first_per_process(devices: list, k: int) -> list:
    """The first `k` devices of each process, in order (`Trainer.cpu_devices`)."""
    seen: dict[int, int] = {}
    kept = []
    for device in devices:
        seen[device.process_index] = seen.get(device.process_index, 0) + 1
        if seen[device.process_index] <= k:
            kept.append(device)
    return kept


def round_chunk(chunk: int, trainer: Trainer, spec: Spec, n_devices: int) -> int:
    """Rounds up to whole blocks of V runs on every device (`Trainer.block_size`)."""
    unit = trainer.block_size(spec) * n_devices
    return math.ceil(chunk / unit) * unit


def plan_chunks(done: np.ndarray, chunk: int) -> list[tuple[int, int]]:
    """(start, stop) of the blocks of `chunk` runs that hold a run still to train.

    Chunks start at multiples of `chunk`, so every run keeps its place in its block of V
    runs; a chunk finished in part under another chunk size is retrained whole (the same
    bits).
    """
    starts = range(0, len(done), chunk)
    return [(a, min(a + chunk, len(done))) for a in starts if not done[a:a + chunk].all()]


def make_chunk_runner(trainer: Trainer, spec: Spec, root_seed: int, chunk: int, n_slots: int,
                      devices):
    """`run(grid, start, stop, advance=None) -> (first_run, arrays)` for runs start..stop-1;
    while it waits, `advance(fraction)` gets each fraction of the chunk done since its
    last call (the blocks' `toymodels.progress` reports), about every 0.1 s.

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
    meter = Meter()  # the first device's block reports its progress; the others' are silent
    reporting = jax.jit(trainer.make_block(spec, root_seed, meter.report))
    silent = jax.jit(trainer.make_block(spec, root_seed, None))
    keys = trainer.keys(spec)

    def block_inputs(grid: Grid, index: np.ndarray, device):
        seeds, slot = np.unique(grid.seed[index], return_inverse=True)
        seeds = np.concatenate([seeds, np.full(n_slots - len(seeds), seeds[0])])
        runs = jax.tree.map(lambda a: a[index], grid.runs)
        return jax.device_put((seeds, slot.astype(np.int32), *runs), device)

    def run(grid: Grid, start: int, stop: int, advance=None) -> tuple[int, dict[str, np.ndarray]]:
        index = np.minimum(np.arange(start, start + chunk), stop - 1)
        blocks = [block_inputs(grid, index[i * per_device:(i + 1) * per_device], devices[i])
                  for i in mine]
        meter.take()  # the last chunk's late reports
        outs = dispatch(reporting, silent, blocks, advance and (lambda: advance(meter.take())))
        arrays = jax.tree.map(lambda *a: np.concatenate([np.asarray(x) for x in a]), *outs)
        first = mine[0] * per_device
        n = max(0, min(len(mine) * per_device, stop - start - first))  # not padding
        return start + first, {k: arrays[k][:n] for k in keys}

    return run


def dispatch(reporting, silent, calls: list[tuple], poll=None) -> list:
    """`[reporting(*calls[0]), silent(*calls[1]), ...]`: one block per device, all at once,
    waited for (`wait_until_ready`, calling `poll`). The blocks are the same size, so the
    first one's reports (`toymodels.progress`) are the chunk's progress; the others are
    compiled without reports (the same bits: tests/test_progress.py).

    The reporting block runs in a thread of its own, because XLA's CPU client runs a
    program that calls back to the host to its end before it returns (the others return
    at once). The thread is not waited for on an interrupt: the CLI then ends the process
    (`cli._exit_now`); a Python caller's process finishes its work at exit.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="toymodels-block")
    try:
        first = pool.submit(reporting, *calls[0])
        rest = [silent(*args) for args in calls[1:]]  # asynchronous
        wait_until_ready([first], poll)
        outs = [first.result(), *rest]
    finally:
        pool.shutdown(wait=False)
    wait_until_ready(outs, poll)
    return outs


def wait_until_ready(tree, poll=None, longest_sleep: float = 0.1) -> None:
    """Returns once every array (or Future) of `tree` is done, calling `poll()` (if given) between
    its checks. It polls, because Python runs signal handlers only between bytecodes:
    blocked in `np.asarray`, Ctrl-C or SIGTERM would wait until the chunk is done (up
    to a minute); polled, it is handled at once, and the bar moves."""
    delay = 1e-4
    while not all(x.done() if isinstance(x, Future) else x.is_ready() for x in jax.tree.leaves(tree)):
        time.sleep(delay)
        delay = min(2 * delay, longest_sleep)
        if poll is not None:
            poll()


def run_sweep(config: SweepConfig, out: str | Path | None = None, *,
              chunk_size: int | None = None, quiet: bool = False) -> Path:
    """Trains every run of `config` not yet in `out`, then finishes it (a toy-model or
    SAE sweep writes `out/results.nc`; an LLC pass adds its variables to its source's).

    A sweep with static axes (`SweepConfig.groups`) trains its groups one after another,
    each compiled once and chunked as a sweep of its own; the store holds every group's
    runs in one run index (group after group, `group_offsets`), so a crash in one group
    keeps every finished chunk of the others.

    Args:
      config: a validated sweep (`toymodels.load_config`); its trainer reads its sources
        (`Trainer.resolve`) here.
      out: the results directory; created, or resumed if it holds the same config. None
        for a trainer that writes into its source (an LLC pass).
      chunk_size: runs per compiled call; default from the work and memory a run needs.
      quiet: no progress bar or messages (but the warning that every run failed,
        `report_training`).

    Returns:
      The results directory; `toymodels.load(...)` opens it.

    Raises:
      UserError: `out` cannot hold this sweep (another config, not a directory, another
        process is writing it: see `toymodels.lock`), a source is gone, the sweep is too
        large to run (`toymodels.limits.check_sizes`; nothing is written then), or a write
        failed (a full disk). Finished chunks are kept; the same call resumes.
      Interrupted: Ctrl-C (or SIGTERM under the CLI); finished chunks are kept.
    """
    main = jax.process_index() == 0
    say = (lambda msg: None) if quiet or not main else (lambda msg: print(msg, file=sys.stderr))
    trainer = trainer_of(config)
    config = trainer.resolve(config)
    check_sizes(trainer, config, machine_memory())  # before any directory or lock
    place = trainer.place(config, out)
    description = trainer.describe(config)
    if description:
        say(description)
    grids = trainer.expand(config)
    used = max((useful_devices(jax.devices(), trainer, g.spec, grid.n_runs)
                for g, grid in zip(config.groups, grids)), key=len)
    opening = (place.store, to_toml(config), config.n_runs,
               describe_devices(used, jax.process_count(), len(jax.devices())), same_config)
    with contextlib.ExitStack() as lock:  # process 0 holds the directory's lock inside
        _open_locked(lock, place, opening, group_keys(trainer, config), say)
        try:
            _train(trainer, config, grids, place, chunk_size, quiet, say)
        except KeyboardInterrupt as e:
            raise _interrupted(e, place.store, config.n_runs) from None
    return place.lock


def same_config(stored: str, wanted: str) -> bool:
    """Whether two configs' TOML texts (a manifest's and this sweep's) parse to the same
    config, defaults filled in (a key added to a schema later orphans no results)."""
    try:
        return stored_config(stored, "manifest") == stored_config(wanted, "config")
    except (UserError, tomllib.TOMLDecodeError):
        return False


def group_offsets(config: SweepConfig) -> np.ndarray:
    """[G + 1] where each static group's runs start in the store's run index (and the end)."""
    return np.cumsum([0] + [g.n_runs for g in config.groups])


def group_keys(trainer: Trainer, config: SweepConfig):
    """`keys(start, stop)`: the arrays of a chunk of runs start..stop-1 (`Trainer.keys` of
    its group), None if those runs are not all in one group."""
    offsets = group_offsets(config)

    def keys(start: int, stop: int) -> list[str] | None:
        g = int(np.searchsorted(offsets, start, side="right")) - 1
        return trainer.keys(config.groups[g].spec) if stop <= offsets[g + 1] else None

    return keys


def _open_locked(lock: contextlib.ExitStack, place: Place, opening: tuple, keys, say) -> None:
    """Process 0 takes the lock of `place.lock` (held until `lock` closes), opens the store
    and readies it to resume; then the other processes open it. Process 0's error is raised
    on every process, so that none waits for it in a barrier."""
    main, error = jax.process_index() == 0, None
    if main:
        try:
            lock.enter_context(held(store.prepare_dir(place.lock), place.description, say))
            store.open_store(*opening)
            _ready_to_resume(place.store, opening[2], keys, say)
        except UserError as e:
            error = str(e)
    error = _agreed_error(error)
    if error:
        raise UserError(error)
    if not main:
        store.open_store(*opening)


def _ready_to_resume(out: Path, n_runs: int, keys: list[str], say) -> None:
    """Holding the lock: recreates a missing chunks/, deletes what killed writes left and
    every damaged chunk file, saying so in one line each; a damaged results.nc is a
    UserError (`store.check_results`)."""
    if store.restore_chunks_dir(out):
        say(f"{out}: {store.RESULTS} is missing and no chunk files remain: "
            f"retraining all {n_runs} runs")
    store.check_results(out)  # a damaged results.nc is no finished sweep: before the
    store.remove_leftovers(out)  # chunk files of a finished one are deleted
    for line in store.drop_damaged_chunks(out, n_runs, keys):
        say(line)


def _train(trainer: Trainer, config: SweepConfig, grids: list[Grid], place: Place,
           chunk_size: int | None, quiet: bool, say) -> None:
    """Trains the runs not yet in the store, group by group, writing each chunk, then
    finishes it."""
    main, n_runs, out = jax.process_index() == 0, config.n_runs, place.store
    done = _agreed(store.done_mask(out, n_runs))
    if done.all():
        if main and not store.is_complete(out):
            _finish(trainer, config, grids, place, say, quiet)
        say(f"{place.lock}: complete ({n_runs} runs); nothing to do")
        return
    if done.any():
        say(f"{out}: resuming: {done.sum()} of {n_runs} runs already done")
    offsets = group_offsets(config)
    with tqdm(total=n_runs, initial=int(done.sum()), unit="run", desc=config.name,
              disable=quiet or not main, dynamic_ncols=True, bar_format=BAR) as bar:
        for group, grid, first in zip(config.groups, grids, offsets):
            group_done = done[first:first + grid.n_runs]
            if not group_done.all():
                if config.static_groups:
                    bar.set_description(f"{config.name} [{_group_name(config, group)}]")
                _train_group(trainer, group, grid, group_done, first, out, n_runs, chunk_size, bar)
    _barrier("chunks written")
    if main:
        _finish(trainer, config, grids, place, say, quiet)
    _barrier("results written")


def _group_name(config: SweepConfig, group: SweepConfig) -> str:
    """E.g. 'n_hidden = 3, optimizer = "sgd"': the group's values of the static axes."""
    return group.source.removeprefix(f"{config.source} [").removesuffix("]")


def _train_group(trainer: Trainer, group: SweepConfig, grid: Grid, done: np.ndarray, first: int,
                 out: Path, n_runs: int, chunk_size: int | None, bar) -> None:
    """Trains the runs of one static group not yet done; they are runs first.. of the store."""
    spec = group.spec
    devices = useful_devices(jax.devices(), trainer, spec, grid.n_runs)
    chunk = round_chunk(chunk_size or default_chunk_size(trainer, spec, grid.n_runs), trainer,
                        spec, len(devices))
    n_slots = min(len(np.unique(grid.seed)), chunk // len(devices))
    run = make_chunk_runner(trainer, spec, group.seed, chunk, n_slots, devices)
    bar.set_postfix_str("compiling")  # the first chunk's first seconds; its reports clear it
    for start, stop in plan_chunks(done, chunk):
        # a chunk done in part (another chunk size) is retrained whole; its done runs are
        # in the bar's initial count already
        share = ChunkBar(bar, int((~done[start:stop]).sum()))
        at, arrays = run(grid, start, stop, share.advance)
        if _n_runs(arrays):
            _write_chunk(out, first + at, arrays, n_runs)
        share.close()


class ChunkBar:
    """The bar's part for one chunk of `runs` runs to train: `advance(fraction)` moves it
    by that fraction of them as the chunk trains, `close()` completes it once the chunk
    is saved (so that the bar never shows a run done that a kill would lose for long)."""

    def __init__(self, bar, runs: int):
        self.bar, self.runs, self.shown = bar, runs, 0.0

    def advance(self, fraction: float) -> None:
        step = min(fraction * self.runs, 0.99 * self.runs - self.shown)
        if step > 0:
            if self.bar.postfix:
                self.bar.set_postfix_str("", refresh=False)
            self.shown += step
            self.bar.update(step)

    def close(self) -> None:
        if self.bar.postfix:
            self.bar.set_postfix_str("", refresh=False)
        self.bar.update(self.runs - self.shown)
        self.shown = self.runs


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


def _finish(trainer: Trainer, config: SweepConfig, grids: list[Grid], place: Place, say,
            quiet: bool) -> None:
    """One Dataset of every group's chunks (`Trainer.dataset`), landed by `Trainer.finish`
    (which deletes the chunk files only once the results are written); then the one line
    on the runs that did not train (`report_training`)."""
    out = place.store
    manifest = store.read_manifest(out)
    parts = [trainer.dataset(group, grid, store.read_chunks(out, grid.n_runs, int(first)), manifest)
             for group, grid, first in zip(config.groups, grids, group_offsets(config))]
    ds = parts[0] if not config.static_groups else _combined(parts, config, manifest)
    try:
        trainer.finish(config, place, ds)
    except OSError as e:
        raise _write_failed(e, store.RESULTS, out, config.n_runs) from None
    say(f"{place.lock}: done; open with toymodels.load({str(place.lock)!r})")
    report_training(trainer, ds, quiet)


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
    return np.asarray(multihost_utils.broadcast_one_to_all(array))


def report_training(trainer: Trainer, ds: xr.Dataset, quiet: bool) -> None:
    """Says, in one line on stderr, how many runs of the finished Dataset `ds` did not
    train and what to change (`toymodels.health.warning` by `Trainer.checkup`); under
    `quiet` only when every run failed."""
    if trainer.checkup is None:
        return
    line, every = health.warning(ds, trainer.checkup)
    if line and (every or not quiet):
        print(line, file=sys.stderr)
