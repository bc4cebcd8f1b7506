"""The residual-MLP trainer: a sweep file with a `[residual]` table
(`toymodels.residual_config`).

Each run is one residual MLP trained by `toymodels.compute.train.make_train`; its chunk
arrays are the final parameters (`toymodels.compute.model`'s layout, W_E included), the
loss curve, `final_loss` with its standard error (a sampled estimate on the toy
trainer's `eval_samples` fresh inputs, shared by every run) and `loss_per_output`, each
output's mean squared error before averaging (the analysis divides it by the naive
baseline's); `build_dataset` labels them: dims (*axes, <parameter dims>, output, step).
"""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr

from toymodels import evaluation
from toymodels.compute.train import ResidualHyper, block_size, make_train
from toymodels.config import SweepConfig
from toymodels.grid import Grid, axis_columns, density, importance, make_grid, run_values
from toymodels.hyper import complement
from toymodels.parsers import PARSERS
from toymodels.progress import Report
from toymodels.residual_config import param_dims
from toymodels.spec import Spec
from toymodels.trainers.base import (Checkup, Trainer, first_nonfinite, grid_shaped,
                                     manifest_attrs, per_group)

OPTIMIZER = ("learning_rate", "weight_decay", "momentum", "beta1", "beta2", "eps")
FINAL_LOSS = ("loss of the final parameters, sum_i I_i (y_hat_i - y_i)^2 / n_outputs, "
              "averaged over train.eval_samples fresh inputs shared by every run (sampled)")
PER_OUTPUT = ("each output's mean squared error (y_hat_i - y_i)^2 on the evaluation "
              "inputs, unweighted (final_loss = sum_i I_i loss_per_output_i / n_outputs)")
MIXING = "s: the labels' s (W_E^T W_E - I) x"


def expand_residual(config: SweepConfig) -> Grid:
    """The runs of a group of a residual sweep (no static axes), each with its
    `ResidualHyper`."""
    column, value = axis_columns(config), run_values(config)
    R, n = config.n_runs, config.spec.residual.n_features
    table = config.table
    hyper = ResidualHyper(
        feature_probability=density(config.data, column, R, n),
        importance=importance(config.data, column, R, n),
        **{k: value(k, config.train[k]).astype(np.float32) for k in OPTIMIZER},
        one_minus_beta1=complement(value("beta1", config.train["beta1"])),
        one_minus_beta2=complement(value("beta2", config.train["beta2"])),
        label_mixing=value("label_mixing", table["label_mixing"]).astype(np.float32),
        embed_seed=value("embed_seed", table["embed_seed"]).astype(np.int32),
    )
    return make_grid(config, hyper)


def make_block(spec: Spec, root_seed: int, report: Report | None = None):
    """`block(seeds, slot, hyper) -> arrays` of a block of residual MLPs (run keys
    `fold_in(key(root_seed), seed)`, the evaluation's `evaluation.eval_key(root_seed)`)."""
    train = make_train(spec, report)

    def block(seeds, slot, hyper):
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(root_seed), seeds)
        out = train(keys, slot, hyper, evaluation.eval_key(root_seed))
        return {**out.params, "loss": out.loss, "final_loss": out.final_loss,
                "final_loss_se": out.final_loss_se, "loss_per_output": out.loss_per_output}

    return block


def chunk_keys(spec: Spec) -> list[str]:
    """The arrays every chunk file holds (see `make_block`)."""
    return [*param_dims(spec.residual), "loss", "final_loss", "final_loss_se", "loss_per_output"]


def build_dataset(config: SweepConfig, grid: Grid, columns: dict, manifest: dict) -> xr.Dataset:
    """Labelled results: dims (*axes, embed, feature, neuron_l, neuron, output, step)."""
    axes, as_grid, spec = grid.names, grid_shaped(grid), config.spec
    r = spec.residual
    variables = {name: (axes + dims, as_grid(columns[name]))
                 for name, dims in param_dims(r).items()}
    steps = spec.train.log_every * np.arange(1, spec.train.n_logs + 1)
    variables.update(
        loss=(axes + ("step",), as_grid(columns["loss"])),
        final_loss=(axes, as_grid(columns["final_loss"]), {"long_name": FINAL_LOSS}),
        final_loss_se=(axes, as_grid(columns["final_loss_se"]),
                       {"long_name": "standard error of final_loss"}),
        loss_per_output=(axes + ("output",), as_grid(columns["loss_per_output"]),
                         {"long_name": PER_OUTPUT}),
        importance=(axes + ("feature",), as_grid(grid.hyper.importance)),
        density=(axes + ("feature",), as_grid(grid.hyper.feature_probability)),
        label_mixing_value=(axes, as_grid(grid.hyper.label_mixing), {"long_name": MIXING}),
        nonfinite_step=(axes, as_grid(first_nonfinite(columns["loss"], columns["final_loss"], steps))),
    )
    coords = {n: c for n, c in zip(axes, grid.coords)}
    coords.update(embed=np.arange(r.d_embed), feature=np.arange(r.n_features),
                  neuron=np.arange(r.d_mlp), output=np.arange(r.n_outputs), step=steps,
                  **{f"neuron_{l}": np.arange(k) for l, k in enumerate(r.split)})
    attrs = manifest_attrs(config, manifest)
    attrs.update(trainer="residual", task=r.task, n_features=r.n_features, d_embed=r.d_embed,
                 d_mlp=r.d_mlp, n_layers=r.n_layers, split=list(r.split), bias=int(r.bias),
                 embed=r.embed, readout=r.readout)
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def work(spec: Spec) -> int:
    """Values touched by one run: (steps x B + eval samples) x (n + d_embed + d_mlp + O)."""
    r = spec.residual
    examples = spec.train.steps * spec.train.batch_size + spec.train.eval_samples
    return examples * (r.n_features + r.d_embed + r.d_mlp + r.n_outputs)


def memory(spec: Spec) -> int:
    """4-byte values one run keeps: parameters with the optimiser's two moments, its loss
    curve and per-output errors, a batch's stream and activations."""
    r = spec.residual
    n_params = (r.d_embed * r.n_features + 2 * r.d_embed * r.d_mlp + r.d_mlp
                + r.n_layers * r.d_embed + r.n_outputs * max(r.d_mlp, r.d_embed))
    return 3 * n_params + spec.train.n_logs + r.n_outputs + spec.train.batch_size * (
        2 * r.d_embed + r.d_mlp + r.n_outputs)


def zero_loss(ds: xr.Dataset) -> xr.DataArray:
    """[*axes] the loss curve's first point (the mean over the first `log_every` steps,
    from the init): the bound a curve that ends 10x over it has diverged from. (The loss
    of all-zero MLP weights has no closed form shared by every task and embedding.)"""
    return ds.loss.isel(step=0)


CHECKUP = Checkup("loss", "residual MLPs did not train", {
    "nonfinite": "lower train.learning_rate",
    "above": "lower train.learning_rate",
    "stalled": "raise train.learning_rate (or train.steps)"},
    zero_loss)

TRAINER = Trainer(
    parser=PARSERS["residual"], resolve=lambda config: config, expand=per_group(expand_residual),
    block_size=block_size, make_block=make_block, keys=chunk_keys, dataset=build_dataset,
    work=work, memory=memory, checkup=CHECKUP)
