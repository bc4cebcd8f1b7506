"""`[residual]` sweep files: residual MLPs that compute (Braun et al. 2025's "compressed
computation" toy, Bhagat et al. 2025's control, Hänni et al. 2024's universal AND),
validated without JAX (`toymodels.trainers.residual` trains them).

A sweep file with a `[residual]` table trains residual MLPs with the toy models' engine:
inputs x (n features, the toy models' input laws of `[data]`) are embedded by a fixed
random W_E (d_embed x n, unit-norm columns), pass through 1-3 MLP layers added to the
residual stream and are read out by W_U = W_Eᵀ (or a learned matrix). `[train]` is the
toy models' optimiser, with this trainer's defaults (`RESIDUAL_TRAIN`). Example::

  name = "compressed"
  [residual]
  n_features = 100
  d_embed = 1000
  d_mlp = 50
  [data]
  feature_probability = 0.01
  [sweep]
  label_mixing = [0.0, 1.0]    # traced: one compiled program
  d_mlp = [25, 50]             # static: one program per value
  seed = [0, 1, 2]

`RESIDUAL_SCHEMA` declares the table's keys once, as data; the docs' key reference is
generated from it. `parse_residual` is pure: TOML dict in, frozen config out.
"""

from __future__ import annotations

import dataclasses
import math

from toymodels import config as base
from toymodels.checks import STATIC_AXIS, TRACED_AXIS, Key, axis_tuple, axis_values, seed
from toymodels.errors import UserError, unknown
from toymodels.limits import check_grid
from toymodels.spec import Spec

T, S = TRACED_AXIS, STATIC_AXIS
TASKS = ("identity_relu", "relu", "abs", "uand")
SIGNED_TASKS = ("identity_relu", "relu", "abs")  # real-valued: inputs Uniform[-1, 1) when on
EMBEDS = ("fixed", "learned")
READOUTS = ("transpose", "learned")
MAX_LAYERS = 3
TOP_KEYS = ("name", "seed", "residual", "data", "train", "sweep")


def _split(v):
    """residual.split: a non-empty list of integers >= 1 (the neurons of each layer)."""
    if (not isinstance(v, list) or not v
            or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in v)):
        raise ValueError("must be a non-empty list of integers >= 1 (neurons per layer)")
    return list(v)


RESIDUAL_SCHEMA = {  # the [residual] table, each key declared once
    "n_features": Key(base.integer(2), 100, "n, the input features", S),
    "d_embed": Key(base.integer(1), 1000, "the residual stream's width; W_E is d_embed x n "
                   "with unit-norm columns (Gaussian, normalised)", S),
    "d_mlp": Key(base.integer(1), 50, "the MLP neurons of all layers together", S),
    "n_layers": Key(base.integer(1, MAX_LAYERS + 1), 1, "MLP layers, each added to the "
                    "residual stream", S),
    "split": Key(_split, None, "neurons per layer, summing to d_mlp (default: as even as "
                 "possible, the first layers taking the remainder)", S,
                 lambda v: tuple(_split(v))),
    "bias": Key(base.boolean, True, "MLP biases (b_in and b_out of every layer)", S),
    "embed": Key(base.choice(EMBEDS), "fixed", "whether W_E is trained: fixed or learned", S),
    "readout": Key(base.choice(READOUTS), "transpose", "W_U = W_Eᵀ (transpose) or a trained "
                   "matrix (learned; uand always reads off by its learned R)", S),
    "task": Key(base.choice(TASKS), "identity_relu", "the labels: identity_relu (x + ReLU(x)), "
                "relu (ReLU(x), residual removed), abs (abs(x), residual removed) or uand (the "
                "pairwise ANDs of boolean inputs)", S),
    "label_mixing": Key(base.finite, 0.0, "s: the labels gain s (W_EᵀW_E - I) x (Bhagat et "
                        "al.'s control; identity_relu's MLP target is clean at s = 1)", T),
    "embed_seed": Key(seed, 0, "W_E is drawn from key(embed_seed): runs of different seed "
                      "share W_E unless this is swept", T),
}
# [train] of a residual sweep: the toy models' keys, Braun et al. 2025's residual-MLP
# setting as defaults (AdamW, lr 3e-3, no weight decay, cosine decay, batch 2048, 10k steps)
RESIDUAL_TRAIN_DEFAULTS = {"steps": 10_000, "batch_size": 2048, "learning_rate": 3e-3,
                           "weight_decay": 0.0, "schedule": "cosine", "eval_samples": 65_536}
