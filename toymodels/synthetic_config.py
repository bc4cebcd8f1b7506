"""The `[synthetic]` table of an SAE sweep: a synthetic feature world, parsed without JAX.

With `[sae] source = "synthetic"` and a `[synthetic]` table, the SAEs train on a world
(`toymodels.dictionary.world`, SynthSAEBench's generative model) instead of the old
synthetic source (`sae.n_features`, `n_hidden`, `truth_seed` and the `[data]` law, which
keep working, with the same bits, when there is no `[synthetic]` table). Example::

  [sae]
  source = "synthetic"
  kind = "batchtopk"
  width = 256
  [synthetic]
  preset = "synthsaebench-1k"   # every key of the preset, then the table's own over them
  rank = 0                      # e.g. no correlation

Each key is declared once in `SYNTHETIC_SCHEMA` (the docs' key reference is generated from
it); `parse_world` checks the table in one line per mistake and returns its `WorldSpec`.
Every key but preset, seed, n_features, n_hidden and rank (`FIXED`, with why) is a static
axis of the sweep (`Key.axis`): a world per value, from the same world seed.

Presets (`PRESETS`):
  - "synthsaebench-16k": SynthSAEBench-16k exactly as published in SAELens's docs
    (docs/synth_sae_bench.md, "Creating Custom Benchmark Models": the code that builds
    it): 16,384 features in 768 dims, Zipf(0.5, 0.4, 5e-4), 128 roots, branching 4,
    depth 3, every parent exclusive, compensated, children scaled by their parents,
    low rank 25 at scale 0.1, 100 orthogonalisation steps at lr 3e-4, means linear 5 -> 4,
    stds folded normal (0.5, 0.5), bias 0.5, seed 42.
  - "synthsaebench-4k", "synthsaebench-1k": the same law at 4,096 features in 256 dims
    and 1,024 in 128 (ours, for 2 CPU cores): the roots scaled with F (32, 8: the same
    two thirds of the features in trees), d chosen so that L0 ln(F / L0) / d, the
    difficulty of recovering a sparse code, stays near the 16k's (0.27; here 0.35 and
    0.28 at L0 about 16 and 7).
"""

from __future__ import annotations

import dataclasses
import math

from toymodels.checks import STATIC_AXIS, Key, boolean, check_value, choice, integer, is_real, number, seed
from toymodels.errors import UserError, unknown
from toymodels.world_spec import FIRING_LAWS, MAGNITUDES, VALUE_LAWS, WorldSpec

TABLE = "synthetic"
MAX_PAIR_LOADING = 0.99  # a feature's sum of |rho| over its pairs (its copula variance)


def _numbers(lo: float, hi: float):
    """A number or a list of numbers in [lo, hi], as a tuple."""
    allowed = f"must be a number or a list of numbers in [{lo:g}, {hi:g}]"

    def check(v):
        values = v if isinstance(v, list) else [v]
        if not values or not all(is_real(x) and lo <= x <= hi for x in values):
            raise ValueError(allowed)
        return tuple(float(x) for x in values)
    return check


def _branching(v):
    allowed = "must be an integer >= 2 or a list [lo, hi] of integers 2 <= lo <= hi"
    ok = lambda x: isinstance(x, int) and not isinstance(x, bool) and 2 <= x < 2**31
    if ok(v):
        return (v, v)
    if isinstance(v, list) and len(v) == 2 and all(ok(x) for x in v) and v[0] <= v[1]:
        return (v[0], v[1])
    raise ValueError(allowed)


def _pairs(v):
    allowed = "must be a list of [i, j, rho] (feature indices i != j, -1 < rho < 1)"
    index = lambda x: isinstance(x, int) and not isinstance(x, bool) and x >= 0
    if not isinstance(v, list) or not all(
            isinstance(p, list) and len(p) == 3 and index(p[0]) and index(p[1]) and p[0] != p[1]
            and is_real(p[2]) and -1 < p[2] < 1 for p in v):
        raise ValueError(allowed)
    return tuple((p[0], p[1], float(p[2])) for p in v)


