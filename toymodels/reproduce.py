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
from typing import Any, Callable, NamedTuple

import xarray as xr

from toymodels import store
from toymodels.analysis.write import analyze_store
from toymodels.config import SweepConfig
from toymodels.errors import UserError
from toymodels.errors import unknown as suggest
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

class PlotSpec(NamedTuple):
    """One figure of an experiment.

    Attributes:
      file: image file name inside the plots directory, e.g. "intro_features.png".
      kind: a ``toymodels.plotting.PLOTS`` kind.
      options: keyword options of that kind.
      select: sweep coordinates to fix first (nearest value), e.g. {"dropout": 0.3}.
    """

    file: str
    kind: str
    options: dict[str, Any] = {}
    select: dict[str, float] = {}


class Experiment(NamedTuple):
    """A sweep of ``sweeps/`` and the figures drawn from it.

    Attributes:
      sweep: file name in ``sweeps/``.
      quick: ``--set``-style overrides (``key=value``, TOML values) for ``quick=True``.
      plots: the figures.
      source: for an SAE sweep, the experiment whose results are its `sae.source` (its
        directory under the same runs root; trained first if it is not there).
      llc: settings of a `toymodels llc` pass run on the sweep before its figures
        (`toymodels.llc.LLCSpec` and `LLCSettings` fields by name); None: no LLC.
    """

    sweep: str
    quick: tuple[str, ...]
    plots: tuple[PlotSpec, ...]
    source: str | None = None
    llc: dict | None = None


_DENSE_TO_SPARSE = "sweep.sparsity=[0.0, 0.9, 0.99, 0.999]"
_PHASE_GRID = (
    "sweep.relative_importance={ geomspace = [0.1, 10.0, 7] }",
    "sweep.feature_probability={ geomspace = [0.01, 1.0, 7] }",
)

_PHASE_LLC = {  # docs/llc.md: nbeta = 1000 is n / ln n at n = 9,100
    "loss": "online", "batch_size": 1024, "nbeta": 1000.0, "gamma": 100.0, "epsilon": "auto",
    "draws": 1000, "burn_in": 1000,
}
_KGON_LLC = {  # docs/llc.md: gamma = 1, as nbeta = n / ln n = 145 is small
    "loss": "dataset", "gamma": 1.0, "epsilon": "auto", "draws": 500, "burn_in": 200,
    "snapshots": True,
}
_SAE_QUICK = ("train.steps=200", "sweep.width=[5, 40]", "sweep.seed=[0]")

