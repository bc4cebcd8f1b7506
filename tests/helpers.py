"""Small builders shared by the tests."""

from __future__ import annotations

import copy
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import xarray as xr

import toymodels as tm
from toymodels.cli import main
from toymodels.reproduce import EXPERIMENTS

TINY = {
    "name": "tiny",
    "seed": 0,
    "model": {"kind": "relu_output", "n_features": 5, "n_hidden": 2},
    "data": {"importance_decay": 0.9, "sparsity": 0.0},
    "train": {"steps": 60, "batch_size": 64, "log_every": 20},
    "sweep": {"sparsity": [0.0, 0.5, 0.9], "seed": [0, 1]},
}

# 12 runs of 5 -> 2 (tests/test_sweep.py, tests/trainers/test_toy.py); V = 64 for this
# shape, so chunk sizes 1 and 7 both round to one group
TWELVE_RUNS = dict(train={"steps": 60, "batch_size": 64, "log_every": 20},
                   sweep={"sparsity": [0.0, 0.5, 0.9], "seed": [0, 1], "dropout": [0.0, 0.2]})
# 198 runs: 4 groups of V = 64, so that 4 devices each have a group to train (the
# device-count test of tests/test_sweep.py, in a subprocess that imports it from here)
DEVICE_RUNS = {**TWELVE_RUNS, "sweep": {**TWELVE_RUNS["sweep"], "seed": list(range(33))}}


QUESTIONS = ("llc_phase_2_1", "llc_phase_3_2", "kgon_trajectories", "norms_5_2", "norms_20_5",
             "optimizers_basic", "optimizers_phase_2_1", "incidental",
             "sae_amortisation", "sae_absorption", "sae_sparse_but_wrong",
             "uand_scaling", "compressed_computation_control", "computation_map",
             "computation_map_depth")
"""The LLC, open-question, synthetic-world SAE and computation experiments (issues 13, 14,
26 and 27), whose
quick reproduce tests/test_reproduce_questions.py runs (the SAE ones need no source run)."""

ON_REQUEST = tuple(name for name, e in EXPERIMENTS.items() if e.on_request)
"""The experiments a plain `reproduce` leaves out (SynthSAEBench-16k's three sweeps, a GPU
job): tests/test_reproduce.py checks their plan, and runs their quick version behind slow."""

EARLIER = [name for name in EXPERIMENTS if name not in QUESTIONS and name not in ON_REQUEST]
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


# ---- sweep files that must fail (tests/test_config.py, tests/test_data.py)