def _probabilities(v):
    if not isinstance(v, list) or not v or not all(is_real(x) and 0 <= x <= 1 for x in v):
        raise ValueError("must be a list of probabilities in [0, 1], one per feature")
    return tuple(float(x) for x in v)


DEFAULT = {f.name: f.default for f in dataclasses.fields(WorldSpec)
           if f.default is not dataclasses.MISSING}
SYNTHETIC_SCHEMA = {  # the [synthetic] table, each key declared once (defaults: WorldSpec's)
    "preset": Key(choice(("synthsaebench-16k", "synthsaebench-4k", "synthsaebench-1k")), None,
                  "a published or scaled world whose keys the table's own override "
                  "(toymodels.synthetic_config.PRESETS)"),
    "seed": Key(seed, 0, "the world's seed: its directions, bias, forest, copula and drawn "
                "per-feature values"),
    "n_features": Key(integer(1), None, "F, the ground-truth features (needed, or a preset's)"),
    "n_hidden": Key(integer(1), None, "d, the dims of the activations (needed, or a preset's)"),
    "firing": Key(choice(FIRING_LAWS), DEFAULT["firing"], "the firing law: zipf (SAELens's: "
                  "rank^-zipf_exponent rescaled onto [zipf_min, zipf_max]), constant "
                  "(probability), list (probabilities) or exactly_k (exactly `active` "
                  "features per example, chosen uniformly)"),
    "probability": Key(number(0.0, 1.0), DEFAULT["probability"], "every feature's p (firing = constant)"),
    "probabilities": Key(_probabilities, None, "each feature's p (firing = list)"),
    "zipf_exponent": Key(number(0.0, math.inf, lo_open=True), DEFAULT["zipf_exponent"],
                         "the Zipf law's exponent"),
    "zipf_max": Key(number(0.0, 1.0, lo_open=True), DEFAULT["zipf_max"], "the most frequent feature's p"),
    "zipf_min": Key(number(0.0, 1.0, lo_open=True), DEFAULT["zipf_min"], "the rarest feature's p"),
    "active": Key(integer(1), DEFAULT["active"], "K, the features of every example (firing = exactly_k)"),
    "mean_law": Key(choice(VALUE_LAWS), DEFAULT["mean_law"], "the per-feature magnitude means: "
                    "constant [v], linear [start, end], list [one per feature] or "
                    "folded_normal [m, s] (each |N(m, s^2)|, from the seed)"),
    "mean": Key(_numbers(0.0, 1e6), DEFAULT["mean"][0], "the numbers of mean_law"),
    "std_law": Key(choice(VALUE_LAWS), DEFAULT["std_law"], "the per-feature magnitude stds, "
                   "as mean_law"),
    "std": Key(_numbers(0.0, 1e6), DEFAULT["std"][0], "the numbers of std_law"),
    "magnitude": Key(choice(MAGNITUDES), DEFAULT["magnitude"], "a firing feature's value from "
                     "its mean m and std s: rectified_normal max(0, m + s z) (SAELens's), "
                     "folded_normal |m + s z|, half_normal |s z|, uniform (mean m, std s, "
                     "clipped at 0)"),
    "roots": Key(integer(0), DEFAULT["roots"], "root nodes of the hierarchy (0: none); "
                 "breadth first from feature 0, as SAELens"),
    "branching": Key(_branching, 2, "children per parent: an integer, or [lo, hi] drawn per parent"),
    "depth": Key(integer(1), DEFAULT["depth"], "levels of children below the roots"),
    "exclusive": Key(number(0.0, 1.0), DEFAULT["exclusive"], "the fraction of parents whose "
                     "children are mutually exclusive (one kept, uniformly)"),
    "exclusive_min_depth": Key(integer(0), DEFAULT["exclusive_min_depth"],
                               "the shallowest exclusive parents (0: roots)"),
    "exclusive_max_depth": Key(integer(0), None, "the deepest exclusive parents (default: any)"),
    "compensate": Key(boolean, DEFAULT["compensate"], "raise children's p so that each fires "
                      "at about its law's rate (SAELens's compensate_probabilities)"),
    "scale_children": Key(boolean, DEFAULT["scale_children"], "a child's value times its "
                          "parent's value / the parent's mean (SAELens's scale_children_by_parent)"),
    "rank": Key(integer(0), DEFAULT["rank"], "the rank of the firing's low-rank Gaussian "
                "copula (0: none)"),
    "correlation_scale": Key(number(0.0, 1.0), DEFAULT["correlation_scale"],
                             "the copula factor's entries' std"),
    "correlations": Key(_pairs, None, "explicit latent correlations [[i, j, rho], ...] of the "
                        "copula (each feature's sum of |rho| at most 0.99)"),
    "orthogonal": Key(boolean, DEFAULT["orthogonal"], "exactly orthonormal directions (F <= d)"),
    "ortho_steps": Key(integer(0), DEFAULT["ortho_steps"], "Adam steps of SAELens's "
                       "orthogonalisation of the random directions (0: none)"),
    "ortho_lr": Key(number(0.0, math.inf, lo_open=True), DEFAULT["ortho_lr"],
                    "the orthogonalisation's learning rate"),
    "bias": Key(number(0.0, 1e6), DEFAULT["bias"], "the norm of the world's bias (0: none)"),
}
FIXED = {  # keys that are not sweep axes, and why; the rest are static: a world per value
    "preset": "the world's identity", "seed": "the world's identity", "n_features": "a shape",
    "n_hidden": "a shape", "rank": "its name is SAE results' rank dim (analyze's decoder "
    "spectrum); sweep correlation_scale or correlations"}
