"""Small builders shared by the tests."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np

import toymodels as tm

TINY = {
    "name": "tiny",
    "seed": 0,
    "model": {"kind": "relu_output", "n_features": 5, "n_hidden": 2},
    "data": {"importance_decay": 0.9, "sparsity": 0.0},
    "train": {"steps": 60, "batch_size": 64, "log_every": 20},
    "sweep": {"sparsity": [0.0, 0.5, 0.9], "seed": [0, 1]},
}


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
