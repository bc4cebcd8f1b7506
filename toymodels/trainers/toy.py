"""The toy models' trainer: a sweep file with a `[model]` table (or none: the default).

Each run is one toy model trained by `toymodels.train.make_train`; its chunk arrays are
the final parameters, the loss curve, `final_loss` (with its standard error), the
snapshots and, with a finite dataset, `train_loss`; `build_dataset` labels them.
"""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr

from toymodels import data, evaluation
from toymodels.config import SweepConfig
from toymodels.grid import Grid, expand
from toymodels.groups import SNAPSHOT
from toymodels.models import get_model
from toymodels.progress import Report
from toymodels.parsers import PARSERS
from toymodels.spec import Spec
from toymodels.train import block_size, make_train
from toymodels.trainers.base import (Checkup, Trainer, first_nonfinite, grid_shaped,
                                     manifest_attrs, per_group)

FINAL_LOSS = ("population loss of the final weights (no dropout, no L1): exact for 0 and 1 "
              "active features, sampled for 2 or more (toymodels.evaluation)")
TRAIN_LOSS = ("loss of the final weights (no dropout, no L1) averaged over the run's "
              "dataset_size training examples (toymodels.data.training_set)")
TEST_LOSS = ("the same values as final_loss: the population loss on fresh samples, the "
             "test loss of the double-descent curve (test_loss against train_loss over T)")


def make_toy_block(spec: Spec, root_seed: int, report: Report | None = None):
    """`block(seeds, slot, hyper, data_seeds) -> arrays` of a block of toy-model runs:
    `toymodels.train.make_train` with the run keys of `root_seed`, its RunOutput as the
    chunk's named arrays (`chunk_keys`); its steps call `report` (`toymodels.progress`)."""
    train = make_train(spec, report)

    def block(seeds, slot, hyper, data_seeds):
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(root_seed), seeds)
        dataset_keys = jax.vmap(data.dataset_key, in_axes=(None, 0))(root_seed, data_seeds)
        out = train(keys, slot, hyper, evaluation.eval_key(root_seed), dataset_keys)
        return {**out.params, "loss": out.loss, "final_loss": out.final_loss,
                "final_loss_se": out.final_loss_se, "train_loss": out.train_loss,
                **{f"{k}{SNAPSHOT}": v for k, v in out.snapshots.items()}}

    return block


def chunk_keys(spec: Spec) -> list[str]:
    """The arrays every chunk file holds (see `make_toy_block` and `build_dataset`);
    `train_loss` only with a finite dataset."""
    params = list(get_model(spec.model.kind).dims)
    snapshots = [name + SNAPSHOT for name in params] if spec.train.snapshot_every else []
    fit = ["train_loss"] if spec.data.dataset_size else []
    return [*params, "loss", "final_loss", "final_loss_se", *snapshots, *fit]


def work(spec: Spec) -> int:
    """Values touched by one run: steps x B x (F + H)."""
    return spec.train.steps * spec.train.batch_size * (spec.model.n_features + spec.model.n_hidden)


def memory(spec: Spec) -> int:
    """4-byte values one run keeps: parameters, optimiser state, snapshots, its dataset,
    its loss curve."""
    F, H = spec.model.n_features, spec.model.n_hidden
    return (F * H + F) * (spec.train.n_snapshots + 5) + F * spec.data.dataset_size + spec.train.n_logs


def build_dataset(config: SweepConfig, grid: Grid, columns: dict, manifest: dict) -> xr.Dataset:
    """Labelled results: dims (*axes, hidden, feature, step); see `toymodels.store.load`."""
    axes, as_grid = grid.names, grid_shaped(grid)
    spec = config.spec
    kind = get_model(spec.model.kind)
    variables = {name: (axes + kind.dims[name], as_grid(columns[name])) for name in kind.dims}
    steps = spec.train.log_every * np.arange(1, spec.train.n_logs + 1)
    variables.update(
        loss=(axes + ("step",), as_grid(columns["loss"])),
        final_loss=(axes, as_grid(columns["final_loss"]), {"long_name": FINAL_LOSS}),
        final_loss_se=(axes, as_grid(columns["final_loss_se"]),
                       {"long_name": "standard error of final_loss (its sampled part)"}),
        importance=(axes + ("feature",), as_grid(grid.hyper.importance)),
        density=(axes + ("feature",), as_grid(grid.hyper.feature_probability)),
        nonfinite_step=(axes, as_grid(first_nonfinite(columns["loss"], columns["final_loss"], steps))),
    )
    if spec.data.dataset_size:
        variables["train_loss"] = (axes, as_grid(columns["train_loss"]), {"long_name": TRAIN_LOSS})
        variables["test_loss"] = (axes, as_grid(columns["final_loss"]), {"long_name": TEST_LOSS})
    if spec.train.snapshot_every:
        variables.update({name + SNAPSHOT: (axes + ("snapshot",) + kind.dims[name],
                                            as_grid(columns[name + SNAPSHOT])) for name in kind.dims})
    coords = {n: c for n, c in zip(axes, grid.coords)}
    coords.update(hidden=np.arange(spec.model.n_hidden), feature=np.arange(spec.model.n_features),
                  step=steps)
    if spec.train.snapshot_every:
        coords["snapshot"] = spec.train.snapshot_every * np.arange(spec.train.n_snapshots + 1)
    attrs = manifest_attrs(config, manifest)
    attrs.update(model_kind=spec.model.kind, n_features=spec.model.n_features,
                 n_hidden=spec.model.n_hidden)
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def zero_loss(ds: xr.Dataset) -> xr.DataArray:
    """[*axes] Σ_i I_i p_i, at least the loss of all-zero parameters, Σ_i I_i E[x_i²]
    (|x_i| <= 1 for every input law but the exponential magnitude, whose E[x²] is 1/2)."""
    return (ds.importance * ds.density).sum("feature")


CHECKUP = Checkup("loss", "runs did not train", {
    "nonfinite": "lower train.learning_rate (or raise a negative train.weight_decay)",
    "above": "lower train.learning_rate (or raise a negative train.weight_decay, or lower "
             "the train.l1_hidden and l1_weights penalties)",
    "stalled": "raise train.learning_rate (or train.steps)"},
    zero_loss)

TRAINER = Trainer(
    parser=PARSERS["toy"], resolve=lambda config: config, expand=per_group(expand),
    block_size=block_size, make_block=make_toy_block, keys=chunk_keys, dataset=build_dataset,
    work=work, memory=memory, checkup=CHECKUP)
