"""Sweep files: TOML -> validated, frozen `SweepConfig`, and the toy models' tables.

This module holds what every trainer's config shares: `SweepConfig`, the value checks,
sweep axes, static groups, `--set` overrides and `to_toml`; and the schema of the toy
models' `[model]`, `[data]` and `[train]` tables with their pure parser `parse_toy`
(the tables the other trainers reuse: an SAE's synthetic `[data]`, its `[train]` keys,
an LLC pass's source). Which trainer a file is for is chosen by its table in
`toymodels.trainers.parse_config`.

Every key is checked against its schema; unknown keys, wrong types and values out of
range raise `UserError` with one line naming the file, the key and what is allowed.
Parsing reads nothing from disk; nothing is written before a config validates.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import tomllib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from toymodels.checks import (STATIC_AXIS, TRACED_AXIS, Key, axis_tuple, axis_values, boolean, check_table,
                              check_value, choice, finite, integer, keys_with, number, seed, table_of, text,
                              toml_value)
from toymodels.degenerate import check_data
from toymodels.errors import UserError, unknown
from toymodels.limits import check_grid
from toymodels.kinds import KGON_KINDS, MODEL_KINDS, NORM_KINDS, OPTIMIZER_NAMES, OPTIMIZER_READS
from toymodels.spec import DataSpec, ModelSpec, Spec, TrainSpec

SCHEDULES = ("constant", "cosine")
DENSITY_KEYS = ("sparsity", "feature_probability")
IMPORTANCE_KEYS = ("importance_decay", "relative_importance", "importance")
# [train] keys that only some optimizers read (`toymodels.kinds.OPTIMIZER_READS`)
OPTIMIZER_KEYS = tuple(dict.fromkeys(k for keys in OPTIMIZER_READS.values() for k in keys))
CORRELATIONS = ("independent", "correlated", "anticorrelated")
MAGNITUDES = ("uniform", "exponential", "constant")
INPUTS = ("bernoulli", "exactly_one", "one_hot")
INITS = ("random", "kgon", "normal")  # train.init (`toymodels.spec.TrainSpec.init`)
INIT_KEYS = ("init_k", "init_noise")  # [train] keys read only with init = "kgon"
NORM_KEYS = ("norm", "norm_eps")  # [model] keys of the hidden norm; norm_eps needs a norm
FULL_BATCH = "full"  # train.batch_size: every example of the finite dataset, every step
DATA_SPEC = ("correlation", "set_size", "magnitude", "inputs", "unit_norm", "dataset_size")


def _batch_size(v):
    if v == FULL_BATCH:
        return v
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f'must be an integer >= 1 or "{FULL_BATCH}"')
    return v


def _scalar_or_list(check):
    """A number checked by `check`, or a non-empty list of such numbers (one per feature)."""
    def both(v):
        if isinstance(v, list):
            if not v:
                raise ValueError("must be a number or a non-empty list of numbers")
            return [check(x) for x in v]
        return check(v)
    return both


def _importance_list(v):
    if not isinstance(v, list) or not v:
        raise ValueError("must be a non-empty list of numbers >= 0")
    return [number(0.0, math.inf)(x) for x in v]


INF = math.inf
T, S = TRACED_AXIS, STATIC_AXIS
SCHEMA: dict[str, dict[str, Key]] = {  # the toy models' tables, each key declared once
    "": {
        "name": Key(text, "sweep", "the sweep's name (titles, file names)"),
        "seed": Key(seed, 0, "the root seed: run keys are fold_in(key(seed), run seed)"),
    },
    "model": {
        "kind": Key(choice(MODEL_KINDS), ModelSpec.kind, "the model kind "
                    "(toymodels.models.MODELS)", S),
        "n_features": Key(integer(1), ModelSpec.n_features, "F, the input (and output) width", S),
        "n_hidden": Key(integer(1), ModelSpec.n_hidden, "H, the bottleneck width", S),
        "bias": Key(boolean, ModelSpec.bias, "whether the output bias b trains (false: b stays 0)"),
        "norm": Key(choice(NORM_KINDS), ModelSpec.norm, "a normalisation of the hidden vector "
                    "before the readout, without affine part: none, rms or layer", S),
        "norm_eps": Key(number(0.0, 1.0, lo_open=True), ModelSpec.norm_eps, "the epsilon of the norm, "
                        "inside the root (needs a norm; at most 1: a larger one swamps the hidden "
                        "vector's own scale, and the norm only shrinks it)", S),
    },
    "data": {
        "sparsity": Key(_scalar_or_list(number(0.0, 1.0, hi_open=True)), 0.0,
                        "S: each feature is zero with probability S (one value, or one "
                        "per feature)", T, number(0.0, 1.0, hi_open=True)),
        "feature_probability": Key(_scalar_or_list(number(0.0, 1.0, lo_open=True)), None,
                                   "p = 1 - S, instead of sparsity (one value, or one per "
                                   "feature)", T, number(0.0, 1.0, lo_open=True)),
        "density_ratio": Key(number(0.0, INF, lo_open=True), 1.0,
                             "feature 0's probability is this times the others'", T),
        "importance_decay": Key(number(0.0, INF, lo_open=True), None,
                                "importance I_i = decay^i", T),
        "relative_importance": Key(number(0.0, INF, lo_open=True), None,
                                   "the last feature's importance; the others' are 1", T),
        "importance": Key(_importance_list, None, "each feature's importance (F values; "
                          "default all 1)"),
        "correlation": Key(choice(CORRELATIONS), DataSpec.correlation, "independent, correlated "
                           "(a set switches on or off together) or anticorrelated (one "
                           "member of an active set)"),
        "set_size": Key(integer(1), DataSpec.set_size, "features per correlated or anticorrelated set"),
        "magnitude": Key(choice(MAGNITUDES), DataSpec.magnitude, "an active feature's value: uniform "
                         "on [0, 1), exponential (mean 1/2) or constant 1"),
        "inputs": Key(choice(INPUTS), DataSpec.inputs, "which features are on: bernoulli (each "
                      "with its probability), exactly_one or one_hot"),
        "unit_norm": Key(boolean, DataSpec.unit_norm, "rescale every example to unit L2 norm"),
        "dataset_size": Key(integer(1), DataSpec.dataset_size, "N fixed training examples per run (default: "
                            "fresh samples every step)", S),
        "data_seed": Key(seed, 0, "the seed of a finite dataset's examples", T),
    },
    "train": {
        "steps": Key(integer(1), TrainSpec.steps, "optimiser steps per run", S),
        "batch_size": Key(_batch_size, TrainSpec.batch_size, 'examples per step, or "full" (the whole '
                          "finite dataset)", S),
        "learning_rate": Key(number(0.0, INF, lo_open=True), 1e-3, "the peak learning rate", T),
        "weight_decay": Key(finite, 0.01, "weight decay (negative: weights pulled outward)", T),
        "dropout": Key(number(0.0, 1.0, hi_open=True), 0.0, "dropout on the hidden layer", T),
        "schedule": Key(choice(SCHEDULES), TrainSpec.schedule, "learning-rate schedule after the "
                        "warm-up: constant or cosine (to 0 at the last step)"),
        "warmup_steps": Key(integer(0), TrainSpec.warmup_steps, "linear warm-up from 0 over this many steps"),
        "log_every": Key(integer(1), TrainSpec.log_every, "the loss curve's mean over each block of this "
                         "many steps"),
        "l1_hidden": Key(number(0.0, INF), 0.0, "L1 penalty on the hidden activations", T),
        "snapshot_every": Key(integer(0), TrainSpec.snapshot_every, "keep the parameters every this many steps "
                              "(0: only the final ones)"),
        "eval_samples": Key(integer(8192), TrainSpec.eval_samples, "samples of final_loss's sampled stratum"),
        "optimizer": Key(choice(OPTIMIZER_NAMES), TrainSpec.optimizer, "the optimiser "
                         "(toymodels.train.OPTIMIZERS)", S),
        "momentum": Key(number(0.0, 1.0, hi_open=True), 0.9, "momentum (optimizer momentum)", T),
        "beta1": Key(number(0.0, 1.0, hi_open=True), 0.9, "Adam's beta1", T),
        "beta2": Key(number(0.0, 1.0, hi_open=True), 0.999, "Adam's beta2", T),
        "eps": Key(number(0.0, INF, lo_open=True), 1e-8, "Adam's epsilon", T),
        "l1_weights": Key(number(0.0, INF), 0.0, "L1 penalty on the weights", T),
        "init": Key(choice(INITS), TrainSpec.init, "the initialisation: random (the kind's own), "
                    "kgon (a regular k-gon plus noise) or normal (N(0, 1/H))"),
        "init_k": Key(integer(1), TrainSpec.init_k, "k of the kgon init", S),
        "init_noise": Key(number(0.0, INF), TrainSpec.init_noise, "std of the noise on the kgon init", S),
    },
}
STATIC_TABLES = keys_with(SCHEMA, STATIC_AXIS)  # a sweep axis of these splits the grid into
# static groups, one compiled program each (see SweepConfig.groups)
TRACED_TABLES = keys_with(SCHEMA, TRACED_AXIS)  # swept inside one compiled program
STATIC = tuple(STATIC_TABLES)
TRACED = (*TRACED_TABLES, "seed")  # the run seed is always an axis of its own
SWEEPABLE = TRACED + STATIC
TABLES = ("model", "data", "train", "sweep")
DEFAULTS = {  # the defaults filled into a resolved config ([data] keeps only what is given)
    **{k: key.default for k, key in SCHEMA[""].items()},
    **{t: {k: key.default for k, key in SCHEMA[t].items()} for t in ("model", "train")},
    "data": {},
}


def data_value(data: dict, key: str):
    """A [data] key's value: given, else its schema default."""
    return data.get(key, SCHEMA["data"][key].default)


