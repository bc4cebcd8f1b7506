"""The runs and results of an SAE sweep: its grid (with each SAE's source) and its Dataset.

`expand_sae(config)` is `toymodels.grid.expand` for a config with an `[sae]` table: the
flat run axis R of its axes, each run's `SAEHyper` holding its source's W ([d, F], the
ground truth) and feature probabilities. `build_sae_dataset` labels a group's trained
arrays: dims (*axes, latent, hidden, feature, step).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from toymodels.config import SweepConfig
from toymodels.dictionary.config import SAE_DEFAULTS, SYNTHETIC, ZOO, source_coordinates
from toymodels.dictionary.sae import SAEHyper, get_sae
from toymodels.dictionary.train import synthetic_truth
from toymodels.grid import Grid, _density
from toymodels.hyper import complement

OPTIMIZER_HYPER = ("learning_rate", "weight_decay", "momentum", "beta1", "beta2", "eps")
INT_HYPER = ("k", "k_aux", "dead_steps")
FLOAT_HYPER = ("l1_coefficient", "aux_coefficient", "bandwidth")
TRUTH = "the source model's W [hidden, feature]: column i is ground-truth feature i"
SINCE_FIRED = "steps since each latent was last non-zero in a training batch, at the end"


def source_arrays(config: SweepConfig) -> tuple[np.ndarray, np.ndarray | None]:
    """(truth [S, d, F], feature_probability [S, F]) of the S source runs (`spec.sae.runs`;
    S = 1 for a zoo model or a synthetic source, whose probabilities are None: per SAE
    run, see `expand_sae`)."""
    sae, model = config.spec.sae, config.spec.model
    if sae.source == SYNTHETIC:
        return synthetic_truth(sae.truth_seed, model.n_features, model.n_hidden)[None], None
    if sae.source.startswith(ZOO):
        from toymodels import zoo
        from toymodels.grid import expand

        entry = zoo.load(sae.source.removeprefix(ZOO))
        grid = expand(entry.config)
        run = _run_at(grid, entry.at)
        return np.asarray(entry.W, np.float32)[None], grid.hyper.feature_probability[run][None]
    from toymodels import store

    ds = store.load(sae.source)
    axes = list(ds.W.dims[:-2])
    flat = lambda da: da.transpose(*axes, ...).values.reshape(-1, *da.shape[len(axes):])
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
    if config.static_groups:
        raise ValueError(f"{config.source}: has static axes; expand each of config.groups")
    names = tuple(name for name, _ in config.axes)
    coords = tuple(np.asarray(values) for _, values in config.axes)
    R, F = config.n_runs, config.spec.model.n_features
    index = np.indices(config.shape).reshape(len(names), R)
    column = {n: c[i] for n, c, i in zip(names, coords, index)}
    value = lambda key, default: column[key] if key in column else np.full(R, default)
    truth, density = source_arrays(config)
    sae_value = lambda key: config.sae.get(key, SAE_DEFAULTS.get(key, 1))  # 1: k_aux unread
    position = {run: i for i, run in enumerate(config.spec.sae.runs)}
    which = (np.array([position[r] for r in column["source_run"]]) if "source_run" in column
             else np.zeros(R, int))
    probability = (_density(config.data, column, R, F) if density is None else density[which])
    hyper = SAEHyper(
        **{k: value(k, config.train[k]).astype(np.float32) for k in OPTIMIZER_HYPER},
        one_minus_beta1=complement(value("beta1", config.train["beta1"])),
        one_minus_beta2=complement(value("beta2", config.train["beta2"])),
        **{k: value(k, sae_value(k)).astype(np.int32) for k in INT_HYPER},
        **{k: value(k, sae_value(k)).astype(np.float32) for k in FLOAT_HYPER},
        truth=truth[which if len(truth) > 1 else np.zeros(R, int)],
        feature_probability=np.asarray(probability, np.float32),
    )
    return Grid(names, coords, hyper, value("seed", 0).astype(np.int64), np.zeros(R, np.int64))


def build_sae_dataset(config: SweepConfig, grid: Grid, columns: dict, manifest: dict) -> xr.Dataset:
    """Labelled SAE results: dims (*axes, latent, hidden, feature, step).

    Variables: the SAE's parameters (encoder, decoder [latent, hidden], b_enc [latent],
    b_dec [hidden], and its kind's extras), loss [step], since_fired [latent], threshold
    (BatchTopK kinds), truth [hidden, feature] (the source's W) and density [feature]
    (the source's feature probabilities). With a `source_run` axis, the source's
    coordinates ride along it as `source_<axis>`.
    """
    from toymodels.sweep import first_nonfinite

    axes, shape = grid.names, grid.shape
    as_grid = lambda a: np.asarray(a).reshape(shape + np.shape(a)[1:])
    spec = config.spec
    kind = get_sae(spec.sae.kind)
    variables = {name: (axes + kind.dims[name], as_grid(columns[name])) for name in kind.dims}
    steps = spec.train.log_every * np.arange(1, spec.train.n_logs + 1)
    variables.update(
        loss=(axes + ("step",), as_grid(columns["loss"]), {"long_name": "SAE training objective"}),
        since_fired=(axes + ("latent",), as_grid(columns["since_fired"]), {"long_name": SINCE_FIRED}),
        truth=(axes + ("hidden", "feature"), as_grid(grid.hyper.truth), {"long_name": TRUTH}),
        density=(axes + ("feature",), as_grid(grid.hyper.feature_probability)),
        nonfinite_step=(axes, as_grid(first_nonfinite(columns["loss"], columns["loss"][:, -1], steps))),
    )
    if kind.threshold:
        variables["threshold"] = (axes, as_grid(columns["threshold"]),
                                  {"long_name": "inference threshold θ (EMA of the smallest kept code)"})
    coords = {n: c for n, c in zip(axes, grid.coords)}
    coords.update(latent=np.arange(spec.sae.width), hidden=np.arange(spec.model.n_hidden),
                  feature=np.arange(spec.model.n_features), step=steps)
    if "source_run" in axes:
        coords.update({f"source_{a}": ("source_run", v)
                       for a, v in source_coordinates(config).items()})
    attrs = {"name": config.name, "config": manifest["config"], "trainer": "sae",
             "sae_kind": spec.sae.kind, "width": spec.sae.width, "sae_source": spec.sae.source,
             "n_features": spec.model.n_features, "n_hidden": spec.model.n_hidden,
             "device": manifest["device"], "schema_version": manifest["schema_version"]}
    attrs.update({f"version_{k}": v for k, v in manifest["versions"].items()})
    return xr.Dataset(variables, coords=coords, attrs=attrs)
