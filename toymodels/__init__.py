"""toymodels: train thousands of toy models of superposition at once, in JAX.

The flow: `load_config(toml)` -> `run_sweep(config, out)` -> `load(out)` (an
xarray.Dataset) -> `analyze(ds)` -> `toymodels.plotting`.
"""

from toymodels.analysis import analyze
from toymodels.analysis.write import analyze_store
from toymodels.config import SweepConfig, to_toml
from toymodels.errors import UserError
from toymodels.grid import Grid, expand
from toymodels.hyper import Hyper, make_hyper
from toymodels.models import MODELS, get_model
from toymodels.spec import ModelSpec, Spec, TrainSpec
from toymodels.store import load
from toymodels.sweep import run_sweep
from toymodels.train import RunOutput, make_train, make_train_one
from toymodels.trainers import TRAINERS, load_config, parse_config

__version__ = "0.1.0"

__all__ = [
    "MODELS", "TRAINERS", "Grid", "analyze", "analyze_store", "Hyper", "ModelSpec", "RunOutput", "Spec", "SweepConfig",
    "TrainSpec", "UserError", "expand", "get_model", "load", "load_config", "make_hyper",
    "make_train", "make_train_one", "parse_config", "run_sweep", "to_toml",
]
