"""What each plot kind needs of a results Dataset, as data: `NEEDS[kind]`, a `Needs` per
kind of `toymodels.plotting.PLOTS`, read from the kind's own function (the checks it
raises, the axes it reduces to, the variables it reads). Analysis variables that a kind
computes on the fly (`_ensure_analysis`: phase, superposition, n_polysemantic, ...) are
not needs; variables it cannot make (snapshots, the LLC, an SAE sweep's scores) are.

`why_not(kind, ds)` says in words why a kind does not apply to a Dataset (None: it does)
and `kinds_for(ds)` lists those that apply. Both read names only (the trainer, the sweep
axes and their coordinates, the data variables' names, attrs, the config): no analysis
and no drawing, so they run on a lazily opened results.nc (`toymodels info`). One read of
data: `kgon_trajectories`' check of unit importances (`plotting.llc.kgon_problem`).

Example (the quickstart's sparsity x seed sweep)::

  why_not("heatmap", toymodels.load("runs/intro"))
  # -> 'needs two sweep axes besides seed; this sweep has one: sparsity'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import xarray as xr

from toymodels.errors import unknown
from toymodels.plotting.common import DENSITY_AXES, NON_SWEEP_DIMS
from toymodels.plotting.llc import KGON_NEED, kgon_problem
from toymodels.results import config_of

WEIGHTS = ("W", "W1")  # tied models' W, abs_computation's W1: what the analysis reads
TIED = ("linear", "relu_output", "relu_hidden")  # the model kinds with one tied W
NUMBERS = ("none", "one", "two", "three", "four")


@dataclass(frozen=True)
class Needs:
    """What a plot kind needs of a results Dataset (every field: no need when empty).

    An entry of `named` or `variables` is a name, or a tuple of names of which one is
    enough (e.g. `DENSITY_AXES`: a feature_probability or a sparsity axis).

    Attributes:
      trainer: "toy" (toy-model sweeps), "sae" (SAE sweeps), "residual" (residual-MLP
        sweeps), "spd" (SPD sweeps), "llc_calibration" or None
        (toy models or SAEs).
      axes: how many sweep axes it needs besides seed and `besides` (phase: 2).
      besides: axes not counted in `axes` (optimizer_phase folds optimizer and
        learning_rate into its best-run pick).
      named: sweep axes it needs by name (double_descent: dataset_size).
      only: the sweep axes it can take, if limited (incidental: n_hidden and seed).
      option_axes: (option, default): the option names a sweep axis it needs (and may
        take, beyond `only`): loss_grid's y, default n_hidden.
      variables: data variables the results must hold.
      models: the model kinds it is for (toy sweeps; unknown kinds are not refused).
      hidden: (lowest, highest or None) n_hidden of every run (geometry: 2 to 3).
      inputs: the data.inputs laws it is for (from the config; none: not refused).
      check: a last test of the Dataset, returning the reason or None (k-gon levels).
      variants: (option, value, Needs): the needs instead when the option has the value
        (optimizer_phase's panel="basis").
    """

    trainer: str | None = "toy"
    axes: int = 0
    besides: tuple[str, ...] = ()
    named: tuple[str | tuple[str, ...], ...] = ()
    only: tuple[str, ...] | None = None
    option_axes: tuple[tuple[str, str], ...] = ()
    variables: tuple[str | tuple[str, ...], ...] = ()
    models: tuple[str, ...] | None = None
    hidden: tuple[int, int | None] | None = None
    inputs: tuple[str, ...] | None = None
    check: Callable[[xr.Dataset], str | None] | None = None
    variants: tuple[tuple[str, Any, "Needs"], ...] = ()


def _kgon(ds: xr.Dataset) -> str | None:
    """the k-gon setting: a relu_output model in 2 hidden dims on exactly-one inputs of
    uniform magnitude, unit importance"""
    problem = kgon_problem(ds)
    return f"{KGON_NEED}; {problem}" if problem else None


def _hedging(ds: xr.Dataset) -> str | None:
    """one-latent SAEs on 2 features (sweeps/sae_hedging.toml)"""
    width, features = ds.sizes.get("latent"), ds.sizes.get("feature")
    if (width, features) != (1, 2):
        return f"needs one-latent SAEs on 2 features; these have {width} latents, {features} features"
    return None


def _uand(ds: xr.Dataset) -> str | None:
    """a one-layer residual sweep with task = "uand" """
    task, layers = ds.attrs.get("task"), int(ds.attrs.get("n_layers", 1))
    if task != "uand" or layers != 1:
        return f"needs one-layer uand runs (task = \"uand\"); these are {task}, {layers} layer(s)"
    return None


FINITE = ("dataset_size", "data_seed", "seed")  # the axes of a memorisation sweep
GAP = tuple(f"{what}_{method}" for what in ("support", "recall")
            for method in ("encoder", "gp", "omp", "truth_gp"))  # sae_gap's curves
AMORTISATION = ("mcc", "mcc_truth_gp", "mcc_truth_omp", "mcc_oracle_gp", "mcc_oracle_omp")
RESIDUAL_SCORES = ("loss_ratio", "linear_ratio")  # `toymodels analyze` of a residual sweep
SPD_SCORES = ("best_cosine_W_in", "best_cosine_W_out", "failed", "missed_feature")
SPD_LIVE = ("n_live_W_in", "n_live_W_out")  # `toymodels analyze` of an SPD sweep
SPD_RESIDUAL_SCORES = ("best_cosine_W_in", "failed", "n_live_W_out")  # of a residual MLP
SAE_SCORES = ("mmcs", "fvu", "dead_fraction", "recovered_90", "random_mmcs",
              "random_recovered_90", "n_truth", "l0", "true_l0", "decoder_mcc",
              "decoder_projection", *GAP, *AMORTISATION)  # `toymodels analyze`

NEEDS: dict[str, Needs] = {
    # representations: one run per value of an axis (none: one run), any number of axes
    "features": Needs(models=TIED, variables=("W",)),
    "dimensionality": Needs(variables=(WEIGHTS, "density")),
    "geometry": Needs(models=TIED, variables=("W",), hidden=(2, 3)),
    "loss": Needs(variables=("loss",)),
    # phase diagrams: two sweep axes besides seed (`_default_xy`)
    "phase": Needs(axes=2, variables=(WEIGHTS,)),
    "heatmap": Needs(axes=2, variables=("final_loss",)),  # its default var
    "phase_grid": Needs(axes=2, variables=(WEIGHTS,)),
    # mechanisms
    "neurons": Needs(variables=(WEIGHTS,)),
    "dynamics": Needs(variables=(("W_snapshots", "W1_snapshots"),)),
    "vulnerability": Needs(models=("linear", "relu_output"), variables=("W", "b", "density"),
                           inputs=("bernoulli", "one_hot")),
    "computation": Needs(models=("abs_computation",), variables=("W1", "W2")),
    # memorisation: a dataset_size axis
    "double_descent": Needs(named=("dataset_size",), variables=("final_loss", "train_loss")),
    "memorisation_dimensionality": Needs(named=("dataset_size",), variables=(WEIGHTS,)),
    "memorisation_geometry": Needs(named=("dataset_size",), only=FINITE, models=TIED,
                                   variables=("W",), hidden=(2, 2)),
    "loss_grid": Needs(named=("dataset_size",), only=FINITE, option_axes=(("y", "n_hidden"),),
                       variables=("final_loss",)),
    # sparse autoencoders, scored by `toymodels analyze`
    "sae_width": Needs(trainer="sae", named=("width",),
                       variables=("mmcs", "fvu", "dead_fraction", "recovered_90",
                                  "random_mmcs", "random_recovered_90", "n_truth")),
    "sae_pareto": Needs(trainer="sae", variables=("l0", "fvu", "true_l0")),
    "sae_gap": Needs(trainer="sae", named=("source_run",), variables=(*GAP, "n_truth")),
    "sae_cosines": Needs(trainer="sae", variables=("decoder", "truth")),
    "benchmark_table": Needs(trainer="sae", variables=("l0", "dead_fraction", "firing_f1", "decoder_mcc",
                                                       "uniqueness", "explained_variance")),
    "hedging": Needs(trainer="sae", variables=("decoder", "truth", "density"), check=_hedging),
    "amortisation": Needs(trainer="sae", variables=AMORTISATION),
    "absorption": Needs(trainer="sae", variables=("absorption_gap_mean", "hedging_mean")),
    "sparse_but_wrong": Needs(trainer="sae", named=("k",), only=("k", "seed"),
                              variables=("decoder_mcc", "decoder_projection", "true_l0",
                                         "decoder", "truth")),
    # the LLC
    "kgon_trajectories": Needs(trainer=None, variables=("loss",), check=_kgon),
    "llc_phase": Needs(axes=2, variables=(WEIGHTS, "llc", "llc_trusted")),
    "llc_calibration": Needs(trainer="llc_calibration", variables=("llc", "llc_settings_ratio")),
    # dropout
    "dropout_phase": Needs(named=("dropout", "relative_importance", DENSITY_AXES),
                           variables=(WEIGHTS,)),
    "dropout_law": Needs(named=("dropout", DENSITY_AXES), variables=("W",)),
    # incidental polysemanticity
    "incidental": Needs(named=("n_hidden",), only=("n_hidden", "seed"), variables=(WEIGHTS,)),
    # norms and optimisers: one line or panel per norm or optimiser, best of the seeds
    "norms": Needs(named=(DENSITY_AXES, "seed"), models=("relu_output", "relu_hidden"),
                   only=("norm", *DENSITY_AXES, "importance_decay", "relative_importance",
                         "seed"), variables=("W", "b", "density")),
    "optimizer_phase": Needs(
        axes=2, besides=("optimizer", "learning_rate"), named=("seed",),
        variables=(WEIGHTS, "final_loss"),
        variants=(("panel", "basis", Needs(named=(DENSITY_AXES, "seed"), hidden=(2, None),
                                           variables=(WEIGHTS, "final_loss"))),)),
    # models that compute (the residual trainer)
    "uand_scaling": Needs(trainer="residual", named=("d_mlp",), only=("d_mlp", "seed"),
                          variables=("W_in_0", "R", "final_loss", "final_loss_se"),
                          check=_uand),
    "computation_control": Needs(trainer="residual", named=("label_mixing",),
                                 only=("label_mixing", "seed"), variables=RESIDUAL_SCORES),
    "computation_map": Needs(trainer="residual", variables=("loss_ratio",),
                             option_axes=(("x", "feature_probability"), ("y", "d_mlp"))),
    # parameter decomposition (the SPD trainer), scored by `toymodels analyze`
    "spd_failures": Needs(trainer="spd", variables=SPD_SCORES),
    "spd_phase": Needs(trainer="spd", variables=("target_W_in", *SPD_LIVE, *SPD_SCORES[:3])),
    "spd_residual": Needs(trainer="spd", variables=SPD_RESIDUAL_SCORES),
}
"""The needs of every plot kind (the keys of `PLOTS`, in its order)."""

VARIABLE_HINTS = {
    "W_snapshots": "needs snapshots of the weights: set train.snapshot_every and rerun the sweep",
    "llc": "needs LLC estimates: run `toymodels llc` on this directory first",
    "llc_trusted": "needs LLC estimates: run `toymodels llc` on this directory first",
    "train_loss": "needs a finite training set (train_loss): set data.dataset_size",
    **{name: "needs the SAE scores ({names}): run `toymodels analyze` on this directory first"
       for name in SAE_SCORES},
    **{name: "needs the SPD scores ({names}): run `toymodels analyze` on this directory first"
       for name in (*SPD_SCORES, *SPD_LIVE, *SPD_RESIDUAL_SCORES)},
    **{name: "needs the baselines' ratios ({names}): run `toymodels analyze` on this directory "
             "first" for name in RESIDUAL_SCORES},
}
AXIS_HINTS = {
    "dataset_size": " (a finite training set per size: [sweep] dataset_size = [...])",
    "width": " ([sweep] width = [...] of an SAE sweep)",
    "k": " ([sweep] k = [...] of a TopK-family SAE sweep)",
    "label_mixing": " ([sweep] label_mixing = [...] of a residual sweep)",
    "source_run": " (an SAE sweep of several runs of a toy-model results directory)",
}


def run_axes(ds: xr.Dataset) -> list[str]:
    """The sweep axes of a results Dataset of any trainer, in file order: the dims of its
    weights (else its losses) that index runs."""
    for name in (*WEIGHTS, "final_loss", "loss"):
        if name in ds:
            return [d for d in ds[name].dims if d not in NON_SWEEP_DIMS]
    return [d for d in ds.dims if d not in NON_SWEEP_DIMS]


def trainer_of(ds: xr.Dataset) -> str:
    """"toy" or "sae" (`attrs["trainer"]`, toy when absent)."""
    return str(ds.attrs.get("trainer", "toy"))


def model_kinds(ds: xr.Dataset) -> list[str]:
    """The model kinds of a toy sweep: its `kind` axis, else `attrs["model_kind"]` ([]:
    not known, e.g. a Dataset made by hand)."""
    if "kind" in run_axes(ds):
        return [str(k) for k in ds["kind"].values]
    return [str(ds.attrs["model_kind"])] if "model_kind" in ds.attrs else []


def hidden_sizes(ds: xr.Dataset) -> list[int]:
    """n_hidden of the runs: the values of an n_hidden axis, else the hidden size."""
    if "n_hidden" in run_axes(ds):
        return [int(m) for m in ds["n_hidden"].values]
    return [int(ds.sizes["hidden"])] if "hidden" in ds.dims else []


def _words(names, join: str = "and") -> str:
    names = [str(n) for n in names]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {join} {names[-1]}"


def _axes_now(axes: list[str]) -> str:
    return f"this sweep's axes: {', '.join(axes)}" if axes else "this sweep has no sweep axes"


def _a(name: str) -> str:
    return ("an " if name[0] in "aeiou" else "a ") + name


def _trainer_reason(needs: Needs, ds: xr.Dataset) -> str | None:
    have = trainer_of(ds)
    if needs.trainer is None or have == needs.trainer:
        return None
    if needs.trainer == "sae":
        return f"needs an SAE sweep (a sweep file with an [sae] table); this is a sweep of {have} models"
    if needs.trainer == "residual":
        return f"needs a residual-MLP sweep (a sweep file with a [residual] table); this is a sweep of {have} models"
    if needs.trainer == "spd":
        return f"needs an SPD sweep (a sweep file with an [spd] table); this is a sweep of {have} models"
    if needs.trainer == "llc_calibration":
        return "needs an LLC calibration (toymodels llc DIR --calibrate writes DIR/llc_calibration)"
    if have == "llc_calibration":
        return "needs a sweep of toy models; this is an LLC calibration (plot llc_calibration)"
    return f"needs a sweep of toy models; this is an {have.upper()} sweep"


def _axis_reason(needs: Needs, axes: list[str], options: dict) -> str | None:
    for entry in needs.named:
        names = (entry,) if isinstance(entry, str) else entry
        if not any(n in axes for n in names):
            hint = AXIS_HINTS.get(names[0], "")
            return f"needs a sweep axis {_words(names, 'or')}{hint}; {_axes_now(axes)}"
    chosen = []
    for option, default in needs.option_axes:
        name = str(options.get(option, default))
        if name not in axes or name == "seed":
            which = "besides seed" if name == "seed" else name
            return (f"needs a sweep axis {which} for its {option} (-o {option}=AXIS names "
                    f"another); {_axes_now(axes)}")
        chosen.append(name)
    if needs.only is not None:
        allowed = list(dict.fromkeys([*needs.only, *chosen]))
        extra = [a for a in axes if a not in allowed]
        if extra:
            return f"takes no sweep axes but {_words(allowed)}; this sweep also has {_words(extra)}"
    counted = [a for a in axes if a != "seed" and a not in needs.besides]
    if len(counted) < needs.axes:
        besides = _words(["seed", *needs.besides])
        have = NUMBERS[len(counted)] + (f": {', '.join(counted)}" if counted else "")
        return f"needs {NUMBERS[needs.axes]} sweep axes besides {besides}; this sweep has {have}"
    return None


def _model_reason(needs: Needs, ds: xr.Dataset) -> str | None:
    kinds = model_kinds(ds)
    wrong = [k for k in kinds if needs.models is not None and k not in needs.models]
    if not wrong:
        return None
    have = f"model is {kinds[0]}" if len(kinds) == 1 else f"models are {_words(kinds)}"
    return f"needs {_a(_words(needs.models, 'or'))} model; this sweep's {have}"


def _hidden_reason(needs: Needs, ds: xr.Dataset) -> str | None:
    if needs.hidden is None:
        return None
    lo, hi = needs.hidden
    sizes = hidden_sizes(ds)
    if all(lo <= m and (hi is None or m <= hi) for m in sizes):
        return None
    want = (f"= {lo}" if lo == hi else f">= {lo}" if hi is None
            else _words(range(lo, hi + 1), "or"))
    return f"needs n_hidden {want}; this sweep has {_words(sorted(set(sizes)))}"


def _variable_reason(needs: Needs, ds: xr.Dataset) -> str | None:
    missing = [entry for entry in needs.variables
               if not any(n in ds for n in ((entry,) if isinstance(entry, str) else entry))]
    if not missing:
        return None
    first = missing[0] if isinstance(missing[0], str) else missing[0][0]
    names = [m if isinstance(m, str) else " or ".join(m) for m in missing]
    if first in VARIABLE_HINTS:
        same = [n for n in names if VARIABLE_HINTS.get(n) == VARIABLE_HINTS[first]]
        return VARIABLE_HINTS[first].format(names=", ".join(same))
    return f"needs the variable{'s' if len(names) > 1 else ''} {_words(names)}, which these results lack"


def _inputs_reason(needs: Needs, ds: xr.Dataset) -> str | None:
    if needs.inputs is None:
        return None
    config = config_of(ds)
    spec = getattr(config, "spec", None)
    inputs = getattr(getattr(spec, "data", None), "inputs", None)
    if inputs is None or inputs in needs.inputs:
        return None
    return f"needs data.inputs = {_words(needs.inputs, 'or')}; this sweep has {inputs}"


def needs_of(kind: str, **options) -> Needs:
    """`NEEDS[kind]`, or its variant for these options (`Needs.variants`).

    Raises:
      ValueError: an unknown kind (the message lists the valid ones).
    """
    if kind not in NEEDS:
        raise ValueError(f"plot {kind}: {unknown(kind, NEEDS, 'plot kind')}")
    needs = NEEDS[kind]
    for option, value, other in needs.variants:
        if options.get(option) == value:
            return other
    return needs


def why_not(kind: str, ds: xr.Dataset, **options) -> str | None:
    """Why plot `kind` does not apply to the results `ds` (one short reason in words), or
    None if it does. `options` are the kind's `-o` options (a few change its needs:
    loss_grid's y, optimizer_phase's panel). Reads names, dims, coordinates and attrs
    only.

    Example:
      >>> import numpy as np
      >>> ds = xr.Dataset({"W": (("sparsity", "hidden", "feature"), np.zeros((2, 2, 5)))},
      ...                 coords={"sparsity": [0.0, 0.9]})
      >>> why_not("phase", ds)
      'needs two sweep axes besides seed; this sweep has one: sparsity'
      >>> why_not("geometry", ds) is None
      True
    """
    needs = needs_of(kind, **options)
    axes = run_axes(ds)
    for reason in (
        _trainer_reason(needs, ds),
        _model_reason(needs, ds) if trainer_of(ds) == "toy" else None,
        _axis_reason(needs, axes, options),
        _hidden_reason(needs, ds),
        _variable_reason(needs, ds),
        _inputs_reason(needs, ds),
    ):
        if reason:
            return reason
    return needs.check(ds) if needs.check else None


def needs_text(kind: str) -> str:
    """`NEEDS[kind]` in words, for the plots reference (`toymodels.reference`).

    Example:
      >>> needs_text("heatmap")
      'a sweep of toy models; two sweep axes besides seed; the variable final_loss'
    """
    return _text(NEEDS[kind])


def _text(needs: Needs) -> str:
    either = lambda e: e if isinstance(e, str) else f"{e[0]} (or {', '.join(e[1:])})"
    plural = lambda word, names: f"{word}{'s' if len(names) > 1 else ''} {_words(names)}"
    models = f"{_words(needs.models, 'or')} models" if needs.models else "toy models"
    parts = [{"toy": f"a sweep of {models}", "sae": "an SAE sweep",
              "residual": "a residual-MLP sweep"}.get(needs.trainer, "any sweep")]
    if needs.named:
        word = "axes" if len(needs.named) > 1 else "axis"
        parts.append(f"the sweep {word} {_words([either(e) for e in needs.named])}")
    parts += [f"a sweep axis named by -o {o} (default {d})" for o, d in needs.option_axes]
    if needs.only is not None:
        parts.append(f"no other sweep axes than {_words(needs.only)}")
    if needs.axes:
        parts.append(f"{NUMBERS[needs.axes]} sweep axes besides {_words(['seed', *needs.besides])}")
    if needs.hidden:
        lo, hi = needs.hidden
        parts.append("n_hidden " + (f"{lo}" if lo == hi else f">= {lo}" if hi is None
                                    else f"{lo} to {hi}"))
    if needs.variables:
        parts.append(plural("the variable", [either(e) for e in needs.variables]))
    if needs.inputs:
        parts.append(f"data.inputs {_words(needs.inputs, 'or')}")
    if needs.check is not None:
        parts.append(" ".join((needs.check.__doc__ or "a check of its own").split()))
    text = "; ".join(parts)
    for option, value, other in needs.variants:
        text += f" (with -o {option}={value}: {_text(other)})"
    return text


def kinds_for(ds: xr.Dataset) -> list[str]:
    """The plot kinds (of `PLOTS`, in its order) that apply to `ds` with their default
    options: those whose `why_not` is None."""
    return [kind for kind in NEEDS if why_not(kind, ds) is None]
