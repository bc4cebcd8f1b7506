"""The SPD trainer: a sweep file with an `[spd]` table (`toymodels.spd_config`).

Its runs are Stochastic Parameter Decompositions of toy models or of a one-layer residual
MLP (`toymodels.spd.train.make_train_spd`). `resolve_spd` reads a results-directory or zoo
source (the SAE trainer's reader, `toymodels.dictionary.config.read_source`, or
`residual_source`); `expand_spd(config)` gives the flat run axis R of its axes, each run's
`SPDRun` holding its hyperparameters (its input law `feature_probability` [n]) and its
target's arrays (W [d, n] and b [n], or a residual MLP's `RESIDUAL_ARRAYS`);
`build_spd_dataset` labels a group's arrays: dims (*axes, component, gate, hidden or
embed and neuron, feature, [hidden_out], step), each run's `density` [feature]; with a
`source_run` axis the source's sweep coordinates ride along it as `source_<axis>`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import jax
import numpy as np
import xarray as xr

from toymodels import store, zoo
from toymodels.config import SweepConfig
from toymodels.dictionary.config import (read_source, run_coordinates, source_coordinates,
                                         source_runs)
from toymodels.errors import UserError
from toymodels.grid import Grid, axis_columns, density, flat_runs, make_grid, run_values
from toymodels.parsers import PARSERS
from toymodels.progress import Report
from toymodels.residual_config import SIGNED_TASKS, parse_residual
from toymodels.spd import decomposition
from toymodels.spd.targets import (MATRIX_DIMS, RESIDUAL_ARRAYS, RESIDUAL_MATRIX_DIMS, hand_b,
                                   hand_W, matrix_names, tms_target)
from toymodels.spd.train import (CURVES, SPDRun, make_train_spd, names_of, spd_block_size,
                                  spd_keys)
from toymodels.spd_config import HAND, HYPER_KEYS, SPD_SCHEMA, ZOO, parse_spd
from toymodels.spec import Spec
from toymodels.trainers.base import (Checkup, Trainer, first_nonfinite, grid_shaped,
                                     manifest_attrs, per_group)

GATE_DIMS = {"gate_in_w": ("component", "gate"), "gate_in_b": ("component", "gate"),
             "gate_out_w": ("component", "gate"), "gate_out_b": ("component",)}
DESCRIPTIONS = {
    "loss": "SPD training objective (coefficients applied), each log period's mean",
    "loss_faithfulness": "(1/N) Σ_l ||W_l − Uᵀ V||² (before its coefficient)",
    "loss_stochastic": "MSE of the output with every matrix masked (before its coefficient)",
    "loss_layerwise": "MSE of the output with one matrix masked at a time, mean over matrices",
    "loss_importance": "Σ_l Σ_c |σ_H,upper(γ_c)|^p, mean over the batch (before β)",
}


def residual_source(path: str, source: str) -> SweepConfig | None:
    """The config of a finished residual-MLP results directory, or None when `path` is not
    one (a toy-model source, read by `read_source`).

    Raises:
      UserError: a residual source SPD cannot decompose: unfinished, static axes, more than
        one layer, uand, or an input law other than independent uniform magnitudes.
    """
    out = Path(path)
    if not (out / store.MANIFEST).exists():
        return None
    raw = tomllib.loads(store.read_manifest(out)["config"])
    if "residual" not in raw:
        return None
    where = f"{source}: spd.source: {path}"
    if not store.is_complete(out):
        raise UserError(f"{where}: the sweep is not finished; finish it first")
    config = parse_residual(raw, f"{path}/{store.MANIFEST}")
    if config.static_groups:
        raise UserError(f"{where} has static axes ({', '.join(n for n, _ in config.static_axes)});"
                        " give a sweep without them")
    r, law = config.spec.residual, config.spec.data
    if r.n_layers != 1 or r.task not in SIGNED_TASKS:
        raise UserError(f"{where}: a residual MLP of {r.n_layers} layer(s), task {r.task}; SPD "
                        f"decomposes one layer of a real-valued task ({', '.join(SIGNED_TASKS)})")
    if (law.inputs, law.correlation, law.magnitude, law.unit_norm) != (
            "bernoulli", "independent", "uniform", False):
        raise UserError(f"{where}: its input law is not independent features of uniform "
                        "magnitude, the only law SPD samples")
    return config


def read_spd_source(spd: dict, source: str):
    """(model, runs, residual, p) of a results directory or zoo source (the `reader` of
    `parse_spd`): residual the ResidualSpec of a residual-MLP source and p its runs' one
    feature probability (None and None for a toy-model source)."""
    residual = None if spd["source"].startswith(ZOO) else residual_source(spd["source"], source)
    if residual is None:
        model, _, runs = read_source(spd, source, "spd")
        return model, runs, None, None
    runs = source_runs(residual, spd.get("runs", "all"), source, "spd")
    R, n = residual.n_runs, residual.spec.residual.n_features
    p = np.unique(density(residual.data, axis_columns(residual), R, n)[list(runs)])
    if len(p) != 1 and "feature_probability" not in spd:
        raise UserError(f"{source}: spd.runs: the source runs have feature probabilities "
                        f"{', '.join(f'{v:g}' for v in p)}; pick runs of one, or set "
                        "spd.feature_probability")
    return residual.spec.model, runs, residual.spec.residual, float(f"{p[0]:.7g}")


def resolve_spd(config: SweepConfig) -> SweepConfig:
    """The config with its source read (`Trainer.resolve`): an unresolved one completed, a
    resolved one checked against its source as it is now. A hand target reads nothing."""
    if config.spec is not None and config.spec.spd.source == HAND:
        return config
    raw = config.table if config.spec is None else config.to_dict()
    return parse_spd(raw, config.source, reader=read_spd_source)


def source_arrays(config: SweepConfig) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """(arrays, density [S, n]) of the S source models (`spec.spd.runs`; S = 1 for a zoo or
    hand target): arrays a toy model's {"W": [S, d, n], "b": [S, n]} or a residual MLP's
    `RESIDUAL_ARRAYS` [S, ...] (b_in, b_out zeros without biases; W_U = W_Eᵀ unless
    learned); density a toy results directory's runs' own, else None (the law is the
    key's: a residual source's one feature probability is its default)."""
    spec = config.spec
    if spec.spd.source == HAND:
        n, d = spec.model.n_features, spec.model.n_hidden
        return {"W": hand_W(n, d)[None], "b": hand_b(n, d)[None]}, None
    if spec.spd.source.startswith(ZOO):
        entry = zoo.load(spec.spd.source.removeprefix(ZOO))
        return {"W": np.asarray(entry.W, np.float32)[None],
                "b": np.asarray(entry.b, np.float32)[None]}, None
    ds = store.load(spec.spd.source)
    runs = np.asarray(spec.spd.runs)
    if spec.residual is None:
        axes = list(ds.W.dims[:-2])
        flat = lambda da: flat_runs(da, axes)[runs].astype(np.float32)
        return ({"W": flat(ds.W), "b": flat(ds.b)}, flat(ds.density.broadcast_like(ds.b)))
    axes = list(ds.W_E.dims[:-2])
    read = lambda name: flat_runs(ds[name], axes)[runs].astype(np.float32)
    out = {"W_E": read("W_E"), "W_in": read("W_in_0"), "W_out": read("W_out_0")}
    S, k, D = out["W_in"].shape
    out["b_in"] = read("b_in_0") if "b_in_0" in ds else np.zeros((S, k), np.float32)
    out["b_out"] = read("b_out_0") if "b_out_0" in ds else np.zeros((S, D), np.float32)
    out["W_U"] = read("W_U") if "W_U" in ds else np.swapaxes(out["W_E"], -1, -2).copy()
    return out, None


def expand_spd(config: SweepConfig) -> Grid:
    """The decompositions of a group of an SPD sweep (no static axes), each with its target
    and its input law: `feature_probability` [R, n] the key's value where given (in
    `[spd]` or swept), else a results-directory source run's own density."""
    value = run_values(config)
    arrays, density = source_arrays(config)
    position = {run: i for i, run in enumerate(config.spec.spd.runs)}
    column = axis_columns(config)
    which = (np.array([position[int(r)] for r in column["source_run"]])
             if "source_run" in column else np.zeros(config.n_runs, int))
    spd_value = lambda key: value(key, config.table.get(key, SPD_SCHEMA[key].default))
    hyper = {k: spd_value(k).astype(np.float32) for k in HYPER_KEYS}
    given = "feature_probability" in config.table or "feature_probability" in column
    hyper["feature_probability"] = (
        np.repeat(hyper["feature_probability"][:, None], config.spec.model.n_features, axis=1)
        if given or density is None else density[which])
    hyper = decomposition.SPDHyper(
        **hyper,
        learning_rate=value("learning_rate", config.train["learning_rate"]).astype(np.float32))
    return make_grid(config, SPDRun(hyper, {k: v[which] for k, v in arrays.items()}))