EXPERIMENTS: dict[str, Experiment] = {
    "intro": Experiment(
        "intro.toml",
        ("train.steps=3000", "sweep.seed=[0, 1]"),
        (
            PlotSpec("intro_features.png", "features", {"axis": "sparsity"}),
            PlotSpec("intro_geometry.png", "geometry", {"axis": "sparsity"}),
        ),
    ),
    "basic_relu": Experiment(
        "basic_relu.toml",
        ("train.steps=2000", _DENSE_TO_SPARSE, "sweep.seed=[0]"),
        (PlotSpec("basic_relu.png", "features", {"axis": "sparsity", "max_columns": 4}),),
    ),
    "basic_linear": Experiment(
        "basic_linear.toml",
        ("train.steps=2000", _DENSE_TO_SPARSE, "sweep.seed=[0]"),
        (
            PlotSpec(
                "basic_linear.png", "features", {"axis": "sparsity", "max_columns": 4}
            ),
        ),
    ),
    "phase_2_1": Experiment(
        "phase_2_1.toml",
        ("train.steps=3000", *_PHASE_GRID, "sweep.seed=[0, 1, 2, 3]"),
        (PlotSpec("phase_2_1.png", "phase", {"theory": "2_1"}),),
    ),
    "phase_3_2": Experiment(
        "phase_3_2.toml",
        ("train.steps=3000", *_PHASE_GRID, "sweep.seed=[0, 1, 2, 3]"),
        (PlotSpec("phase_3_2.png", "phase", {"theory": "3_2"}),),
    ),
    "uniform_geometry": Experiment(
        "uniform_geometry.toml",
        ("train.steps=2000", "sweep.feature_probability={ geomspace = [1.0, 0.05, 6] }"),
        (PlotSpec("uniform_geometry.png", "dimensionality"),),
    ),
    "pentagon": Experiment(
        "pentagon.toml",
        ("train.steps=3000", "sweep.feature_probability=[0.2, 0.05, 0.02]",
         "sweep.seed=[0, 1]"),
        (PlotSpec("pentagon.png", "geometry", {"axis": "feature_probability", "max_columns": 6}),),
    ),
    "pentagon_perturbation": Experiment(
        "pentagon_perturbation.toml",
        ("train.steps=3000", "sweep.density_ratio=[1.0, 0.25]", "sweep.seed=[0, 1, 2, 3]"),
        (PlotSpec("pentagon_perturbation.png", "geometry",
                  {"axis": "density_ratio", "max_columns": 6}),),
    ),
    "dropout": Experiment(
        "dropout.toml",
        (
            "train.steps=2000",
            "sweep.feature_probability=[1.0, 0.1, 0.01]",
            "sweep.dropout=[0.0, 0.25, 0.5]",
            "sweep.seed=[0]",
        ),
        (
            PlotSpec(
                "dropout_represented.png",
                "heatmap",
                {"var": "n_represented", "x": "dropout", "reduce": "best"},
            ),
            PlotSpec(
                "dropout_features.png",
                "features",
                {"axis": "dropout", "max_columns": 3},
                {"feature_probability": 0.1},
            ),
            PlotSpec("dropout_law.png", "dropout_law"),
        ),
    ),
    "dropout_phase": Experiment(
        "dropout_phase.toml",
        (
            "train.steps=2000",
            "sweep.dropout=[0.0, 0.5]",
            "sweep.relative_importance={ geomspace = [0.1, 10.0, 5] }",
            "sweep.feature_probability={ geomspace = [0.01, 1.0, 5] }",
            "sweep.seed=[0, 1]",
        ),
        (PlotSpec("dropout_phase.png", "dropout_phase"),),
    ),
    "incidental": Experiment(
        "incidental.toml",
        ("model.n_features=8", "model.n_hidden=8", "train.l1_weights=1.25e-4",
         "sweep.n_hidden=[8, 64]", "sweep.seed=[0, 1, 2, 3]"),
        (PlotSpec("incidental.png", "incidental"),),
    ),
    "correlated": Experiment(
        "correlated.toml",
        ("train.steps=3000", "sweep.feature_probability=[0.05]", "sweep.seed=[0, 1, 2, 3]"),
        (PlotSpec("correlated.png", "geometry", {"axis": "feature_probability"}),),
    ),
    "anticorrelated": Experiment(
        "anticorrelated.toml",
        ("train.steps=3000", "sweep.feature_probability=[0.05]", "sweep.seed=[0, 1, 2, 3]"),
        (PlotSpec("anticorrelated.png", "geometry", {"axis": "feature_probability"}),),
    ),
    "correlated_collapse": Experiment(
        "correlated_collapse.toml",
        ("train.steps=3000", "sweep.feature_probability=[0.02, 0.3]", "sweep.seed=[0, 1]"),
        (PlotSpec("correlated_collapse.png", "geometry", {"axis": "feature_probability"}),),
    ),
    "privileged_basis": Experiment(
        "privileged_basis.toml",
        ("train.steps=3000", "sweep.feature_probability=[0.7, 0.03]", "sweep.seed=[0, 1]"),
        (PlotSpec("privileged_basis.png", "neurons",
                  {"axis": "feature_probability", "max_columns": 6}),),
    ),
    "computation": Experiment(
        "computation.toml",
        ("train.steps=3000", "sweep.seed=[0]"),
        (PlotSpec("computation.png", "computation"),),
    ),
    "computation_wide": Experiment(
        "computation_wide.toml",
        ("train.steps=1000", "sweep.feature_probability=[1.0, 0.01]"),
        (PlotSpec("computation_wide.png", "neurons",
                  {"axis": "feature_probability", "max_columns": 4}),),
    ),
    "dynamics": Experiment(
        "dynamics.toml",
        ("train.steps=3000", "sweep.seed=[0]"),
        (PlotSpec("dynamics.png", "dynamics"),),
    ),
    "double_descent": Experiment(
        "double_descent.toml",
        ("train.steps=1500", "train.warmup_steps=75", "sweep.dataset_size=[5, 50, 1000]",
         "sweep.data_seed=[0]", "sweep.seed=[0, 1]"),
        (
            PlotSpec("double_descent.png", "double_descent"),
            PlotSpec("double_descent_geometry.png", "memorisation_geometry",
                     {"sizes": [3, 5, 8, 12, 200, 2000]}),
            PlotSpec("double_descent_dimensionality.png", "memorisation_dimensionality"),
        ),
    ),
    "double_descent_grid": Experiment(
        "double_descent_grid.toml",
        ("train.steps=500", "train.warmup_steps=25", "train.eval_samples=16384",
         "sweep.dataset_size=[5, 1000]", "sweep.n_hidden=[2, 4]", "sweep.data_seed=[0]",
         "sweep.seed=[0]"),
        (PlotSpec("double_descent_grid.png", "loss_grid"),),
    ),
    "double_descent_wd": Experiment(
        "double_descent_wd.toml",
        ("train.steps=500", "train.warmup_steps=25", "train.eval_samples=16384",
         "sweep.dataset_size=[5, 1000]", "sweep.data_seed=[0]", "sweep.seed=[0]"),
        (PlotSpec("double_descent_wd.png", "double_descent", {"by": "weight_decay"}),),
    ),
    "sae_sources": Experiment("sae_sources.toml", ("train.steps=3000",), ()),
    "sae_width": Experiment(
        "sae_width.toml", _SAE_QUICK,
        (PlotSpec("sae_width.png", "sae_width"),
         PlotSpec("sae_cosines.png", "sae_cosines", {"by": "width"}, {"l1_coefficient": 0.3})),
        source="sae_sources",
    ),
    "sae_width_topk": Experiment(
        "sae_width_topk.toml", _SAE_QUICK, (PlotSpec("sae_width_topk.png", "sae_width"),),
        source="sae_sources",
    ),
    "sae_width_synthetic": Experiment(
        "sae_width_synthetic.toml", _SAE_QUICK,
        (PlotSpec("sae_width_synthetic.png", "sae_width"),),
    ),
    "sae_kinds": Experiment(
        "sae_kinds.toml", ("train.steps=200", "sweep.seed=[0]"),
        (PlotSpec("sae_pareto.png", "sae_pareto"),), source="sae_sources",
    ),
    "sae_kinds_k": Experiment(
        "sae_kinds_k.toml", ("train.steps=200", "sweep.k=[1, 2]", "sweep.seed=[0]"),
        (PlotSpec("sae_pareto_k.png", "sae_pareto"),), source="sae_sources",
    ),
    "sae_gap": Experiment(
        "sae_gap.toml", ("train.steps=200", "sweep.seed=[0]"),
        (PlotSpec("sae_gap.png", "sae_gap"),), source="sae_sources",
    ),
    "sae_amortisation": Experiment(  # issue 26: encoders on the true dictionary
        "sae_amortisation.toml", ("train.steps=200", "sweep.seed=[0]"),
        (PlotSpec("sae_amortisation.png", "amortisation"),),
    ),
    "sae_absorption": Experiment(  # issue 26: absorption on a hierarchy
        "sae_absorption.toml", ("train.steps=200", "sweep.seed=[0]"),
        (PlotSpec("sae_absorption.png", "absorption"),),
    ),
    "sae_sparse_but_wrong": Experiment(  # issue 26: the right L0 (Chanin & Garriga-Alonso 2025)
        "sae_sparse_but_wrong.toml", ("train.steps=200", "sweep.k=[3, 5, 7]", "sweep.seed=[0]"),
        (PlotSpec("sae_sparse_but_wrong.png", "sparse_but_wrong"),),
    ),
    "llc_phase_2_1": Experiment(  # the phase_2_1 sweep again, then its LLC
        "phase_2_1.toml", ("train.steps=3000", *_PHASE_GRID, "sweep.seed=[0, 1]"),
        (PlotSpec("llc_phase_2_1.png", "llc_phase", {"theory": "2_1"}),), llc=_PHASE_LLC,
    ),
    "llc_phase_3_2": Experiment(
        "phase_3_2.toml", ("train.steps=3000", *_PHASE_GRID, "sweep.seed=[0, 1]"),
        (PlotSpec("llc_phase_3_2.png", "llc_phase", {"theory": "3_2"}),), llc=_PHASE_LLC,
    ),
    "kgon_trajectories": Experiment(  # SGD between k-gons, with the LLC at every snapshot
        "kgon_trajectories.toml",
        ("train.steps=4500", "sweep.init_noise=[0.2]", "sweep.data_seed=[0]",
         "sweep.seed=[0, 1]"),
        (PlotSpec("kgon_trajectories.png", "kgon_trajectories"),), llc=_KGON_LLC,
    ),
    "norms_5_2": Experiment(  # issue 14, part 1: a norm on h before the readout
        "norms_5_2.toml",
        ("train.steps=1500", "sweep.feature_probability=[1.0, 0.1, 0.03]",
         "sweep.importance_decay=[1.0]", "sweep.seed=[0]"),
        (PlotSpec("norms_5_2.png", "norms"),),
    ),
    "norms_20_5": Experiment(
        "norms_20_5.toml",
        ("train.steps=1000", "sweep.sparsity=[0.0, 0.99]", "sweep.importance_decay=[0.7]",
         "sweep.seed=[0]"),
        (PlotSpec("norms_20_5.png", "norms"),),
    ),
    "optimizers_basic": Experiment(  # issue 14, part 2: is the geometry Adam's doing?
        "optimizers_basic.toml",
        ("train.steps=1000", "sweep.learning_rate=[1e-2, 1e-1]", "sweep.sparsity=[0.0, 0.99]",
         "sweep.seed=[0]"),
        (PlotSpec("optimizers_basis.png", "optimizer_phase", {"panel": "basis"}),),
    ),
    "optimizers_phase_2_1": Experiment(
        "optimizers_phase_2_1.toml",
        ("train.steps=1000", "sweep.learning_rate=[3e-2, 1.0]",
         "sweep.relative_importance={ geomspace = [0.1, 10.0, 3] }",
         "sweep.feature_probability={ geomspace = [0.01, 1.0, 3] }", "sweep.seed=[0]"),
        (PlotSpec("optimizers_phase_2_1.png", "optimizer_phase", {"panel": "phase"}),),
    ),
    "compressed_computation_control": Experiment(  # issue 27: Bhagat et al. 2025's control
        "compressed_computation_control.toml",
        ("residual.n_features=20", "residual.d_embed=64", "residual.d_mlp=10",
         "data.feature_probability=0.05", "train.steps=300", "train.batch_size=256",
         "train.eval_samples=8192", "sweep.label_mixing=[0.0, 0.5, 1.0]", "sweep.seed=[0]"),
        (PlotSpec("compressed_computation_control.png", "computation_control"),),
    ),
}
"""Name -> experiment, in the order ``reproduce`` runs them."""

