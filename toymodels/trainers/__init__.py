"""Trainers: every kind of run the sweep engine trains is a plugin (`Trainer`).

`TRAINERS` is the registry; a sweep file's table chooses its trainer: `[model]` (or no
table: the default) toy models, `[sae]` sparse autoencoders on a toy model's activations,
`[llc]` the local learning coefficient of every run of a finished sweep, `[residual]`
residual MLPs that compute, `[spd]` a parameter decomposition (SPD) of toy models.
A file with two
of these tables is an error, never a fallback. `parse_config` and `load_config` are the
one entry to parsing: pure, TOML in, a frozen config out; they live in `toymodels.parsers`
(no JAX, re-exported here), with `PARSERS`, what parsing needs of each trainer.
"""

from __future__ import annotations

import tomllib

import xarray as xr

from toymodels.config import SweepConfig
from toymodels.errors import UserError
from toymodels.parsers import (PARSERS, load_config, parse_config, read_override, remove_key,
                               trainer_name)
from toymodels.trainers import llc, residual, sae, spd, toy
from toymodels.trainers.base import Checkup, Place, Trainer

TRAINERS: dict[str, Trainer] = {t.name: t for t in (toy.TRAINER, sae.TRAINER, llc.TRAINER,
                                                    residual.TRAINER, spd.TRAINER)}


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


__all__ = ["PARSERS", "TRAINERS", "Checkup", "Place", "Trainer", "config_of", "get_trainer",
           "load_config", "parse_config", "read_override", "remove_key", "stored_config",
           "trainer_name", "trainer_of"]
