"""`toymodels reproduce`: every quick sweep end to end, and the quick 2 -> 1 phase diagram.

The module trains each quick sweep once: the `phase_2_1` fixture through the command line
(`--only phase_2_1`), then `quick_all` runs the quick reproduce of every experiment but the
open-question and LLC ones (tests/test_reproduce_questions.py) into the same runs folder (phase_2_1 is found complete and only re-drawn; the others train). The whole quick
reproduce takes about 90 s on 2 cores, so its two tests are `slow` (`python -m pytest -m
slow`; CI runs them); the quick phase_2_1 (about 5 s) stays in the default suite.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import toymodels as tm
from toymodels.cli import main
from toymodels.plotting import PLOTS, best_runs
from toymodels.reproduce import EXPERIMENTS, experiment_config, reproduce, select_experiments
from toymodels.theory import boundary_2_1

from helpers import EARLIER, ON_REQUEST, config

PNG = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parent.parent


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


@pytest.fixture(scope="module")
def phase_2_1(tmp_path_factory):
    """(runs folder, plots folder) after `toymodels reproduce --quick --only phase_2_1`."""
    root = tmp_path_factory.mktemp("reproduce")
    runs, plots = root / "runs", root / "plots"
    argv = ["reproduce", "--quick", "--only", "phase_2_1", "--runs", str(runs),
            "--plots", str(plots), "--quiet"]
    assert main(argv) == 0
    return runs, plots


@pytest.fixture(scope="module")
def quick_all(phase_2_1, tmp_path_factory):
    """(runs folder, written paths) of the whole quick reproduce."""
    runs, _ = phase_2_1
    plots = tmp_path_factory.mktemp("plots")
    return runs, reproduce(EARLIER, quick=True, runs_dir=runs, plots_dir=plots, quiet=True)


@pytest.mark.slow  # moved behind slow (issue 22's test budget); CI runs it
def test_cli_quick_only_phase_2_1_writes_its_png(phase_2_1):
    runs, plots = phase_2_1
    written = sorted((plots / "quick").iterdir())
    assert [p.name for p in written] == ["phase_2_1.png"]
    assert is_png(written[0])
    assert sorted(p.name for p in (runs / "quick").iterdir()) == ["phase_2_1"]


def test_quick_phase_2_1_superposition_only_at_low_density(phase_2_1):
    runs, _ = phase_2_1
    ds = tm.load(runs / "quick" / "phase_2_1")  # best of seeds by final_loss, as the figures
    best = best_runs(ds, ["relative_importance", "feature_probability"])
    p = best.feature_probability.values
    assert p.max() == pytest.approx(1.0) and (p <= 0.03).sum() >= 2
    for wanted in (0.2, 5.0):
        cell = best.sel(relative_importance=wanted, method="nearest")
        r = float(cell.relative_importance)
        # far from the closed-form boundary p*(r): both densities tested are >2x away
        assert 2 * 0.03 < boundary_2_1(r) < 1.0 / 2
        dense = str(cell.phase.sel(feature_probability=1.0, method="nearest").values)
        assert dense == ("unrepresented" if r < 1 else "dedicated"), r
        sparse = cell.phase.where(cell.feature_probability <= 0.03, drop=True).values
        assert set(sparse.tolist()) == {"superposition"}, (r, sparse)


@pytest.mark.slow
def test_quick_reproduce_writes_every_figure(quick_all):
    _, written = quick_all
    assert [p.name for p in written] == [
        spec.file for name in EARLIER for spec in EXPERIMENTS[name].plots
    ]
    assert all(p.parent.name == "quick" and is_png(p) for p in written)


@pytest.mark.slow
def test_phase_grid_draws_one_panel_per_dropout_rate(quick_all):
    runs, _ = quick_all
    ds = tm.load(runs / "quick" / "dropout_phase")
    fig = PLOTS["phase_grid"](ds, by="dropout")
    rates = ds.dropout.values
    assert len(fig.axes) == len(rates) > 1
    assert [ax.get_title() for ax in fig.axes] == [f"dropout = {r:.3g}" for r in rates]
    assert sum(ax.get_legend() is not None for ax in fig.axes) == 1


def test_unknown_only_name_is_one_line_and_runs_nothing(tmp_path, capsys):
    argv = ["reproduce", "--quick", "--only", "phase_2_1", "--only", "nope",
            "--runs", str(tmp_path / "runs"), "--plots", str(tmp_path / "plots")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--only nope: unknown experiment; allowed: " in err and "phase_2_1" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.slow  # 8 s: an example script (issue 23's budget)
def test_example_custom_plot_runs_on_a_tiny_sweep(tmp_path):
    results = tm.run_sweep(config(), tmp_path / "tiny", quiet=True)
    out = tmp_path / "custom.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "custom_plot.py"), str(results), str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert done.returncode == 0, done.stderr
    assert is_png(out)


@pytest.mark.slow
def test_quick_double_descent_memorises_small_and_generalises_large_datasets(quick_all):
    """Henighan et al.'s two regimes in the quick sweep (T = 5, 50, 1000): the train loss
    rises with T (few examples are memorised), and only the largest T beats the zero
    model's test loss of 1 (unit-norm inputs) by more than 3%."""
    from toymodels.plotting.memorisation import best_inits

    runs, _ = quick_all
    best = best_inits(tm.load(runs / "quick" / "double_descent")).isel(data_seed=0)
    train, test = best.train_loss.values, best.final_loss.values
    assert train[0] < 0.5 * train[1] < train[2] and train[0] < 0.3
    assert test[2] < 0.97 and test[0] > 0.98 and test[1] > 0.98


# ---- SynthSAEBench-16k: one name, three sweeps, one table (a GPU job, on request)

BENCH = ("sae_synthbench_16k_penalty", "sae_synthbench_16k_mp", "sae_synthbench_16k")


def test_synthsaebench_16k_is_one_name_for_its_three_sweeps_and_only_on_request():
    """`--only synthsaebench-16k` runs the two joined sweeps, then the one whose figure is
    the table; a plain reproduce (no names) runs none of them."""
    assert select_experiments(["synthsaebench-16k"]) == list(BENCH)
    assert not set(BENCH) & set(select_experiments(None))
    assert set(ON_REQUEST) == set(BENCH)
    table = EXPERIMENTS["sae_synthbench_16k"]
    assert table.joins == BENCH[:2]
    assert [(p.file, p.kind) for p in table.plots] == [("sae_benchmark_16k.png", "benchmark_table")]


def test_synthsaebench_16k_full_sweeps_are_the_three_published_protocol_files():
    """The full configs are the three sweep files (their protocol is checked in
    tests/plotting/test_benchmark.py), JumpReLU at SynthSAEBench's θ₀ = 0.5 and bandwidth 2."""
    assert [EXPERIMENTS[n].sweep for n in BENCH] == [f"{n}.toml" for n in BENCH]
    penalty = experiment_config(BENCH[0])
    assert (penalty.table["init_threshold"], penalty.table["bandwidth"]) == (0.5, 2.0)
    assert penalty.train["steps"] == 200_000_000 // 1024


def test_synthsaebench_16k_quick_sweeps_are_small():
    """--quick: the same three sweeps on the 1k world, width 64, 20 steps, one seed."""
    for name in BENCH:
        config = experiment_config(name, quick=True)
        assert (config.spec.model.n_features, config.spec.sae.width) == (1024, 64)
        assert config.train["steps"] == 20 and dict(config.axes)["seed"] == (0,)
