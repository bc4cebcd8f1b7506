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
from toymodels.errors import UserError, unknown
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
    trainer = TRAINERS[trainer_name(raw, source)]
    apply_override(raw, item, source, trainer.settable(), trainer.what)


def stored_config(text: str, source: str) -> SweepConfig:
    """The config of a manifest's TOML text. Parsing is pure: a manifest holds the resolved
    config, its source's facts included, so a source that moved since changes nothing. Only
    an SAE manifest written before SAE configs carried them (no `sae.source_model`) parses
    unresolved; its source is then read, as it was when it was written.

    Raises:
      UserError: the config does not parse, or (such an older SAE manifest) its source no
        longer reads: one line saying so and what to do.
    """
    config = parse_config(tomllib.loads(text), source)
    if config.spec is not None:
        return config
    try:
        return get_trainer(config.trainer).resolve(config)
    except UserError as e:
        why = str(e).removeprefix(f"{source}: ")
        raise UserError(f"{source}: an SAE config without sae.source_model (written before "
                        "SAE results carried their source's model and input law) is read with "
                        f"its source, which fails ({why}); put the source back as it was, or "
                        "retrain the SAEs") from None


def config_of(ds: xr.Dataset) -> SweepConfig | None:
    """The sweep config in `ds.attrs["config"]` (its manifest's, `stored_config`), or None
    if there is none that parses."""
    try:
        return stored_config(ds.attrs["config"], "attrs['config']")
    except (KeyError, UserError, tomllib.TOMLDecodeError, TypeError, ValueError):
        return None


__all__ = ["TRAINERS", "Checkup", "Place", "Trainer", "config_of", "get_trainer", "load_config",
           "parse_config", "stored_config", "trainer_name", "trainer_of"]
