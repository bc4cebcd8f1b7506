"""Small builders shared by the tests."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np

import toymodels as tm
from toymodels.reproduce import EXPERIMENTS

TINY = {
    "name": "tiny",
    "seed": 0,
    "model": {"kind": "relu_output", "n_features": 5, "n_hidden": 2},
    "data": {"importance_decay": 0.9, "sparsity": 0.0},
    "train": {"steps": 60, "batch_size": 64, "log_every": 20},
    "sweep": {"sparsity": [0.0, 0.5, 0.9], "seed": [0, 1]},
}


QUESTIONS = ("llc_phase_2_1", "llc_phase_3_2", "kgon_trajectories", "norms_5_2", "norms_20_5",
             "optimizers_basic", "optimizers_phase_2_1", "incidental")
"""The LLC and open-question experiments (issues 13 and 14), whose quick reproduce
tests/test_reproduce_questions.py runs."""

EARLIER = [name for name in EXPERIMENTS if name not in QUESTIONS]
"""Every other experiment, whose quick reproduce tests/test_reproduce.py runs. The two
modules split the quick reproduce so that two test workers share the work."""


def raw(**tables) -> dict:
    """TINY with tables updated, e.g. raw(train={"steps": 40}, sweep={"seed": [0]})."""
    out = copy.deepcopy(TINY)
    for table, values in tables.items():
        if isinstance(values, dict) and table in out and isinstance(out[table], dict):
            out[table].update(values)
        else:
            out[table] = values
    return out


def config(**tables) -> tm.SweepConfig:
    return tm.parse_config(raw(**tables))


def run_cli(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toymodels", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


def same_arrays(a, b, names=("W", "b", "loss", "final_loss", "final_loss_se")) -> None:
    for name in names:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