FAMILIES: dict[str, tuple[str, ...]] = {
    "double_descent": ("double_descent", "double_descent_grid", "double_descent_wd"),
    "sae": ("sae_sources", "sae_width", "sae_width_topk", "sae_width_synthetic", "sae_kinds",
            "sae_kinds_k", "sae_gap", "sae_amortisation",
            "sae_absorption", "sae_sparse_but_wrong"),
    "slt": ("llc_phase_2_1", "llc_phase_3_2", "kgon_trajectories"),
    "norms": ("norms_5_2", "norms_20_5"),
    "optimizers": ("optimizers_basic", "optimizers_phase_2_1"),
}
"""A name that selects several experiments (``--only double_descent`` runs the curve, the
T x m grid and the weight-decay comparison)."""


def select_experiments(names=None) -> list[str]:
    """The experiment names to run, in registry order.

    Args:
      names: names from ``EXPERIMENTS`` or ``FAMILIES``, or None / empty for all of them.

    Returns:
      The names, without repeats, in the order of ``EXPERIMENTS``.

    Raises:
      UserError: a name is not in ``EXPERIMENTS`` (one line listing the valid names).
    """
    if not names:
        return list(EXPERIMENTS)
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
    """Fixes sweep coordinates at their nearest values (no-op for an empty dict).

    Args:
      ds: results dataset.
      select: axis name -> wanted value; axes the dataset lacks are ignored.

    Returns:
      The dataset without those axes (kept as scalar coordinates).
    """
    present = {k: v for k, v in select.items() if k in ds.dims}
    return ds.sel(present, method="nearest") if present else ds


