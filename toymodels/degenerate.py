"""Values that parse, key by key, yet leave nothing to train: inputs that are all zero
and importances that float32 flushes to zero. Pure checks across keys, run by the toy
models' parser (`toymodels.config.parse_toy`) with each sweep's (or static group's) own
values; each refusal is one `UserError` line.

Float32 is what the runs compute in: a sparsity whose 1 - S rounds to 0, or a value past
float32's range, is refused by the key's own check (`toymodels.checks.number`). What is
left needs other keys: how many examples a run sees, and the importances of F features.
"""

from __future__ import annotations

import math

import numpy as np

from toymodels.errors import UserError

FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # smallest normal float32, ~1.2e-38: below
# it values are subnormal, which GPUs flush to zero


def round_up(x: float) -> float:
    """`x` > 0 rounded up to 3 significant digits (a bound that, given, is allowed)."""
    scale = 10.0 ** (math.floor(math.log10(x)) - 2)
    return math.ceil(x / scale * (1 - 1e-12)) * scale


def values(key: str, data: dict, axes: dict) -> list[tuple[str, object]]:
    """[(where, value)] of a [data] key over the sweep: each value of its axis, or its
    scalar (or list) in [data]; [] where it is not given."""
    if key in axes:
        return [(f"sweep.{key}", v) for v in axes[key]]
    return [(f"data.{key}", data[key])] if key in data else []


def check_active(data: dict, axes: dict, n_features: int, examples: int, why: str,
                 source: str) -> None:
    """Refuses a density (sparsity or feature_probability) under which a run's inputs
    hold fewer than one active feature in all: `examples` (`why` says what they are,
    e.g. "train.batch_size x train.steps = 2560") times the sum of the F features'
    probabilities is below 1, so every input the run sees is zero (expected).

    Example:
      >>> check_active({"sparsity": 0.9999999}, {}, 5, 2560, "2560", "s.toml")
      Traceback (most recent call last):
      ...
      toymodels.errors.UserError: s.toml: data.sparsity: leaves 0.00128 active features expected in all the run's 2560 examples: every input is zero; at most 0.9999218, got 0.9999999
    """
    for key, to_p in (("sparsity", lambda s: 1.0 - s), ("feature_probability", lambda p: p)):
        for where, value in values(key, data, axes):
            p = np.broadcast_to(to_p(np.asarray(value, np.float64)), (n_features,))
            expected = examples * float(p.sum())
            if expected < 1:
                least = round_up(1.0 / (n_features * examples))
                decimals = 2 - math.floor(math.log10(least))
                bound = (f"at most {1 - least:.{decimals}f}" if key == "sparsity"
                         else f"at least {least:.3g}")
                raise UserError(f"{source}: {where}: leaves {expected:.3g} active features "
                                f"expected in all the run's {why} examples: every input is "
                                f"zero; {bound}, got {value!r}")


def check_importances(data: dict, axes: dict, n_features: int, source: str) -> None:
    """Refuses importances that underflow float32: a positive importance below its
    smallest normal number (`FLOAT32_TINY`), which the runs would treat as zero (or as a
    subnormal that GPUs flush to zero): a decay d whose d^(F - 1) is that small, a
    relative_importance or a value of the importance list.

    Example:
      >>> check_importances({"importance_decay": 1e-20}, {}, 5, "s.toml")
      Traceback (most recent call last):
      ...
      toymodels.errors.UserError: s.toml: data.importance_decay: must be at least 3.3e-10 with model.n_features = 5: the last feature's importance decay^4 underflows float32 (below 1.18e-38), got 1e-20
    """
    for where, decay in values("importance_decay", data, axes):
        if n_features > 1 and decay ** (n_features - 1) < FLOAT32_TINY:
            least = round_up(FLOAT32_TINY ** (1 / (n_features - 1)))
            raise UserError(f"{source}: {where}: must be at least {least:.3g} with "
                            f"model.n_features = {n_features}: the last feature's importance "
                            f"decay^{n_features - 1} underflows float32 (below "
                            f"{FLOAT32_TINY:.3g}), got {decay!r}")
    for key in ("relative_importance", "importance"):
        for where, value in values(key, data, axes):
            tiny = [v for v in np.atleast_1d(value) if 0 < v < FLOAT32_TINY]
            if tiny:
                raise UserError(f"{source}: {where}: each importance must be 0 or at least "
                                f"{FLOAT32_TINY:.3g} (float32's smallest normal number), got "
                                f"{value!r}")


def check_data(data: dict, axes: dict, n_features: int, batch: int, steps: int,
               dataset_size: int, source: str) -> None:
    """`check_active` and `check_importances` of a toy sweep (or static group): its runs
    see `dataset_size` examples (a finite dataset), else `batch` x `steps` fresh ones."""
    why = (f"data.dataset_size = {dataset_size}" if dataset_size
           else f"train.batch_size x train.steps = {batch} x {steps} = {batch * steps}")
    check_active(data, axes, n_features, dataset_size or batch * steps, why, source)
    check_importances(data, axes, n_features, source)
