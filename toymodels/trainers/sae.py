"""The SAE trainer: a sweep file with an `[sae]` table (`toymodels.dictionary.config`).

Its runs are sparse autoencoders trained on a toy model's activations
(`toymodels.dictionary.train.make_train_sae`). `expand_sae(config)` gives the flat run axis
R of its axes, each run's `SAEHyper` holding its source's W ([d, F], the ground truth) and
feature probabilities; `build_sae_dataset` labels a group's trained arrays: dims
(*axes, latent, hidden, feature, step).
"""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr

from toymodels import store, zoo
from toymodels.config import SweepConfig
from toymodels.dictionary import world as worlds
from toymodels.dictionary.config import SAE_DEFAULTS, SYNTHETIC, ZOO, resolve_sae, source_coordinates
from toymodels.dictionary.sae import SAEHyper, get_sae
from toymodels.dictionary.train import (make_train_sae, sae_block_size, sae_keys, synthetic_truth,
                                        world_of)
from toymodels.grid import (Grid, axis_columns, density, expand, flat_runs, make_grid,
                            run_values)
from toymodels.groups import SHARED
from toymodels.hyper import complement
from toymodels.progress import Report
from toymodels.parsers import PARSERS
from toymodels.spec import Spec
from toymodels.trainers.base import (Checkup, Trainer, first_nonfinite, grid_shaped, manifest_attrs,
                                     per_group)

OPTIMIZER_HYPER = ("learning_rate", "weight_decay", "momentum", "beta1", "beta2", "eps")
INT_HYPER = ("k_aux", "dead_steps")
FLOAT_HYPER = ("l1_coefficient", "k", "aux_coefficient", "bandwidth", "init_threshold")  # k: BatchTopK's is real
TRUTH = "the source model's W [hidden, feature]: column i is ground-truth feature i"
SINCE_FIRED = "steps since each latent was last non-zero in a training batch, at the end"
ENERGY = "E|h|^2 of the world's activations (4,096 examples): the loss of all-zero SAE parameters"
WORLD = ("the sweep's synthetic world: stored once when every static group's is the same, "
         "else along the static axes (a world key swept)")
ENERGY_STREAM = 2**32 - 5  # fold_in tag of key(world seed): the sample that estimates world_energy


def source_arrays(config: SweepConfig) -> tuple[np.ndarray, np.ndarray | None]:
    """(truth [S, d, F], feature_probability [S, F]) of the S source runs (`spec.sae.runs`;
    S = 1 for a zoo model or a synthetic source, whose probabilities are None: per SAE
    run, see `expand_sae`)."""
    sae, model = config.spec.sae, config.spec.model
    if sae.source == SYNTHETIC:
        return synthetic_truth(sae.truth_seed, model.n_features, model.n_hidden)[None], None
    if sae.source.startswith(ZOO):
        entry = zoo.load(sae.source.removeprefix(ZOO))
        grid = expand(entry.config)
        run = _run_at(grid, entry.at)
        return np.asarray(entry.W, np.float32)[None], grid.hyper.feature_probability[run][None]
    ds = store.load(sae.source)
    axes = list(ds.W.dims[:-2])
    flat = lambda da: flat_runs(da, axes)
    runs = np.asarray(sae.runs)
    W, p = flat(ds.W)[runs], flat(ds.density.broadcast_like(ds.W.isel(hidden=0)))[runs]
    return W.astype(np.float32), p.astype(np.float32)


def _run_at(grid: Grid, at) -> int:
    """The flat index of the run at coordinates `at` ({axis: value}) of a grid."""
    match = np.ones(grid.n_runs, bool)
    index = np.indices(grid.shape).reshape(len(grid.names), -1)
    for name, coords, i in zip(grid.names, grid.coords, index):
        if name in at:
            match &= np.isclose(np.asarray(coords, float)[i], float(at[name]))
    return int(np.flatnonzero(match)[0])


def expand_sae(config: SweepConfig) -> Grid:
    """The SAE runs of a group of an SAE sweep (no static axes), each with its source."""
    column, value = axis_columns(config), run_values(config)
    R, F = config.n_runs, config.spec.model.n_features
    if config.spec.sae.world is not None:  # one world, shared: nothing per run
        truth, probabilities = np.zeros((1, 1, 1), np.float32), np.zeros((R, 1), np.float32)
    else:
        truth, probabilities = source_arrays(config)
    sae_value = lambda key: config.table.get(key, SAE_DEFAULTS.get(key, 1))  # 1: k_aux unread
    position = {run: i for i, run in enumerate(config.spec.sae.runs)}
    which = (np.array([position[r] for r in column["source_run"]]) if "source_run" in column
             else np.zeros(R, int))
    probability = (density(config.data, column, R, F) if probabilities is None
                   else probabilities[which])
    hyper = SAEHyper(
        **{k: value(k, config.train[k]).astype(np.float32) for k in OPTIMIZER_HYPER},
        one_minus_beta1=complement(value("beta1", config.train["beta1"])),
        one_minus_beta2=complement(value("beta2", config.train["beta2"])),
        **{k: value(k, sae_value(k)).astype(np.int32) for k in INT_HYPER},
        **{k: value(k, sae_value(k)).astype(np.float32) for k in FLOAT_HYPER},
        truth=truth[which if len(truth) > 1 else np.zeros(R, int)],
        feature_probability=np.asarray(probability, np.float32),
    )
    return make_grid(config, hyper)


