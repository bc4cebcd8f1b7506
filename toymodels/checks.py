"""Value checks and the one error formatter every trainer's schema uses.

A check takes a TOML value and returns it cleaned, or raises ValueError("what is
allowed"); `check_value` turns that into the one line a user sees: the file, the key,
what is allowed and what was given. `Key` declares one key of a table as data.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Callable

import numpy as np

from toymodels.errors import UserError, unknown
from toymodels.limits import check_axis_length

HINT = "|"  # separates a check's "what is allowed" from its "did you mean" (check_value)
TRACED_AXIS, STATIC_AXIS = "traced", "static"  # Key.axis: how a sweep axis of the key is run


@dataclasses.dataclass(frozen=True)
class Key:
    """One key of a trainer's table, as data: the one place it is declared.

    Attributes:
      check: `check(value) -> cleaned value`, or ValueError("what is allowed").
      default: its value when not given (None: none, or resolved when the pass runs).
      description: one line for the key reference (the docs are generated from it).
      axis: what a sweep axis of it is: "traced" (swept inside one compiled program, a
        leaf of the runs' hyperparameters), "static" (fixes shapes or the program: each
        value is a static group, compiled once), or None (not sweepable).
      axis_check: the check of an axis value where it differs from `check` (e.g. a
        list-valued key swept one scalar at a time).
    """

    check: Callable[[Any], Any]
    default: Any = None
    description: str = ""
    axis: str | None = None
    axis_check: Callable[[Any], Any] | None = None

    def __post_init__(self):
        if self.axis not in (None, TRACED_AXIS, STATIC_AXIS):
            raise ValueError(f"Key.axis must be None, {TRACED_AXIS!r} or {STATIC_AXIS!r}, got {self.axis!r}")


# ---- value checks: each returns the cleaned value or raises ValueError("what is allowed")


INT32 = 2**31  # an integer key without its own bound is below it: JAX counts in int32


def integer(lo: int, hi: int | None = None) -> Callable[[Any], int]:
    """An integer >= lo and < hi (default `INT32`, said only to a value past it)."""
    allowed = f"must be an integer >= {lo}" + (f" and < {hi}" if hi is not None else "")
    top = INT32 if hi is None else hi

    def check(v):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(allowed)
        if v >= top:
            raise ValueError(f"must be an integer >= {lo} and < {top}")
        return v
    return check


def number(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False):
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
    allowed = f"must be a number in {left}{lo:g}, {hi:g}{right}"

    def within(v) -> bool:
        return lo <= v <= hi and not (lo_open and v == lo) and not (hi_open and v == hi)

    def check(v):
        if not is_real(v) or not within(v):
            raise ValueError(allowed)
        if not within(as_float32(v, allowed)):
            raise ValueError(f"{allowed} in float32, which rounds {v!r} to {as_float32(v, allowed)!r}")
        return float(v)
    return check


seed = integer(0, 2**31)  # every seed (root, run, data, truth): JAX's key takes 32 bits
# (key(2**32) is key(0)), and the streams' fold_in tags are 2**32 - 4 .. 2**32 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)


def is_real(v) -> bool:
    """A TOML number that is not inf or nan (an integer of any size, not a bool)."""
    return not isinstance(v, bool) and (isinstance(v, int) or isinstance(v, float) and math.isfinite(v))


def as_float32(v: float, allowed: str) -> float:
    """`v` rounded to float32, as the runs compute with it; ValueError(`allowed`, with
    float32's range) where float32 cannot hold it (it would become inf)."""
    if abs(v) > FLOAT32_MAX:
        raise ValueError(f"{allowed} that float32 holds (at most {FLOAT32_MAX:.4g} in size)")
    return float(np.float32(v))


def choice(options) -> Callable[[Any], str]:
    def check(v):
        if v not in options:
            close = difflib.get_close_matches(str(v), list(map(str, options)), n=1)
            hint = f"{HINT}did you mean {close[0]}?" if close and isinstance(v, str) else ""
            raise ValueError(f"must be one of {', '.join(map(str, options))}{hint}")
        return v
    return check


def finite(v):
    if not is_real(v):
        raise ValueError("must be a finite number")
    as_float32(v, "must be a finite number")
    return float(v)


def boolean(v):
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


def text(v):
    if not isinstance(v, str) or not v:
        raise ValueError("must be a non-empty string")
    return v


def table_of(raw: dict, name: str, source: str) -> dict:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise UserError(f"{source}: {name}: must be a table [{name}]")
    return table


def check_value(check, value, key: str, source: str):
    try:
        return check(value)
    except ValueError as e:  # "what is allowed" or "what is allowed|did you mean X?"
        allowed, _, hint = str(e).partition(HINT)
        raise UserError(f"{source}: {key}: {allowed}, got {value!r}" + (f" ({hint})" if hint else "")) from None


def check_table(table: dict, schema: dict[str, Key], name: str, source: str) -> dict:
    """Every key of `table` (the table `name` of a file) checked against `schema`; an
    unknown key is one line listing the allowed ones."""
    for key in table:
        if key not in schema:
            raise UserError(f"{source}: {name}.{key}: {unknown(key, schema)}")
    return {k: check_value(schema[k].check, v, f"{name}.{k}", source) for k, v in table.items()}


def keys_with(schema: dict[str, dict[str, Key]], axis: str) -> dict[str, str]:
    """{key: its table} of every key of `schema` ({table: {key: Key}}) whose axis is `axis`."""
    return {k: t for t, keys in schema.items() for k, key in keys.items() if key.axis == axis}


def axis_values(spec, key: str, source: str) -> list:
    """The values of the axis `key`: a list as given, a linspace or geomspace expanded, or
    the whole numbers a, a + 1, ..., b − 1 of `{ range = [a, b] }` (at most
    `toymodels.limits.MAX_AXIS` values, checked before they are made)."""
    if isinstance(spec, list):
        check_axis_length(len(spec), key, source, f"a list of {len(spec)}")
        return spec
    allowed = ("must be a list, { linspace = [a, b, n] }, { geomspace = [a, b, n] } or "
               "{ range = [a, b] }")
    if not isinstance(spec, dict) or len(spec) != 1:
        raise UserError(f"{source}: {key}: {allowed}, got {spec!r}")
    (how, args), = spec.items()
    if how == "range":
        if not (isinstance(args, list) and len(args) == 2
                and all(isinstance(a, int) and not isinstance(a, bool) for a in args)
                and args[0] < args[1]):
            raise UserError(f"{source}: {key}: {allowed} (range: whole numbers a < b, "
                            f"giving a, a + 1, ..., b - 1), got {spec!r}")
        check_axis_length(args[1] - args[0], key, source, f"{{ range = {args!r} }}")
        return list(range(args[0], args[1]))
    ok = (how in ("linspace", "geomspace") and isinstance(args, list) and len(args) == 3
          and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
          and isinstance(args[2], int) and args[2] >= 0)
    if not ok or (how == "geomspace" and min(args[0], args[1]) <= 0):
        raise UserError(f"{source}: {key}: {allowed} (n a whole number; geomspace ends > 0), got {spec!r}")
    check_axis_length(args[2], key, source, f"{{ {how} = {args!r} }}")
    fn = np.linspace if how == "linspace" else np.geomspace
    return [float(round(v, 12)) for v in fn(args[0], args[1], args[2])]


def axis_tuple(values: list, check: Callable[[Any], Any], key: str, source: str) -> tuple:
    """The values of an axis, each cleaned by its `check` (so that a value of the wrong
    kind, a list or a table, is one line saying what is allowed), none repeated."""
    if not values:
        raise UserError(f"{source}: {key}: the axis is empty; give at least one value")
    cleaned = tuple(check_value(check, v, key, source) for v in values)
    if len(set(cleaned)) != len(cleaned):
        raise UserError(f"{source}: {key}: repeated values {list(cleaned)}; each value once")
    return cleaned


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table (keys are bare words in our schemas)
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return str(v)
