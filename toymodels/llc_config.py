"""`[llc]` sweep files: an LLC pass over a finished toy-model sweep, validated without
reading its source (`toymodels.trainers.llc` reads it when the pass runs).

The table's keys are `LLC_SCHEMA`; `toymodels llc DIR [flags]` is a sweep of
``{"llc": {"source": DIR, ...flags}}``. Imports no JAX: a bad pass is one line at once.
"""

from __future__ import annotations

import math

from toymodels.checks import Key, boolean, check_value, choice, integer, number, table_of, text
from toymodels.config import SweepConfig
from toymodels.errors import UserError, unknown
from toymodels.kinds import LLC_LOSSES
from toymodels.spec import Spec

AUTO = "auto"


def _step(v):
    """epsilon: "auto" or a number > 0."""
    if v == AUTO:
        return v
    try:
        return number(0.0, math.inf, lo_open=True)(v)  # float32's range too
    except ValueError as e:
        raise ValueError(str(e).replace("a number in (0, inf]", 'a number > 0 or "auto"')) from None


# The defaults (chains 4, draws 1000 after 500 burn-in, epsilon auto, gamma 1) are the
# cheapest candidate of benchmarks/llc_suite.py that brings every case of the known-answer
# suite (toymodels.llc_suite) within 15% of its lambda at n = 1000, save those that need
# a setting of their own (their `needs`: a zero Hessian at w* needs an explicit epsilon,
# a condition number of 1000 a longer burn-in); docs/llc.md has the table. The old
# gamma 100 with 100 + 200 steps gave every regular case 17-39% low.
LLC_SCHEMA = {  # the [llc] table: key -> Key(check, default, description); None: not set
    "source": Key(text, None, "the results directory of a finished toy-model sweep"),
    "loss": Key(choice(LLC_LOSSES), None, "the loss whose LLC is estimated: dataset (the run's "
                "own training set), online (fresh samples) or exact (the population loss); "
                "default: dataset with a finite training set, else exact where the inputs "
                "have one, else online"),
    "chains": Key(integer(2), 4, "SGLD chains per run and point"),
    "draws": Key(integer(1), 1000, "draws kept per chain"),
    "burn_in": Key(integer(0), 500, "SGLD steps dropped first"),
    "batch_size": Key(integer(0), 0, "examples per SGLD step (0: the full training set; "
                      "online: the sweep's training batch)"),
    "snapshots": Key(boolean, False, "also estimate at every snapshot of training"),
    "epsilon": Key(_step, AUTO, 'the SGLD step, or "auto": epsilon_scale / (nbeta h_max + '
                   "gamma) with h_max the largest Hessian eigenvalue at w*"),
    "epsilon_scale": Key(number(0.0, 2.0, lo_open=True), 0.2, 'the scale of epsilon = "auto": '
                         "epsilon (nbeta h_max + gamma) = epsilon_scale (toymodels.sgld.auto_epsilon)"),
    "gamma": Key(number(0.0, math.inf), 1.0, "localisation strength"),
    "nbeta": Key(number(0.0, math.inf, lo_open=True), None,
                 "n beta, the inverse temperature times n (default n / ln n)"),
    "n": Key(integer(2, 2**53), None, "the sample size of the default nbeta, for the online "
             "and exact losses (the dataset size for the dataset loss)"),
    "calibrate": Key(boolean, False, "calibrate instead: estimate calibrate_runs of the source's "
                     "runs on a grid of epsilon scale x gamma x nbeta x chain length, into "
                     "SOURCE/llc_calibration, and recommend settings (toymodels.llc_calibration)"),
    "calibrate_runs": Key(integer(1, 64), 2, "the runs calibrated, evenly spaced over the "
                          "source's runs (of its first static group)"),
}



def parse_llc(raw: dict, source: str = "<config>") -> SweepConfig:
    """Validates the raw TOML dict of an LLC pass (an `[llc]` table); pure: the source
    is not read (see `resolve_llc`).

    Raises:
      UserError: one line naming the file, the key and what is allowed.
    """
    for key in raw:
        if key not in ("name", "llc"):
            why = ("not used by an LLC pass (its source gives the sweep)"
                   if key in ("model", "data", "train", "sweep", "seed", "sae")
                   else unknown(key, ("name", "llc"), "top-level key"))
            raise UserError(f"{source}: {key}: {why}")
    given = table_of(raw, "llc", source)
    for key in given:
        if key not in LLC_SCHEMA:
            raise UserError(f"{source}: llc.{key}: {unknown(key, LLC_SCHEMA)}")
    if "source" not in given:
        raise UserError(f"{source}: llc.source: missing; give the results directory of a "
                        "finished toy-model sweep")
    checked = {k: check_value(LLC_SCHEMA[k].check, v, f"llc.{k}", source) for k, v in given.items()}
    table = {**{k: key.default for k, key in LLC_SCHEMA.items()}, **checked}
    name = check_value(text, raw.get("name", "llc"), "name", source)
    return SweepConfig(name, 0, Spec(), {}, {}, (), source, trainer="llc", table=table)


def llc_keys_known() -> dict[str, tuple[str, ...]]:
    """Each table's keys of an LLC pass ("" the top level), for `--set` overrides."""
    return {"": ("name",), "llc": tuple(LLC_SCHEMA)}
