"""`analyze_store`: the analysis variables written into a results directory in place."""

from __future__ import annotations

import sys
from pathlib import Path

import xarray as xr

from toymodels import store
from toymodels.analysis.variables import analyze
from toymodels.errors import UserError
from toymodels.lock import held


def analyze_store(out: str | Path, *, adversarial: bool = False) -> xr.Dataset:
    """Adds the analysis variables (`toymodels.analysis.analyze`) to `out/results.nc`.

    Plots and notebooks then read them without recomputing. Returns the analysed dataset.
    `adversarial=True` adds `vulnerability` too (slower; see `analyze`). Holds the
    directory's lock (`toymodels.lock`) meanwhile, so that no sweep writes it too.
    """
    store.read_manifest(out)  # a results directory, before the lock is made in it
    with held(out, "toymodels analyze", lambda msg: print(msg, file=sys.stderr)):
        try:
            ds = analyze(store.load(out), adversarial=adversarial)
        except ValueError as e:
            raise UserError(f"{out}: {e}") from None
        try:
            store.write_dataset(out, ds)
        except OSError as e:
            raise UserError(f"{out}: cannot write {store.RESULTS} ({store.why(e)}); "
                            "it is unchanged") from None
    return ds