def axis_check(name: str) -> Callable[[Any], Any]:
    """The value check of one sweep axis (the same as for the scalar it replaces)."""
    if name == "seed":
        return seed  # run keys fold in the seed; the evaluation key is 2**32 - 1
    key = SCHEMA[STATIC_TABLES.get(name) or TRACED_TABLES[name]][name]
    return key.axis_check or key.check


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A validated sweep.

    Attributes:
      name: the sweep's name (titles, file names).
      seed: root seed; run keys are fold_in(key(seed), run seed).
      spec: the static part (model shape, steps, batch).
      data: the resolved [data] table (scalars not replaced by an axis).
      train: the resolved [train] table.
      axes: ((name, values), ...) in file order; the runs are their cartesian product.
        Axes of `STATIC` keys (n_hidden, steps, ...) are static: see `groups`.
      source: where it came from, for error messages.
      static_groups: with static axes, one config per combination of their values (in
        file order, the last fastest), each with those keys set and only the traced axes
        left; empty without static axes. `spec`, `data` and `train` are then the first
        group's.
      trainer: the name of its trainer in `toymodels.trainers.TRAINERS` ("toy",
        "sae", "llc"), chosen by the file's table.
      table: the trainer's own resolved table (`[sae]`, `[llc]`); None for toy models.
        For SAEs `spec.sae` is then its static part and `spec.model` the source's shape.
        An SAE config whose source is not read yet has `spec` None and its raw dict here
        (`toymodels.dictionary.config.resolve_sae` completes it when it runs).
      static: the keys whose axes are static for this trainer.
    """

    name: str
    seed: int
    spec: Spec
    data: dict
    train: dict
    axes: tuple[tuple[str, tuple], ...]
    source: str = dataclasses.field(default="<config>", compare=False)
    static_groups: tuple[SweepConfig, ...] = ()
    trainer: str = "toy"
    table: dict | None = None
    static: tuple[str, ...] = ()

    @property
    def static_axes(self) -> tuple[tuple[str, tuple], ...]:
        """The static axes ((name, values), ...) in file order; () when there are none."""
        return tuple((n, v) for n, v in self.axes if n in self.static)

    @property
    def groups(self) -> tuple[SweepConfig, ...]:
        """The static groups: each compiled once, trained, chunked and stored as a sweep of
        its own traced axes. A config without static axes is its own single group.

        Example:
          >>> c = parse_toy({"sweep": {"n_hidden": [2, 3], "seed": [0, 1]}})
          >>> [(g.spec.model.n_hidden, g.n_runs) for g in c.groups]
          [(2, 2), (3, 2)]
        """
        return self.static_groups or (self,)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for _, v in self.axes)

    @property
    def n_runs(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self) -> str:
        """The config as the TOML file that runs it (`to_toml`): what a notebook shows for
        `zoo.config(name)`, ready to save as a sweep file."""
        return to_toml(self)

    def to_dict(self) -> dict:
        """The resolved config as plain data (what `to_toml` writes), without the keys
        of static axes in their tables, nor the [train] keys that no optimizer of the sweep
        reads (given, they would be an error), nor the init keys with init = "random" (the
        default: a sweep's manifest reads as before those keys existed)."""
        if self.trainer == "llc":  # a pass over a source: its [llc] table is the whole config
            return {"name": self.name, "llc": {k: v for k, v in self.table.items() if v is not None}}
        if self.spec is None:  # not resolved yet (an SAE sweep whose source is unread): as given
            return dict(self.table)
        static = {n for n, _ in self.static_axes}
        optimizers = dict(self.axes).get("optimizer", (self.spec.train.optimizer,))
        unused = _unused_by_all(optimizers, self.train)
        if self.train.get("init", "random") == "random":
            unused |= {"init", *INIT_KEYS}
        elif self.train["init"] == "normal":
            unused |= set(INIT_KEYS)
        first = {self.trainer: dict(self.table)} if self.table is not None else {
            "model": dataclasses.asdict(self.spec.model)}
        if isinstance(first.get("sae", {}).get("synthetic"), dict):  # an SAE source's world
            first["synthetic"] = first["sae"].pop("synthetic")  # is a table of its own
        if self.table is None:  # no norm anywhere: the manifest reads as before norms existed
            norms = dict(self.axes).get("norm", (self.spec.model.norm,))
            first["model"] = {k: v for k, v in first["model"].items()
                              if not (k in NORM_KEYS and set(norms) == {"none"})}
        tables = {**first, "data": dict(self.data),
                  "train": {k: v for k, v in self.train.items() if k not in unused}}
        tables = {t: {k: v for k, v in d.items() if k not in static} for t, d in tables.items()}
        sweep = {k: list(v) for k, v in self.axes if k != "source_run"}
        return {"name": self.name, "seed": self.seed, **tables, "sweep": sweep}


# ---- parsing


def read_raw(path: str | Path, overrides: tuple[str, ...] = (),
             known: dict[str, tuple[str, ...]] | None = None) -> dict:
    """The TOML dict of a sweep file with its `--set key=value` overrides applied
    (`known`: each table's keys, see `apply_override`).

    Raises:
      UserError: one line naming the file and what is wrong.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"{source}: cannot read the sweep file ({e.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise UserError(f"{source}: not UTF-8 text (a TOML file is UTF-8): byte "
                        f"0x{data[e.start]:02x} at line {line}, column {column}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{source}: TOML syntax error: {e}") from None
    except (ValueError, RecursionError) as e:
        raise UserError(f"{source}: TOML syntax error: {_unreadable(e)}") from None
    for item in overrides:
        apply_override(raw, item, source, known)
    return raw


def _unreadable(e: ValueError | RecursionError) -> str:
    """Why tomllib could not read a value that is valid TOML (a huge integer, deep nesting)."""
    if isinstance(e, RecursionError):
        return "arrays or tables nested too deeply to read"
    return str(e).partition(":")[0]  # e.g. Exceeds the limit (4300 digits) for integer ...


def toy_keys() -> dict[str, tuple[str, ...]]:
    """Each table's keys of a toy-model sweep ("" the top level), for `apply_override`."""
    return {"": tuple(SCHEMA[""]), **{t: tuple(SCHEMA[t]) for t in TABLES[:3]},
            "sweep": SWEEPABLE}


def apply_override(raw: dict, item: str, source: str,
                   known: dict[str, tuple[str, ...]] | None = None,
                   what: str = "a toy-model sweep") -> None:
    """Sets `key=value` (TOML value syntax; a bare word is a string) in the raw dict.

    `known` maps each table ("" the top level, "sweep" the axes) to its keys; default a
    toy-model sweep's (`toy_keys`). A key it does not hold is one error line; a table it
    does not hold is one line saying what the file is (`what`) and which tables it has.
    """
    known = toy_keys() if known is None else known
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"--set {item!r}: expected key=value, e.g. train.steps=500")
    parts = key.split(".")
    table, leaf = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    if len(parts) == 2 and table not in known:
        tables = ", ".join(t for t in known if t)
        raise UserError(f"{source}: --set {item}: the file is {what}, whose tables are "
                        f"{tables}; it has no [{table}]")
    if len(parts) > 2 or leaf not in known.get(table, ()):
        every = [f"{t}.{k}" if t else k for t, keys in known.items() for k in keys]
        raise UserError(f"{source}: --set {key}: {unknown(key, every)} (every key: docs/sweep-files.md)")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    except (ValueError, RecursionError) as e:
        raise UserError(f"{source}: --set {key}: cannot read the value: {_unreadable(e)}") from None
    (raw.setdefault(table, {}) if table else raw)[leaf] = parsed