def selection_note(ds: xr.Dataset, select: dict[str, float]) -> str:
    """Says which coordinates ``select_cells`` fixed, e.g. "1−S = 0.1".

    Args:
      ds: results dataset (before selection).
      select: axis name -> wanted value.

    Returns:
      Comma-separated "symbol = value" of the nearest values actually used.
    """
    chosen = select_cells(ds, select)
    return ", ".join(
        _run_name(name, chosen[name].item()) for name in select if name in ds.dims
    )


def draw(ds: xr.Dataset, plots: tuple[PlotSpec, ...], plots_root: Path) -> list[Path]:
    """Draws and saves each figure of an experiment.

    Seeds are chosen by the lowest stored ``final_loss``.

    Args:
      ds: the analysed results dataset.
      plots: the experiment's figures.
      plots_root: folder for the image files (created if missing).

    Returns:
      The written image paths, in the order of ``plots``.
    """
    plots_root.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in plots:
        fig = make_figure(spec.kind, select_cells(ds, spec.select), **spec.options)
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
    config = experiment_config(name, quick, sweeps_dir, runs_root)
    say(f"reproduce: {name}: {config.n_runs} runs of {config.train['steps']:,} steps"
        f"{' (quick)' if quick else ''}")
    start = time.perf_counter()
    out = run_sweep(config, runs_root / name, quiet=quiet)
    if EXPERIMENTS[name].llc is not None:
        _llc_pass(out, EXPERIMENTS[name].llc, quiet)
    with contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext():
        analysed = analyze_store(out)  # quiet: its progress bars (stderr) unseen
    written = draw(analysed, EXPERIMENTS[name].plots, plots_root)
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
      names: experiment names (keys of ``EXPERIMENTS``); None for all.
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
