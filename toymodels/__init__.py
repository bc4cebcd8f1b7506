"""toymodels: train thousands of toy models of superposition at once, in JAX.

The flow: `load_config(toml)` -> `run_sweep(config, out)` -> `load(out)` (an
xarray.Dataset) -> `analyze(ds)` -> `toymodels.plotting`.

The names below load their module on first use (PEP 562, as SciPy does): `import
toymodels` and the command line's `--help` and argument errors do not import JAX.
"""

import importlib

_EXPORTS = {  # name -> the module that defines it
    "analyze": "toymodels.analysis", "analyze_store": "toymodels.analysis.write",
    "SweepConfig": "toymodels.config", "to_toml": "toymodels.config",
    "UserError": "toymodels.errors", "Grid": "toymodels.grid", "expand": "toymodels.grid",
    "Hyper": "toymodels.hyper", "make_hyper": "toymodels.hyper", "MODELS": "toymodels.models",
    "get_model": "toymodels.models", "ModelSpec": "toymodels.spec", "Spec": "toymodels.spec",
    "TrainSpec": "toymodels.spec", "load": "toymodels.store", "run_sweep": "toymodels.sweep",
    "RunOutput": "toymodels.train", "make_train": "toymodels.train",
    "make_train_one": "toymodels.train", "TRAINERS": "toymodels.trainers",
    "load_config": "toymodels.parsers", "parse_config": "toymodels.parsers",
}

__version__ = "0.1.0"

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Loads an exported name's module when the name is first used."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'toymodels' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
