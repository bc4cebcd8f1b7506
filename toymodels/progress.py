"""Progress from inside a compiled block: the engine's bar moves while a chunk trains.

A chunk is one compiled call per device (`toymodels.sweep.make_chunk_runner`), often tens
of seconds. So that the bar moves during it, a trainer's program calls the engine's host
function `report(done)` from its scan over steps (`jax.debug.callback`, unordered, no
operands, so it is neither batched by `vmap` nor a data dependency of any value), about
`TICKS` times per block: `done` is the fraction of the block's work those steps are. The
engine adds them up on the host (`Meter`) and moves the bar from its own thread.

The callback changes no value the program computes (tests/test_progress.py checks the
bits against a program without it).

Example (traced code of a trainer, a scan over `n` steps run `G` times per block):
  tick = ticker(report, n, share=1 / G)
  ... inside the scan body: tick(step)
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Callable

import jax

TICKS = 64  # host calls per scan over steps, about: a tenth of a second apart in a 10 s chunk

Report = Callable[[float], None]  # report(done): done, a fraction of one block's work


def ticker(report: Report | None, n_steps: int, share: float = 1.0) -> Callable[[jax.Array], None]:
    """`tick(step)` for the body of a scan over `n_steps` steps (step 0..n_steps-1, a
    traced scalar not batched by vmap): every `n_steps // TICKS` steps it calls
    `report(share * every / n_steps)` on the host. `share`: the fraction of the block's
    work one whole scan is (1 / G when the scan runs once per each of G blocks). With
    `report` None (a program run outside the engine) `tick` does nothing."""
    if report is None or n_steps <= 0:
        return lambda step: None
    every = max(1, n_steps // TICKS)
    say = partial(report, share * every / n_steps)

    def tick(step: jax.Array) -> None:
        jax.lax.cond((step + 1) % every == 0, lambda: jax.debug.callback(say), lambda: None)

    return tick


class Meter:
    """The work reported by the blocks of a chunk, summed on the host.

    `report` is called from the thread that runs the reporting block (the first
    device's, `toymodels.sweep.dispatch`); `take` from the engine's: it returns the work
    reported since the last `take`, in blocks (a whole block is 1)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._done = 0.0

    def report(self, done: float) -> None:
        with self._lock:
            self._done += done

    def take(self) -> float:
        with self._lock:
            done, self._done = self._done, 0.0
        return done
