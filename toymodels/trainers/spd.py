"""The SPD trainer: a sweep file with an `[spd]` table (`toymodels.spd_config`).

Its runs are Stochastic Parameter Decompositions of toy models
(`toymodels.spd.train.make_train_spd`). `resolve_spd` reads a results-directory or zoo
source (the SAE trainer's reader, `toymodels.dictionary.config.read_source`);
`expand_spd(config)` gives the flat run axis R of its axes, each run's `SPDRun` holding
its hyperparameters and its target's W [d, n] and b [n]; `build_spd_dataset` labels a
group's arrays: dims (*axes, component, gate, hidden, feature, [hidden_out], step); with a
`source_run` axis the source's sweep coordinates ride along it as `source_<axis>`.
"""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr

from toymodels import store, zoo
from toymodels.config import SweepConfig
from toymodels.dictionary.config import read_source, source_coordinates
from toymodels.grid import Grid, axis_columns, flat_runs, make_grid, run_values
from toymodels.parsers import PARSERS
from toymodels.progress import Report
from toymodels.spd import decomposition
from toymodels.spd.targets import MATRIX_DIMS, hand_b, hand_W, matrix_names, tms_target
from toymodels.spd.train import CURVES, SPDRun, make_train_spd, spd_block_size, spd_keys
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


def read_spd_source(spd: dict, source: str):
    """(model, runs) of a results directory or zoo source (the `reader` of `parse_spd`)."""
    model, _, runs = read_source(spd, source, "spd")
    return model, runs


def resolve_spd(config: SweepConfig) -> SweepConfig:
    """The config with its source read (`Trainer.resolve`): an unresolved one completed, a
    resolved one checked against its source as it is now. A hand target reads nothing."""
    if config.spec is not None and config.spec.spd.source == HAND:
        return config
    raw = config.table if config.spec is None else config.to_dict()
    return parse_spd(raw, config.source, reader=read_spd_source)


def source_arrays(config: SweepConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(W [S, d, n], b [S, n], density [S, n]) of the S source models (`spec.spd.runs`;
    S = 1 for a zoo or hand target, whose density is None: its law is the key's)."""
    spec = config.spec
    if spec.spd.source == HAND:
        n, d = spec.model.n_features, spec.model.n_hidden
        return hand_W(n, d)[None], hand_b(n, d)[None], None
    if spec.spd.source.startswith(ZOO):
        entry = zoo.load(spec.spd.source.removeprefix(ZOO))
        return np.asarray(entry.W, np.float32)[None], np.asarray(entry.b, np.float32)[None], None
    ds = store.load(spec.spd.source)
    axes = list(ds.W.dims[:-2])
    runs = np.asarray(spec.spd.runs)
    flat = lambda da: flat_runs(da, axes)[runs].astype(np.float32)
    return flat(ds.W), flat(ds.b), flat(ds.density.broadcast_like(ds.b))


def expand_spd(config: SweepConfig) -> Grid:
    """The decompositions of a group of an SPD sweep (no static axes), each with its target
    and its input law: `feature_probability` [R, n] the key's value where given (in
    `[spd]` or swept), else a results-directory source run's own density."""
    value = run_values(config)
    W, b, density = source_arrays(config)
    position = {run: i for i, run in enumerate(config.spec.spd.runs)}
    column = axis_columns(config)
    which = (np.array([position[int(r)] for r in column["source_run"]])
             if "source_run" in column else np.zeros(config.n_runs, int))
    spd_value = lambda key: value(key, config.table.get(key, SPD_SCHEMA[key].default))
    hyper = {k: spd_value(k).astype(np.float32) for k in HYPER_KEYS}
    given = "feature_probability" in config.table or "feature_probability" in column
    hyper["feature_probability"] = (
        np.repeat(hyper["feature_probability"][:, None], W.shape[-1], axis=1)
        if given or density is None else density[which])
    hyper = decomposition.SPDHyper(
        **hyper,
        learning_rate=value("learning_rate", config.train["learning_rate"]).astype(np.float32))
    return make_grid(config, SPDRun(hyper, W[which], b[which]))


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
    for name in matrix_names(spec.spd.identity):
        rows, cols = MATRIX_DIMS[name]
        out[f"U_{name}"] = (axes + ("component", rows), as_grid(columns[f"U_{name}"]))
        out[f"V_{name}"] = (axes + ("component", cols), as_grid(columns[f"V_{name}"]))
        for part, dims in GATE_DIMS.items():
            out[f"{part}_{name}"] = (axes + dims, as_grid(columns[f"{part}_{name}"]))
        out[f"ci_{name}"] = (axes + ("feature", "component"), as_grid(columns[f"ci_{name}"]),
                             {"long_name": f"σ_H(γ_c) of {name}'s subcomponents on the one-hot "
                              "inputs x = e_i (feature i)"})
    return out


def _targets(spec: Spec, grid: Grid, axes: tuple, as_grid) -> dict:
    """The target's matrices [*axes, d_out, d_in] and bias [*axes, feature]."""
    W, b = np.asarray(grid.hyper.W), np.asarray(grid.hyper.b)
    target = tms_target(W[0], b[0], spec.spd.identity)
    out = {"target_b": (axes + ("feature",), as_grid(b)),
           "density": (axes + ("feature",), as_grid(np.asarray(grid.hyper.hyper.feature_probability)),
                       {"long_name": "each input feature's probability of being on (the "
                        "decomposition's input law, Uniform[0, 1] when on)"})}
    for name in target.weights:
        value = {"W_in": W, "W_out": np.swapaxes(W, -1, -2),
                 "W_hidden": np.broadcast_to(np.eye(W.shape[1], dtype=np.float32),
                                             (len(W), W.shape[1], W.shape[1]))}[name]
        out[f"target_{name}"] = (axes + MATRIX_DIMS[name], as_grid(value))
    return out


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
                  hidden=np.arange(d), feature=np.arange(n), step=steps)
    if spec.spd.identity:
        coords["hidden_out"] = np.arange(d)
    if "source_run" in axes:
        coords.update({f"source_{a}": ("source_run", v)
                       for a, v in source_coordinates(config, "spd").items()})
    attrs = manifest_attrs(config, manifest)
    attrs.update(trainer="spd", spd_source=spec.spd.source, n_features=n, n_hidden=d,
                 identity=int(spec.spd.identity), threshold=spec.spd.threshold)
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def work(spec: Spec) -> int:
    """Values touched by one decomposition: steps x B x L x C x (d_gate + n + d) x the
    (1 + S (L + 1)) forward passes."""
    L = len(matrix_names(spec.spd.identity))
    passes = 1 + spec.spd.n_mask_samples * (L + 1)
    return (spec.train.steps * spec.train.batch_size * L * spec.spd.C
            * (spec.spd.d_gate + spec.model.n_features + spec.model.n_hidden) * passes)


def memory(spec: Spec) -> int:
    """4-byte values one decomposition keeps: parameters and Adam's two moments, its
    target, its curves."""
    n, d, C, G = spec.model.n_features, spec.model.n_hidden, spec.spd.C, spec.spd.d_gate
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