def parse_toy(raw: dict, source: str = "<config>", *, _optimizers=None,
              _in_group: bool = False) -> SweepConfig:
    """Validates the raw TOML dict of a toy-model sweep into a SweepConfig; pure.

    (`_optimizers`: for a static group of a sweep with an `optimizer` axis, all of that
    axis's values: a key is given in vain only if none of them reads it. `_in_group`:
    a static group's parse, whose norm_eps was checked against the whole sweep's norms.)
    """
    fail = lambda key, msg: UserError(f"{source}: {key}: {msg}")
    for key in raw:
        if key not in (*SCHEMA[""], *TABLES):
            raise fail(key, unknown(key, (*SCHEMA[""], *TABLES), "top-level key"))
    tables = {t: table_of(raw, t, source) for t in TABLES}
    top = {k: check_value(SCHEMA[""][k].check, raw.get(k, DEFAULTS[k]), k, source) for k in SCHEMA[""]}
    checked = {t: check_table(tables[t], SCHEMA[t], t, source) for t in ("model", "data", "train")}
    model = {**DEFAULTS["model"], **checked["model"]}
    train = {**DEFAULTS["train"], **checked["train"]}
    axes = tuple(_axis(name, v, source) for name, v in tables["sweep"].items())
    check_grid(axes, STATIC, source)
    if not _in_group:
        _check_norm_eps(model, set(checked["model"]), dict(axes), source)
    if any(name in STATIC for name, _ in axes):
        return _with_groups(raw, top, axes, source)
    data = resolve_data(checked["data"], dict(axes), model["n_features"], source)
    check_train(train, source)
    given = {**{k: f"train.{k}" for k in checked["train"]}, **{k: f"sweep.{k}" for k, _ in axes}}
    check_optimizer_keys(_optimizers or (train["optimizer"],), given, source)
    _check_init(train, model, set(checked["train"]), source)
    static = ("steps", "log_every", "schedule", "warmup_steps", "snapshot_every",
              "eval_samples", "optimizer", "init", "init_k", "init_noise")
    data_spec = DataSpec(**{k: data_value(data, k) for k in DATA_SPEC})
    check_sets(data_spec, model["n_features"], source)
    _check_inputs(data, dict(axes), data_spec, source)
    if data_spec.inputs == "one_hot":  # B is F; written out so that the config round-trips
        train["batch_size"] = _one_hot_batch(checked["train"], model["n_features"], source)
    batch = resolve_batch(train, data_spec, source)
    check_data(data, dict(axes), model["n_features"], batch, train["steps"], data_spec.dataset_size, source)
    spec = Spec(ModelSpec(**model),
                TrainSpec(batch_size=batch, **{k: train[k] for k in static}), data_spec)
    return SweepConfig(top["name"], top["seed"], spec, data, train, axes, source, static=STATIC)


