"""`[spd]` sweep files: a Stochastic Parameter Decomposition of toy models, validated
without JAX (a results directory or zoo source is read when the sweep runs:
`toymodels.trainers.spd.resolve_spd`).

A sweep file with an `[spd]` table decomposes the weight matrices of toy models
(`toymodels.spd`) with the same engine as every trainer. Example::

  name = "spd_tms_5_2"
  [spd]
  source = "zoo:intro_pentagon"     # or a results directory ("runs/x", with `runs`), or "hand"
  C = 20
  [train]
  steps = 2000
  [sweep]
  seed = [0, 1, 2, 3]
  beta = [1e-3, 3e-3]               # traced: one compiled program serves every value

Sources (as the SAE trainer's, `toymodels.dictionary.config.read_source`):
  - a results directory of a toy-model sweep (relu_output models); `runs` picks its runs
    ("all", a list of flat run indices, or a table of coordinates); more than one makes a
    `source_run` axis: a decomposition of every cell of a phase diagram. Without
    `feature_probability` each run keeps its source run's density (its own input law).
  - "zoo:NAME", a zoo model (relu_output).
  - "hand": a hand-built model of k = `n_features` known rank-1 pieces per matrix
    (`toymodels.spd.targets.hand_W`: a regular k-gon in `n_hidden` = 2 dims, or k
    dedicated basis directions when n_hidden >= k), bias 0.
  - a results directory of a residual-MLP sweep (`[residual]`, one layer, a real-valued
    task): its MLP's W_in and W_out are decomposed (`toymodels.spd.targets.ResidualTarget`);
    its [residual] table is pinned as `spd.source_residual`.
The defaults are the SPD paper's TMS 5-2 settings (Bushnaq et al. 2025, appendix
"Training details and hyperparameters"; see `toymodels.spd.decomposition`); a residual
source changes the defaults of the keys not given to `RESIDUAL_DEFAULTS` and
`RESIDUAL_TRAIN_DEFAULTS`, and `feature_probability` to the source runs' own.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

from toymodels import config as base
from toymodels.checks import STATIC_AXIS, TRACED_AXIS, Key, axis_tuple, seed
from toymodels.errors import UserError, unknown
from toymodels.limits import check_grid
from toymodels.residual_config import ResidualSpec
from toymodels.sae_config import ZOO, pin
from toymodels.spec import ModelSpec, Spec, TrainSpec

HAND = "hand"
TOP_KEYS = ("name", "seed", "spd", "data", "train", "sweep")  # of an SPD sweep file
T, S = TRACED_AXIS, STATIC_AXIS
DECOMPOSABLE = ("relu_output",)  # model kinds whose forward the SPD targets know
# `reader(spd table, source) -> (model, runs, residual, p)` of a results directory or zoo
# source: residual the source's ResidualSpec (None for a toy model), p its runs' feature
# probability (None for a toy model)
Reader = Callable[[dict, str], "tuple[ModelSpec, tuple[int, ...], ResidualSpec | None, float | None]"]
positive = base.number(0.0, math.inf, lo_open=True)

SPD_SCHEMA = {  # the [spd] table, each key declared once
    "source": Key(base.text, None, 'the target: a results directory, "zoo:NAME" or "hand"'),
    "runs": Key(lambda v: v, "all", 'a results directory\'s runs: "all", a list of run '
                "indices or a table of coordinates (checked against the source)"),
    "n_features": Key(base.integer(1), 5, 'k, the pieces of a "hand" target (its features)', S),
    "n_hidden": Key(base.integer(1), 2, 'd of a "hand" target: 2 (a regular k-gon) or >= k', S),
    "identity": Key(base.boolean, False, "insert W_hidden = I_d between W_in and W_out (the "
                    "paper's TMS+ID), decomposed too", S),
    "C": Key(base.integer(1), 20, "subcomponents per matrix (the paper's TMS: 20)", S),
    "d_gate": Key(base.integer(1), 16, "hidden GELU units of each causal-importance MLP (16)", S),
    "n_mask_samples": Key(base.integer(1), 1, "S, mask samples per step (1)", S),
    "beta": Key(base.number(0.0, math.inf), 3e-3, "the importance-minimality coefficient "
                "(TMS 5-2: 3e-3; 40-10: 1e-4)", T),
    "p": Key(positive, 1.0, "the importance loss's exponent (TMS 5-2: 1; 40-10: 2)", T),
    "faithfulness_coefficient": Key(base.number(0.0, math.inf), 1.0, "faithfulness loss (1)", T),
    "stochastic_coefficient": Key(base.number(0.0, math.inf), 1.0, "stochastic "
                                  "reconstruction loss (1)", T),
    "layerwise_coefficient": Key(base.number(0.0, math.inf), 1.0, "layer-wise stochastic "
                                 "reconstruction loss (1)", T),
    "feature_probability": Key(base.number(0.0, 1.0, lo_open=True), 0.05, "each input "
                               "feature's probability of being on, Uniform[0, 1] when on; "
                               "not given: a results directory's runs each keep their own "
                               "density, a zoo or hand target the paper's 0.05", T),
    "threshold": Key(base.number(0.0, 1.0, lo_open=True, hi_open=True), 0.1, "causal "
                     "importance above which a subcomponent is live (metrics)"),
    "source_model": Key(pin(ModelSpec, "model"), None, "the source's [model], written into "
                        "the results when the sweep runs (a results directory or zoo source)"),
    "source_residual": Key(lambda v: _residual_pin(v), None, "a residual-MLP source's "
                           "[residual] table, written into the results when the sweep runs"),
}
# The residual MLP's defaults (keys not given), from the paper's appendix ("Training details
# and hyperparameters", the 1-layer residual MLP: C = 100 initial subcomponents, 16 gate
# neurons, importance coefficient 1e-5 with p = 2, Adam at a constant lr 2e-3, 30k steps
# of 2048). A later public config (goodfire-ai/spd, resid_mlp1_config.yaml) uses 1e-3.
RESIDUAL_DEFAULTS = {"C": 100, "beta": 1e-5, "p": 2.0}
RESIDUAL_TRAIN_DEFAULTS = {"steps": 30_000, "batch_size": 2048, "learning_rate": 2e-3,
                           "schedule": "constant"}
SPD_TRAIN_DEFAULTS = {"steps": 40_000, "batch_size": 4096, "learning_rate": 1e-3,
                      "schedule": "cosine", "log_every": 100}
SPD_TRAIN = {k: dataclasses.replace(base.SCHEMA["train"][k], default=v)
             for k, v in SPD_TRAIN_DEFAULTS.items()}  # Adam (torch's defaults) always
SPD_TRAIN["batch_size"] = dataclasses.replace(SPD_TRAIN["batch_size"], check=base.integer(1),
                                              description="examples per step")
SPD_STATIC = base.keys_with({"spd": SPD_SCHEMA, "train": SPD_TRAIN}, S)
SPD_TRACED = ("seed", *base.keys_with({"spd": SPD_SCHEMA, "train": SPD_TRAIN}, T))
HYPER_KEYS = ("beta", "p", "faithfulness_coefficient", "stochastic_coefficient",
              "layerwise_coefficient", "feature_probability")
HAND_ONLY = ("n_features", "n_hidden")


@dataclasses.dataclass(frozen=True)
class SPDSpec:
    """The static part of a group of decompositions (beside `Spec.model`, the target's
    shape n -> d, and `Spec.train`, the decomposition's steps and batch).

    Attributes:
      source: "hand", "zoo:NAME" or a results directory.
      runs: the source's flat run indices, one target each (a results directory); ().
      C: subcomponents per matrix.
      identity: W_hidden = I inserted (and decomposed).
      d_gate: hidden units of each causal-importance MLP.
      n_mask_samples: S.
      threshold: the live-subcomponent threshold (metrics only).
    """

    source: str = HAND
    runs: tuple[int, ...] = ()
    C: int = 20
    identity: bool = False
    d_gate: int = 16
    n_mask_samples: int = 1
    threshold: float = 0.1


def _residual_pin(v) -> dict:
    """spd.source_residual: a table of exactly ResidualSpec's fields (split a list)."""
    fields = sorted(f.name for f in dataclasses.fields(ResidualSpec))
    if not isinstance(v, dict) or sorted(v) != fields:
        raise ValueError(f"must be a table of {', '.join(fields)} (the source's; written when "
                         "the sweep runs)")
    ResidualSpec(**{**v, "split": tuple(v["split"])})
    return dict(v)


def is_spd(raw: dict) -> bool:
    """Whether a raw sweep dict describes an SPD sweep."""
    return "spd" in raw


def spd_keys_known() -> dict[str, tuple[str, ...]]:
    """Each table's keys of an SPD sweep ("" the top level), for `--set` overrides."""
    return {"": ("name", "seed"), "spd": tuple(SPD_SCHEMA), "train": tuple(SPD_TRAIN),
            "sweep": (*SPD_TRACED, *SPD_STATIC)}


def _known(spd: dict) -> bool:
    """Whether an `[spd]` table has what parsing needs of its source without reading it."""
    return spd["source"] == HAND or ("source_model" in spd and (
        spd["source"].startswith(ZOO) or isinstance(spd.get("runs"), list)))


def parse_spd(raw: dict, source: str = "<config>", *, reader: Reader | None = None
              ) -> base.SweepConfig:
    """Validates a raw TOML dict with an `[spd]` table into a SweepConfig (`spec.spd` set).

    Pure unless given a `reader` (when the sweep runs): a results directory or zoo source
    without its pinned facts (`spd.source_model`, a list of `spd.runs`) parses to an
    unresolved config (`spec` None, `table` the raw dict), completed when the sweep runs.

    Raises:
      UserError: one line naming the file, the key and what is allowed.
    """
    for key in raw:
        if key not in TOP_KEYS:
            why = ("not used by an SPD sweep (the source gives the toy model)" if key == "model"
                   else unknown(key, TOP_KEYS, "top-level key"))
            raise UserError(f"{source}: {key}: {why}")
    tables = {t: base.table_of(raw, t, source) for t in ("spd", "data", "train", "sweep")}
    if tables["data"]:
        raise UserError(f"{source}: data.{next(iter(tables['data']))}: not used by an SPD sweep "
                        "(its inputs: spd.feature_probability)")
    top = {k: base.check_value(base.SCHEMA[""][k].check, raw.get(k, base.DEFAULTS[k]), k, source)
           for k in base.SCHEMA[""]}
    spd = base.check_table(tables["spd"], SPD_SCHEMA, "spd", source)
    given_train = base.check_table(tables["train"], SPD_TRAIN, "train", source)
    train = {**SPD_TRAIN_DEFAULTS, **given_train}
    if "source" not in spd:
        raise UserError(f'{source}: spd.source: missing; give a results directory, "zoo:NAME" or "hand"')
    _check_source_keys(spd, source)
    axes = tuple(_axis(name, v, source) for name, v in tables["sweep"].items())
    for name, _ in axes:
        if name in HAND_ONLY and spd["source"] != HAND:
            raise UserError(f'{source}: sweep.{name}: only for spd.source = "hand" (the source '
                            f"{spd['source']!r} gives the toy model)")
    check_grid(axes, tuple(SPD_STATIC), source)
    if reader is None and not _known(spd):
        return base.SweepConfig(top["name"], top["seed"], None, {}, train, axes, source, (),
                                "spd", raw, tuple(SPD_STATIC))
    if any(name in SPD_STATIC for name, _ in axes):
        return _with_groups(raw, top, axes, source, reader)
    model, runs, residual, p = _resolve_source(spd, source, reader)
    # a toy results directory's runs keep their own density unless feature_probability is
    # given; a residual source's one feature probability is its default
    own_law = () if _one_model(spd["source"]) or residual is not None else ("feature_probability",)
    defaults = {k: key.default for k, key in SPD_SCHEMA.items()
                if key.default is not None and k not in ("runs", *HAND_ONLY, *own_law)}
    if residual is not None:
        _check_residual(spd, dict(axes), source)
        defaults.update(RESIDUAL_DEFAULTS, **({} if p is None else {"feature_probability": p}))
        train = {**SPD_TRAIN_DEFAULTS, **RESIDUAL_TRAIN_DEFAULTS, **given_train}
    resolved = {**defaults, **{k: v for k, v in spd.items() if k != "runs"}}
    if spd["source"] == HAND:
        resolved.update(n_features=model.n_features, n_hidden=model.n_hidden)
    else:
        resolved.update(source_model=dataclasses.asdict(model))
    if residual is not None:
        resolved.update(source_residual={**dataclasses.asdict(residual),
                                         "split": list(residual.split)})
    if runs:
        resolved["runs"] = list(runs)
    base.check_train({**train, "snapshot_every": 0, "warmup_steps": 0}, source)
    spec = Spec(model, TrainSpec(steps=train["steps"], batch_size=train["batch_size"],
                                 log_every=train["log_every"], schedule=train["schedule"],
                                 optimizer="adam"),
                residual=residual,
                spd=SPDSpec(spd["source"], tuple(runs), resolved["C"], resolved["identity"],
                            resolved["d_gate"], resolved["n_mask_samples"], resolved["threshold"]))
    if len(runs) > 1:
        axes = (("source_run", tuple(runs)), *axes)
    return base.SweepConfig(top["name"], top["seed"], spec, {}, train, axes, source, (), "spd",
                            resolved, tuple(SPD_STATIC))


def _one_model(name: str) -> bool:
    """Whether the source `name` is one model ("hand" or "zoo:NAME"), not a results
    directory (whose runs keep their own input law unless `feature_probability` is given)."""
    return name == HAND or name.startswith(ZOO)


def _check_source_keys(spd: dict, source: str) -> None:
    """A hand target's keys only with source "hand"; runs only with a results directory."""
    name = spd["source"]
    if name != HAND:
        for key in HAND_ONLY:
            if key in spd:
                raise UserError(f'{source}: spd.{key}: only for spd.source = "hand" (the source '
                                f"{name!r} gives the toy model)")
    if (name == HAND or name.startswith(ZOO)) and "runs" in spd:
        raise UserError(f"{source}: spd.runs: only for a results directory source ({name!r} is "
                        "one model); leave spd.runs out")
    if name == HAND and "source_model" in spd:
        raise UserError(f'{source}: spd.source_model: not for spd.source = "hand"')
    if name == HAND:
        n, d = spd.get("n_features", 5), spd.get("n_hidden", 2)
        if not (d == 2 or d >= n):
            raise UserError(f'{source}: spd.n_hidden: a "hand" target needs 2 or at least '
                            f"spd.n_features = {n}, got {d}")


def _check_residual(spd: dict, axes: dict, source: str) -> None:
    """A residual target has no inserted identity."""
    if spd.get("identity") or "identity" in axes:
        raise UserError(f"{source}: spd.identity: not for a residual-MLP source (its W_in and "
                        "W_out are decomposed); leave spd.identity out")


def _pinned_residual(spd: dict) -> ResidualSpec | None:
    pin_ = spd.get("source_residual")
    return None if pin_ is None else ResidualSpec(**{**pin_, "split": tuple(pin_["split"])})


def _resolve_source(spd: dict, source: str, reader: Reader | None):
    """(ModelSpec, runs, ResidualSpec or None, the source's feature probability or None) of
    the source: a hand target's, the pins, or read (and checked against the pins)."""
    name = spd["source"]
    if name == HAND:
        return ModelSpec("relu_output", spd.get("n_features", 5), spd.get("n_hidden", 2)), (), None, None
    pinned = ((ModelSpec(**spd["source_model"]), () if name.startswith(ZOO) else tuple(spd["runs"]),
               _pinned_residual(spd), None) if _known(spd) else None)
    if reader is None:
        return pinned
    found = reader(spd, source)
    if found[2] is not None:  # a residual MLP (checked by the reader)
        if pinned is not None and pinned[:3] != found[:3]:
            raise UserError(f"{source}: spd.source: {name} is not the model these decompositions "
                            "were made for (spd.source_residual, runs): the source changed; "
                            "decompose it into a new directory")
        return found
    if found[0].kind not in DECOMPOSABLE or found[0].norm != "none":
        raise UserError(f"{source}: spd.source: a {found[0].kind} model (norm {found[0].norm}) "
                        f"is not a TMS target; decompose a model of kind "
                        f"{', '.join(DECOMPOSABLE)} without norm")
    if pinned is not None and pinned[:3] != found[:3]:
        raise UserError(f"{source}: spd.source: {name} is not the model these decompositions were "
                        "made for (spd.source_model, runs): the source changed; decompose it "
                        "into a new directory")
    return found


def _axis(name: str, values, source: str) -> tuple[str, tuple]:
    allowed = (*SPD_TRACED, *SPD_STATIC)
    if name not in allowed:
        raise UserError(f"{source}: sweep.{name}: {unknown(name, allowed, 'sweepable key of an SPD sweep')}")
    key = f"sweep.{name}"
    schema = SPD_SCHEMA.get(name) or SPD_TRAIN.get(name)
    check = schema.check if schema is not None else seed
    return name, axis_tuple(base.axis_values(values, key, source), check, key, source)


def _with_groups(raw: dict, top: dict, axes: tuple, source: str,
                 reader: Reader | None) -> base.SweepConfig:
    """Each combination of the static axes' values (C, identity, d_gate, n_mask_samples,
    steps, batch_size; a hand target's n_features, n_hidden) parsed as a config of its own."""
    static = [(n, v) for n, v in axes if n in SPD_STATIC]
    groups = base.static_group_configs(raw, static, SPD_STATIC,
                                       lambda sub, where: parse_spd(sub, where, reader=reader),
                                       source)
    first = groups[0]
    runs = first.spec.spd.runs
    axes = (("source_run", runs), *axes) if len(runs) > 1 else axes
    return base.SweepConfig(top["name"], top["seed"], first.spec, first.data, first.train, axes,
                            source, tuple(groups), "spd", first.table, tuple(SPD_STATIC))


__all__ = ["HAND", "HYPER_KEYS", "RESIDUAL_DEFAULTS", "RESIDUAL_TRAIN_DEFAULTS", "SPD_SCHEMA", "SPD_STATIC", "SPD_TRACED", "SPD_TRAIN",
           "SPD_TRAIN_DEFAULTS", "SPDSpec", "is_spd", "parse_spd", "spd_keys_known"]
