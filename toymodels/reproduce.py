"""Reproducing the paper's figures: sweep files in ``sweeps/`` -> results -> ``plots/*.png``.

Where this sits in the data flow: for each experiment of ``EXPERIMENTS`` it loads a
sweep file (``toymodels.load_config``), trains it (``toymodels.run_sweep``, resumable: a
finished sweep is not retrained), adds the analysis variables
(``toymodels.analyze_store``) and draws the experiment's figures with
``toymodels.plotting.make_figure``. The figures' best-of-seeds picks use the stored
``final_loss`` (exact for zero and one active features, see ``toymodels.evaluation``),
the same criterion as the zoo and a user's ``ds.final_loss.argmin("seed")``.

``quick=True`` runs a reduced version of every sweep (fewer steps, grid points and
seeds, through config overrides kept here, not in separate files) into a ``quick``
subfolder of the runs and plots directories, so it never collides with the full results
or overwrites the committed figures. The command line is ``toymodels reproduce``.

Example:
  >>> sorted(EXPERIMENTS)[:3]
  ['anticorrelated', 'basic_linear', 'basic_relu']
  >>> [p.file for p in EXPERIMENTS["phase_2_1"].plots]
  ['phase_2_1.png']
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path
from typing import Callable

import xarray as xr

from toymodels import store
from toymodels.analysis.write import analyze_store
from toymodels.config import SweepConfig
from toymodels.errors import UserError
from toymodels.errors import unknown as suggest
from toymodels.experiments import EXPERIMENTS, FAMILIES, PlotSpec
from toymodels.outputs import output_dir
from toymodels.plotting import _run_name, make_figure
from toymodels.sweep import run_sweep
from toymodels.trainers import load_config, parse_config
from toymodels.trainers.llc import LLCSettings, LLCSpec, llc_table

SWEEPS_DIR = Path(__file__).resolve().parent.parent / "sweeps"
"""The repository's sweep files (``reproduce`` needs a clone, not just the package)."""

QUICK = "quick"
"""Subfolder of the runs and plots directories that ``quick=True`` writes into."""

DPI = 90
"""Resolution of the saved figures (keeps each PNG around 100 kB or less)."""


def select_experiments(names=None) -> list[str]:
    """The experiment names to run, in registry order.

    Args:
      names: names from ``EXPERIMENTS`` or ``FAMILIES``, or None / empty for all of them
        but the ``on_request`` ones.

    Returns:
      The names, without repeats, in the order of ``EXPERIMENTS``.

    Raises:
      UserError: a name is not in ``EXPERIMENTS`` (one line listing the valid names).
    """
    if not names:
        return [n for n, e in EXPERIMENTS.items() if not e.on_request]
    names = [m for n in names for m in FAMILIES.get(n, (n,))]
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise UserError(
            f"reproduce: --only {unknown[0]}: {suggest(unknown[0], EXPERIMENTS, 'experiment')}"
        )
    return [n for n in EXPERIMENTS if n in set(names)]


def experiment_config(
    name: str, quick: bool = False, sweeps_dir: str | Path = SWEEPS_DIR,
    runs_root: str | Path | None = None,
) -> SweepConfig:
    """The validated sweep of one experiment, with its quick overrides if asked.

    Args:
      name: a key of ``EXPERIMENTS``.
      quick: apply the experiment's ``quick`` overrides.
      sweeps_dir: folder of the sweep files.
      runs_root: for an SAE experiment with a ``source``, the runs root that holds the
        source's results (its ``sae.source`` is set to ``runs_root / source``).

    Returns:
      The ``SweepConfig``.

    Raises:
      UserError: the sweep file is missing or invalid.
    """
    experiment = EXPERIMENTS[name]
    path = Path(sweeps_dir) / experiment.sweep
    if not path.exists():
        raise UserError(
            f"reproduce: {path} not found; run it from a clone of the repository "
            "(the sweep files live in its sweeps/ folder)"
        )
    overrides = experiment.quick if quick else ()
    if experiment.source and runs_root is not None:
        overrides = (*overrides, f'sae.source="{Path(runs_root) / experiment.source}"')
    return load_config(path, overrides)