def make_spd_block(spec: Spec, root_seed: int, report: Report | None = None):
    """`block(seeds, slot, runs) -> arrays` of a block of decompositions (run keys
    `fold_in(key(root_seed), seed)`); its steps call `report`."""
    train = make_train_spd(spec, report)

    def block(seeds, slot, runs):
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(root_seed), seeds)
        return train(keys, slot, runs)

    return block


def _variables(spec: Spec, axes: tuple, as_grid, columns: dict) -> dict:
    """Each matrix's U, V, CI MLP and one-hot causal importances."""
    out = {}
    matrix_dims = RESIDUAL_MATRIX_DIMS if spec.residual is not None else MATRIX_DIMS
    for name in names_of(spec):
        rows, cols = matrix_dims[name]
        out[f"U_{name}"] = (axes + ("component", rows), as_grid(columns[f"U_{name}"]))
        out[f"V_{name}"] = (axes + ("component", cols), as_grid(columns[f"V_{name}"]))
        for part, dims in GATE_DIMS.items():
            out[f"{part}_{name}"] = (axes + dims, as_grid(columns[f"{part}_{name}"]))
        out[f"ci_{name}"] = (axes + ("feature", "component"), as_grid(columns[f"ci_{name}"]),
                             {"long_name": f"σ_H(γ_c) of {name}'s subcomponents on the one-hot "
                              "inputs x = e_i (feature i)"})
    return out


