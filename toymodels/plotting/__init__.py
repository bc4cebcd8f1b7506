"""Figures from a results dataset: matplotlib only, no retraining.

Where this sits in the data flow: ``toymodels.load(dir)`` gives an ``xarray.Dataset``
(sweep axes, then ``hidden``, ``feature``, ``step``); ``toymodels.analysis.analyze``
adds per-run metrics; the functions here draw them.

Two layers:

- Axes functions (``features``, ``phase``, ``dimensionality``, ``geometry``, ``loss``,
  ``heatmap``, ...) take an ``ax`` (or an array of axes), draw on it and return the
  artists they drew. They never create, show or save figures and set no rcParams.
- Figure functions (``PLOTS[kind](ds, **options)``, ``features_figure``,
  ``geometry_grid``, ``phase_grid``, ...) build a whole ``matplotlib.figure.Figure``
  without pyplot, so there is no global state; the caller (the CLI, a script in
  ``plots/``) saves it.

One module per family of figures, each exporting a ``FIGURES`` dict merged into
``PLOTS`` here (every public name is also importable from ``toymodels.plotting``):

- ``common``: constants, names and titles, sweep axes, reducing runs (``best_runs``).
- ``representations``: single models along an axis: WᵀW and norms, feature directions,
  dimensionality, loss curves.
- ``phase_diagrams``: phase diagrams (with the closed-form boundary) and heatmaps.
- ``mechanisms``: neurons, training dynamics, adversarial vulnerability, computation.
- ``memorisation``: double descent and the geometry of memorised data points.
- ``sae``: sparse autoencoders against the ground-truth features.
- ``benchmark``: SynthSAEBench's table of SAE kinds, beside the published one.
- ``hedging``: one-latent SAEs on a parent and a child against the hedging closed form.
- ``amortisation``: SAE encoders against pursuit on the true features (code MCC).
- ``absorption``: absorption and hedging of SAEs on a hierarchy, each seed a point.
- ``sparse_but_wrong``: BatchTopK SAEs over k against the true L0 (Chanin & Garriga-Alonso 2025).
- ``llc``: k-gon trajectories and the local learning coefficient.
- ``uand_scaling``: trained universal-AND circuits against the random construction as d grows.
- ``dropout``, ``incidental``, ``norms``: dropout, incidental polysemanticity, norms and
  optimisers.
- ``computation_control``: residual MLPs against the naive baseline over the labels'
  mixing scale (Braun et al. 2025's compressed computation, Bhagat et al. 2025's control).
- ``computation_map``: residual MLPs with clean labels against the naive baseline, heatmaps
  over two sweep axes, one panel per task and depth.
- ``spd_failures``: how often SPD misses a feature, over seeds or models, and which.
- ``spd_phase``: SPD across a phase diagram: live subcomponents against represented features.
- ``spd_residual``: SPD of a residual MLP: W_in's pieces found, W_in's and W_out's one-hot
  causal importances.

What each kind needs of a results directory (a second sweep axis, snapshots, an SAE
sweep, ...) is data in ``needs`` (``NEEDS``, ``why_not(kind, ds)``, ``kinds_for(ds)``):
``save_plot`` refuses a kind that does not apply in one line, and ``toymodels info``
lists the kinds that do.

Runs are reduced to the axes a plot needs by ``best_runs``: the lowest-``final_loss``
seed when a ``seed`` axis exists, index 0 along every other axis (select other values
with ``ds.sel(...)`` first). Titles and labels come from the dataset (``attrs["name"]``,
the config, the axis names), never written per figure.

Example (with ``ds = toymodels.load("runs/reproduce/phase_2_1")``)::

  fig = PLOTS["phase"](ds, theory="2_1")
  fig.savefig("phase_2_1.png")
"""

from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path
from typing import Callable

import xarray as xr
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.figure import Figure

from toymodels import store
from toymodels.errors import UserError, unknown
from toymodels.outputs import output_file, written
from toymodels.plotting import absorption as _absorption
from toymodels.plotting import amortisation as _amortisation
from toymodels.plotting import benchmark as _benchmark
from toymodels.plotting import computation_control as _computation_control
from toymodels.plotting import computation_map as _computation_map
from toymodels.plotting import dropout as _dropout
from toymodels.plotting import hedging as _hedging
from toymodels.plotting import incidental as _incidental
from toymodels.plotting import llc as _llc
from toymodels.plotting import mechanisms as _mechanisms
from toymodels.plotting import norms as _norms
from toymodels.plotting import memorisation as _memorisation
from toymodels.plotting import phase_diagrams as _phase_diagrams
from toymodels.plotting import representations as _representations
from toymodels.plotting import sae as _sae
from toymodels.plotting import sparse_but_wrong as _sparse_but_wrong
from toymodels.plotting import spd_failures as _spd_failures
from toymodels.plotting import spd_phase as _spd_phase
from toymodels.plotting import spd_residual as _spd_residual
from toymodels.plotting import uand_scaling as _uand_scaling

