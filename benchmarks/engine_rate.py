"""The JAX side of the torch comparisons: a parsed sweep config timed through the sweep
engine's real path, as `toymodels sweep` trains a static group (shared by
`residual_throughput.py` and `spd_throughput.py`).

`chunk_runner(config)` builds what `toymodels.sweep._train_group` builds for the config's
single static group: its trainer (`toymodels.trainers.trainer_of`, sources resolved), the
devices it would use (`useful_devices`, one JAX CPU device per core when the caller set
`jax_num_cpu_devices`), one chunk holding every run (`round_chunk`) and
`make_chunk_runner`. `time_chunk(runner)` calls it once untimed (compiles, warms up; not again with
`warm=True`) and once timed.
The timed call is a whole chunk: initialisation, every step, and the trainer's final
evaluation, as a sweep pays them.

Needs jax and the project (import errors propagate; the drivers catch them).
"""
from __future__ import annotations

import time

import jax
import numpy as np

from toymodels.config import SweepConfig
from toymodels.sweep import make_chunk_runner, round_chunk, useful_devices
from toymodels.trainers import trainer_of


def chunk_runner(config: SweepConfig):
    """(run, grid, n_devices, chunk) of the config's one static group; build it once per
    config (the first call of `run` compiles)."""
    trainer = trainer_of(config)
    config = trainer.resolve(config)
    if len(config.groups) != 1:
        raise ValueError(f"a benchmark config has one static group; this one has {len(config.groups)}")
    group, grid = config.groups[0], trainer.expand(config)[0]
    devices = useful_devices(jax.devices(), trainer, group.spec, grid.n_runs)
    chunk = round_chunk(grid.n_runs, trainer, group.spec, len(devices))
    n_slots = min(len(np.unique(grid.seed)), chunk // len(devices))
    run = make_chunk_runner(trainer, group.spec, group.seed, chunk, n_slots, devices)
    return run, grid, len(devices), chunk


def time_chunk(runner, warm: bool = False) -> dict:
    """Unless `warm`, one untimed call of the config's chunk (compile + warm-up; its time
    kept as first_call_seconds, else None), then one timed call: seconds, cores_busy (process CPU time / wall
    time), n_runs (real runs; the chunk may pad), chunk, devices, and the chunk's arrays."""
    run, grid, n_devices, chunk = runner
    first_call = None
    if not warm:
        start = time.perf_counter()
        run(grid, 0, grid.n_runs)
        first_call = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    _, arrays = run(grid, 0, grid.n_runs)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "cores_busy": (time.process_time() - cpu) / seconds,
            "first_call_seconds": first_call, "n_runs": grid.n_runs, "chunk": chunk,
            "devices": n_devices, "arrays": arrays}
