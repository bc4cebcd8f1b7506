"""`[sae]` sweep files: SAEs trained on a toy model's hidden activations, validated
without JAX (the source is read when the sweep runs: `toymodels.dictionary.config`).

A sweep file with an `[sae]` table trains sparse autoencoders instead of toy models, with
the same engine (`toymodels.sweep.run_sweep`). The `[sae]` table names the source of the
activations and the SAE; `[train]` the SAE's optimiser (defaults: Adam, lr 1e-3, no weight
decay, batch 1024, 5,000 steps); `[sweep]` its axes. Example::

  name = "sae_width"
  [sae]
  source = "zoo:basic_relu_sparse"   # or "runs/intro" (a results directory), or "synthetic"
  kind = "topk"
  k = 1
  [sweep]
  width = [5, 10, 20, 40]            # static: one compiled program per width
  seed = [0, 1, 2, 3]

Sources:
  - a results directory of a toy-model sweep: `runs` picks its runs ("all", a list of
    flat run indices, or a table of coordinates such as { sparsity = 0.99, seed = 0 },
    every other axis kept whole). More than one run makes a `source_run` axis: an SAE for
    every cell of a phase diagram.
  - "zoo:NAME", a zoo model (`toymodels.zoo`).
  - "synthetic": `n_features` random unit directions in `n_hidden` dims (drawn from
    `truth_seed`), with the `[data]` table's feature probabilities, correlation and
    magnitudes (Uniform[0, 1) by default). Or, with a `[synthetic]` table, a synthetic
    feature world (`toymodels.synthetic_config`: SynthSAEBench's Zipf firing, hierarchy,
    correlation and magnitudes); its keys are then the world's, and `sae.n_features`,
    `n_hidden`, `truth_seed` and `[data]` are errors. Its keys but preset, seed,
    n_features, n_hidden and rank may be static `[sweep]` axes (`WORLD_STATIC`): a world
    per value, built from the same world seed.
The activations are h = W x with x drawn fresh every step from the source's input law
(its `[data]` table and per-run feature probabilities), common random numbers as for toy
models: SAEs that share a seed see the same x.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

from toymodels import config as base
from toymodels.checks import STATIC_AXIS, TRACED_AXIS, Key, axis_tuple, seed
from toymodels.degenerate import check_data
from toymodels.errors import UserError, unknown
from toymodels.kinds import SAE_DICTIONARIES, SAE_KIND_NAMES, SAE_READS, SAE_REAL_K, SAE_TIED
from toymodels.limits import check_grid
from toymodels.spec import DataSpec, ModelSpec, Spec, TrainSpec
from toymodels.synthetic_config import FIXED as WORLD_FIXED, SYNTHETIC_SCHEMA, TABLE as WORLD_TABLE, parse_world
from toymodels.world_spec import WorldSpec

SYNTHETIC, ZOO = "synthetic", "zoo:"
TOP_KEYS = ("name", "seed", "sae", "data", "train", "sweep", "synthetic")  # of an SAE sweep file
T, S = TRACED_AXIS, STATIC_AXIS
PINS = ("source_model", "source_data")  # what a resolved config knows of its source
# `reader(sae table, source) -> (model, input law, runs)` of a results directory or zoo
# source, read when the sweep runs (`toymodels.dictionary.config.read_source`)
Reader = Callable[[dict, str], "tuple[ModelSpec, DataSpec, tuple[int, ...]]"]


def pin(spec_type, table: str):
    """The check of a pinned source table: exactly `spec_type`'s fields, each value one the
    toy schema's `table` allows (or the spec's own default, e.g. dataset_size = 0)."""
    fields = [f.name for f in dataclasses.fields(spec_type)]

    def check(v):
        if not isinstance(v, dict) or sorted(v) != sorted(fields):
            raise ValueError(f"must be a table of {', '.join(fields)} (the source's; written "
                             "when the sweep runs)")
        for key, value in v.items():
            if value != getattr(spec_type, key):
                base.SCHEMA[table][key].check(value)
        return dict(v)
    return check


def _k(v):
    """sae.k: an integer >= 1 kept as given (old files read and write the same), or a real
    number >= 1 (BatchTopK's k·B codes a batch; a per-kind check refuses it elsewhere)."""
    if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
        return base.integer(1)(v)
    if isinstance(v, float):
        return base.number(1.0, math.inf)(v)
    raise ValueError("must be a number >= 1 (an integer for topk and mp)")


SAE_SCHEMA = {  # the [sae] table, each key declared once
    "source": Key(base.text, None, 'the activations\' source: a results directory, "zoo:NAME" '
                  'or "synthetic"'),
    "runs": Key(lambda v: v, "all", 'a results directory\'s runs: "all", a list of run '
                "indices or a table of coordinates (checked against the source)"),
    "kind": Key(base.choice(SAE_KIND_NAMES), "relu", "the SAE kind "
                "(toymodels.dictionary.SAE_KINDS)", S),
    "width": Key(base.integer(1), None, "N, the number of latents (default: the source's "
                 "number of features)", S),
    "l1_coefficient": Key(base.number(0.0, math.inf), 0.01, "L1 coefficient (relu, "
                          "jumprelu's L0)", T),
    "k": Key(_k, 1, "active latents per example: an integer for topk and mp (its pursuit "
             "steps); a real number for batchtopk and matryoshka, which keep round(k·B) codes "
             "of a batch of B", T),
    "k_aux": Key(base.integer(1), None, "dead latents the AuxK loss reconstructs with "
                 "(default: half the source's hidden dims, rounded up)", T),
    "aux_coefficient": Key(base.number(0.0, math.inf), 1 / 32, "the AuxK loss's weight", T),
    "bandwidth": Key(base.number(0.0, math.inf, lo_open=True), 0.001, "jumprelu's "
                     "straight-through bandwidth", T),
    "init_threshold": Key(base.number(0.0, math.inf, lo_open=True), 0.001, "jumprelu's "
                          "threshold θ at initialisation, every latent's (Gemma Scope: 0.001; "
                          "SynthSAEBench's runs: 0.5)", T),
    "dead_steps": Key(base.integer(1), 200, "steps without firing before a latent counts "
                      "as dead", T),
    "tied": Key(base.boolean, False, "the encoder is the decoder's transpose (W_e = W_dᵀ, one "
                f"trained matrix; the results still hold encoder): {', '.join(SAE_TIED)}", S),
    "dictionary": Key(base.choice(SAE_DICTIONARIES), "learned", 'the decoder: "learned", or '
                      '"truth" (fixed to the source\'s true unit feature directions, b_dec fixed '
                      "at 0: the encoder trained alone; sae.width must be the source's "
                      "n_features)", S),
    "n_features": Key(base.integer(1), None, "F of a synthetic source"),
    "n_hidden": Key(base.integer(1), None, "d of a synthetic source"),
    "truth_seed": Key(seed, 0, "the seed of a synthetic source's directions"),
    "source_model": Key(pin(ModelSpec, "model"), None, "the source's [model], written into the "
                        "results when the sweep runs (a results directory or zoo source; given, "
                        "it must still match the source)"),
    "source_data": Key(pin(DataSpec, "data"), None, "the source's input law (its [data] "
                       "correlation, set_size, magnitude, inputs, unit_norm, dataset_size), "
                       "written and checked as source_model"),
}
HYPER_KEYS = ("l1_coefficient", "k", "k_aux", "aux_coefficient", "bandwidth", "init_threshold",
              "dead_steps")
SAE_DEFAULTS = {k: SAE_SCHEMA[k].default for k in ("kind", *HYPER_KEYS)
                if SAE_SCHEMA[k].default is not None}
SAE_TRAIN_DEFAULTS = {"steps": 5000, "optimizer": "adam", "weight_decay": 0.0}
SAE_TRAIN = {k: dataclasses.replace(base.SCHEMA["train"][k],
                                    default=SAE_TRAIN_DEFAULTS.get(k, base.SCHEMA["train"][k].default))
             for k in ("steps", "batch_size", "learning_rate", "weight_decay", "schedule",
                       "warmup_steps", "log_every", "optimizer", "momentum", "beta1", "beta2",
                       "eps")}  # the SAE's [train]: the toy models' keys, the SAE's defaults
TRAIN_DEFAULTS = {k: key.default for k, key in SAE_TRAIN.items()}
SYNTHETIC_DATA = ("sparsity", "feature_probability", "density_ratio", "correlation",
                  "set_size", "magnitude", "unit_norm")
SAE_STATIC = base.keys_with({"sae": SAE_SCHEMA, "train": SAE_TRAIN}, S)  # and their tables
# with a [synthetic] table its static keys (all but WORLD_FIXED) are axes: a world per value
WORLD_STATIC = base.keys_with({WORLD_TABLE: SYNTHETIC_SCHEMA}, S)
SAE_WORLD_STATIC = {**SAE_STATIC, **WORLD_STATIC}
SAE_TRACED = ("seed", *base.keys_with({"train": SAE_TRAIN, "sae": SAE_SCHEMA}, T))
SYNTHETIC_AXES = ("sparsity", "feature_probability")


@dataclasses.dataclass(frozen=True)
class SAESpec:
    """The static part of an SAE sweep group (beside `Spec.model`, the source's shape F -> d,
    `Spec.data`, its input law, and `Spec.train`, the SAE's optimiser and steps).

    Attributes:
      kind: a name in `toymodels.dictionary.SAE_KINDS`.
      width: N, the number of latents.
      source: "synthetic", "zoo:NAME" or a results directory.
      runs: the source's flat run indices, one SAE source each (a results directory);
        () for the other sources.
      truth_seed: the synthetic directions' seed (a world's: `synthetic.seed`).
      tied: the encoder is the decoder (`SAE_TIED` kinds).
      dictionary: "learned", or "truth": the decoder fixed to the source's true unit
        directions.
      world: the synthetic feature world of a `[synthetic]` table, or None.
      pursuit_steps: "mp": the pursuit's static iterations, the largest k of the sweep
        (k is traced, so the iterations past an SAE's own k do nothing); 0 for the other
        kinds.
    """

    kind: str = "relu"
    width: int = 20
    source: str = SYNTHETIC
    runs: tuple[int, ...] = ()
    truth_seed: int = 0
    tied: bool = False
    dictionary: str = "learned"
    world: WorldSpec | None = None
    pursuit_steps: int = 0


def sae_keys_known() -> dict[str, tuple[str, ...]]:
    """Each table's keys of an SAE sweep ("" the top level), for `--set` overrides."""
    toy = base.toy_keys()  # less [model]: an SAE's source gives the toy model
    return {"": toy[""], "sae": tuple(SAE_SCHEMA), WORLD_TABLE: tuple(SYNTHETIC_SCHEMA),
            "data": toy["data"], "train": toy["train"],
            "sweep": (*base.SWEEPABLE, *SAE_TRACED, *SAE_STATIC, *WORLD_STATIC)}


def is_sae(raw: dict) -> bool:
    """Whether a raw sweep dict describes an SAE sweep."""
    return "sae" in raw


def parse_sae_config(raw: dict, source: str = "<config>", *, reader: Reader | None = None,
                     _kinds=None) -> base.SweepConfig:
    """Validates a raw TOML dict with an `[sae]` table into a SweepConfig whose
    `spec.sae` is set (see the module docstring).

    Pure unless given a `reader` (`toymodels.dictionary.config.read_source`, when the
    sweep runs): a results directory or zoo source is not read. A config that has
    its source's facts (`sae.source_model`, `sae.source_data` and a list of `sae.runs`, as
    every resolved config and manifest has) parses in full; one without them parses to an
    unresolved config (`spec` None, `table` the raw dict) that
    `toymodels.dictionary.config.resolve_sae` completes when the sweep runs. A synthetic source needs nothing read.

    Raises:
      UserError: one line naming the file, the key and what is allowed (a width of 0,
        k > width, an unknown kind; with a `reader`, a source that does not exist or changed).
    """
    fail = lambda key, msg: UserError(f"{source}: {key}: {msg}")
    for key in raw:
        if key not in TOP_KEYS:
            why = ("not used by an SAE sweep (the source gives the toy model)" if key == "model"
                   else unknown(key, TOP_KEYS, "top-level key"))
            raise fail(key, why)
    tables = {t: base.table_of(raw, t, source) for t in ("sae", "data", "train", "sweep", WORLD_TABLE)}
    top = {k: base.check_value(base.SCHEMA[""][k].check, raw.get(k, base.DEFAULTS[k]), k, source)
           for k in base.SCHEMA[""]}
    sae = _check_keys(tables["sae"], SAE_SCHEMA, "sae", source)
    train = _check_keys(tables["train"], SAE_TRAIN, "train", source, "not used by an SAE sweep")
    if "source" not in sae:
        raise fail("sae.source", 'missing; give a results directory, "zoo:NAME" or "synthetic"')
    world = WORLD_TABLE in raw
    if world and sae["source"] != SYNTHETIC:
        raise fail(WORLD_TABLE, f'a synthetic world is a source: only with sae.source = "synthetic" '
                   f"(the source {sae['source']!r} gives the activations)")
    axes = tuple(_axis(name, v, sae["source"], source, world) for name, v in tables["sweep"].items())
    static_keys = SAE_WORLD_STATIC if world else SAE_STATIC
    check_grid(axes, static_keys, source)
    train = {**TRAIN_DEFAULTS, **train}
    if reader is None and not _known(sae):
        return base.SweepConfig(top["name"], top["seed"], None, {}, train, axes, source, (),
                                "sae", raw, tuple(static_keys))
    if any(name in static_keys for name, _ in axes):
        return _with_groups(raw, top, axes, source, reader, static_keys)
    model, data_spec, data, runs = _resolve_source(sae, tables["data"], dict(axes), source, reader,
                                                   tables[WORLD_TABLE] if world else None)
    world_spec, world_seed, world_table = (parse_world(tables[WORLD_TABLE], source) if world
                                           else (None, None, None))
    k_aux_default = math.ceil(model.n_hidden / 2)
    resolved = {**SAE_DEFAULTS, "k_aux": k_aux_default, "width": model.n_features,
                **{k: v for k, v in sae.items() if k != "runs"}}
    if world:
        resolved[WORLD_TABLE] = world_table  # its own table in the TOML (SweepConfig.to_dict)
    elif sae["source"] == SYNTHETIC:
        resolved.update(n_features=model.n_features, n_hidden=model.n_hidden,
                        truth_seed=sae.get("truth_seed", SAE_SCHEMA["truth_seed"].default))
    else:
        resolved.update(source_model=dataclasses.asdict(model), source_data=dataclasses.asdict(data_spec))
    if runs:
        resolved["runs"] = list(runs)
    base.check_train({**train, "snapshot_every": 0}, source)
    given = {**{k: f"train.{k}" for k in tables["train"]}, **{k: f"sweep.{k}" for k, _ in axes}}
    base.check_optimizer_keys((train["optimizer"],), given, source)
    kinds = _kinds or (resolved["kind"],)
    _check_sae_keys(resolved, sae, dict(axes), kinds, source, k_aux_default)
    _check_options(resolved, dict(axes), model.n_features, source)
    own = SAE_READS[resolved["kind"]]  # written back: only the keys this kind reads
    resolved = {k: v for k, v in resolved.items() if k not in HYPER_KEYS or k in own}
    if "init_threshold" not in sae and "init_threshold" not in dict(axes):
        resolved.pop("init_threshold", None)  # the default, unwritten: configs written before
        # the key existed resolve as they did (a resumed sweep's manifest stays the same)
    batch = base.resolve_batch(train, data_spec, source)
    if sae["source"] == SYNTHETIC and not world:  # a source's own sweep checked its [data]
        check_data(data, dict(axes), model.n_features, batch, train["steps"], 0, source)
    static = ("steps", "log_every", "schedule", "warmup_steps", "optimizer")
    spec = Spec(model, TrainSpec(batch_size=batch, eval_samples=base.DEFAULTS["train"]["eval_samples"],
                                 **{k: train[k] for k in static}), data_spec,
                SAESpec(resolved["kind"], resolved["width"], sae["source"], tuple(runs),
                        world_seed if world else resolved.get("truth_seed", SAE_SCHEMA["truth_seed"].default),
                        resolved.get("tied", False), resolved.get("dictionary", "learned"), world_spec,
                        pursuit_steps(resolved, dict(axes))))
    if len(runs) > 1:
        axes = (("source_run", tuple(runs)), *axes)
    return base.SweepConfig(top["name"], top["seed"], spec, data, train, axes, source, (), "sae",
                            resolved, tuple(SAE_WORLD_STATIC if world else SAE_STATIC))


def _known(sae: dict) -> bool:
    """Whether an `[sae]` table has what parsing needs of its source without reading it."""
    if sae["source"] == SYNTHETIC:
        return True
    return all(k in sae for k in PINS) and (
        sae["source"].startswith(ZOO) or isinstance(sae.get("runs"), list))


def pursuit_steps(resolved: dict, axes: dict) -> int:
    """`SAESpec.pursuit_steps`: for "mp" the largest k of the group (its k axis, else
    its k), capped at the width; 0 for the other kinds."""
    if resolved["kind"] != "mp":
        return 0
    return int(min(max(axes.get("k", (resolved["k"],))), resolved["width"]))


def _check_keys(table: dict, schema: dict, name: str, source: str, why: str = "unknown key") -> dict:
    for key in table:
        if key not in schema:
            allowed = ", ".join(schema)
            if name == "train" and key in base.SCHEMA["train"]:
                raise UserError(f"{source}: {name}.{key}: {why}; allowed: {allowed}")
            raise UserError(f"{source}: {name}.{key}: {unknown(key, schema)}")
    return {k: base.check_value(schema[k].check, v, f"{name}.{k}", source) for k, v in table.items()}


def _axis(name: str, values, sae_source: str, source: str, world: bool = False) -> tuple[str, tuple]:
    allowed = (*SAE_TRACED, *SAE_STATIC, *(WORLD_STATIC if world else ()),
               *(SYNTHETIC_AXES if sae_source == SYNTHETIC and not world else ()))
    if world and name in WORLD_FIXED and name not in allowed:  # sweep.seed is the SAEs'
        raise UserError(f"{source}: sweep.{name}: one per sweep, not a sweep axis "
                        f"({WORLD_FIXED[name]}: write a sweep file per world); sweepable: "
                        f"{', '.join(allowed)}")
    if world and name in SYNTHETIC_AXES:
        raise UserError(f"{source}: sweep.{name}: not used with a [synthetic] world (its firing "
                        f"is synthetic.firing); sweepable: {', '.join(allowed)}")
    if name not in allowed:
        raise UserError(f"{source}: sweep.{name}: not a sweepable key of an SAE sweep; "
                        f"allowed: {', '.join(allowed)}")
    key = f"sweep.{name}"
    if name in WORLD_STATIC:  # checked by the key's own check, kept as given (lists as tuples)
        check = SYNTHETIC_SCHEMA[name].check
        return name, axis_tuple(base.axis_values(values, key, source),
                                lambda v: (check(v), _frozen(v))[1], key, source)
    check = SAE_SCHEMA[name].check if name in SAE_SCHEMA else base.axis_check(name)
    return name, axis_tuple(base.axis_values(values, key, source), check, key, source)


def _frozen(v):
    """A TOML value with its lists as tuples (hashable: an axis value)."""
    return tuple(_frozen(x) for x in v) if isinstance(v, list) else v


def _with_groups(raw: dict, top: dict, axes: tuple, source: str,
                 reader: Reader | None, static_keys: dict = SAE_STATIC) -> base.SweepConfig:
    """As `toymodels.config._with_groups`: each combination of the static axes' values
    (kind, width, batch_size, steps, optimizer; a [synthetic] world's keys) parsed as a
    config of its own (a world's: its own world, from the same world seed)."""
    static = [(n, v) for n, v in axes if n in static_keys]
    kinds = dict(static).get("kind")
    parse = lambda sub, where: parse_sae_config(sub, where, reader=reader, _kinds=kinds)
    groups = base.static_group_configs(raw, static, static_keys, parse, source)
    first = groups[0]
    runs = first.spec.sae.runs
    axes = (("source_run", runs), *axes) if len(runs) > 1 else axes
    merged = {k: v for g in reversed(groups) for k, v in g.table.items()}  # every kind's keys
    merged = {**first.table, **{k: v for k, v in merged.items() if k not in first.table}}
    return base.SweepConfig(top["name"], top["seed"], first.spec, first.data, first.train, axes,
                            source, tuple(groups), "sae", merged, tuple(static_keys))


def _check_sae_keys(resolved: dict, given: dict, axes: dict, kinds, source: str,
                    k_aux_default: int) -> None:
    """k and k_aux at most the width; a key no SAE kind of the sweep reads is an error.
    k_aux's default (half the source's hidden dims, `k_aux_default`) may exceed a small
    width, where AuxK uses every dead latent: it is not an error the user did not write
    (nor, written back by `to_toml`, one on reading it again)."""
    width = resolved["width"]
    for key in ("k", "k_aux"):
        for value in axes.get(key, (resolved[key],)):
            if key == "k_aux" and value == k_aux_default:
                continue
            if value > width and any(key in SAE_READS[k] for k in kinds):
                where = f"sweep.{key}" if key in axes else f"sae.{key}"
                raise UserError(f"{source}: {where}: must be at most sae.width = {width}, got {value}")
    for key in HYPER_KEYS:
        if (key in given or key in axes) and not any(key in SAE_READS[k] for k in kinds):
            users = ", ".join(n for n, reads in SAE_READS.items() if key in reads)
            where = f"sweep.{key}" if key in axes else f"sae.{key}"
            which = " | ".join(f'"{k}"' for k in kinds)
            raise UserError(f"{source}: {where}: not used by sae.kind = {which} (used by {users})")


def _check_options(resolved: dict, axes: dict, n_features: int, source: str) -> None:
    """A group's own kind against its k (an integer but for `SAE_REAL_K`), `tied` (only the
    `SAE_TIED` kinds) and `dictionary = "truth"` (a width of the source's F; not mp, whose
    pursuit over a fixed dictionary leaves nothing to train)."""
    kind = resolved["kind"]
    if "k" in SAE_READS[kind] and kind not in SAE_REAL_K:
        for value in axes.get("k", (resolved["k"],)):
            if not float(value).is_integer():
                where = "sweep.k" if "k" in axes else "sae.k"
                raise UserError(f'{source}: {where}: must be an integer for sae.kind = "{kind}" '
                                f"(a real k: {', '.join(SAE_REAL_K)}), got {value!r}")
    if resolved.get("tied") and kind not in SAE_TIED:
        raise UserError(f'{source}: sae.tied: not for sae.kind = "{kind}"; a tied encoder '
                        f"applies to {', '.join(SAE_TIED)}")
    if resolved.get("dictionary", "learned") == "truth":
        if kind == "mp":
            raise UserError(f'{source}: sae.dictionary: "truth" leaves sae.kind = "mp" nothing to '
                            f'train (its encoder is a pursuit over the decoder); use "learned"')
        if resolved["width"] != n_features:
            raise UserError(f'{source}: sae.width: must be the source\'s n_features = '
                            f'{n_features} with sae.dictionary = "truth", got {resolved["width"]}')


# ---- sources


def _resolve_source(sae: dict, data: dict, axes: dict, source: str, reader: Reader | None,
                    world: dict | None = None):
    """(ModelSpec F -> d, DataSpec, resolved [data] table, source runs) of the source: from
    the table's pins, or with a `reader` from the source itself (checked against the pins);
    a `[synthetic]` world (`world`, its raw table) gives F -> d and no input law."""
    name = sae["source"]
    if world is not None:
        return (*_world_source(sae, data, world, source), ())
    if name != SYNTHETIC:
        for key in ("n_features", "n_hidden", "truth_seed"):
            if key in sae:
                raise UserError(f'{source}: sae.{key}: only for sae.source = "synthetic" '
                                f"(the source {name!r} gives the toy model)")
        if data:
            raise UserError(f"{source}: data.{next(iter(data))}: not used with sae.source = "
                            f"{name!r} (the activations follow the source's own [data])")
    if name == SYNTHETIC:
        for key in ("runs", *PINS):
            if key in sae:
                raise UserError(f'{source}: sae.{key}: only for a results directory or zoo source')
        return (*_synthetic(sae, data, axes, source), ())
    if name.startswith(ZOO) and "runs" in sae:
        raise UserError(f"{source}: sae.runs: a zoo model is one run; leave sae.runs out")
    pinned = (ModelSpec(**sae["source_model"]), DataSpec(**sae["source_data"]),
              () if name.startswith(ZOO) else tuple(sae["runs"])) if _known(sae) else None
    if reader is None:
        return (*pinned[:2], {}, pinned[2])
    found = reader(sae, source)
    if pinned is not None and pinned != found:
        what = ("model", "input law", "runs")[next(i for i in range(3) if pinned[i] != found[i])]
        raise UserError(f"{source}: sae.source: {name}'s {what} is not the one these SAEs were "
                        f"made for (sae.source_model, source_data, runs): the source changed; "
                        "train its SAEs into a new directory")
    return found[0], found[1], {}, found[2]


def _world_source(sae: dict, data: dict, world: dict, source: str):
    """(ModelSpec F -> d, the default DataSpec, {}) of a `[synthetic]` world's sweep; the
    old synthetic source's keys are errors beside it."""
    for key in ("n_features", "n_hidden", "truth_seed", "runs", *PINS):
        if key in sae:
            where = {"truth_seed": "seed"}.get(key, key)
            why = (f"with a [synthetic] world, set {WORLD_TABLE}.{where}" if key in SYNTHETIC_SCHEMA
                   or key == "truth_seed" else "only for a results directory or zoo source")
            raise UserError(f"{source}: sae.{key}: {why}")
    if data:
        raise UserError(f"{source}: data.{next(iter(data))}: not used with a [synthetic] world "
                        f"(its firing and magnitudes are [{WORLD_TABLE}] keys)")
    spec, _, _ = parse_world(world, source)
    return ModelSpec("linear", spec.n_features, spec.n_hidden), DataSpec(), {}


def _synthetic(sae: dict, data: dict, axes: dict, source: str):
    for key in ("n_features", "n_hidden"):
        if key not in sae:
            raise UserError(f'{source}: sae.{key}: needed for sae.source = "synthetic"')
    for key in data:
        if key not in SYNTHETIC_DATA:
            raise UserError(f"{source}: data.{key}: not used by a synthetic SAE source; "
                            f"allowed: {', '.join(SYNTHETIC_DATA)}")
    checked = base.check_table(data, base.SCHEMA["data"], "data", source)
    F, d = sae["n_features"], sae["n_hidden"]
    data = base.resolve_data(checked, axes, F, source)
    spec = DataSpec(**{k: base.data_value(data, k) for k in base.DATA_SPEC if k != "dataset_size"})
    base.check_sets(spec, F, source)
    return ModelSpec("linear", F, d), spec, data
