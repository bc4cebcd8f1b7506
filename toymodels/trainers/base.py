"""The trainer contract: what a kind of run gives the sweep engine (`toymodels.sweep`).

A trainer is a plugin: a frozen record of plain functions. The engine knows no trainer by
name; it expands a config's static groups into runs with the trainer's `expand`, cuts
them into chunks of whole blocks of `block_size` runs, runs the trainer's compiled
`make_block` on every device, lands each chunk in the store, and at the end builds one
Dataset with `dataset` and hands it to `finish`. Lock, resume, chunks, devices, processes,
progress and interrupts are the engine's, the same for every trainer.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from toymodels import store
from toymodels.config import SweepConfig
from toymodels.errors import UserError
from toymodels.grid import Grid
from toymodels.parsers import Parser
from toymodels.spec import Spec


@dataclasses.dataclass(frozen=True)
class Place:
    """Where a sweep's results live on disk.

    Attributes:
      lock: the directory whose lock the pass holds (`toymodels.lock`).
      store: the results directory of the chunks (`toymodels.store`); inside `lock`.
      description: what holds the lock, e.g. "toymodels sweep".
    """

    lock: Path
    store: Path
    description: str = "toymodels sweep"


def results_place(config: SweepConfig, out) -> Place:
    """A sweep's own results directory `out`, its lock inside it."""
    if out is None:
        raise UserError(f"{config.source}: needs a results directory (--out DIR)")
    return Place(Path(out), Path(out))


def finish_in_store(config: SweepConfig, place: Place, ds: xr.Dataset) -> xr.Dataset:
    """`store.finish`: results.nc written, then the chunk files deleted."""
    del config
    store.finish(place.store, ds)
    return ds


@dataclasses.dataclass(frozen=True)
class Checkup:
    """What a trainer's Dataset holds that tells the runs that did not train; the engine
    warns of them in one line after the pass (`toymodels.health.warning`).

    Attributes:
      value: the variable whose runs must be finite: a loss curve [*axes, step] (which
        must also fall: its last logged point below its first) or an estimate [*axes].
        Where the Dataset has `nonfinite_step` ([*axes], -1 or the first non-finite
        step), it counts too.
      failed: what the failed runs are, after "N of M ", e.g. "runs did not train".
      hints: what to change, one phrase per symptom: "nonfinite" (not finite),
        "above" (the curve ended over 10x `bound`), "stalled" (it did not fall).
      bound: `bound(ds) -> [*axes]`, at least the loss of all-zero parameters (the loss
        of a run that learned nothing), or None: no such bound.
    """

    value: str
    failed: str
    hints: dict[str, str]
    bound: Callable[[xr.Dataset], xr.DataArray] | None = None


@dataclasses.dataclass(frozen=True)
class Trainer:
    """One kind of run the engine trains (toy models, sparse autoencoders, LLC estimates).

    Attributes:
      parser: its `toymodels.parsers.Parser` (JAX-free): the registry name, the table
        that chooses it, the pure `parse`, what `--set` may set and what a file of it is
        (read through the properties `name`, `table`, `parse`, `settable`, `what`).
      resolve: `resolve(config) -> SweepConfig`: the config with its sources read (a
        results directory, a zoo model); where a source is gone, one UserError line.
      expand: `expand(config) -> [Grid]`: the runs of each static group, in the order
        of `config.groups` (`per_group` of a function of one group).
      block_size: `block_size(spec) -> V`, the runs one compiled step computes at once.
      make_block: `make_block(spec, root_seed, report) -> block(seeds [S], slot [R],
        *runs) -> {name: [R, ...]}`, where `runs` is `Grid.runs` (R a multiple of V);
        its scan over steps calls the engine's `report` (`toymodels.progress.ticker`) so
        that the bar moves while a chunk trains.
      keys: `keys(spec)`: the names of the arrays `block` returns (every chunk's).
      dataset: `dataset(group config, grid, columns, manifest) -> Dataset` of a group.
      work: `work(spec)`: the work of one run, in values touched (`CHUNK_WORK` units).
      memory: `memory(spec)`: the 4-byte values one run keeps while its chunk runs.
      place: `place(config, out) -> Place`: the directories of the pass.
      finish: `finish(config, place, ds) -> Dataset`: lands the finished Dataset (by
        default `store.finish`: results.nc in the store, chunk files deleted after).
      describe: `describe(config) -> str`, a line said when the pass starts ("" none).
      cpu_devices: at most this many CPU devices per process (None: every one); a
        program whose executions must not run side by side on one machine's CPU.
      checkup: how the engine tells, from the Dataset of `dataset`, the runs that did
        not train (`Checkup`); None: it does not check.
    """

    parser: Parser
    resolve: Callable[[SweepConfig], SweepConfig]
    expand: Callable[[SweepConfig], list[Grid]]
    block_size: Callable[[Spec], int]
    make_block: Callable
    keys: Callable[[Spec], list[str]]
    dataset: Callable[..., xr.Dataset]
    work: Callable[[Spec], int]
    memory: Callable[[Spec], int]
    place: Callable[[SweepConfig, "str | Path | None"], Place] = results_place
    finish: Callable[[SweepConfig, Place, xr.Dataset], xr.Dataset] = finish_in_store
    describe: Callable[[SweepConfig], str] = lambda config: ""
    cpu_devices: int | None = None
    checkup: Checkup | None = None

    @property
    def name(self) -> str:
        return self.parser.name

    @property
    def table(self) -> str:
        return self.parser.table

    @property
    def parse(self) -> Callable[[dict, str], SweepConfig]:
        return self.parser.parse

    @property
    def settable(self) -> Callable[[], dict[str, tuple[str, ...]]]:
        return self.parser.settable

    @property
    def what(self) -> str:
        return self.parser.what


def per_group(expand_one: Callable[[SweepConfig], Grid]) -> Callable[[SweepConfig], list[Grid]]:
    """`expand(config)`: `expand_one` of every static group of `config`."""
    return lambda config: [expand_one(group) for group in config.groups]


def first_nonfinite(loss: np.ndarray, final_loss: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """[R] the first logged step whose loss is not finite (final: last step), else -1."""
    bad = ~np.isfinite(loss)
    first = np.where(bad.any(axis=1), steps[np.argmax(bad, axis=1)], -1)
    return np.where((first < 0) & ~np.isfinite(final_loss), steps[-1], first).astype(np.int64)


def grid_shaped(grid: Grid) -> Callable[[np.ndarray], np.ndarray]:
    """`as_grid(a)`: an [R, ...] array as [*grid.shape, ...]."""
    return lambda a: np.asarray(a).reshape(grid.shape + np.shape(a)[1:])


def manifest_attrs(config: SweepConfig, manifest: dict) -> dict:
    """The attrs every results Dataset carries: name, config, device, versions."""
    attrs = {"name": config.name, "config": manifest["config"], "device": manifest["device"],
             "schema_version": manifest["schema_version"]}
    attrs.update({f"version_{k}": v for k, v in manifest["versions"].items()})
    return attrs