def _with_groups(raw: dict, top: dict, axes: tuple, source: str) -> SweepConfig:
    """A config with static axes: each combination of their values is parsed as a config
    of its own (so every group is validated whole, its errors naming the group), and the
    sweep keeps all the axes in file order."""
    static = [(n, v) for n, v in axes if n in STATIC]
    optimizers = dict(static).get("optimizer")
    parse = lambda sub, where: parse_toy(sub, where, _optimizers=optimizers, _in_group=True)
    groups = static_group_configs(raw, static, STATIC_TABLES, parse, source)
    first = groups[0]
    return SweepConfig(top["name"], top["seed"], first.spec, first.data, first.train, axes,
                       source, tuple(groups), static=STATIC)


def static_group_configs(raw: dict, static: list, tables: dict, parse, source: str) -> list:
    """One parsed config per combination of the static axes' values (file order, the last
    fastest): `parse(raw with those values set in their tables (`tables[name]`) and their
    axes removed, "source [name = value, ...]")`."""
    groups = []
    for values in itertools.product(*(v for _, v in static)):
        sub = copy.deepcopy(raw)
        for (name, _), value in zip(static, values):
            sub.setdefault(tables[name], {})[name] = _thawed(value)
            del sub["sweep"][name]
        where = ", ".join(f"{n} = {toml_value(v)}" for (n, _), v in zip(static, values))
        groups.append(parse(sub, f"{source} [{where}]"))
    return groups


