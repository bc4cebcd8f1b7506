"""Trainers: every kind of run the sweep engine trains is a plugin (`Trainer`).

`TRAINERS` is the registry; a sweep file's table chooses its trainer: `[model]` (or no
table: the default) toy models, `[sae]` sparse autoencoders on a toy model's activations,
`[llc]` the local learning coefficient of every run of a finished sweep. A file with two
of these tables is an error, never a fallback. `parse_config` and `load_config` are the
one entry to parsing: pure, TOML in, a frozen config out.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import xarray as xr

from toymodels.config import SweepConfig, apply_override, read_raw
from toymodels.errors import UserError
from toymodels.trainers import llc, sae, toy
from toymodels.trainers.base import Checkup, Place, Trainer

TRAINERS: dict[str, Trainer] = {t.name: t for t in (toy.TRAINER, sae.TRAINER, llc.TRAINER)}


def trainer_name(raw: dict, source: str = "<config>") -> str:
    """The trainer a raw sweep dict is for: the one whose table it has, else "toy" (whose
    `[model]` table is optional; beside another trainer's table, that trainer's parser
    says it is not used).

    Raises:
      UserError: the dict has the tables of two trainers other than toy models.
    """
    chosen = [t.name for t in TRAINERS.values() if t.name != "toy" and t.table in raw]
    if len(chosen) > 1:
        tables = " and ".join(f"[{TRAINERS[n].table}]" for n in chosen)
        raise UserError(f"{source}: {tables}: a sweep file has the table of one trainer; "
                        f"choose one of {', '.join(f'[{t.table}]' for t in TRAINERS.values())}")
    return chosen[0] if chosen else "toy"


def get_trainer(name: str) -> Trainer:
    """The trainer registered as `name`.

    Raises:
      ValueError: no such trainer (the message lists the valid ones).
    """
    if name not in TRAINERS:
        raise ValueError(f"unknown trainer {name!r}; valid: {', '.join(TRAINERS)}")
    return TRAINERS[name]


def trainer_of(config: SweepConfig) -> Trainer:
    """The trainer of a parsed config."""
    return get_trainer(config.trainer)


def parse_config(raw: dict, source: str = "<config>") -> SweepConfig:
    """Validates a raw TOML dict into a frozen SweepConfig of the trainer its table
    chooses; pure (no disk). See `load_config`.

    Example:
      >>> parse_config({"sweep": {"seed": [0, 1]}}).trainer
      'toy'
    """
    return TRAINERS[trainer_name(raw, source)].parse(raw, source)


def known_keys(raw: dict, source: str = "<config>") -> dict[str, tuple[str, ...]]:
    """Each table's keys for the trainer of `raw` (what `--set` may set)."""
    return TRAINERS[trainer_name(raw, source)].settable()


def load_config(path: str | Path, overrides: tuple[str, ...] = ()) -> SweepConfig:
    """Reads, overrides (`--set key=value`) and validates a sweep file.

    Raises:
      UserError: one line naming the file, the key and what is allowed.
    """
    raw = read_raw(path)
    for item in overrides:
        read_override(raw, item, str(path))
    return parse_config(raw, str(path))


def read_override(raw: dict, item: str, source: str) -> None:
    """`config.apply_override` with the keys of the trainer of `raw`."""
    apply_override(raw, item, source, known_keys(raw, source))


def stored_config(text: str, source: str) -> SweepConfig:
    """The config of a manifest's TOML text. Parsing is pure: a manifest holds the resolved
    config, its source's facts included, so a source that moved since changes nothing. Only
    an SAE manifest written before SAE configs carried them (no `sae.source_model`) parses
    unresolved; its source is then read, as it was when it was written."""
    config = parse_config(tomllib.loads(text), source)
    return config if config.spec is not None else get_trainer(config.trainer).resolve(config)


def config_of(ds: xr.Dataset) -> SweepConfig | None:
    """The sweep config in `ds.attrs["config"]` (its manifest's, `stored_config`), or None
    if there is none that parses."""
    try:
        return stored_config(ds.attrs["config"], "attrs['config']")
    except (KeyError, UserError, tomllib.TOMLDecodeError, TypeError, ValueError):
        return None


__all__ = ["TRAINERS", "Checkup", "Place", "Trainer", "config_of", "get_trainer", "load_config",
           "parse_config", "stored_config", "trainer_name", "trainer_of"]
