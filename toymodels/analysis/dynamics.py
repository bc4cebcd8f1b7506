"""Feature dimensionality over training and its jumps (REFERENCE 1.10, "energy levels").

Role in the data flow: a sweep with `[train] snapshot_every = k` stores `W_snapshots`
(*axes, snapshot, hidden, feature) at steps 0, k, 2k, ...; `analyze(ds)` turns them into
`dimensionality_snapshots` (*axes, snapshot, feature) through
`dimensionality_over_training` (pure jnp on one run, vmapped over runs in one place,
`toymodels.analysis.variables`). `jumps` and `jump_table` then find where a feature's D_i
changes abruptly, e.g. 1/2 -> 1 when a digon resolves (with a loss drop at that time).

What counts as a jump: |D_i(s + 1) - D_i(s)| > `JUMP_THRESHOLD` = 0.1 between two
consecutive snapshots. The paper's levels (1, 3/4, 2/3, 1/2, 2/5, 3/8, 0) are mostly
more than 0.1 apart (0 <-> 1/2, 1/2 <-> 1, 1/2 <-> 2/3 are 0.17 to 0.5), while smooth
drift moves D_i by little per snapshot if snapshots are dense enough: choose
`snapshot_every` so that a smooth change per interval stays well below 0.1 (the changes
between 2/5, 3/8 and 1/3 are below the threshold and are not reported as jumps).
"""

import jax
import jax.numpy as jnp
import numpy as np

from toymodels.analysis.metrics import feature_dimensionality

JUMP_THRESHOLD = 0.1  # |change of D_i| between consecutive snapshots above this: a jump


def dimensionality_over_training(W_snapshots: jax.Array) -> jax.Array:
    """D_i of every feature at every snapshot of one run.

    Args:
      W_snapshots: [S, H, F] weights at S snapshots.

    Returns:
      [S, F] feature dimensionalities (`feature_dimensionality` per snapshot).

    Example:
      >>> Ws = jnp.array([[[1.0, 1.0]], [[1.0, -1.0]]])  # a pair forming in 1-D
      >>> dimensionality_over_training(Ws)
      Array([[0.5, 0.5],
             [0.5, 0.5]], dtype=float32)
    """
    return jax.vmap(feature_dimensionality)(W_snapshots)


def jumps(D: jax.Array, threshold: float = JUMP_THRESHOLD) -> jax.Array:
    """Where D_i changes by more than `threshold` between consecutive snapshots.

    Args:
      D: [S, F] dimensionalities over snapshots.
      threshold: minimum |change| (0.1).

    Returns:
      [S - 1, F] bool; entry [s, i] is a jump of feature i from snapshot s to s + 1.

    Example:
      >>> jumps(jnp.array([[0.5, 0.0], [0.52, 0.0], [1.0, 0.05]]))
      Array([[False, False],
             [ True, False]], dtype=bool)
    """
    return jnp.abs(jnp.diff(D, axis=0)) > threshold


def n_jumps(D: jax.Array, threshold: float = JUMP_THRESHOLD) -> jax.Array:
    """Number of jumps of each feature over training; [S, F] -> [F] int32.

    Example:
      >>> n_jumps(jnp.array([[0.0, 0.5], [0.5, 0.5], [1.0, 0.5]]))
      Array([2, 0], dtype=int32)
    """
    return jnp.sum(jumps(D, threshold), axis=0, dtype=jnp.int32)


def jump_table(
    D, steps, threshold: float = JUMP_THRESHOLD
) -> list[tuple[int, int, int, float, float]]:
    """Every jump of one run as (feature, step before, step after, D before, D after).

    Host-side (numpy), for reports and plots; ordered by step, then feature.

    Args:
      D: [S, F] dimensionalities over snapshots (array or DataArray).
      steps: [S] the snapshots' training steps (the `snapshot` coordinate).
      threshold: minimum |change| (0.1).

    Returns:
      A list of tuples, one per jump.

    Example:
      >>> jump_table(np.array([[0.5, 0.0], [1.0, 0.0]]), [0, 100])
      [(0, 0, 100, 0.5, 1.0)]
    """
    D, steps = np.asarray(D, np.float64), np.asarray(steps)
    where = np.argwhere(np.abs(np.diff(D, axis=0)) > threshold)
    return [
        (int(i), int(steps[s]), int(steps[s + 1]), float(D[s, i]), float(D[s + 1, i]))
        for s, i in where
    ]