RESIDUAL_TARGET_DIMS = {"W_E": ("embed", "feature"), "W_in": ("neuron", "embed"),
                        "W_out": ("embed", "neuron"), "b_in": ("neuron",), "b_out": ("embed",),
                        "W_U": ("feature", "embed")}


def _targets(spec: Spec, grid: Grid, axes: tuple, as_grid) -> dict:
    """The target's matrices [*axes, d_out, d_in] and bias [*axes, feature] (a residual
    MLP's: target_<A> for A in `RESIDUAL_ARRAYS`) and each run's input law `density`
    [*axes, feature] (what it trained on and `toymodels analyze` reads)."""
    law = "Uniform[-1, 1) when on" if spec.residual is not None else "Uniform[0, 1] when on"
    p = as_grid(np.asarray(grid.hyper.hyper.feature_probability))
    out = {"density": (axes + ("feature",), p, {"long_name": "each input feature's probability "
                                                "of being on (the decomposition's input law, "
                                                f"{law})"})}
    if spec.residual is not None:
        out.update({f"target_{k}": (axes + RESIDUAL_TARGET_DIMS[k],
                                    as_grid(np.asarray(grid.hyper.target[k])))
                    for k in RESIDUAL_ARRAYS})
        return out
    W, b = np.asarray(grid.hyper.target["W"]), np.asarray(grid.hyper.target["b"])
    target = tms_target(W[0], b[0], spec.spd.identity)
    out["target_b"] = (axes + ("feature",), as_grid(b))
    for name in target.weights:
        value = {"W_in": W, "W_out": np.swapaxes(W, -1, -2),
                 "W_hidden": np.broadcast_to(np.eye(W.shape[1], dtype=np.float32),
                                             (len(W), W.shape[1], W.shape[1]))}[name]
        out[f"target_{name}"] = (axes + MATRIX_DIMS[name], as_grid(value))
    return out


def _source_coordinates(config: SweepConfig) -> dict[str, np.ndarray]:
    """{axis: [S] values} of the source runs of a results-directory source (a toy or a
    residual-MLP sweep's config; its results are not read)."""
    spd = config.spec.spd
    if config.spec.residual is None:
        return source_coordinates(config, "spd")
    return run_coordinates(residual_source(spd.source, config.source), spd.runs)