def _thawed(value):
    """An axis value as TOML gives it: tuples (a list-valued key's value, kept hashable on
    the axis) as lists."""
    return [_thawed(v) for v in value] if isinstance(value, tuple) else value


def _axis(name: str, spec, source: str) -> tuple[str, tuple]:
    key = f"sweep.{name}"
    if name not in SWEEPABLE:
        raise UserError(f"{source}: {key}: not a sweepable key; allowed: {', '.join(SWEEPABLE)}")
    return name, axis_tuple(axis_values(spec, key, source), axis_check(name), key, source)


def resolve_data(data: dict, axes: dict, n_features: int, source: str) -> dict:
    """Checks the density and importance keys: exclusive choices, axes replacing scalars."""
    for group, what in ((DENSITY_KEYS, "density"), (IMPORTANCE_KEYS, "importance")):
        given = [k for k in group if k in data]
        swept = [k for k in group if k in axes]
        if len(swept) > 1:
            raise UserError(f"{source}: sweep.{swept[1]}: sweeps {what} twice (with sweep.{swept[0]}); sweep one of {', '.join(group)}")
        if len(given) > 1:
            raise UserError(f"{source}: data.{given[1]}: give one {what} key, not both {given[0]} and {given[1]}")
        if swept:
            data = {k: v for k, v in data.items() if k not in group}
    for key in ("importance", "sparsity", "feature_probability"):
        if isinstance(data.get(key), list) and len(data[key]) != n_features:
            raise UserError(f"{source}: data.{key}: a list needs model.n_features = {n_features} values, got {len(data[key])}")
    return data


