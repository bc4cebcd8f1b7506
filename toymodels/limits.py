"""The sizes a sweep may have, said once, and the checks that refuse a sweep past them.

A sweep that cannot run is refused in one line before anything is written (no results
directory, no lock), instead of allocating for ever, failing deep inside NumPy or XLA,
or leaving a directory that refuses the corrected config. Two places check:

* parsing (pure): an axis has at most `MAX_AXIS` values (checked before a linspace or
  geomspace is expanded), a sweep at most `MAX_RUNS` runs and `MAX_GROUPS` static groups
  (checked before the groups are built) (`check_grid`);
* the engine, once the trainer has read its sources (`toymodels.sweep.run_sweep`, before
  the directory and its lock): the memory of the runs one compiled step trains at once
  against the memory it has (`toymodels.machine.machine_memory`: this machine's, or a
  GPU's own), and the sweep's work against `MAX_WORK` (`check_sizes`), from the
  trainer's own estimates (`Trainer.memory`, `Trainer.work`), the same for every
  trainer.

No sweep in sweeps/*.toml comes near a limit: at most 32 values an axis, 4,056 runs, 27
static groups, 1.5 GiB for one compiled step (double_descent_paper.toml) and 2^47.7
values of work (the same file, the largest).
"""

from __future__ import annotations

import dataclasses
import math

from toymodels.errors import UserError

MAX_AXIS = 100_000  # values of one sweep axis (the longest shipped axis has 32)
MAX_RUNS = 2**24  # runs of one sweep, 16,777,216 (the most shipped: 4,056)
MAX_GROUPS = 4096  # static groups of one sweep, each a program of its own, compiled in
# 1-2 s on CPU (the most shipped: 27); parsing builds them all, about 1 s for 4096
MAX_WORK = 2**55  # values touched by a whole sweep (`Trainer.work` x runs): at 1-2e8 values
# a second on 2 CPU cores (small models; `toymodels.sweep.CHUNK_WORK`), about 7 years there; 2^7 times double_descent_paper.toml, the largest shipped (2^47.7)
VALUE_BYTES = 4  # `Trainer.memory` counts 4-byte values


def check_axis_length(n: int, key: str, source: str, given: str) -> None:
    """An axis of `n` values is refused past `MAX_AXIS` (`given`: what the file says)."""
    if n > MAX_AXIS:
        raise UserError(f"{source}: {key}: an axis has at most {MAX_AXIS} values, got {n} "
                        f"({given})")


def check_grid(axes: tuple, static: tuple[str, ...], source: str) -> None:
    """The runs (the product of the axes' lengths) and the static groups (of the static
    axes' lengths) of a sweep, checked against `MAX_RUNS` and `MAX_GROUPS` before its
    groups are built.

    Example:
      >>> try:
      ...     check_grid((("n_hidden", tuple(range(5000))), ("seed", (0, 1))), ("n_hidden",), "x.toml")
      ... except UserError as e:
      ...     print(e)
      x.toml: sweep: 5000 static groups (5000 n_hidden), more than the 4096 a sweep may have; shorten an axis
    """
    for limit, names, what in ((MAX_RUNS, [n for n, _ in axes], "runs"),
                               (MAX_GROUPS, [n for n, _ in axes if n in static], "static groups")):
        lengths = {n: len(v) for n, v in axes if n in names}
        total = math.prod(lengths.values())
        if total > limit:
            product = " x ".join(f"{k} {n}" for n, k in lengths.items())
            raise UserError(f"{source}: sweep: {total} {what} ({product}), more than the "
                            f"{limit} a sweep may have; shorten an axis")


def check_sizes(trainer, config, memory: tuple[int, str] | None) -> None:
    """Refuses in one line a resolved sweep that cannot run: one compiled step of a
    static group needs more than `memory` bytes (`Trainer.memory` of one run times the
    runs of its block, `Trainer.block_size`; a lower bound, without activations), the
    sweep has more than `MAX_RUNS` runs (an SAE sweep's source runs included), or its work
    (`Trainer.work` times the runs, every group) is more than `MAX_WORK`. The line names
    the group, the estimate, the limit and the spec's largest size.

    Args:
      trainer: the config's `toymodels.trainers.Trainer`.
      config: a resolved SweepConfig (`Trainer.resolve`).
      memory: (bytes, whose) a compiled step may use (`toymodels.machine.machine_memory`); None: not
        checked.
    """
    if config.n_runs > MAX_RUNS:
        raise UserError(f"{config.source}: sweep: {config.n_runs} runs, more than the "
                        f"{MAX_RUNS} a sweep may have; shorten an axis")
    for group in config.groups:
        V = trainer.block_size(group.spec)
        need = VALUE_BYTES * trainer.memory(group.spec) * V
        if memory is not None and need > memory[0]:
            raise UserError(f"{group.source}: one compiled step needs at least {_bytes(need)} "
                            f"({V} runs of {_bytes(need // V)}), more than {memory[1]} "
                            f"({_bytes(memory[0])}); {largest_size(group.spec)}")
    works = [g.n_runs * trainer.work(g.spec) for g in config.groups]
    if sum(works) > MAX_WORK:
        group = config.groups[works.index(max(works))]
        raise UserError(f"{config.source}: the sweep's work is about 2^{math.log2(sum(works)):.1f} "
                        f"values ({config.n_runs} runs), more than the limit of 2^"
                        f"{math.log2(MAX_WORK):.0f} (about 7 years on 2 CPU cores); "
                        f"{largest_size(group.spec)}")


def largest_size(spec) -> str:
    """E.g. 'its largest size: sae.width = 2000000000': the largest integer of a Spec
    (its model, data, train, sae and llc parts, seeds aside; ties all named), named as
    its key."""
    sizes = {}
    for part in ("model", "data", "train", "sae", "llc", "residual"):
        fields = getattr(spec, part)
        for f in dataclasses.fields(fields) if fields is not None else ():
            value = getattr(fields, f.name)
            if isinstance(value, int) and not isinstance(value, bool) and "seed" not in f.name:
                sizes[f"{part}.{f.name}"] = value
    top = max(sizes.values())
    return "its largest size: " + ", ".join(f"{k} = {v}" for k, v in sizes.items() if v == top)


def _bytes(n: int) -> str:
    """E.g. '1000 bytes', '1.5 GiB', '320 TiB'; past EiB, a power of two ('2^1332 bytes')."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    power = max(0, (n.bit_length() - 1) // 10)
    if power == 0:
        return f"{n} bytes"
    if power >= len(units):
        return f"2^{n.bit_length() - 1} bytes"
    return f"{n / 1024**power:.3g} {units[power]}"