def build_sae_dataset(config: SweepConfig, grid: Grid, columns: dict, manifest: dict) -> xr.Dataset:
    """Labelled SAE results: dims (*axes, latent, hidden, feature, step).

    Variables: the SAE's parameters (encoder, decoder [latent, hidden], b_enc [latent],
    b_dec [hidden], and its kind's extras), loss [step], since_fired [latent], threshold
    (BatchTopK kinds), truth [hidden, feature] (the source's W) and density [feature]
    (the source's feature probabilities). With a `source_run` axis, the source's
    coordinates ride along it as `source_<axis>`. A synthetic world's arrays are stored
    once, without run axes (`toymodels.dictionary.world.world_variables`: truth, density,
    parent [feature], world_*), with `world_energy`, E|h|^2 of its activations.
    """
    axes, as_grid = grid.names, grid_shaped(grid)
    spec = config.spec
    kind = get_sae(spec.sae.kind)
    variables = {name: (axes + kind.dims[name], as_grid(columns[name])) for name in kind.dims}
    steps = spec.train.log_every * np.arange(1, spec.train.n_logs + 1)
    variables.update(
        loss=(axes + ("step",), as_grid(columns["loss"]), {"long_name": "SAE training objective"}),
        since_fired=(axes + ("latent",), as_grid(columns["since_fired"]), {"long_name": SINCE_FIRED}),
        nonfinite_step=(axes, as_grid(first_nonfinite(columns["loss"], columns["loss"][:, -1], steps))),
    )
    variables.update(source_variables(config, grid))
    if kind.threshold:
        variables["threshold"] = (axes, as_grid(columns["threshold"]),
                                  {"long_name": "inference threshold θ (EMA of the smallest kept code)"})
    coords = {n: c for n, c in zip(axes, grid.coords)}
    coords.update(latent=np.arange(spec.sae.width), hidden=np.arange(spec.model.n_hidden),
                  feature=np.arange(spec.model.n_features), step=steps)
    if spec.sae.world is not None:
        coords["factor"] = np.arange(spec.sae.world.n_factors)
    if "source_run" in axes:
        coords.update({f"source_{a}": ("source_run", v)
                       for a, v in source_coordinates(config).items()})
    attrs = manifest_attrs(config, manifest)
    attrs.update(trainer="sae", sae_kind=spec.sae.kind, width=spec.sae.width,
                 sae_source=spec.sae.source, n_features=spec.model.n_features,
                 n_hidden=spec.model.n_hidden)
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def source_variables(config: SweepConfig, grid: Grid) -> dict:
    """The source's Dataset variables: per run truth [hidden, feature] and density
    [feature], or a synthetic world's arrays once (and its `world_energy`)."""
    spec = config.spec
    if spec.sae.world is None:
        as_grid = grid_shaped(grid)
        return {"truth": (grid.names + ("hidden", "feature"), as_grid(grid.hyper.truth), {"long_name": TRUTH}),
                "density": (grid.names + ("feature",), as_grid(grid.hyper.feature_probability))}
    world = world_of(spec)
    attrs = lambda name: {SHARED: WORLD, **({"long_name": worlds.DESCRIPTIONS[name]}
                                            if name in worlds.DESCRIPTIONS else {})}
    out = {name: (dims, value, attrs(name)) for name, (dims, value) in worlds.world_variables(world).items()}
    key = jax.random.fold_in(jax.random.key(spec.sae.truth_seed), ENERGY_STREAM)
    out["world_energy"] = ((), worlds.energy(world, spec.sae.world, key), {"long_name": ENERGY, SHARED: WORLD})
    return out


def make_sae_block(spec: Spec, root_seed: int, report: Report | None = None):
    """`block(seeds, slot, hyper) -> arrays` of a block of SAEs
    (`toymodels.dictionary.train.make_train_sae`, run keys `fold_in(key(root_seed), seed)`);
    its steps call `report` (`toymodels.progress`)."""
    train = make_train_sae(spec, report)

    def block(seeds, slot, hyper):
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(root_seed), seeds)
        return train(keys, slot, hyper)

    return block


def work(spec: Spec) -> int:
    """Values touched by one SAE: steps x B x (N + d + F)."""
    return spec.train.steps * spec.train.batch_size * (
        spec.sae.width + spec.model.n_hidden + spec.model.n_features)


def memory(spec: Spec) -> int:
    """4-byte values one SAE keeps: parameters, optimiser state, statistics, its truth,
    its loss curve."""
    N, d, F = spec.sae.width, spec.model.n_hidden, spec.model.n_features
    truth = 0 if spec.sae.world is not None else d * F  # a world's is shared, not per SAE
    return (2 * N * d + 4 * N + d) * 5 + truth + spec.train.n_logs


def zero_loss(ds: xr.Dataset) -> xr.DataArray:
    """[*axes] (Σ_i |W_i| sqrt(p_i))², at least E|h|² = E|W x|², the loss of an SAE whose
    parameters are all zero (E[x_i²] <= p_i for every input law but the exponential
    magnitude, whose E[x²] is 1/2); a world's `world_energy`, that E|h|² itself."""
    if "world_energy" in ds:
        return ds.world_energy
    return ((ds.truth ** 2).sum("hidden") ** 0.5 * ds.density ** 0.5).sum("feature") ** 2


CHECKUP = Checkup("loss", "SAEs did not train", {
    "nonfinite": "lower train.learning_rate",
    "above": "lower train.learning_rate or the sparsity penalty (sae.l1_coefficient)",
    "stalled": "raise train.learning_rate (or train.steps)"},
    zero_loss)

TRAINER = Trainer(
    parser=PARSERS["sae"], resolve=resolve_sae,
    expand=per_group(expand_sae), block_size=sae_block_size, make_block=make_sae_block, keys=sae_keys,
    dataset=build_sae_dataset, work=work, memory=memory, checkup=CHECKUP)