SYNTHETIC_SCHEMA = {k: key if k in FIXED else dataclasses.replace(key, axis=STATIC_AXIS)
                    for k, key in SYNTHETIC_SCHEMA.items()}
PRESETS = {
    "synthsaebench-16k": {
        "n_features": 16384, "n_hidden": 768, "seed": 42,
        "firing": "zipf", "zipf_exponent": 0.5, "zipf_max": 0.4, "zipf_min": 5e-4,
        "roots": 128, "branching": 4, "depth": 3, "exclusive": 1.0, "exclusive_min_depth": 0,
        "compensate": True, "scale_children": True,
        "rank": 25, "correlation_scale": 0.1, "ortho_steps": 100, "ortho_lr": 3e-4,
        "mean_law": "linear", "mean": [5.0, 4.0], "std_law": "folded_normal", "std": [0.5, 0.5],
        "magnitude": "rectified_normal", "bias": 0.5},
}
PRESETS["synthsaebench-4k"] = {**PRESETS["synthsaebench-16k"], "n_features": 4096,
                               "n_hidden": 256, "roots": 32}
PRESETS["synthsaebench-1k"] = {**PRESETS["synthsaebench-16k"], "n_features": 1024,
                               "n_hidden": 128, "roots": 8}
COUNTS = {"constant": 1, "linear": 2, "folded_normal": 2}  # numbers of a VALUE_LAWS law


def world_keys() -> tuple[str, ...]:
    return tuple(SYNTHETIC_SCHEMA)


def parse_world(table: dict, source: str) -> tuple[WorldSpec, int, dict]:
    """(spec, seed, resolved table) of a `[synthetic]` table: its preset's keys, then its
    own over them, each checked, then the checks between keys. The resolved table is what
    was given (with the preset named), so that a manifest reads back to the same world.

    Raises:
      UserError: one line naming the key: an unknown key (with "did you mean"), a value
        its key does not allow, or keys that do not fit together (a list of the wrong
        length, exactly_k with a hierarchy, orthogonal with F > d, ...).
    """
    fail = lambda key, msg: UserError(f"{source}: {TABLE}.{key}: {msg}")
    for key in table:
        if key not in SYNTHETIC_SCHEMA:
            raise fail(key, unknown(key, SYNTHETIC_SCHEMA))
    preset = _check(table, "preset", source) if "preset" in table else None
    merged = {**PRESETS.get(preset, {}), **{k: v for k, v in table.items() if k != "preset"}}
    values = {k: _check(merged, k, source) for k in merged}
    for key in ("n_features", "n_hidden"):
        if key not in values:
            raise fail(key, 'needed (or a preset\'s: preset = "synthsaebench-1k", ...)')
    F = values["n_features"]
    spec_args = {k: v for k, v in values.items() if k in DEFAULT or k in ("n_features", "n_hidden")}
    for law in ("mean", "std"):
        spec_args[law] = _law_numbers(values, law, F, fail)
    top = values.get("exclusive_max_depth")
    spec_args["exclusive_max_depth"] = -1 if top is None else top
    spec = WorldSpec(**spec_args)
    _check_together(spec, values, fail)
    return spec, values.get("seed", 0), dict(table)


