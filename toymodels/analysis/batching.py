"""The one vmap over runs, and the chunks that bound its memory.

Every per-run quantity of the analysis (toy models in `toymodels.analysis.variables`, SAEs
in `toymodels.dictionary.analysis`) is a pure function of ONE run's arrays; `per_run`
batches it over a leading run axis R, and `in_chunks` applies the batched function to
equal zero-padded chunks of the runs (one compilation serves every chunk), with a
progress bar on stderr where there are several (`analyze`, `explore` of a large sweep).
"""

from collections.abc import Callable

import jax
import numpy as np
from tqdm.auto import tqdm

CHUNK_ELEMENTS = 2**20  # runs per chunk * F * F: keeps [chunk, F, F] arrays in cache
MIN_CHUNKS_SHOWN = 8  # fewer chunks: no bar (seconds of work at most)


def per_run(fn: Callable, in_axes=0) -> Callable:
    """Batch a one-model function over a leading run axis R (the one vmap).

    Args:
      fn: a pure jnp function of one model's arrays.
      in_axes: as `jax.vmap`'s; None for an argument shared by every run.

    Example:
      >>> from toymodels.analysis import metrics
      >>> per_run(metrics.feature_norms)(np.ones((2, 1, 3), np.float32)).shape
      (2, 3)
    """
    return jax.jit(jax.vmap(fn, in_axes=in_axes))


def in_chunks(
    fn: Callable,
    arrays: tuple,
    run_elements: int,
    shared: tuple = (),
    budget: int | None = None,
) -> dict:
    """Apply `fn` to run arrays [R, ...] in equal zero-padded chunks; concatenate.

    Args:
      fn: a `per_run` function of (*arrays, *shared).
      arrays: per-run arrays with a leading R axis (None entries pass through).
      run_elements: elements one run needs (e.g. F * F), to size the chunks.
      shared: arguments given unchanged to every chunk.
      budget: elements per chunk (default `CHUNK_ELEMENTS`).

    Example:
      >>> double = per_run(lambda x: {"twice": 2 * x})
      >>> in_chunks(double, (np.arange(5.0),), 1, budget=2)["twice"].tolist()
      [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    n_runs = arrays[0].shape[0]
    budget = CHUNK_ELEMENTS if budget is None else budget
    chunk = max(1, min(n_runs, budget // max(1, run_elements)))
    n_chunks = max(1, -(-n_runs // chunk))

    def pad(a):
        if a is None:
            return None
        integer = np.issubdtype(a.dtype, np.integer)  # e.g. data seeds: kept exact
        out = np.zeros((n_chunks * chunk, *a.shape[1:]), np.int32 if integer else np.float32)
        out[:n_runs] = a
        return out

    padded = [pad(a) for a in arrays]
    def part(a, i):
        return None if a is None else a[i * chunk : (i + 1) * chunk]

    outs = []
    with tqdm(total=n_runs, unit="run", desc="analyze", leave=False,
              disable=n_chunks < MIN_CHUNKS_SHOWN, dynamic_ncols=True) as bar:
        for i in range(n_chunks):  # each chunk waited for, so that the bar tells the truth
            outs.append(jax.device_get(fn(*(part(a, i) for a in padded), *shared)))
            bar.update(min(chunk, n_runs - i * chunk))
    return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs)[:n_runs], *outs)
