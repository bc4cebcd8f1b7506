"""`[sae]` sweep files, at run time: the SAE schema and its pure parser live in
`toymodels.sae_config` (no JAX; re-exported here), the reading of a results directory or
zoo source here (`resolve_sae`, when the sweep runs).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np

from toymodels import config as base
from toymodels import store, zoo
from toymodels.errors import UserError
from toymodels.sae_config import (HYPER_KEYS, PINS, SAE_DEFAULTS, SAE_SCHEMA, SAE_STATIC,
                                  SAE_TRACED, SAE_TRAIN, SAE_TRAIN_DEFAULTS, SYNTHETIC,
                                  SYNTHETIC_AXES, SYNTHETIC_DATA, TRAIN_DEFAULTS, ZOO, SAESpec,
                                  is_sae, parse_sae_config, sae_keys_known)
from toymodels.spec import DataSpec, ModelSpec

KINDS_WITH_W = ("linear", "relu_output", "relu_hidden")  # h = W x for these kinds
SOURCE_WORDS = {"spd": '"hand"'}  # a table's own source beside a results directory and the zoo


def resolve_sae(config: base.SweepConfig) -> base.SweepConfig:
    """The config with its source read (`Trainer.resolve`, when the sweep runs): an
    unresolved config completed, a resolved one checked against its source as it is now.

    Raises:
      UserError: the source is gone, is not a finished toy-model sweep, or no longer
        matches the config's `sae.source_model` / `source_data` / `runs`.
    """
    if config.spec is not None and config.spec.sae.source == SYNTHETIC:
        return config
    raw = config.table if config.spec is None else config.to_dict()
    return parse_sae_config(raw, config.source, reader=read_source)


def read_source(sae: dict, source: str, table: str = "sae") -> tuple[ModelSpec, DataSpec, tuple[int, ...]]:
    """(model, input law, runs) of the results directory or zoo model `sae["source"]`,
    read (the `reader` of `toymodels.sae_config.parse_sae_config`).

    Raises:
      UserError: the source is gone, is not a finished toy-model sweep, has no single W, or
        `sae.runs` picks no runs of it.
    """
    name = sae["source"]
    toy = (_zoo_config(name, source, table) if name.startswith(ZOO)
           else _results_config(name, source, table))
    if toy.spec.model.kind not in KINDS_WITH_W:
        raise UserError(f"{source}: {table}.source: a model of kind {toy.spec.model.kind} has no "
                        f"single W (h = W x); use a model of kind {', '.join(KINDS_WITH_W)}")
    runs = () if name.startswith(ZOO) else source_runs(toy, sae.get("runs", "all"), source, table)
    return toy.spec.model, toy.spec.data, runs


def _zoo_config(name: str, source: str, table: str = "sae") -> base.SweepConfig:
    try:
        model = zoo.load(name.removeprefix(ZOO))
    except UserError as e:
        raise UserError(f"{source}: {table}.source: {e}") from None
    return model.config


def _results_config(path: str, source: str, table: str = "sae") -> base.SweepConfig:
    """The toy-model config of a finished results directory."""
    out = Path(path)
    manifest = out / store.MANIFEST
    other = SOURCE_WORDS.get(table, '"synthetic"')  # the table's source of its own
    if not out.exists():
        raise UserError(f"{source}: {table}.source: {path!r} does not exist; give a results "
                        f'directory, "zoo:NAME" or {other}')
    if not manifest.exists():
        raise UserError(f"{source}: {table}.source: {path!r} is not a results directory (no "
                        f"{store.MANIFEST}); give a results directory, \"zoo:NAME\" or {other}")
    try:
        text = store.read_manifest(out)["config"]  # whole, of this schema
    except UserError as e:
        raise UserError(f"{source}: {table}.source: {e}") from None
    if not store.is_complete(out):
        raise UserError(f"{source}: {table}.source: {path}: the sweep is not finished; finish it first")
    raw = tomllib.loads(text)
    if is_sae(raw) or "spd" in raw:
        raise UserError(f"{source}: {table}.source: {path} holds {'SAEs' if is_sae(raw) else 'decompositions'}, not toy models")
    toy = base.parse_toy(raw, f"{path}/{store.MANIFEST}")
    if toy.static_groups:
        raise UserError(f"{source}: {table}.source: {path} has static axes "
                        f"({', '.join(n for n, _ in toy.static_axes)}); give a sweep without them")
    return toy


def source_coordinates(config: base.SweepConfig, table: str = "sae") -> dict[str, np.ndarray]:
    """{axis: [S] values} of the source runs `config.spec.<table>.runs` of a
    results-directory source (table "sae" or "spd"), from its config (the manifest; its
    results are not read)."""
    part = getattr(config.spec, table)
    return run_coordinates(_results_config(part.source, config.source, table), part.runs)


def run_coordinates(toy: base.SweepConfig, runs) -> dict[str, np.ndarray]:
    """{axis: [S] values} of the flat runs `runs` [S] of the sweep `toy` (no static axes)."""
    if not toy.axes:
        return {}
    index = np.indices(toy.shape).reshape(len(toy.axes), -1)[:, list(runs)]
    return {name: np.asarray(values)[i] for (name, values), i in zip(toy.axes, index)}


def source_runs(toy: base.SweepConfig, runs, source: str, table: str = "sae") -> tuple[int, ...]:
    """The flat run indices of `toy` that `runs` picks: "all", a list of indices, or a
    table {axis: value} fixing some axes (every value of the others)."""
    n = toy.n_runs
    if runs == "all":
        return tuple(range(n))
    if isinstance(runs, list):
        if not runs or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n for i in runs):
            raise UserError(f"{source}: {table}.runs: a list must hold run indices in 0..{n - 1}, got {runs!r}")
        if len(set(runs)) != len(runs):
            raise UserError(f"{source}: {table}.runs: repeated run indices {runs!r}")
        return tuple(runs)
    if not isinstance(runs, dict):
        raise UserError(f'{source}: {table}.runs: must be "all", a list of run indices or a table '
                        f"of coordinates, got {runs!r}")
    names = [name for name, _ in toy.axes]
    keep = [np.arange(len(v)) for _, v in toy.axes]
    for key, value in runs.items():
        if key not in names:
            raise UserError(f"{source}: {table}.runs.{key}: not an axis of the source; its axes: "
                            f"{', '.join(names) or 'none'}")
        values = np.asarray(dict(toy.axes)[key], dtype=float)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{source}: {table}.runs.{key}: must be one value of the axis "
                            f"({', '.join(f'{v:g}' for v in values)}), got {value!r}")
        hit = np.flatnonzero(np.isclose(values, value, rtol=1e-9, atol=0))
        if not len(hit):
            raise UserError(f"{source}: {table}.runs.{key}: {value!r} is not a value of the axis "
                            f"({', '.join(f'{v:g}' for v in values)})")
        keep[names.index(key)] = hit[:1]
    index = np.arange(n).reshape(toy.shape) if names else np.zeros((), int)
    return tuple(int(i) for i in index[np.ix_(*keep)].reshape(-1)) if names else (0,)


__all__ = ["HYPER_KEYS", "KINDS_WITH_W", "PINS", "SAE_DEFAULTS", "SAE_SCHEMA", "SAE_STATIC",
           "SAE_TRACED", "SAE_TRAIN", "SAE_TRAIN_DEFAULTS", "SYNTHETIC", "SYNTHETIC_AXES",
           "SYNTHETIC_DATA", "TRAIN_DEFAULTS", "ZOO", "SAESpec", "is_sae", "parse_sae_config",
           "read_source", "resolve_sae", "run_coordinates", "sae_keys_known", "source_coordinates",
           "source_runs"]
