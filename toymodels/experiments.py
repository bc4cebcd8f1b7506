"""The experiments of ``toymodels reproduce``, as data: each a sweep file of ``sweeps/``, its
quick overrides and its figures (``EXPERIMENTS``), and the names that select several
(``FAMILIES``). ``toymodels.reproduce`` runs them; this module imports nothing heavy.

Example:
  >>> sorted(EXPERIMENTS)[:3]
  ['anticorrelated', 'basic_linear', 'basic_relu']
  >>> [p.file for p in EXPERIMENTS["phase_2_1"].plots]
  ['phase_2_1.png']
"""

from __future__ import annotations

from typing import Any, NamedTuple


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
      llc_quick: the settings of `llc` that ``quick=True`` replaces (shorter chains).
      joins: experiments whose results join this one's figures (their directories, each
        figure's `also` option: `benchmark_table`'s), run first if they have none.
      on_request: run only when named (``--only``), not by a plain ``reproduce``: a GPU job.
    """

    sweep: str
    quick: tuple[str, ...]
    plots: tuple[PlotSpec, ...]
    source: str | None = None
    llc: dict | None = None
    llc_quick: dict = {}
    joins: tuple[str, ...] = ()
    on_request: bool = False


_DENSE_TO_SPARSE = "sweep.sparsity=[0.0, 0.9, 0.99, 0.999]"
_PHASE_GRID = (
    "sweep.relative_importance={ geomspace = [0.1, 10.0, 7] }",
    "sweep.feature_probability={ geomspace = [0.01, 1.0, 7] }",
)

_PHASE_LLC = {  # docs/llc.md: nbeta = 1000 is n / ln n at n = 9,100
    "loss": "online", "batch_size": 1024, "nbeta": 1000.0, "gamma": 100.0, "epsilon": "auto",
    "draws": 1000, "burn_in": 1000,
}
_QUICK_LLC = {"draws": 300, "burn_in": 300}  # quick: 30% of the chains, for the figures only
_KGON_LLC = {  # docs/llc.md: gamma = 1, as nbeta = n / ln n = 145 is small
    "loss": "dataset", "gamma": 1.0, "epsilon": "auto", "draws": 500, "burn_in": 200,
    "snapshots": True,
}
_SAE_QUICK = ("train.steps=200", "sweep.width=[5, 40]", "sweep.seed=[0]")
# SynthSAEBench-16k's quick version: its three sweeps on the 1k world, width 64, 20 steps
_BENCH_QUICK = ('synthetic.preset="synthsaebench-1k"', "sae.width=64", "train.steps=20",
                "train.batch_size=128", "train.learning_rate=3e-3", "train.log_every=10",
                "sweep.seed=[0]")

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
        "sae_absorption.toml", ("train.steps=200", 'sweep.kind=["batchtopk"]', "sweep.seed=[0]"),
        (PlotSpec("sae_absorption.png", "absorption"),),
    ),
    "sae_sparse_but_wrong": Experiment(  # issue 26: the right L0 (Chanin & Garriga-Alonso 2025)
        "sae_sparse_but_wrong.toml", ("train.steps=200", "sweep.k=[3, 5, 7]", "sweep.seed=[0]"),
        (PlotSpec("sae_sparse_but_wrong.png", "sparse_but_wrong"),),
    ),
    # SynthSAEBench-16k (docs/saes.md), a GPU job run only when named: three sweeps, one table
    "sae_synthbench_16k_penalty": Experiment(
        "sae_synthbench_16k_penalty.toml", (*_BENCH_QUICK, "sweep.l1_coefficient=[2.0, 5.0]"),
        (), on_request=True),
    "sae_synthbench_16k_mp": Experiment(
        "sae_synthbench_16k_mp.toml", (*_BENCH_QUICK, "sweep.k=[5, 6]"), (), on_request=True),
    "sae_synthbench_16k": Experiment(
        "sae_synthbench_16k.toml", (*_BENCH_QUICK, "sweep.k=[5, 6]"),
        (PlotSpec("sae_benchmark_16k.png", "benchmark_table"),),
        joins=("sae_synthbench_16k_penalty", "sae_synthbench_16k_mp"), on_request=True,
    ),
    "uand_scaling": Experiment(  # issue 27: trained universal AND against the construction
        "uand_scaling.toml",
        ("train.steps=100", "train.batch_size=256", "train.eval_samples=8192",
         "sweep.d_mlp=[8, 32]", "sweep.seed=[0, 1]"),
        (PlotSpec("uand_scaling.png", "uand_scaling"),),
    ),
    "compressed_computation_control": Experiment(  # issue 27: Bhagat et al. 2025's control
        "compressed_computation_control.toml",
        ("residual.n_features=20", "residual.d_embed=64", "residual.d_mlp=10",
         "data.feature_probability=0.05", "train.steps=300", "train.batch_size=256",
         "train.eval_samples=8192", "sweep.label_mixing=[0.0, 0.5, 1.0]", "sweep.seed=[0]"),
        (PlotSpec("compressed_computation_control.png", "computation_control"),),
    ),
    "computation_map": Experiment(  # issue 27: where clean labels beat the naive baseline
        "computation_map.toml",
        ("residual.n_features=12", "train.steps=200", "train.batch_size=256",
         "train.eval_samples=8192", "sweep.d_mlp=[3]", "sweep.d_embed=[24]",
         "sweep.feature_probability=[0.03, 0.3]", "sweep.learning_rate=[0.01]",
         "sweep.seed=[0]"),
        (PlotSpec("computation_map.png", "computation_map"),),
    ),
    "computation_map_depth": Experiment(  # issue 27: the same neurons over 1-3 layers
        "computation_map_depth.toml",
        ("residual.n_features=12", "residual.d_embed=24", "train.steps=200",
         "train.batch_size=256", "train.eval_samples=8192", 'sweep.task=["relu"]',
         "sweep.n_layers=[1, 3]", "sweep.d_mlp=[3]", "sweep.feature_probability=[0.03, 0.3]",
         "sweep.learning_rate=[0.01]", "sweep.seed=[0]"),
        (PlotSpec("computation_map_depth.png", "computation_map"),),
    ),
    "llc_phase_2_1": Experiment(  # the phase_2_1 sweep again, then its LLC
        "phase_2_1.toml", ("train.steps=3000", *_PHASE_GRID, "sweep.seed=[0]"),
        (PlotSpec("llc_phase_2_1.png", "llc_phase", {"theory": "2_1"}),), llc=_PHASE_LLC,
        llc_quick=_QUICK_LLC,
    ),
    "llc_phase_3_2": Experiment(
        "phase_3_2.toml", ("train.steps=3000", *_PHASE_GRID, "sweep.seed=[0]"),
        (PlotSpec("llc_phase_3_2.png", "llc_phase", {"theory": "3_2"}),), llc=_PHASE_LLC,
        llc_quick=_QUICK_LLC,
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
    "synthsaebench-16k": ("sae_synthbench_16k_penalty", "sae_synthbench_16k_mp",
                          "sae_synthbench_16k"),
}
"""A name that selects several experiments (``--only double_descent`` runs the curve, the
T x m grid and the weight-decay comparison; ``--only synthsaebench-16k`` SynthSAEBench-16k's
three sweeps and its table)."""