def write_file(tmp_path, text, name="bad.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def toml_of(r) -> str:
    """A raw config dict as TOML text (enough of TOML for the tests' configs)."""
    lines = []
    for k, v in r.items():
        if not isinstance(v, dict):
            lines.append(f"{k} = {v!r}".replace("'", '"'))
    for table, values in r.items():
        if isinstance(values, dict):
            lines.append(f"[{table}]")
            for k, v in values.items():
                if isinstance(v, dict):
                    inner = ", ".join(f"{a} = {b!r}" for a, b in v.items())
                    lines.append(f"{k} = {{ {inner} }}")
                else:
                    lines.append(f"{k} = {v!r}".replace("'", '"').replace("True", "true"))
    return "\n".join(lines) + "\n"


def fails_one_line(capsys, tmp_path, argv, fragment):
    """`toymodels *argv --out tmp_path/out` exits 2 with one line holding `fragment`, no
    traceback, and writes nothing; returns the line."""
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("toymodels: error: ") and fragment in err, err
    assert "Traceback" not in err
    assert not out.exists(), "a bad config must write nothing"
    return err


def refused(capsys, argv: list[str], starts: str, code: int = 2) -> str:
    """`toymodels *argv` (in this process) exits `code` with one line on stderr that starts
    `toymodels: error: ` + `starts` and holds no traceback; returns the line. The runner of
    the bad-input tables (tests/test_bad_*.py): a row is (id, argv, starts, code)."""
    got = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert got == code, (got, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("toymodels: error: " + starts), lines[0]
    return lines[0]


# ---- the toy models' loss in plain numpy (tests/test_evaluation.py, tests/test_data.py)


def numpy_forward(kind: str, params: dict, x: np.ndarray) -> np.ndarray:
    """The paper's formulas, written again in float64 numpy; x: [N, F] -> [N, F]."""
    relu = lambda a: np.maximum(a, 0.0)
    if kind == "abs_computation":
        return relu(relu(x @ params["W1"].T) @ params["W2"].T + params["b"])
    W, b = params["W"], params["b"]
    if kind == "relu_hidden":
        return relu(relu(x @ W.T) @ W + b)
    z = x @ W.T @ W + b
    return z if kind == "linear" else relu(z)


def numpy_loss(kind, params, x, importance):
    """[N] Σ_i I_i (target_i - y_i)² in float64."""
    target = np.abs(x) if kind == "abs_computation" else x
    return ((target - numpy_forward(kind, params, x)) ** 2 * importance).sum(axis=1)


def random_params(kind: str, F: int, H: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    if kind == "abs_computation":
        return {"W1": rng.normal(size=(H, F)), "W2": rng.normal(size=(F, H)),
                "b": rng.normal(scale=0.3, size=F)}
    return {"W": rng.normal(size=(H, F)) * 0.8, "b": rng.normal(scale=0.3, size=F)}


def f32(params):
    return {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}


def files_in(out) -> list[str]:
    """Every file under `out`, relative and sorted."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def group_parts(config: tm.SweepConfig) -> list:
    """A made-up Dataset for each of `config.groups` (toy models, no training), shaped as
    a sweep's results: its model kind's parameters at its own sizes, a loss curve of its
    own length, final_loss and a label per feature; every value distinct across groups."""
    import xarray as xr

    from toymodels.grid import expand
    from toymodels.models import get_model

    parts = []
    for g, group in enumerate(config.groups):
        grid, spec = expand(group), group.spec
        F, H, T = spec.model.n_features, spec.model.n_hidden, spec.train.n_logs
        size = {"hidden": H, "feature": F, "step": T}
        rng = np.random.default_rng(g)
        variables = {}
        for name, dims in get_model(spec.model.kind).dims.items():
            shape = grid.shape + tuple(size[d] for d in dims)
            variables[name] = (grid.names + dims, (rng.normal(size=shape) + 10 * g).astype(np.float32))
        variables["loss"] = (grid.names + ("step",),
                             rng.random(grid.shape + (T,)).astype(np.float32) + g)
        variables["final_loss"] = (grid.names, rng.random(grid.shape).astype(np.float32) + g)
        variables["polytope"] = (grid.names + ("feature",),
                                 np.full(grid.shape + (F,), f"g{g}"))
        coords = {**dict(zip(grid.names, grid.coords)), "hidden": np.arange(H),
                  "feature": np.arange(F), "step": spec.train.log_every * np.arange(1, T + 1)}
        parts.append(xr.Dataset(variables, coords=coords))
    return parts


# ---- static axes (tests/test_groups.py, tests/test_sweep.py)

FAST = {"steps": 60, "batch_size": 64, "log_every": 20}


def static_config(**sweep):
    """TINY with the static axes `sweep` first, then sparsity and seed."""
    c = raw(train=FAST)
    c["sweep"] = {**sweep, "sparsity": [0.0, 0.9], "seed": [0, 1]}
    return tm.parse_config(c)


# The LLC's known answer (tests/trainers/test_llc.py): a linear 3 -> 3 model without bias
# trained to W^T W = I, whose minima are O(3): lambda = (9 - 3) / 2 = 3.
LLC_IDENTITY = {
    "name": "identity", "seed": 0,
    "model": {"kind": "linear", "n_features": 3, "n_hidden": 3, "bias": False},
    "data": {"inputs": "exactly_one", "dataset_size": 300},
    "train": {"steps": 3000, "batch_size": 100, "learning_rate": 0.02, "weight_decay": 0.0,
              "log_every": 100},
    "sweep": {"seed": [0, 1, 2, 3]},
}
LLC_SHARP = dict(epsilon=2e-5, gamma=1.0, nbeta=1e4)  # nbeta a = 8889 >> gamma: lambda ~ 3


_PHASES = ("unrepresented", "dedicated", "superposition")


def _analysis_by_hand(W: np.ndarray) -> dict[str, np.ndarray]:
    """Per-run metrics of W [..., H, F] from the paper's formulas (REFERENCE 1.5)."""
    norms = np.linalg.norm(W, axis=-2)
    unit = W / np.maximum(norms, 1e-6)[..., None, :]
    overlaps = np.einsum("...hi,...hj->...ij", unit, W) ** 2  # (Ŵ_i·W_j)²
    diag = np.diagonal(overlaps, axis1=-2, axis2=-1)
    return {
        "feature_norm": norms,
        "superposition": overlaps.sum(-1) - diag,
        "feature_dimensionality": np.where(
            norms > 1e-6, norms**2 / overlaps.sum(-1), 0.0
        ),
        "dims_per_feature": W.shape[-2] / (W**2).sum((-2, -1)),
        "n_represented": (norms > 0.5).sum(-1),
    }


def synthetic_results(
    axes: dict,
    F: int = 5,
    H: int = 2,
    T: int = 4,
    seed: int = 0,
    attrs: dict | None = None,
) -> xr.Dataset:
    """A results dataset shaped like ``toymodels.load`` + ``analyze`` output, with random
    unit-norm W over `axes` (name -> coordinates) and the metrics of `_analysis_by_hand`
    (no training, no toymodels analysis): the plotting tests' input."""
    rng = np.random.default_rng(seed)
    names, shape = list(axes), tuple(len(v) for v in axes.values())
    W = rng.normal(size=(*shape, H, F)).astype(np.float32)
    W /= np.linalg.norm(W, axis=-2, keepdims=True)
    run = lambda *d: (*names, *d)  # noqa: E731
    density = np.ones((*shape, F))
    for name, to_density in (("sparsity", lambda v: 1 - v), ("feature_probability", lambda v: v)):
        if name in axes:
            v = np.asarray(axes[name]).reshape([-1 if n == name else 1 for n in names])
            density = density * to_density(v)[..., None]
    data = {
        "W": (run("hidden", "feature"), W),
        "b": (run("feature"), rng.normal(size=(*shape, F)).astype(np.float32) * 0.1),
        "loss": (
            run("step"),
            np.exp(-np.linspace(0, 2, T)) * rng.uniform(0.1, 1, (*shape, 1)),
        ),
        "final_loss": (names, rng.uniform(0.01, 1.0, shape)),
        "importance": (run("feature"), np.ones((*shape, F))),
        "phase": (names, rng.choice(_PHASES, shape)),
        "polytope": (run("feature"), np.full((*shape, F), "digon")),
    }
    data["density"] = (run("feature"), density)
    for name, value in _analysis_by_hand(W.astype(np.float64)).items():
        data[name] = (run("feature") if value.ndim == len(shape) + 1 else names, value)
    coords = {
        **axes,
        "feature": np.arange(F),
        "hidden": np.arange(H),
        "step": (np.arange(T) + 1) * 100,
    }
    base = {
        "name": "synthetic",
        "model_kind": "relu_output",
        "n_features": F,
        "n_hidden": H,
        "config": f'name = "synthetic"\n[model]\nkind = "relu_output"\n'
        f"n_features = {F}\nn_hidden = {H}\n[train]\nsteps = 400\n",
    }
    return xr.Dataset(data, coords=coords, attrs={**base, **(attrs or {})})