# Re-exported: the public names of every family, and the shared helpers other
# families and modules import (``_run_name`` in reproduce, ``_mesh`` in llc, ...).
from toymodels.plotting.common import (
    AXIS_LABELS,
    AXIS_SYMBOLS,
    DENSITY_AXES,
    GRAM_CMAP,
    NON_SWEEP_DIMS,
    PHASE_COLORS,
    REFERENCE_DIMENSIONS,
    SUPERPOSITION_CMAP,
    VARIABLE_LABELS,
    _default_axis,
    _default_xy,
    _edges,
    _ensure_analysis,
    _feature_colours,
    _fixed_note,
    _grid_shape,
    _plot_coordinate,
    _run_name,
    _runs_along,
    _single,
    best_runs,
    is_log_spaced,
    label,
    sweep_axes,
    title,
    unpadded,
)
from toymodels.plotting.needs import NEEDS, Needs, kinds_for, needs_text, why_not
from toymodels.plotting.mechanisms import (
    computation,
    computation_figure,
    dynamics,
    dynamics_figure,
    neurons,
    neurons_figure,
    vulnerability,
)
from toymodels.plotting.phase_diagrams import (
    REDUCTIONS,
    _mesh,
    _theory_overlay,
    heatmap,
    phase,
    phase_grid,
)
from toymodels.plotting.representations import (
    dimensionality,
    features,
    features_figure,
    geometry,
    geometry_grid,
    loss,
)


class _Registry(dict):
    """A dict whose unknown keys raise ValueError listing the valid ones."""

    def __missing__(self, kind):
        raise ValueError(f"unknown plot kind {kind!r}; valid: {', '.join(self)}")


PLOTS: dict[str, Callable[..., Figure]] = _Registry(
    **_representations.FIGURES,  # features, dimensionality, geometry, loss
    **_phase_diagrams.FIGURES,  # phase, heatmap, phase_grid
    **_mechanisms.FIGURES,  # neurons, dynamics, vulnerability, computation
    **_memorisation.FIGURES,  # double_descent (by), memorisation_geometry (sizes), ...
    **_sae.FIGURES,  # sae_width (by), sae_pareto (by), sae_gap, sae_cosines (by, max_columns)
    **_benchmark.FIGURES,  # benchmark_table (also, l0, published)
    **_hedging.FIGURES,  # hedging (world)
    **_amortisation.FIGURES,  # amortisation
    **_absorption.FIGURES,  # absorption
    **_sparse_but_wrong.FIGURES,  # sparse_but_wrong (n)
    **_llc.FIGURES,  # kgon_trajectories (runs), llc_phase (x, y, theory, vmax)
    **_dropout.FIGURES,  # dropout_phase (x, y, max_columns), dropout_law
    **_incidental.FIGURES,  # incidental
    **_norms.FIGURES,  # norms (importance), optimizer_phase (panel)
    **_uand_scaling.FIGURES,  # uand_scaling (construction_seeds, read_share)
    **_computation_control.FIGURES,  # computation_control (residual MLPs)
    **_computation_map.FIGURES,  # computation_map (x, y, reduce)
    **_spd_failures.FIGURES,  # spd_failures (SPD over seeds or models)
    **_spd_phase.FIGURES,  # spd_phase (SPD of every cell of a phase diagram)
    **_spd_residual.FIGURES,  # spd_residual (SPD of a residual MLP)
)
"""Plot kinds of the CLI: ``PLOTS[kind](ds, **options) -> Figure``."""


