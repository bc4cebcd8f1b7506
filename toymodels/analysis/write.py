"""`analyze_store`: the analysis variables written into a results directory in place."""

from __future__ import annotations

import sys
from pathlib import Path

import xarray as xr

from toymodels import store
from toymodels.analysis.variables import analyze, check_extras
from toymodels.errors import UserError
from toymodels.lock import held


def analyze_store(out: str | Path, *, adversarial: bool = False, extras=()) -> xr.Dataset:
    """Adds the analysis variables (`toymodels.analysis.analyze`) to `out/results.nc`.

    Plots and notebooks then read them without recomputing. Returns the analysed dataset.
    `extras` (names of `toymodels.analysis.EXTRAS`) adds those costly variables too, and
    `adversarial=True` adds `vulnerability` (see `analyze`); an unknown extra is a
    UserError listing the valid ones. Holds the directory's lock (`toymodels.lock`)
    meanwhile, so that no sweep writes it too.
    """
    try:
        extras = check_extras(extras, adversarial)
    except ValueError as e:
        raise UserError(str(e)) from None
    store.read_manifest(out)  # a results directory, before the lock is made in it
    with held(out, "toymodels analyze", lambda msg: print(msg, file=sys.stderr)):
        try:
            ds = analyze(store.load(out), extras=extras)
        except ValueError as e:
            raise UserError(f"{out}: {e}") from None
        try:
            store.write_dataset(out, ds)
        except OSError as e:
            raise UserError(f"{out}: cannot write {store.RESULTS} ({store.why(e)}); "
                            "it is unchanged") from None
    return ds