def check_sets(data: DataSpec, n_features: int, source: str) -> None:
    if data.correlation != "independent" and n_features % data.set_size:
        raise UserError(f"{source}: data.set_size: must divide model.n_features = {n_features} for {data.correlation} sets, got {data.set_size}")
    if data.correlation == "independent" and data.set_size != 1:
        raise UserError(f"{source}: data.set_size: needs data.correlation = correlated or anticorrelated")


def _check_inputs(data: dict, axes: dict, spec: DataSpec, source: str) -> None:
    """The combinations the input laws and finite datasets exclude."""
    fail = lambda key, msg: UserError(f"{source}: {key}: {msg}")
    if spec.inputs != "bernoulli":
        why = f"not with data.inputs = {spec.inputs} (one feature is active per example)"
        for key in ("sparsity", "feature_probability", "density_ratio"):
            if key in axes or key in data:
                raise fail(f"sweep.{key}" if key in axes else f"data.{key}", why)
        if spec.correlation != "independent":
            raise fail("data.correlation", f"must be independent with data.inputs = {spec.inputs}, got {spec.correlation}")
    if spec.inputs == "one_hot":
        if spec.dataset_size:
            raise fail("data.dataset_size", "not with data.inputs = one_hot (every batch is the F one-hot vectors)")
        if "magnitude" in data:
            raise fail("data.magnitude", "not with data.inputs = one_hot (its values are 1)")
    if not spec.dataset_size and ("data_seed" in axes or "data_seed" in data):
        where = "sweep.data_seed" if "data_seed" in axes else "data.data_seed"
        raise fail(where, "needs data.dataset_size (a finite training set)")


def _one_hot_batch(given: dict, n_features: int, source: str) -> int:
    """B = F for one-hot inputs; an explicit other batch size is an error."""
    batch = given.get("batch_size", n_features)
    if batch != n_features:
        raise UserError(f"{source}: train.batch_size: data.inputs = one_hot trains on the model.n_features = {n_features} one-hot vectors: give {n_features} or leave it out, got {batch!r}")
    return batch


def resolve_batch(train: dict, data: DataSpec, source: str) -> int:
    """The integer batch size: "full" is the dataset size; at most the dataset size."""
    batch, size = train["batch_size"], data.dataset_size
    fail = lambda msg: UserError(f"{source}: train.batch_size: {msg}, got {batch!r}")
    if batch == FULL_BATCH and not size:
        raise fail(f'"{FULL_BATCH}" needs data.dataset_size (a finite training set)')
    if batch == FULL_BATCH:
        return size
    if size and batch > size:
        raise fail(f'must be at most data.dataset_size = {size} (or "{FULL_BATCH}")')
    if size and batch < size and train["steps"] * batch >= 2**32:
        raise fail(f"train.steps x train.batch_size must be < 2**32 for minibatches (the stream position is a uint32); train.steps = {train['steps']}")
    return batch