def plot_options(kind: str) -> list[inspect.Parameter]:
    """The `-o` options of a plot kind: the keyword parameters of its figure function and
    of the axes function it draws with (`__wrapped__`), without `ax` and `ds`."""
    fn = PLOTS[kind]
    own = list(inspect.signature(fn, follow_wrapped=False).parameters.values())[1:]
    inner = getattr(fn, "__wrapped__", None)
    drawn = list(inspect.signature(inner).parameters.values())[2:] if inner else []
    names = {p.name for p in own}
    return [p for p in own + [p for p in drawn if p.name not in names]
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def plot_description(kind: str) -> str:
    """What a plot kind draws: the first paragraph of the docstring of the function that
    draws it (a figure function's `__wrapped__` axes function, else its own), on one line."""
    fn = PLOTS[kind]
    doc = inspect.getdoc(getattr(fn, "__wrapped__", fn)) or ""
    return doc.split("\n\n")[0].replace("\n", " ") or "(no description)"


def plot_summary(kind: str, width: int = 80) -> str:
    """`plot_description` in at most `width` characters: its first sentence, cut at a word.

    Example:
      >>> plot_summary("loss")
      'Training-loss curves (log y), one per run, including every seed'
    """
    doc = plot_description(kind).replace("``", "`")
    first = re.split(r"\.\s+(?=[A-Z])", doc)[0].rstrip(".")
    return first if len(first) <= width else first[:width - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _arg_meanings(fn) -> dict[str, str]:
    """The first sentence of each entry of a Google-style docstring's ``Args:`` section."""
    lines = (inspect.getdoc(fn) or "").splitlines()
    meanings, name, inside = {}, None, False
    for line in lines:
        if line.strip() == "Args:":
            inside = True
            continue
        if inside and line and not line.startswith(" "):
            break  # the next section
        entry = re.match(r"  (\w+)(?: \(.*?\))?: (.*)", line) if inside else None
        if entry:
            name, meanings[entry[1]] = entry[1], entry[2]
        elif inside and name and line.startswith("    "):
            meanings[name] += " " + line.strip()
    return {k: re.split(r"(?<=[a-z)\]`\"])\.\s", v.replace("``", "`"))[0].rstrip(".")
            for k, v in meanings.items()}


def option_help(kind: str) -> list[tuple[str, str, str]]:
    """(name, default, meaning) of each `-o` option of a plot kind (`plot_options`); the
    meaning is the first sentence of the option's entry in an ``Args:`` section of the
    figure function's or its axes function's docstring ("" where neither has one).

    Example:
      >>> option_help("phase")[2][:2]
      ('theory', "'auto'")
    """
    fn = PLOTS[kind]
    meanings = {**_arg_meanings(getattr(fn, "__wrapped__", fn)), **_arg_meanings(fn)}
    return [(p.name, "required" if p.default is p.empty else repr(p.default),
             meanings.get(p.name, "")) for p in plot_options(kind)]


def plot_help(kind: str) -> str:
    """`toymodels plot KIND --help`'s text after its usage: what the kind draws, what it
    needs of a results directory (`plotting.needs.needs_text`) and its `-o` options."""
    options = option_help(kind)
    width = max((len(f"{n}={d}") for n, d, _ in options), default=0) + 8
    wrap = lambda text, first, rest: textwrap.fill(text, 96, initial_indent=first,
                                                   subsequent_indent=rest)
    lines = [wrap(m, f"  -o {n}={d}".ljust(width), " " * width) if m else f"  -o {n}={d}"
             for n, d, m in options] or ["  none"]
    return "\n\n".join([wrap(f"{kind}: {plot_description(kind).replace('``', '`')}", "", ""),
                        wrap(f"needs: {needs_text(kind)}", "", "  "),
                        "options (-o NAME=VALUE; the default shown):\n" + "\n".join(lines)])


def make_figure(kind: str, ds: xr.Dataset, **options) -> Figure:
    """``PLOTS[kind](ds, **options)``; an unknown kind raises ValueError."""
    return PLOTS[kind](ds, **options)


IMAGE_SUFFIXES = tuple(sorted(f".{s}" for s in FigureCanvasBase.get_supported_filetypes()))
"""The endings of the image files `save_plot` writes (matplotlib's formats: .png, .pdf,
.svg, ...)."""


def save_plot(kind: str, results_dir, out, **options) -> Path:
    """Draws `PLOTS[kind]` from a results directory and writes it to `out` (PNG, PDF, SVG).

    Bad kinds, axes, options or a bad `out` (an ending not in `IMAGE_SUFFIXES`, a folder)
    raise `UserError` (one line), never a traceback; `out` is checked before any work,
    and the folders it needs are made. A kind that does not apply to the results
    (`plotting.needs.why_not`) is one line with the reason and the kinds that apply.
    """
    if kind not in PLOTS:
        raise UserError(f"plot {kind}: {unknown(kind, PLOTS, 'plot kind')}")
    allowed = [p.name for p in plot_options(kind)]
    for name in options:
        if name not in allowed:
            raise UserError(f"plot {kind}: -o {name}: {unknown(name, allowed, 'option')}"
                            if allowed else f"plot {kind}: -o {name}: this kind takes no options")
    out = output_file(out, "--out", IMAGE_SUFFIXES, "an image")
    ds = store.load(results_dir)
    if "nonfinite_step" in ds and bool((ds.nonfinite_step >= 0).all()):
        n = ds.nonfinite_step.size
        raise UserError(f"plot {kind} of {results_dir}: every run is non-finite (nonfinite_step "
                        f"is set in all {n} runs: the training diverged): nothing to plot; "
                        "retrain with a lower train.learning_rate")
    reason = why_not(kind, ds, **options)
    if reason:
        raise UserError(f"plot {kind} of {results_dir}: {reason}; kinds that apply here: "
                        f"{', '.join(kinds_for(ds)) or 'none'}")
    try:
        fig = make_figure(kind, ds, **options)
    except (TypeError, ValueError, KeyError) as e:
        raise UserError(f"plot {kind} of {results_dir}: {e}") from None
    with written(out, "--out"):
        fig.savefig(out, dpi=110)
    return out
