"""The command line end to end: sweep -> analyze -> plot, and its one-line errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import toymodels as tm
from toymodels.cli import main
from toymodels.plotting import PLOTS
from toymodels.plotting.needs import NEEDS

from helpers import raw, toml_of


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    r = raw(train={"steps": 40, "batch_size": 64, "log_every": 20, "snapshot_every": 20})
    r["sweep"] = {"sparsity": [0.0, 0.9], "relative_importance": [0.5, 2.0], "seed": [0, 1]}
    del r["data"]["importance_decay"]
    return tm.run_sweep(tm.parse_config(r), tmp_path_factory.mktemp("cli") / "run", quiet=True)


def test_analyze_writes_the_variables_into_the_store(results, capsys):
    assert main(["analyze", str(results)]) == 0
    assert "added feature_norm" in capsys.readouterr().out
    ds = tm.load(results)
    for name in ("feature_norm", "superposition", "feature_dimensionality", "dims_per_feature",
                 "n_represented", "polytope", "polytope_counts", "phase"):
        assert name in ds, name
    assert ds.phase.dims == ("sparsity", "relative_importance", "seed")
    assert set(ds.phase.values.ravel()) <= {"unrepresented", "dedicated", "superposition"}


ABS_ONLY = {"computation"}  # needs an abs_computation sweep: tests/plotting/test_mechanisms.py
FINITE_ONLY = {"double_descent", "memorisation_dimensionality", "memorisation_geometry",
               "loss_grid"}  # need a dataset_size axis: tests/test_double_descent.py
SAE_ONLY = {"sae_width", "sae_pareto", "sae_gap", "sae_cosines",
            "amortisation"}  # need an SAE sweep: below
HEDGING_ONLY = {"hedging"}  # one-latent SAEs on 2 features: tests/plotting/test_hedging.py
BENCHMARK_ONLY = {"benchmark_table"}  # an SAE sweep of kind x L0: tests/plotting/test_benchmark.py
HIERARCHY_ONLY = {"absorption"}  # SAEs on a hierarchy: tests/plotting/test_absorption.py
K_AXIS_ONLY = {"sparse_but_wrong"}  # SAEs over k: tests/plotting/test_sparse_but_wrong.py
LLC_ONLY = {"llc_phase", "llc_calibration"}  # `toymodels llc` results: tests/plotting/test_llc.py
KGON_ONLY = {"kgon_trajectories"}  # needs an exactly-one sweep in 2 dims: tests/plotting/
# test_llc.py; refused on this one: tests/test_bad_results.py
RESIDUAL_ONLY = {"uand_scaling",  # a uand sweep over d_mlp: tests/plotting/test_uand_scaling.py
                 "computation_control",  # an analysed residual sweep: tests/plotting/test_computation_control.py
                 "computation_map"}  # an analysed residual sweep: tests/plotting/test_computation_map.py
SPD_ONLY = {kind for kind, needs in NEEDS.items() if needs.trainer == "spd"}  # tests/plotting/test_spd_*.py
AXIS_ONLY = {"dropout_phase": "dropout", "dropout_law": "dropout", "incidental": "n_hidden"}
# ^ need that sweep axis: tests/plotting/test_dropout.py and test_incidental.py


@pytest.mark.parametrize("kind", sorted(AXIS_ONLY))
def test_plots_needing_an_axis_the_sweep_lacks_are_one_line(results, tmp_path, capsys, kind):
    assert main(["plot", kind, str(results), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and AXIS_ONLY[kind] in err


@pytest.mark.parametrize("kind", sorted(FINITE_ONLY))
def test_finite_dataset_plots_of_an_online_sweep_are_one_line(results, tmp_path, capsys, kind):
    assert main(["plot", kind, str(results), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dataset_size" in err


@pytest.mark.parametrize("kind", sorted(SAE_ONLY | HEDGING_ONLY | BENCHMARK_ONLY | HIERARCHY_ONLY
                                         | K_AXIS_ONLY))
def test_sae_plots_of_a_toy_sweep_are_one_line(results, tmp_path, capsys, kind):
    assert main(["plot", kind, str(results), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SAE" in err


@pytest.mark.parametrize("kind", sorted(RESIDUAL_ONLY))
def test_residual_plots_of_a_toy_sweep_are_one_line(results, tmp_path, capsys, kind):
    assert main(["plot", kind, str(results), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "residual-MLP sweep" in err


@pytest.mark.parametrize("kind", sorted(SPD_ONLY))
def test_spd_plots_of_a_toy_sweep_are_one_line(results, tmp_path, capsys, kind):
    assert main(["plot", kind, str(results), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SPD sweep" in err


@pytest.fixture(scope="module")
def sae_results(results, tmp_path_factory):
    """SAEs of widths 4 and 8 on the dense and the sparse runs of `results` (a source_run
    axis), analysed through the command line."""
    raw = {"name": "sae", "sae": {"source": str(results), "kind": "relu",
                                  "runs": {"relative_importance": 0.5, "seed": 0}},
           "train": {"steps": 60, "batch_size": 128, "log_every": 20},
           "sweep": {"width": [4, 8], "l1_coefficient": [0.01, 0.1], "seed": [0, 1]}}
    out = tm.run_sweep(tm.parse_config(raw, "sae.toml"), tmp_path_factory.mktemp("sae") / "run",
                       quiet=True)
    assert main(["analyze", str(out)]) == 0
    return out


@pytest.mark.slow  # moved behind slow (issue 22's test budget); CI runs it
@pytest.mark.parametrize("kind", sorted(SAE_ONLY))
def test_sae_plot_writes_a_png(sae_results, tmp_path, kind):
    out = tmp_path / f"{kind}.png"
    assert main(["plot", kind, str(sae_results), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


@pytest.mark.parametrize("kind", sorted(set(PLOTS) - ABS_ONLY - FINITE_ONLY - SAE_ONLY - LLC_ONLY
                                         - KGON_ONLY - HEDGING_ONLY - BENCHMARK_ONLY - HIERARCHY_ONLY
                                         - K_AXIS_ONLY - RESIDUAL_ONLY - SPD_ONLY - set(AXIS_ONLY)))
def test_plot_writes_a_png(results, tmp_path, kind):
    out = tmp_path / f"{kind}.png"
    assert main(["plot", kind, str(results), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


def test_plot_with_bad_option_is_one_line(results, tmp_path, capsys):
    assert main(["plot", "features", str(results), "--out", str(tmp_path / "x.png"),
                 "-o", "bogus=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bogus" in err
    assert not (tmp_path / "x.png").exists()


def test_plot_of_missing_results_is_one_line(tmp_path, capsys):
    assert main(["plot", "loss", str(tmp_path / "none"), "--out", str(tmp_path / "x.png")]) == 2
    assert "not a results directory" in capsys.readouterr().err


@pytest.mark.parametrize("argv, line", [
    (["swep", "x.toml"], "toymodels: error: swep: unknown command; did you mean sweep? allowed: "
                         "sweep, info, analyze, llc, plot, explore, reproduce, zoo"),
    (["plot", "feature", "d", "--out", "x.png"],
     "toymodels: error: plot feature: unknown plot kind; did you mean features? allowed: features, "),
    (["zoo", "bild"], "toymodels zoo: error: bild: unknown command; did you mean build? allowed: "
                      "build, list"),
    (["zoo", "build", "intro_pentagn"], "toymodels: error: zoo model 'intro_pentagn': unknown zoo "
                                        "model; did you mean intro_pentagon?"),
])
def test_a_wrong_name_gets_a_did_you_mean_and_one_line_of_choices(capsys, argv, line):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's errors exit (with our one line)
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(line), err


def test_a_wrong_plot_option_lists_the_kinds_options(results, tmp_path, capsys):
    assert main(["plot", "features", str(results), "--out", str(tmp_path / "x.png"),
                 "-o", "colour=red"]) == 2
    assert capsys.readouterr().err == ("toymodels: error: plot features: -o colour: unknown "
                                       "option; allowed: axis, max_columns\n")


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's --help and errors exit
        return e.code


@pytest.mark.parametrize("argv", [["plot", "phase", "--help"], ["plot", "phase", "some/dir", "-h"]])
def test_a_plot_kinds_help_gives_its_description_needs_and_options(capsys, argv):
    assert _exit_code(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: toymodels plot") and " phase dir" in out.splitlines()[0]
    assert "phase: Phase diagram of the extra feature" in out
    assert "needs: a sweep of toy models; two sweep axes besides seed" in out
    options = [line.split()[1] for line in out.splitlines() if line.startswith("  -o ")]
    assert options == ["x=None", "y=None", "theory='auto'"]
    assert "-o y=None          vertical axis (default the density axis)" in out
    assert "kinds (" not in out  # not the list of every kind


def test_plot_help_without_a_kind_still_lists_the_kinds(capsys):
    assert _exit_code(["plot", "--help"]) == 0
    out = capsys.readouterr().out
    assert "\n  phase_grid " in out and "\n  sae_cosines " in out


def test_the_help_of_an_unknown_plot_kind_is_its_one_line_did_you_mean(capsys):
    assert _exit_code(["plot", "feature", "--help"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("toymodels: error: plot feature: unknown plot kind; did you "
                                   "mean features? allowed: features, ")


@pytest.mark.parametrize("argv", [[], ["zoo"]])
def test_bare_commands_print_their_help(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: toymodels" + (" zoo" if argv else ""))
    assert ("{list,build}" if argv else "{sweep,info,analyze,llc,plot,explore,reproduce,zoo}") in out


def test_help_and_argument_errors_answer_without_importing_jax():
    """`toymodels --help`, a subcommand's help and a wrong subcommand are answered by a
    process that never imports JAX (start-up: 0.03 s against 4 s when it did)."""
    probe = ("import sys; from toymodels.cli import main\n"
             "for argv in ([], ['sweep', '--help'], ['swep']):\n"
             "    try: main(argv)\n"
             "    except SystemExit: pass\n"
             "print('jax' in sys.modules, 'matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=Path(__file__).parent)
    assert done.stdout.strip().splitlines()[-1] == "False False", done.stdout + done.stderr


def test_a_sweep_ends_naming_the_commands_that_fit_it(tmp_path, capsys):
    """The last line names info, analyze, a plot kind that applies (and every kind that
    does: here a sparsity x relative_importance sweep, so phase and heatmap too) and explore."""
    path = tmp_path / "s.toml"
    path.write_text(toml_of(raw(train={"steps": 20, "batch_size": 64, "log_every": 20,
                                       "eval_samples": 8192},
                                sweep={"sparsity": [0.0, 0.9], "relative_importance": [0.5, 2.0],
                                       "seed": [0]})))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"next: toymodels info {out}; toymodels analyze {out}; "
                           f"toymodels plot features {out} --out features.png (kinds here: ")
    assert "phase, heatmap" in last and last.endswith(f"toymodels explore {out} --out out.html")


def test_main_called_from_python_keeps_the_processs_devices():
    """`toymodels.cli.main([...])` in a test or a notebook must not split the CPU into one
    device per core for the rest of the process (it made later tests' chunks round up to
    two devices' blocks, an order-dependent failure); the command itself still does."""
    probe = ("from toymodels.cli import main; main(['zoo', 'list']); import jax; "
             "print(len(jax.devices()))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=Path(__file__).parent, env={**os.environ, "XLA_FLAGS": ""})
    assert done.stdout.strip().splitlines()[-1] == "1", done.stdout + done.stderr
