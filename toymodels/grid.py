"""Config -> Grid: the flat run axis R with its named axes and per-run hyperparameters.

Runs are the cartesian product of the sweep axes in file order (the last axis varies
fastest), flattened to one axis R (`axis_columns`, the one expansion every trainer uses);
`Grid.hyper` holds every run's traced values as numpy arrays (a toy model's `Hyper`, an
SAE's `SAEHyper`, ...). `expand` is the toy models' expansion; the input-law helpers
`density` and `importance` serve every trainer whose runs sample the toy inputs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from toymodels.config import SweepConfig, data_value
from toymodels.hyper import Hyper, complement

TRAIN_HYPER = ("dropout", "learning_rate", "weight_decay", "l1_hidden", "momentum", "beta1",
               "beta2", "eps")  # Hyper fields read as they are from [train] or an axis


@dataclasses.dataclass(frozen=True)
class Grid:
    """The runs of a sweep.

    Attributes:
      names: the axis names in config order.
      coords: each axis's values.
      hyper: Hyper with leading axis R (numpy).
      seed: [R] int, each run's seed (its key is fold_in(root_key, seed)).
      data_seed: [R] int, each run's dataset seed (finite datasets: its examples come
        from `toymodels.data.dataset_key(root seed, data_seed)`); 0 unless given; None
        for a trainer whose runs have no dataset (SAEs).
    """

    names: tuple[str, ...]
    coords: tuple[np.ndarray, ...]
    hyper: Any
    seed: np.ndarray
    data_seed: np.ndarray | None = None

    @property
    def runs(self) -> tuple:
        """What a trainer's block reads of each run, [R] leading: (hyper, data_seed), or
        (hyper,) without data seeds."""
        return (self.hyper,) if self.data_seed is None else (self.hyper, self.data_seed.astype(np.int32))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.coords)

    @property
    def n_runs(self) -> int:
        return len(self.seed)


def axis_columns(config: SweepConfig) -> dict[str, np.ndarray]:
    """{axis: [R] each run's value}: the one expansion of a config's axes into runs.

    Example:
      >>> from toymodels.config import parse_toy
      >>> c = parse_toy({"sweep": {"sparsity": [0.0, 0.5], "seed": [0, 1, 2]}})
      >>> {k: v.tolist() for k, v in axis_columns(c).items()}
      {'sparsity': [0.0, 0.0, 0.0, 0.5, 0.5, 0.5], 'seed': [0, 1, 2, 0, 1, 2]}
    """
    if config.static_groups:
        raise ValueError(f"{config.source}: has static axes; expand each of config.groups")
    coords = [np.asarray(values) for _, values in config.axes]
    index = np.indices(config.shape).reshape(len(coords), config.n_runs)
    return {name: c[i] for (name, _), c, i in zip(config.axes, coords, index)}


def make_grid(config: SweepConfig, hyper, data_seed: np.ndarray | None = None) -> Grid:
    """The Grid of `config`'s axes with each run's `hyper` (its seed from the seed axis)."""
    column = axis_columns(config)
    seed = column.get("seed", np.zeros(config.n_runs, np.int64)).astype(np.int64)
    names = tuple(name for name, _ in config.axes)
    coords = tuple(np.asarray(values) for _, values in config.axes)
    return Grid(names, coords, hyper, seed, data_seed)


def run_values(config: SweepConfig) -> Callable[[str, object], np.ndarray]:
    """`value(key, default)`: [R] each run's value of `key`, its axis or `default`."""
    column = axis_columns(config)
    return lambda key, default: column[key] if key in column else np.full(config.n_runs, default)


def expand(config: SweepConfig) -> Grid:
    """Flattens the sweep axes of a toy-model config into R runs and resolves each run's
    hyperparameters.

    The L1 penalty on the weights is in the objective (`Hyper.l1_weights` not None) when
    `l1_weights` is a sweep axis or a non-zero `[train]` value.

    Raises:
      ValueError: `config` has static axes; expand each of `config.groups` instead.
    """
    column, value = axis_columns(config), run_values(config)
    R, F = config.n_runs, config.spec.model.n_features
    train = lambda key: value(key, config.train[key]).astype(np.float32)
    has_l1 = "l1_weights" in column or config.train["l1_weights"] != 0
    hyper = Hyper(
        feature_probability=density(config.data, column, R, F),
        importance=importance(config.data, column, R, F),
        **{key: train(key) for key in TRAIN_HYPER},
        one_minus_beta1=complement(value("beta1", config.train["beta1"])),
        one_minus_beta2=complement(value("beta2", config.train["beta2"])),
        l1_weights=train("l1_weights") if has_l1 else None,
    )
    data_seed = value("data_seed", data_value(config.data, "data_seed")).astype(np.int64)
    return make_grid(config, hyper, data_seed)


def density(data: dict, column: dict, R: int, F: int) -> np.ndarray:
    """[R, F] feature probabilities p = 1 - S; feature 0's times `density_ratio`.

    With one feature active per example ("exactly_one", "one_hot" inputs) it is the
    marginal 1/F, which the sampling does not use.
    """
    if data_value(data, "inputs") != "bernoulli":
        return np.full((R, F), 1.0 / F, np.float32)
    if "sparsity" in column:
        p = np.repeat(1.0 - column["sparsity"][:, None], F, axis=1)
    elif "feature_probability" in column:
        p = np.repeat(column["feature_probability"][:, None], F, axis=1)
    elif "feature_probability" in data:
        p = np.broadcast_to(np.asarray(data["feature_probability"], np.float64), (R, F)).copy()
    else:
        p = 1.0 - np.broadcast_to(np.asarray(data_value(data, "sparsity"), np.float64), (R, F))
    ratio = column.get("density_ratio", np.full(R, data_value(data, "density_ratio")))
    p[:, 0] = np.minimum(1.0, p[:, 0] * ratio)
    return p.astype(np.float32)


def importance(data: dict, column: dict, R: int, F: int) -> np.ndarray:
    """[R, F] importances from a decay d (I_i = d^i), a relative r (last = r) or a list."""
    if "importance_decay" in column or "importance_decay" in data:
        decay = column.get("importance_decay", np.full(R, data.get("importance_decay")))
        return (decay[:, None] ** np.arange(F)).astype(np.float32)
    if "relative_importance" in column or "relative_importance" in data:
        r = column.get("relative_importance", np.full(R, data.get("relative_importance")))
        out = np.ones((R, F), np.float32)
        out[:, -1] = r
        return out
    return np.tile(np.asarray(data.get("importance", np.ones(F)), np.float32), (R, 1))


def flat_runs(da, axes: tuple[str, ...]) -> np.ndarray:
    """[R, ...] the runs of a results variable `da` (an xarray.DataArray) with the sweep
    axes `axes` (config order, the last fastest) on one run axis R, as `Grid` orders
    them; its own dims after."""
    ordered = da.transpose(*axes, ...)
    return np.asarray(ordered.values).reshape(-1, *ordered.shape[len(axes):])