def check_train(train: dict, source: str) -> None:
    if train["steps"] % train["log_every"]:
        raise UserError(f"{source}: train.log_every: must divide train.steps = {train['steps']}, got {train['log_every']}")
    if train["warmup_steps"] > train["steps"]:
        raise UserError(f"{source}: train.warmup_steps: must be at most train.steps = {train['steps']}, got {train['warmup_steps']}")
    k = train["snapshot_every"]
    if k and (train["steps"] % k or k % train["log_every"]):
        raise UserError(f"{source}: train.snapshot_every: must divide train.steps = {train['steps']} and be a multiple of train.log_every = {train['log_every']}, got {k}")


def _check_init(train: dict, model: dict, given: set, source: str) -> None:
    """train.init = "kgon" needs a tied W and b, a plane for k > 1 and 1 <= init_k <= F;
    init_k and init_noise are read only with it. (A static group's axis values are set in
    its [train] table, so `given` holds them too.)"""
    fail = lambda key, msg: UserError(f"{source}: train.{key}: {msg}")
    if train["init"] in ("random", "normal"):
        for key in (k for k in INIT_KEYS if k in given):
            raise fail(key, 'needs train.init = "kgon"')
        return
    kinds = " or ".join(KGON_KINDS)
    if model["kind"] not in KGON_KINDS:
        raise fail("init", f'"kgon" needs model.kind = {kinds} (a tied W and a bias b), got {model["kind"]}')
    F, k = model["n_features"], train["init_k"]
    if "init_k" not in given:
        raise fail("init_k", f'needed with train.init = "kgon": the polygon\'s k, 1 <= k <= model.n_features = {F}')
    if k > F:
        raise fail("init_k", f"must be at most model.n_features = {F}, got {k}")
    if k > 1 and model["n_hidden"] < 2:
        raise fail("init", f'"kgon" with init_k = {k} needs model.n_hidden >= 2 (the polygon lies in a plane), got {model["n_hidden"]}')


def _check_norm_eps(model: dict, given: set, axes: dict, source: str) -> None:
    """norm_eps (in [model] or as an axis) is read only where some run has a norm."""
    norms = axes.get("norm", (model["norm"],))
    if ("norm_eps" in given or "norm_eps" in axes) and set(norms) == {"none"}:
        where = "sweep.norm_eps" if "norm_eps" in axes else "model.norm_eps"
        allowed = " or ".join(f'"{n}"' for n in NORM_KINDS if n != "none")
        raise UserError(f"{source}: {where}: needs model.norm = {allowed} (the ε of the "
                        "norm on the hidden vector); model.norm is \"none\"")


def unused_by_optimizer(optimizer: str, keys) -> list[str]:
    """The keys among `keys`, in order, that optimizer `optimizer` does not read (e.g.
    beta1 for "sgd"); keys that every optimizer reads, or none does, are never listed.

    Example:
      >>> unused_by_optimizer("sgd", ["learning_rate", "beta1", "momentum"])
      ['beta1', 'momentum']
    """
    return [k for k in keys if k in OPTIMIZER_KEYS and k not in OPTIMIZER_READS[optimizer]]


def _unused_by_all(optimizers, keys) -> set[str]:
    """The keys among `keys` that none of `optimizers` reads (`unused_by_optimizer`)."""
    return set.intersection(*(set(unused_by_optimizer(o, keys)) for o in optimizers))


def check_optimizer_keys(optimizers, given: dict[str, str], source: str) -> None:
    """A key given explicitly (`given`: key -> where, e.g. "train.beta1") that no optimizer
    of `optimizers` reads is an error naming the optimizers that read it."""
    unused = _unused_by_all(optimizers, given)
    for key in (k for k in given if k in unused):
        users = ", ".join(sorted(n for n, reads in OPTIMIZER_READS.items() if key in reads))
        which = " | ".join(f'"{o}"' for o in optimizers)
        raise UserError(f"{source}: {given[key]}: not used by train.optimizer = {which} "
                        f"(used by {users})")


# ---- writing


def to_toml(config: SweepConfig) -> str:
    """The resolved config as TOML text; `parse_config(tomllib.loads(...))` gives it back."""
    d = config.to_dict()
    lines = [f"{k} = {toml_value(d[k])}" for k in ("name", "seed") if k in d]
    for table in (t for t in d if t not in ("name", "seed")):
        lines += ["", f"[{table}]"] + [f"{k} = {toml_value(v)}" for k, v in d[table].items()]
    return "\n".join(lines) + "\n"