def build_spd_dataset(config: SweepConfig, grid: Grid, columns: dict, manifest: dict) -> xr.Dataset:
    """Labelled decompositions: per matrix M (W_in, W_out, W_hidden with identity) U_M
    [component, rows], V_M [component, columns], the CI MLPs (gate_*_M), ci_M [feature,
    component] on the one-hot inputs and target_M [rows, columns]; target_b [feature]; the
    loss curves (loss and its four parts) [step]; nonfinite_step."""
    spec, axes, as_grid = config.spec, grid.names, grid_shaped(grid)
    steps = spec.train.log_every * np.arange(1, spec.train.n_logs + 1)
    variables = _variables(spec, axes, as_grid, columns)
    variables.update(_targets(spec, grid, axes, as_grid))
    variables.update({name: (axes + ("step",), as_grid(columns[name]), {"long_name": DESCRIPTIONS[name]})
                      for name in CURVES})
    variables["nonfinite_step"] = (axes, as_grid(first_nonfinite(columns["loss"], columns["loss"][:, -1], steps)))
    n, d = spec.model.n_features, spec.model.n_hidden
    coords = {name: c for name, c in zip(axes, grid.coords)}
    coords.update(component=np.arange(spec.spd.C), gate=np.arange(spec.spd.d_gate),
                  feature=np.arange(n), step=steps)
    if spec.residual is None:
        coords["hidden"] = np.arange(d)
    else:
        coords.update(embed=np.arange(spec.residual.d_embed), neuron=np.arange(spec.residual.d_mlp))
    if spec.spd.identity:
        coords["hidden_out"] = np.arange(d)
    if "source_run" in axes:
        coords.update({f"source_{a}": ("source_run", v)
                       for a, v in _source_coordinates(config).items()})
    attrs = manifest_attrs(config, manifest)
    attrs.update(trainer="spd", spd_source=spec.spd.source, n_features=n, n_hidden=d,
                 identity=int(spec.spd.identity), threshold=spec.spd.threshold,
                 target="tms" if spec.residual is None else "residual")
    if spec.residual is not None:
        attrs.update(task=spec.residual.task, d_embed=spec.residual.d_embed,
                     d_mlp=spec.residual.d_mlp)
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def work(spec: Spec) -> int:
    """Values touched by one decomposition: steps x B x L x C x (d_gate + n + d) x the
    (1 + S (L + 1)) forward passes."""
    L = len(names_of(spec))
    passes = 1 + spec.spd.n_mask_samples * (L + 1)
    width = spec.model.n_features + (spec.model.n_hidden if spec.residual is None
                                     else spec.residual.d_embed)
    return (spec.train.steps * spec.train.batch_size * L * spec.spd.C
            * (spec.spd.d_gate + width) * passes)


def memory(spec: Spec) -> int:
    """4-byte values one decomposition keeps: parameters and Adam's two moments, its
    target, its curves."""
    n, d, C, G = spec.model.n_features, spec.model.n_hidden, spec.spd.C, spec.spd.d_gate
    if spec.residual is not None:  # W_in, W_out: d_mlp + d_embed wide; target W_E, W_U too
        D = spec.residual.d_embed
        params = C * (d + D + 3 * G + 1) * 2
        return 3 * params + 2 * d * D + 2 * n * D + len(CURVES) * spec.train.n_logs + n * C * 3
    params = C * (n + d + 3 * G + 1) * len(matrix_names(spec.spd.identity))
    return 3 * params + d * n + n + len(CURVES) * spec.train.n_logs + n * C * 3


CHECKUP = Checkup("loss", "decompositions did not train", {
    "nonfinite": "lower train.learning_rate",
    "above": "lower train.learning_rate or spd.beta",
    "stalled": "raise train.learning_rate (or train.steps)"})

TRAINER = Trainer(
    parser=PARSERS["spd"], resolve=resolve_spd, expand=per_group(expand_spd),
    block_size=spd_block_size, make_block=make_spd_block, keys=spd_keys,
    dataset=build_spd_dataset, work=work, memory=memory, checkup=CHECKUP)