def output_dirs(runs_dir, plots_dir, quick: bool) -> tuple[Path, Path]:
    """(runs root, plots root): the given folders, or their ``quick`` subfolders.

    Example:
      >>> [str(p) for p in output_dirs("runs/reproduce", "plots", quick=True)]
      ['runs/reproduce/quick', 'plots/quick']
    """
    runs, plots = Path(runs_dir), Path(plots_dir)
    return (runs / QUICK, plots / QUICK) if quick else (runs, plots)


def select_cells(ds: xr.Dataset, select: dict[str, float]) -> xr.Dataset:
    """`ds` with sweep coordinates fixed at their nearest values (`select`: axis name ->
    wanted value; axes `ds` lacks are ignored), those axes kept as scalar coordinates."""
    present = {k: v for k, v in select.items() if k in ds.dims}
    return ds.sel(present, method="nearest") if present else ds


def selection_note(ds: xr.Dataset, select: dict[str, float]) -> str:
    """Which coordinates ``select_cells`` fixed in `ds` (before selection): comma-separated
    "symbol = value" of the nearest values actually used, e.g. "1−S = 0.1"."""
    chosen = select_cells(ds, select)
    return ", ".join(_run_name(name, chosen[name].item()) for name in select if name in ds.dims)


def draw(ds: xr.Dataset, plots: tuple[PlotSpec, ...], plots_root: Path,
         also: tuple[Path, ...] = ()) -> list[Path]:
    """Draws and saves each figure of an experiment.

    Seeds are chosen by the lowest stored ``final_loss``.

    Args:
      ds: the analysed results dataset.
      plots: the experiment's figures.
      plots_root: folder for the image files (created if missing).
      also: other analysed results directories, each figure's `also` option (`joins`).

    Returns:
      The written image paths, in the order of ``plots``.
    """
    plots_root.mkdir(parents=True, exist_ok=True)
    written = []
    joined = {"also": [str(p) for p in also]} if also else {}
    for spec in plots:
        fig = make_figure(spec.kind, select_cells(ds, spec.select), **spec.options, **joined)
        if spec.select and fig.get_suptitle():
            fig.suptitle(f"{fig.get_suptitle()}, {selection_note(ds, spec.select)}",
                         fontsize=10)
        path = plots_root / spec.file
        fig.savefig(path, dpi=DPI)
        written.append(path)
    return written


def _llc_pass(out: Path, options: dict, quiet: bool) -> None:
    """The LLC pass over `out` with `options` (an `[llc]` table's keys), unless its
    results hold that pass already."""
    static = set(LLCSpec.__dataclass_fields__)
    settings = LLCSettings(LLCSpec(**{k: v for k, v in options.items() if k in static},
                                   auto_step=options.get("epsilon") == "auto"),
                           **{k: v for k, v in options.items() if k not in static})
    have = store.load(out)
    done = "llc_settings_ratio" in have and all(  # (a pass before the bias diagnostic: redone)
        _same_setting(have["llc"].attrs.get(k), v) for k, v in settings.as_dict().items() if v is not None)
    if not done:
        run_sweep(parse_config(llc_table(out, settings), f"reproduce [llc] of {out}"), quiet=quiet)


def _same_setting(stored, wanted) -> bool:
    if isinstance(wanted, (bool, int, float)) and not isinstance(stored, str) and stored is not None:
        return float(stored) == float(wanted)
    return stored == wanted


