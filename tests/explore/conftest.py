"""The explore tests' trained results: the issue's sweeps (sweeps/*.toml) on small grids,
trained and analysed. `phase` is trained once per test process for every explore module."""

from pathlib import Path

import pytest
import xarray as xr

import toymodels as tm

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"
SMALL = ("train.steps=60", "train.batch_size=64", "train.log_every=5")
REDUCED = {  # the three sweeps on small grids
    "intro": ("sweep.sparsity=[0.0, 0.7, 0.9]", "sweep.seed=[0, 1]"),
    "phase_2_1": ("sweep.relative_importance={geomspace=[0.1, 10.0, 3]}",
                  "sweep.feature_probability={geomspace=[0.01, 1.0, 4]}", "sweep.seed=[0, 1, 2]"),
    "dropout_phase": ("sweep.dropout=[0.0, 0.5]",
                      "sweep.relative_importance={geomspace=[0.1, 10.0, 3]}",
                      "sweep.feature_probability={geomspace=[0.01, 1.0, 3]}", "sweep.seed=[0, 1]"),
}


def _trained(name: str, root: Path) -> tuple[xr.Dataset, Path]:
    """One of the issue's sweeps, reduced, trained and analysed: (Dataset, directory)."""
    config = tm.load_config(SWEEPS / f"{name}.toml", SMALL + REDUCED[name])
    return tm.analyze_store(tm.run_sweep(config, root / name, quiet=True)), root / name


@pytest.fixture(scope="package")
def phase(tmp_path_factory):
    return _trained("phase_2_1", tmp_path_factory.mktemp("explore"))


@pytest.fixture
def trained():
    """`trained(name, root)`: one of `REDUCED`'s sweeps, trained and analysed into
    root / name: (Dataset, directory)."""
    return _trained