RESIDUAL_TRAIN = {
    k: dataclasses.replace(
        base.SCHEMA["train"][k],
        check=base.integer(1) if k == "batch_size" else base.SCHEMA["train"][k].check,
        default=RESIDUAL_TRAIN_DEFAULTS.get(k, base.SCHEMA["train"][k].default),
        description=("examples per step (fresh samples)" if k == "batch_size"
                     else base.SCHEMA["train"][k].description))
    for k in ("steps", "batch_size", "learning_rate", "weight_decay", "schedule",
              "warmup_steps", "log_every", "eval_samples", "optimizer", "momentum",
              "beta1", "beta2", "eps")}
RESIDUAL_DATA = ("sparsity", "feature_probability", "density_ratio", "importance_decay",
                 "relative_importance", "importance", "correlation", "set_size",
                 "magnitude", "inputs", "unit_norm")  # the toy [data] keys it reads
NOT_USED = {  # keys of other trainers a residual sweep refuses, and why
    "model": "not used by a residual sweep (its [residual] table gives the model)",
    "dataset_size": "not used by a residual sweep (it trains on fresh samples)",
    "data_seed": "not used by a residual sweep (it trains on fresh samples)",
    "dropout": "not used by a residual sweep",
    "l1_hidden": "not used by a residual sweep",
    "l1_weights": "not used by a residual sweep",
    "snapshot_every": "not used by a residual sweep (it keeps the final parameters)",
    "init": "not used by a residual sweep (its init is Braun et al.'s: toymodels.compute.model)",
}
RESIDUAL_STATIC = {**base.keys_with({"residual": RESIDUAL_SCHEMA, "train": RESIDUAL_TRAIN}, S)}
RESIDUAL_TRACED = {**base.keys_with({"residual": RESIDUAL_SCHEMA, "train": RESIDUAL_TRAIN}, T),
                   **{k: "data" for k in base.TRACED_TABLES if base.TRACED_TABLES[k] == "data"
                      and k in RESIDUAL_DATA}}
SWEEPABLE = (*RESIDUAL_TRACED, "seed", *RESIDUAL_STATIC)


@dataclasses.dataclass(frozen=True)
class ResidualSpec:
    """The static part of a residual-MLP sweep group (`Spec.model` then holds n features
    and d_mlp hidden for the input sampler; `Spec.train` the optimiser; `Spec.data` the
    input law).

    Attributes:
      n_features: n, the input features.
      d_embed: the residual stream's width.
      d_mlp: the neurons of all layers.
      n_layers: L, the MLP layers.
      split: (k_0, ..., k_{L-1}) the neurons of each layer, summing to d_mlp.
      bias: whether the layers have biases b_in, b_out.
      embed: "fixed" (W_E not trained) or "learned".
      readout: "transpose" (W_U = W_Eᵀ) or "learned" (a trained W_U [n, d_embed]).
      task: one of `TASKS`.
    """

    n_features: int = 100
    d_embed: int = 1000
    d_mlp: int = 50
    n_layers: int = 1
    split: tuple[int, ...] = (50,)
    bias: bool = True
    embed: str = "fixed"
    readout: str = "transpose"
    task: str = "identity_relu"

    @property
    def n_outputs(self) -> int:
        """The label's width: n, or C(n, 2) pairs for uand."""
        return math.comb(self.n_features, 2) if self.task == "uand" else self.n_features