def run_experiment(
    name: str,
    quick: bool,
    runs_root: Path,
    plots_root: Path,
    sweeps_dir: str | Path = SWEEPS_DIR,
    quiet: bool = False,
) -> list[Path]:
    """Trains (or resumes) one experiment's sweep, analyses it and draws its figures.

    Args:
      name: a key of ``EXPERIMENTS``.
      quick: use the reduced sweep.
      runs_root: the sweep's results go to ``runs_root / name``.
      plots_root: folder for the figures.
      sweeps_dir: folder of the sweep files.
      quiet: no progress bars or messages.

    Returns:
      The written image paths.
    """
    say = _say(quiet)
    source = EXPERIMENTS[name].source
    if source and not (runs_root / source / "results.nc").exists():
        say(f"reproduce: {name} reads {source}: training it first")
        run_sweep(experiment_config(source, quick, sweeps_dir), runs_root / source, quiet=quiet)
    for join in EXPERIMENTS[name].joins:
        if not (runs_root / join / "results.nc").exists():
            say(f"reproduce: {name} joins {join}: running it first")
            run_experiment(join, quick, runs_root, plots_root, sweeps_dir, quiet)
    config = experiment_config(name, quick, sweeps_dir, runs_root)
    say(f"reproduce: {name}: {config.n_runs} runs of {config.train['steps']:,} steps"
        f"{' (quick)' if quick else ''}")
    start = time.perf_counter()
    out = run_sweep(config, runs_root / name, quiet=quiet)
    if EXPERIMENTS[name].llc is not None:
        _llc_pass(out, {**EXPERIMENTS[name].llc, **(EXPERIMENTS[name].llc_quick if quick else {})},
                  quiet)
    with contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext():
        analysed = analyze_store(out)  # quiet: its progress bars (stderr) unseen
    joined = tuple(runs_root / join for join in EXPERIMENTS[name].joins)
    written = draw(analysed, EXPERIMENTS[name].plots, plots_root, joined)
    for path in written:
        say(f"wrote {path}")
    say(f"reproduce: {name}: {time.perf_counter() - start:.0f} s")
    return written


def reproduce(
    names=None,
    quick: bool = False,
    runs_dir: str | Path = "runs/reproduce",
    plots_dir: str | Path = "runs/reproduce/plots",
    *,
    quiet: bool = False,
    sweeps_dir: str | Path = SWEEPS_DIR,
) -> list[Path]:
    """Runs the paper's sweeps and writes their figures.

    Each sweep is resumable: an interrupted call keeps every finished chunk and a finished
    sweep is only re-analysed and re-drawn.

    Args:
      names: experiment names (keys of ``EXPERIMENTS`` or ``FAMILIES``); None for all but
        the ``on_request`` ones (SynthSAEBench-16k's: ``["synthsaebench-16k"]``).
      quick: the reduced sweeps (a few minutes in all on 2 CPU cores), written into the
        ``quick`` subfolders of ``runs_dir`` and ``plots_dir``.
      runs_dir: results go to ``runs_dir/NAME`` (``runs_dir/quick/NAME`` when quick).
      plots_dir: figures go here (``plots_dir/quick`` when quick).
      quiet: no progress bars or messages.
      sweeps_dir: folder of the sweep files (default the repository's ``sweeps/``).

    Returns:
      The written image paths.

    Raises:
      UserError: an unknown name or a folder that cannot be written (before anything
        runs), or a missing or invalid sweep file.
    """
    chosen = select_experiments(names)
    runs_root, plots_root = output_dirs(runs_dir, plots_dir, quick)
    for flag, given, root in (("--runs", runs_dir, runs_root), ("--plots", plots_dir, plots_root)):
        output_dir(given, flag)
        output_dir(root, flag)
    written: list[Path] = []
    for name in chosen:
        written += run_experiment(name, quick, runs_root, plots_root, sweeps_dir, quiet)
    return written


def _say(quiet: bool) -> Callable[[str], None]:
    """A message printer to stderr, or a no-op when quiet."""
    if quiet:
        return lambda message: None
    return lambda message: print(message, file=sys.stderr, flush=True)
