"""Parsing a sweep file, without JAX: which trainer a file is for, and its pure parser.

A sweep file's table chooses its trainer: `[model]` (or no table: the default) toy
models, `[sae]` sparse autoencoders, `[llc]` an LLC pass, `[residual]` residual MLPs. `PARSERS` holds what parsing
needs of each (its table, parser, settable keys and name in an error line); the runtime
trainers (`toymodels.trainers.TRAINERS`, which import JAX) carry the same, and
tests/test_imports.py holds that they agree. `load_config` and `parse_config` import no
JAX, optax, flax, xarray, scipy or matplotlib: a bad config answers in one line at once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from toymodels.config import SweepConfig, apply_override, parse_toy, read_raw, toy_keys
from toymodels.errors import UserError, unknown
from toymodels.llc_config import llc_keys_known, parse_llc
from toymodels.residual_config import parse_residual, residual_keys_known
from toymodels.sae_config import parse_sae_config, sae_keys_known
from toymodels.spd_config import parse_spd, spd_keys_known


@dataclasses.dataclass(frozen=True)
class Parser:
    """What parsing needs of one trainer (the same fields of its `Trainer`).

    Attributes:
      name: the registry name ("toy", "sae", "llc").
      table: the config table that chooses it ("model", "sae", "llc").
      parse: `parse(raw, source) -> SweepConfig`, pure: TOML dict in, frozen config out.
      settable: `settable() -> {table: keys}`: what `--set` may set ("" the top level,
        "sweep" the axes).
      what: what a file of it is, in an error line ("a toy-model sweep").
    """

    name: str
    table: str
    parse: Callable[[dict, str], SweepConfig]
    settable: Callable[[], dict[str, tuple[str, ...]]]
    what: str


PARSERS: dict[str, Parser] = {p.name: p for p in (
    Parser("toy", "model", parse_toy, toy_keys, "a toy-model sweep"),
    Parser("sae", "sae", parse_sae_config, sae_keys_known, "an SAE sweep"),
    Parser("llc", "llc", parse_llc, llc_keys_known, "an LLC pass"),
    Parser("residual", "residual", parse_residual, residual_keys_known, "a residual-MLP sweep"),
    Parser("spd", "spd", parse_spd, spd_keys_known, "an SPD sweep"),
)}


def trainer_name(raw: dict, source: str = "<config>") -> str:
    """The trainer a raw sweep dict is for: the one whose table it has, else "toy" (whose
    `[model]` table is optional; beside another trainer's table, that trainer's parser
    says it is not used).

    Raises:
      UserError: the dict has the tables of two trainers other than toy models.
    """
    chosen = [p.name for p in PARSERS.values() if p.name != "toy" and p.table in raw]
    if len(chosen) > 1:
        tables = " and ".join(f"[{PARSERS[n].table}]" for n in chosen)
        raise UserError(f"{source}: {tables}: a sweep file has the table of one trainer; "
                        f"choose one of {', '.join(f'[{p.table}]' for p in PARSERS.values())}")
    return chosen[0] if chosen else "toy"


def parse_config(raw: dict, source: str = "<config>") -> SweepConfig:
    """Validates a raw TOML dict into a frozen SweepConfig of the trainer its table
    chooses; pure (no disk). See `load_config`.

    Example:
      >>> parse_config({"sweep": {"seed": [0, 1]}}).trainer
      'toy'
    """
    return PARSERS[trainer_name(raw, source)].parse(raw, source)


def load_config(path: str | Path, overrides: tuple[str, ...] = (),
                unset: tuple[str, ...] = ()) -> SweepConfig:
    """Reads, overrides and validates a sweep file: first the keys of `unset` are removed
    (`--unset sae.runs`), then `overrides` are set (`--set key=value`).

    Raises:
      UserError: one line naming the file, the key and what is allowed.
    """
    raw = read_raw(path)
    for key in unset:
        remove_key(raw, key, str(path))
    for item in overrides:
        read_override(raw, item, str(path))
    return parse_config(raw, str(path))


def remove_key(raw: dict, key: str, source: str) -> None:
    """Removes `key` ("table.key", or a top-level key) from the raw dict, e.g. `sae.runs`
    when switching an SAE sweep to a zoo source; a key the file does not hold is an error.

    Example:
      >>> raw = {"sae": {"source": "runs/x", "runs": [0]}}
      >>> remove_key(raw, "sae.runs", "x.toml"); raw
      {'sae': {'source': 'runs/x'}}
    """
    *table, leaf = key.strip().split(".")
    holder = raw.get(table[0]) if len(table) == 1 else raw if not table else None
    if not isinstance(holder, dict) or leaf not in holder:
        given = [f"{t}.{k}" for t, d in raw.items() if isinstance(d, dict) for k in d]
        given += [k for k, v in raw.items() if not isinstance(v, dict)]
        raise UserError(f"{source}: --unset {key}: {unknown(key, given, 'key of the file')}")
    del holder[leaf]


def read_override(raw: dict, item: str, source: str) -> None:
    """`config.apply_override` with the keys of the trainer of `raw`."""
    parser = PARSERS[trainer_name(raw, source)]
    apply_override(raw, item, source, parser.settable(), parser.what)