def param_dims(spec: ResidualSpec) -> dict[str, tuple[str, ...]]:
    """Each parameter's dims after the sweep axes (`toymodels.compute.model`'s layout),
    named in a results Dataset (the trainer's, the analysis's, a static group's trim).

    Example:
      >>> list(param_dims(ResidualSpec(n_layers=1, split=(50,), bias=False)))
      ['W_E', 'W_in_0', 'W_out_0']
    """
    dims = {"W_E": ("embed", "feature")}
    for l in range(spec.n_layers):
        dims |= {f"W_in_{l}": (f"neuron_{l}", "embed"), f"W_out_{l}": ("embed", f"neuron_{l}")}
        if spec.bias:
            dims |= {f"b_in_{l}": (f"neuron_{l}",), f"b_out_{l}": ("embed",)}
    if spec.task == "uand":
        dims["R"] = ("output", "neuron")
    elif spec.readout == "learned":
        dims["W_U"] = ("feature", "embed")
    return dims


def even_split(d_mlp: int, n_layers: int) -> list[int]:
    """The default split: d_mlp neurons over n_layers, the first layers one more.

    Example:
      >>> even_split(50, 3)
      [17, 17, 16]
    """
    q, r = divmod(d_mlp, n_layers)
    return [q + (i < r) for i in range(n_layers)]


def residual_keys_known() -> dict[str, tuple[str, ...]]:
    """Each table's keys of a residual sweep ("" the top level), for `--set` overrides."""
    return {"": ("name", "seed"), "residual": tuple(RESIDUAL_SCHEMA), "data": RESIDUAL_DATA,
            "train": tuple(RESIDUAL_TRAIN), "sweep": SWEEPABLE}


def _refuse_others(raw: dict, tables: dict, source: str) -> None:
    """Top-level keys, [data] and [train] keys and axes a residual sweep does not read."""
    for key in raw:
        if key not in TOP_KEYS:
            why = NOT_USED.get(key) or unknown(key, TOP_KEYS, "top-level key")
            raise UserError(f"{source}: {key}: {why}")
    for table, allowed in (("data", RESIDUAL_DATA), ("train", tuple(RESIDUAL_TRAIN))):
        for key in tables[table]:
            if key not in allowed:
                why = NOT_USED.get(key) or unknown(key, allowed)
                raise UserError(f"{source}: {table}.{key}: {why}")
    for key in tables["sweep"]:
        if key not in SWEEPABLE:
            why = NOT_USED.get(key) or unknown(key, SWEEPABLE, "sweep axis")
            raise UserError(f"{source}: sweep.{key}: {why}")


def _axis(name: str, values, source: str) -> tuple[str, tuple]:
    key = f"sweep.{name}"
    if name in RESIDUAL_SCHEMA:
        check = RESIDUAL_SCHEMA[name].axis_check or RESIDUAL_SCHEMA[name].check
    elif name in RESIDUAL_TRAIN:
        check = RESIDUAL_TRAIN[name].check
    else:
        check = base.axis_check(name)
    return name, axis_tuple(axis_values(values, key, source), check, key, source)


def resolve_table(given: dict, axes: dict, source: str) -> dict:
    """The [residual] table with its defaults, but split and readout only where given
    (their defaults follow d_mlp, n_layers and task, which a static axis may vary);
    checks what the keys exclude together."""
    table = {k: key.default for k, key in RESIDUAL_SCHEMA.items()} | given
    fail = lambda key, msg: UserError(f"{source}: residual.{key}: {msg}")
    L, d = table["n_layers"], table["d_mlp"]
    if d < L:
        raise fail("d_mlp", f"must be at least residual.n_layers = {L} (a neuron per layer), got {d}")
    split = table["split"] if table["split"] is not None else even_split(d, L)
    if len(split) != L or sum(split) != d:
        raise fail("split", f"must be {L} integers (residual.n_layers) summing to residual.d_mlp = {d}, got {split}")
    if table["task"] == "uand":
        if given.get("readout") == "transpose":
            raise fail("readout", 'must be "learned" with task = "uand" (its readoff R is '
                       "trained), got \"transpose\"")
        if table["label_mixing"] != 0.0 or "label_mixing" in axes:
            raise fail("label_mixing", 'not with task = "uand" (boolean inputs, AND labels)')
    return {k: v for k, v in table.items() if k in given or k not in ("split", "readout")}


