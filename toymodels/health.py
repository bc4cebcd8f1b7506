"""Whether a finished pass's runs trained: the one warning line the engine says after it.

The engine (`toymodels.sweep`) judges the Dataset a trainer built (`Trainer.dataset`)
by what the trainer declares of it (`Trainer.checkup`, a `toymodels.trainers.Checkup`),
never by the trainer's name. A run failed when its value (a loss curve, an estimate) is
not finite (`nonfinite_step` where the Dataset has it), when its loss ended over `ABOVE`
times the loss of all-zero parameters (`Checkup.bound`: an optimiser that ran but made
garbage), or when its loss curve did not fall (its last logged point not below its first;
a heuristic: a curve of fresh batches is noisy, and a short run may end a little above
where it began). Each run counts once, under the first of these it shows.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

ABOVE = 10.0  # a loss that ends this many times above the all-zero parameters' failed
NONFINITE, HIGH, STALLED = "nonfinite", "above", "stalled"  # the symptoms, in this order
SHOWN = 3  # runs named per symptom
NONFINITE_STEP = "nonfinite_step"  # [*axes] the first logged step with a non-finite loss, or -1


def ends(curve: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """(first, last, whether they differ): each run's first and last finite point of its
    curve [*axes, step] (NaN where none: static groups of fewer steps are padded with NaN)."""
    curve = curve.transpose(..., "step")
    values, T = curve.values, curve.sizes["step"]
    finite = np.isfinite(values)
    at_first, at_last = np.argmax(finite, -1), T - 1 - np.argmax(finite[..., ::-1], -1)
    point = lambda at: np.take_along_axis(values, at[..., None], -1)[..., 0]
    like = curve.isel(step=0, drop=True).copy
    return like(data=point(at_first)), like(data=point(at_last)), like(data=at_last > at_first)


def symptoms(ds: xr.Dataset, value: str, bound: xr.DataArray | None) -> dict[str, xr.DataArray]:
    """{symptom: [*axes] bool}: the runs of `ds` that failed, each under its first symptom
    (`value`: a loss curve [*axes, step] or an estimate [*axes]; `bound`: [*axes] the loss
    of all-zero parameters, or None)."""
    if "step" in ds[value].dims:
        first, last, two = ends(ds[value])
    else:
        first = last = ds[value]
        two = xr.zeros_like(last, dtype=bool)
    bad = ~np.isfinite(last)
    if NONFINITE_STEP in ds:
        bad = bad | (ds[NONFINITE_STEP] >= 0)
    high = (last > ABOVE * bound) & ~bad if bound is not None else xr.zeros_like(bad)
    return {NONFINITE: bad, HIGH: high, STALLED: two & (last >= first) & ~bad & ~high}


PHRASES = {NONFINITE: "with a non-finite {value}",
           STALLED: "whose {value} did not fall (its last logged value not below its first)",
           HIGH: f"whose {{value}} ended over {ABOVE:g}x that of all-zero parameters"}


def runs_named(ds: xr.Dataset, mask: xr.DataArray) -> str:
    """The first `SHOWN` runs of `mask`, e.g. '(seed=0) at step 10, (seed=1) at step 10 ...'
    (the step where `nonfinite_step` holds one)."""
    step = ds[NONFINITE_STEP].broadcast_like(mask).values if NONFINITE_STEP in ds else None
    names = []
    for index in np.argwhere(mask.values)[:SHOWN]:
        coords = ", ".join(f"{d}={ds[d].values[i]}" for d, i in zip(mask.dims, index))
        at = step[tuple(index)] if step is not None else -1
        names.append(f"({coords})" + (f" at step {at}" if at >= 0 else ""))
    return ", ".join(names) + (" ..." if int(mask.sum()) > SHOWN else "")


def warning(ds: xr.Dataset, checkup) -> tuple[str | None, bool]:
    """(the one warning line, None if every run is fine; whether every run failed) of a
    finished pass's Dataset `ds` by its trainer's `checkup` (`toymodels.trainers.Checkup`).

    Example: 'warning: 2 of 2 runs did not train: 2 with a non-finite loss ((seed=0) at
    step 10, (seed=1) at step 10; see nonfinite_step): lower train.learning_rate ...'.
    """
    bound = checkup.bound(ds) if checkup.bound is not None else None
    found = symptoms(ds, checkup.value, bound)
    total, failed = found[NONFINITE].size, sum(int(m.sum()) for m in found.values())
    if not failed:
        return None, False
    see = f"; see {NONFINITE_STEP}" if NONFINITE_STEP in ds else ""
    parts = [f"{int(m.sum())} {PHRASES[s].format(value=checkup.value)} "
             f"({runs_named(ds, m)}{see if s == NONFINITE else ''}): {checkup.hints[s]}"
             for s, m in found.items() if m.any()]
    return f"warning: {failed} of {total} {checkup.failed}: {'; '.join(parts)}", failed == total