def _check(table: dict, key: str, source: str):
    return check_value(SYNTHETIC_SCHEMA[key].check, table[key], f"{TABLE}.{key}", source)


def _law_numbers(values: dict, law: str, F: int, fail) -> tuple[float, ...]:
    """The numbers of `mean` or `std`, as many as their law takes (a list: F)."""
    name = values.get(f"{law}_law", DEFAULT[f"{law}_law"])
    numbers = values.get(law, DEFAULT[law])
    want = COUNTS.get(name, F)
    if len(numbers) != want:
        shape = {1: "one number", 2: "[a, b]"}.get(want, f"a list of {F} numbers, one per feature")
        raise fail(law, f"{law}_law = \"{name}\" takes {shape}, got {len(numbers)} number(s)")
    return numbers


def _check_together(spec: WorldSpec, values: dict, fail) -> None:
    """The checks between keys (each error names the key to change)."""
    F, d = spec.n_features, spec.n_hidden
    if spec.firing == "list" and len(spec.probabilities) != F:
        raise fail("probabilities", f"firing = \"list\" needs one probability per feature "
                   f"({F}), got {len(spec.probabilities)}")
    if spec.firing != "list" and "probabilities" in values:
        raise fail("probabilities", f'only with firing = "list" (firing is "{spec.firing}")')
    if spec.firing == "zipf" and not spec.zipf_min < spec.zipf_max:
        raise fail("zipf_min", f"must be below zipf_max = {spec.zipf_max:g}, got {spec.zipf_min:g}")
    if spec.firing == "exactly_k":
        if spec.active > F:
            raise fail("active", f"must be at most n_features = {F}, got {spec.active}")
        for key in ("roots", "rank", "correlations"):
            if values.get(key):
                raise fail(key, "firing = \"exactly_k\" draws exactly K features: no "
                           "hierarchy or correlation (set it to 0 / leave it out)")
    if spec.roots > F:
        raise fail("roots", f"must be at most n_features = {F}, got {spec.roots}")
    for i, j, _ in spec.correlations:
        if max(i, j) >= F:
            raise fail("correlations", f"feature indices must be below n_features = {F}, "
                       f"got [{i}, {j}, ...]")
    load = {}
    for i, j, rho in spec.correlations:
        load[i], load[j] = load.get(i, 0.0) + abs(rho), load.get(j, 0.0) + abs(rho)
    worst = max(load, key=load.get, default=None)
    if worst is not None and load[worst] > MAX_PAIR_LOADING:
        raise fail("correlations", f"feature {worst}'s sum of |rho| is {load[worst]:g}; "
                   f"at most {MAX_PAIR_LOADING:g} (its copula variance)")
    if spec.orthogonal and F > d:
        raise fail("orthogonal", f"needs n_features <= n_hidden; {F} directions do not fit "
                   f"in {d} dims (use ortho_steps)")
    if spec.orthogonal and spec.ortho_steps:
        raise fail("ortho_steps", "not with orthogonal = true (already exactly orthogonal)")
    if spec.scale_children and spec.mean_law != "folded_normal" and min(spec.mean) <= 0:
        raise fail("mean", "scale_children divides by the parents' means: they must be > 0")
