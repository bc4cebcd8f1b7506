"""Issue 23, values that parse yet train into garbage: refused at parse where they are
meaningless (float32 cannot hold them, every input would be zero, importances underflow),
else one warning line after the sweep (runs that did not train), and no leaked warning;
an all-NaN sweep's plots, an LLC pass's NaN estimates, its stale work folders, and the
progress bar of a resumed sweep."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import toymodels as tm
from tests.helpers import refused, toml_of
from toymodels import store, sweep
from toymodels.cli import main
from toymodels.errors import Interrupted
from toymodels.trainers import TRAINERS

FAST = {"steps": 20, "batch_size": 64, "log_every": 10, "eval_samples": 8192}
TOY = {"name": "bad", "model": {"kind": "relu_output", "n_features": 5, "n_hidden": 2},
       "train": FAST, "sweep": {"seed": [0, 1]}}
SAE = {"name": "bad_sae", "sae": {"source": "synthetic", "n_features": 5, "n_hidden": 2},
       "train": {"steps": 20, "batch_size": 64, "log_every": 10}, "sweep": {"seed": [0, 1]}}
F32 = "that float32 holds (at most 3.403e+38 in size)"

# (id, argv, starts, code): run in a folder holding toy.toml (TOY) and sae.toml (SAE); each
# sweep row ends with --out out, and nothing may be written there
ROWS = [
    ("eps_overflows_float32", ["sweep", "toy.toml", "--set", "train.eps=1e300"],
     f"toy.toml: train.eps: must be a number in (0, inf] {F32}, got 1e+300", 2),
    ("learning_rate_rounds_to_zero", ["sweep", "toy.toml", "--set", "train.learning_rate=1e-50"],
     "toy.toml: train.learning_rate: must be a number in (0, inf] in float32, which rounds "
     "1e-50 to 0.0, got 1e-50", 2),
    ("learning_rate_huge_integer", ["sweep", "toy.toml", "--set", "train.learning_rate=" + "9" * 400],
     f"toy.toml: train.learning_rate: must be a number in (0, inf] {F32}, got 999", 2),
    ("weight_decay_overflows_float32", ["sweep", "toy.toml", "--set", "train.weight_decay=-1e300"],
     f"toy.toml: train.weight_decay: must be a finite number {F32}, got -1e+300", 2),
    ("learning_rate_axis_overflows_float32",
     ["sweep", "toy.toml", "--set", "sweep.learning_rate=[1e-3, 1e39]"],
     f"toy.toml: sweep.learning_rate: must be a number in (0, inf] {F32}, got 1e+39", 2),
    ("sparsity_rounds_to_one", ["sweep", "toy.toml", "--set", "data.sparsity=0.9999999999"],
     "toy.toml: data.sparsity: must be a number in [0, 1) in float32, which rounds "
     "0.9999999999 to 1.0, got 0.9999999999", 2),
    ("sparsity_leaves_inputs_zero", ["sweep", "toy.toml", "--set", "data.sparsity=0.9999999"],
     "toy.toml: data.sparsity: leaves 0.00064 active features expected in all the run's "
     "train.batch_size x train.steps = 64 x 20 = 1280 examples: every input is zero; at most "
     "0.999843, got 0.9999999", 2),
    ("sparsity_axis_leaves_inputs_zero",
     ["sweep", "toy.toml", "--set", "sweep.sparsity=[0.5, 0.9999999]"],
     "toy.toml: sweep.sparsity: leaves 0.00064 active features expected", 2),
    ("feature_probability_leaves_inputs_zero",
     ["sweep", "toy.toml", "--set", "data.feature_probability=1e-9"],
     "toy.toml: data.feature_probability: leaves 6.4e-06 active features expected in all the "
     "run's train.batch_size x train.steps = 64 x 20 = 1280 examples: every input is zero; at "
     "least 0.000157, got 1e-09", 2),
    ("sparsity_of_finite_dataset_leaves_inputs_zero",
     ["sweep", "toy.toml", "--set", "data.dataset_size=64", "--set", "data.sparsity=0.999"],
     "toy.toml: data.sparsity: leaves 0.32 active features expected in all the run's "
     "data.dataset_size = 64 examples", 2),
    ("importance_decay_rounds_to_zero", ["sweep", "toy.toml", "--set", "data.importance_decay=1e-300"],
     "toy.toml: data.importance_decay: must be a number in (0, inf] in float32, which rounds "
     "1e-300 to 0.0, got 1e-300", 2),
    ("importance_decay_powers_underflow", ["sweep", "toy.toml", "--set", "data.importance_decay=1e-20"],
     "toy.toml: data.importance_decay: must be at least 3.3e-10 with model.n_features = 5: the "
     "last feature's importance decay^4 underflows float32 (below 1.18e-38), got 1e-20", 2),
    ("importance_decay_axis_underflows",
     ["sweep", "toy.toml", "--set", "sweep.importance_decay=[0.9, 1e-12]"],
     "toy.toml: sweep.importance_decay: must be at least 3.3e-10 with model.n_features = 5", 2),
    ("importance_list_subnormal", ["sweep", "toy.toml", "--set", "data.importance=[1, 1e-40, 1, 1, 0]"],
     "toy.toml: data.importance: each importance must be 0 or at least 1.18e-38 (float32's "
     "smallest normal number), got [1.0, 1e-40, 1.0, 1.0, 0.0]", 2),
    ("relative_importance_subnormal", ["sweep", "toy.toml", "--set", "data.relative_importance=1e-40"],
     "toy.toml: data.relative_importance: each importance must be 0 or at least 1.18e-38", 2),
    ("norm_eps_above_one",
     ["sweep", "toy.toml", "--set", "model.norm=rms", "--set", "model.norm_eps=1e30"],
     "toy.toml: model.norm_eps: must be a number in (0, 1], got 1e+30", 2),
    ("sae_eps_overflows_float32", ["sweep", "sae.toml", "--set", "train.eps=1e300"],
     f"sae.toml: train.eps: must be a number in (0, inf] {F32}, got 1e+300", 2),
    ("sae_l1_overflows_float32", ["sweep", "sae.toml", "--set", "sae.l1_coefficient=1e40"],
     f"sae.toml: sae.l1_coefficient: must be a number in [0, inf] {F32}, got 1e+40", 2),
    ("sae_synthetic_inputs_zero", ["sweep", "sae.toml", "--set", "data.sparsity=0.9999999"],
     "sae.toml: data.sparsity: leaves 0.00064 active features expected in all the run's "
     "train.batch_size x train.steps = 64 x 20 = 1280 examples: every input is zero", 2),
    ("llc_epsilon_overflows_float32", ["llc", "missing", "--epsilon", "1e300"],
     'toymodels llc: llc.epsilon: must be a number > 0 or "auto" ' + F32 + ", got 1e+300", 2),
    ("llc_gamma_overflows_float32", ["llc", "missing", "--gamma", "1e39"],
     f"toymodels llc: llc.gamma: must be a number in [0, inf] {F32}, got 1e+39", 2),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """The rows' folder (toy.toml, sae.toml), as the working directory."""
    (tmp_path / "toy.toml").write_text(toml_of(TOY))
    (tmp_path / "sae.toml").write_text(toml_of(SAE))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("argv, starts, code", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_meaningless_value_is_refused(capsys, workdir, argv, starts, code):
    out = ["--out", "out"] if argv[0] == "sweep" else []
    refused(capsys, argv + out, starts, code)
    assert not (workdir / "out").exists(), "a refused sweep writes nothing"


def test_the_bounds_named_are_allowed():
    """The least decay and the largest sparsity that the lines name parse."""
    for table, key, value in (("data", "importance_decay", 3.3e-10), ("data", "sparsity", 0.999843),
                              ("data", "feature_probability", 0.000157)):
        raw = {**TOY, "data": {key: value}}
        assert tm.parse_config(raw).data[key] == value, (table, key)


# ---- warnings after a sweep whose runs did not train


@contextlib.contextmanager
def no_leaked_warnings():
    """Fails if numpy or matplotlib warn inside (RuntimeWarning, UserWarning)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    leaked = [str(w.message) for w in caught if issubclass(w.category, (RuntimeWarning, UserWarning))]
    assert not leaked, leaked


def sweep_cli(folder: Path, name: str, raw: dict, *flags: str) -> tuple[Path, str]:
    """`toymodels sweep` of `raw` into folder/name (in this process); (out, its stderr)."""
    path, out, err = folder / f"{name}.toml", folder / name, io.StringIO()
    path.write_text(toml_of(raw))
    with contextlib.redirect_stderr(err), no_leaked_warnings():
        assert main(["sweep", str(path), "--out", str(out), *flags]) == 0, err.getvalue()
    return out, err.getvalue()


def with_train(**train) -> dict:
    return {**TOY, "train": {**FAST, **train}}


@pytest.fixture(scope="module")
def diverged(tmp_path_factory) -> tuple[Path, str]:
    """Two runs of learning rate 1e30, every loss NaN from step 10, trained with --quiet."""
    return sweep_cli(tmp_path_factory.mktemp("bad_training"), "nan",
                     with_train(learning_rate=1e30), "--quiet")


@pytest.fixture(scope="module")
def frozen(tmp_path_factory) -> tuple[Path, str]:
    """Two runs of learning rate 1e-30 (the weights stay at their init), with --quiet. Their
    loss curves are the noise of fresh batches: these two (seeds 0 and 1 at S = 0.5) end
    3% and 5% above where they began."""
    raw = {**with_train(learning_rate=1e-30, steps=40), "data": {"sparsity": 0.5}}
    return sweep_cli(tmp_path_factory.mktemp("bad_training"), "frozen", raw, "--quiet")


def test_every_run_diverged_is_one_line_even_quiet(diverged):
    out, err = diverged
    assert err == ("warning: 2 of 2 runs did not train: 2 with a non-finite loss ((seed=0) at "
                   "step 10, (seed=1) at step 10; see nonfinite_step): lower "
                   "train.learning_rate (or raise a negative train.weight_decay)\n")
    assert (tm.load(out).nonfinite_step == 10).all()


def test_every_run_frozen_is_one_line_even_quiet(frozen):
    """Before: learning rate 1e-30 trained without a word."""
    _, err = frozen
    assert err == ("warning: 2 of 2 runs did not train: 2 whose loss did not fall (its last "
                   "logged value not below its first) ((seed=0), (seed=1)): raise "
                   "train.learning_rate (or train.steps)\n")


def test_some_runs_failed_is_said_but_not_under_quiet(tmp_path, capsys):
    """Before: weight decay -1000 (a loss of 1e22 after 20 steps) trained without a word."""
    raw = {**TOY, "sweep": {"weight_decay": [0.01, -1000.0]}}
    out, err = sweep_cli(tmp_path, "half", raw)
    lines = [line for line in err.splitlines() if line.startswith("warning")]
    assert lines == ["warning: 1 of 2 runs did not train: 1 whose loss ended over 10x that of "
                     "all-zero parameters ((weight_decay=-1000.0)): lower train.learning_rate "
                     "(or raise a negative train.weight_decay, or lower the train.l1_hidden and "
                     "l1_weights penalties)"], err
    ds = tm.load(out)
    sweep.report_training(TRAINERS["toy"], ds, quiet=True)
    assert capsys.readouterr().err == ""
    sweep.report_training(TRAINERS["toy"], ds, quiet=False)
    assert capsys.readouterr().err == lines[0] + "\n"


@pytest.mark.parametrize("table, key, value", [("sae", "l1_coefficient", 1e12),
                                               ("train", "learning_rate", 1e6)])
def test_a_sae_far_above_all_zero_parameters_is_said(tmp_path, table, key, value):
    """Before: l1_coefficient 1e12 and learning rate 1e6 (losses of 1e9 and 1e25, where an
    SAE at zero scores below 25, `toymodels.trainers.sae.zero_loss`) trained without a word."""
    raw = {**SAE, table: {**SAE[table], key: value}}
    out, err = sweep_cli(tmp_path, "sae", raw, "--quiet")
    assert err == ("warning: 2 of 2 SAEs did not train: 2 whose loss ended over 10x that of "
                   "all-zero parameters ((seed=0), (seed=1)): lower train.learning_rate or the "
                   "sparsity penalty (sae.l1_coefficient)\n")
    assert (tm.load(out).loss.isel(step=-1) > 1e6).all()


def test_a_run_that_trained_is_not_warned_of(tmp_path):
    _, err = sweep_cli(tmp_path, "fine", with_train(learning_rate=1e-2, steps=40), "--quiet")
    assert err == ""


# ---- plots of an all-NaN sweep (case 9)


@pytest.mark.parametrize("kind", ["features", "loss", "dimensionality", "vulnerability",
                                  "kgon_trajectories"])
def test_plot_of_an_all_nan_sweep_is_one_line(capsys, tmp_path, diverged, kind):
    """Before: `plot features` leaked three matplotlib warnings, then "zero-size array to
    reduction operation maximum"; the others drew empty figures."""
    out, _ = diverged
    image = tmp_path / "x.png"
    with no_leaked_warnings():
        refused(capsys, ["plot", kind, out, "--out", image],
                f"plot {kind} of {out}: every run is non-finite (nonfinite_step is set in all 2 "
                "runs: the training diverged): nothing to plot; retrain with a lower "
                "train.learning_rate")
    assert not image.exists()


# ---- the LLC: NaN estimates, stale work folders


def test_llc_nan_estimates_are_one_line_and_stale_folders_go(capsys, frozen):
    """Before: --epsilon 10 leaked numpy's "All-NaN slice encountered" and said nothing of
    the NaNs; an interrupted pass's llc-<hash>/ stayed for ever."""
    out, _ = frozen
    stale = out / "llc-0123456789ab" / "chunks"
    stale.mkdir(parents=True)
    with no_leaked_warnings():
        assert main(["llc", str(out), "--epsilon", "10", "--loss", "online", "--n", "1000",
                     "--chains", "2", "--draws", "10", "--burn-in", "2", "--quiet"]) == 0
    got = capsys.readouterr()
    assert got.err == ("warning: 2 of 2 LLC estimates failed: 2 with a non-finite llc ((seed=0), "
                       "(seed=1)): the SGLD chains diverged (llc_nonfinite, llc_diverged): lower "
                       'llc.epsilon (--epsilon), or leave it "auto"\n')
    assert "median llc nan, trusted 0 of 2" in got.out
    assert np.isnan(tm.load(out).llc).all()
    assert not list(out.glob("llc-*")), "every llc-* work folder is removed by a finished pass"


# ---- the progress bar of a sweep resumed with another chunk size


@pytest.mark.slow  # 8 s: a resumed sweep's bar (issue 23's budget)
def test_progress_bar_counts_each_run_once_after_a_resume(tmp_path, capsys, monkeypatch):
    """Before: resumed with another --chunk-size, the bar counted the runs of a chunk done in
    part twice ("20run" for 16 runs). V = 2 here (a batch of 32768), so chunks are small."""
    raw = {**TOY, "train": {"steps": 2, "batch_size": 32768, "log_every": 1, "eval_samples": 8192},
           "sweep": {"sparsity": [0.0, 0.5], "seed": list(range(8))}}
    cfg, out, written = tm.parse_config(raw), tmp_path / "bar", []
    real = store.write_chunk

    def three_then_stop(path, first, arrays):
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(first)
        real(path, first, arrays)

    monkeypatch.setattr(store, "write_chunk", three_then_stop)
    with pytest.raises(Interrupted):
        tm.run_sweep(cfg, out, chunk_size=2, quiet=True)  # chunks of 2 runs (4 on 2 devices)
    monkeypatch.setattr(store, "write_chunk", real)
    assert store.done_mask(out, 16).sum() in (6, 12)  # 3 chunks
    tm.run_sweep(cfg, out, chunk_size=8)  # a chunk of 8 holds some done runs: retrained whole
    err = capsys.readouterr().err
    counts = [tuple(map(int, m)) for m in re.findall(r"(\d+)/(\d+) \[", err)]
    assert counts and {total for _, total in counts} == {16}, err
    assert counts[-1] == (16, 16) and max(n for n, _ in counts) == 16, err
    assert not re.search(r"\d+run \[", err), "a count past the total"