def _check_data(data: dict, task: str, source: str) -> None:
    if task == "uand":
        for key in ("magnitude", "unit_norm"):
            if key in data:
                raise UserError(f'{source}: data.{key}: not with residual.task = "uand" '
                                "(its inputs are boolean: 0 or 1)")


def parse_residual(raw: dict, source: str = "<config>") -> base.SweepConfig:
    """Validates the raw TOML dict of a residual-MLP sweep (a `[residual]` table) into a
    frozen SweepConfig whose `spec.residual` is set; pure.

    Raises:
      UserError: one line naming the file, the key, what is allowed and "did you mean".

    Example:
      >>> c = parse_residual({"residual": {"n_features": 8, "d_embed": 16, "d_mlp": 4},
      ...                     "sweep": {"label_mixing": [0.0, 1.0], "seed": [0, 1]}})
      >>> c.spec.residual.split, c.n_runs, c.train["learning_rate"]
      ((4,), 4, 0.003)
    """
    tables = {t: base.table_of(raw, t, source) for t in ("residual", "data", "train", "sweep")}
    _refuse_others(raw, tables, source)
    given = base.check_table(tables["residual"], RESIDUAL_SCHEMA, "residual", source)
    base.check_table(tables["train"], RESIDUAL_TRAIN, "train", source)
    axes = tuple(_axis(name, v, source) for name, v in tables["sweep"].items())
    check_grid(axes, tuple(RESIDUAL_STATIC), source)
    static = [(n, v) for n, v in axes if n in RESIDUAL_STATIC]
    if static:
        groups = base.static_group_configs(raw, static, RESIDUAL_STATIC, parse_residual, source)
        first = groups[0]
        return dataclasses.replace(first, axes=axes, source=source, static_groups=tuple(groups))
    table = resolve_table(given, dict(axes), source)
    _check_data(tables["data"], table["task"], source)
    toy = base.parse_toy(_toy_raw(raw, tables, table), source)
    spec = Spec(toy.spec.model, toy.spec.train, toy.spec.data, residual=_spec(table))
    train = {k: toy.train[k] for k in RESIDUAL_TRAIN}
    return base.SweepConfig(toy.name, toy.seed, spec, toy.data, train, axes, source,
                            trainer="residual", table=table, static=tuple(RESIDUAL_STATIC))


def _spec(table: dict) -> ResidualSpec:
    """The ResidualSpec of a resolved table: the default split and readout filled in."""
    fields = {f.name for f in dataclasses.fields(ResidualSpec)} - {"split", "readout"}
    split = table.get("split") or even_split(table["d_mlp"], table["n_layers"])
    readout = "learned" if table["task"] == "uand" else table.get("readout", "transpose")
    return ResidualSpec(**{k: v for k, v in table.items() if k in fields}, split=tuple(split),
                        readout=readout)


def _toy_raw(raw: dict, tables: dict, table: dict) -> dict:
    """The toy-model sweep whose [data], [train] and axes checks a residual group's: n
    features, d_mlp hidden, this trainer's [train] defaults, the toy axes."""
    train = RESIDUAL_TRAIN_DEFAULTS | tables["train"]
    sweep = {k: v for k, v in tables["sweep"].items() if k not in RESIDUAL_SCHEMA}
    out = {"model": {"n_features": table["n_features"], "n_hidden": table["d_mlp"]},
           "data": tables["data"], "train": train, "sweep": sweep}
    return out | {k: raw[k] for k in ("name", "seed") if k in raw}
