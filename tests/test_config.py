"""Sweep files: parsing, axes, overrides, and every kind of bad input (one line, exit 2)."""

import tomllib

import numpy as np
import pytest

import toymodels as tm
from toymodels.cli import main
from toymodels.config import apply_override, to_toml
from toymodels import zoo
from toymodels.errors import UserError
from toymodels.trainers import get_trainer

from helpers import FAST, config, fails_one_line, raw, run_cli, toml_of, write_file


def test_spaced_axes():
    c = config(sweep={"learning_rate": {"geomspace": [1e-3, 1e-1, 3]},
                      "dropout": {"linspace": [0, 0.5, 3]}})
    axes = dict(c.axes)
    np.testing.assert_allclose(axes["learning_rate"], [1e-3, 1e-2, 1e-1])
    np.testing.assert_allclose(axes["dropout"], [0.0, 0.25, 0.5])


def test_range_axis_is_the_whole_numbers_up_to_its_end():
    c = config(sweep={"seed": {"range": [3, 7]}})
    assert dict(c.axes)["seed"] == (3, 4, 5, 6)


def test_override_sets_scalars_and_adds_axes():
    r = raw()
    apply_override(r, "train.steps=500", "f")
    apply_override(r, "sweep.seed=[0,1,2]", "f")
    apply_override(r, "model.kind=linear", "f")
    c = tm.parse_config(r)
    assert c.spec.train.steps == 500 and c.spec.model.kind == "linear"
    assert dict(c.axes)["seed"] == (0, 1, 2)


def test_resolved_toml_round_trips():
    c = config(sweep={"learning_rate": {"geomspace": [1e-3, 1e-1, 3]}})
    assert tm.parse_config(tomllib.loads(to_toml(c))) == c


BAD = [
    # (description, raw config changes, a fragment the message must contain)
    ("unknown top key", {"nme": "x"}, "nme: unknown top-level key; did you mean name?"),
    ("unknown table key", {"train": {"stepz": 3}}, "train.stepz: unknown key; did you mean steps?"),
    ("unknown axis", {"sweep": {"lr": [1]}}, "sweep.lr: not a sweepable key"),
    ("wrong type", {"train": {"steps": "many"}}, "train.steps: must be an integer"),
    ("sparsity out of range", {"data": {"sparsity": 1.0}}, "data.sparsity: must be a number in [0, 1)"),
    ("sparsity axis out of range", {"sweep": {"sparsity": [0.5, 1.2]}}, "sweep.sparsity: must be a number in [0, 1)"),
    ("feature probability zero", {"data": {"sparsity": None}, "sweep": {"feature_probability": [0.0]}}, "sweep.feature_probability: must be a number in (0, 1]"),
    ("dropout one", {"train": {"dropout": 1.0}}, "train.dropout: must be a number in [0, 1)"),
    ("zero features", {"model": {"n_features": 0}}, "model.n_features: must be an integer >= 1"),
    ("negative hidden", {"model": {"n_hidden": -2}}, "model.n_hidden: must be an integer >= 1"),
    ("zero steps", {"train": {"steps": 0}}, "train.steps: must be an integer >= 1"),
    ("log_every not dividing", {"train": {"steps": 100, "log_every": 30}}, "train.log_every: must divide train.steps"),
    ("importance length", {"data": {"importance_decay": None, "importance": [1, 2]}}, "data.importance: a list needs model.n_features = 5 values, got 2"),
    ("sparsity and probability", {"data": {"feature_probability": 0.5}}, "data.feature_probability: give one density key"),
    ("both density axes", {"sweep": {"sparsity": [0.1], "feature_probability": [0.5]}}, "sweeps density twice"),
    ("two importance axes", {"sweep": {"importance_decay": [0.9], "relative_importance": [2.0]}}, "sweeps importance twice"),
    ("empty axis", {"sweep": {"seed": []}}, "sweep.seed: the axis is empty"),
    ("bad spacing", {"sweep": {"dropout": {"logspace": [0, 1, 3]}}}, "sweep.dropout: must be a list"),
    ("empty range", {"sweep": {"seed": {"range": [5, 5]}}}, "sweep.seed: must be a list, { linspace = [a, b, n] }, { geomspace = [a, b, n] } or { range = [a, b] } (range: whole numbers a < b"),
    ("float range", {"sweep": {"seed": {"range": [0, 2.5]}}}, "(range: whole numbers a < b"),
    ("unknown kind", {"model": {"kind": "mlp"}}, "model.kind: must be one of linear, relu_output, relu_hidden, abs_computation"),
    ("bad schedule", {"train": {"schedule": "step"}}, "train.schedule: must be one of constant, cosine"),
]


def _apply(r, changes):
    for table, values in changes.items():
        if isinstance(values, dict):
            for k, v in values.items():
                if v is None:
                    r[table].pop(k, None)
                else:
                    r[table][k] = v
        else:
            r[table] = values
    return r


@pytest.mark.parametrize("what,changes,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_one_line_exit_2_nothing_written(tmp_path, capsys, what, changes, fragment):
    path = write_file(tmp_path, toml_of(_apply(raw(), changes)))
    err = fails_one_line(capsys, tmp_path, ["sweep", str(path)], fragment)
    assert str(path) in err  # names the file


def test_missing_file(tmp_path, capsys):
    fails_one_line(capsys, tmp_path, ["sweep", str(tmp_path / "nope.toml")], "cannot read the sweep file")


def test_toml_syntax_error(tmp_path, capsys):
    path = write_file(tmp_path, "name = \n[model\n")
    fails_one_line(capsys, tmp_path, ["sweep", str(path)], "TOML syntax error")


@pytest.mark.parametrize("item,fragment", [
    ("train.stepz=4", "--set train.stepz: unknown key; did you mean train.steps?"),
    ("sweep.lr=[1]", "--set sweep.lr: unknown key"),
    ("model.n_features.x=3", "unknown key"),
    ("steps", "expected key=value"),
])
def test_bad_set(tmp_path, capsys, item, fragment):
    path = write_file(tmp_path, toml_of(raw()), "ok.toml")
    fails_one_line(capsys, tmp_path, ["sweep", str(path), "--set", item], fragment)


def test_set_value_is_validated(tmp_path, capsys):
    path = write_file(tmp_path, toml_of(raw()), "ok.toml")
    fails_one_line(capsys, tmp_path, ["sweep", str(path), "--set", "train.dropout=2"], "train.dropout")


def test_cli_process_exit_code_and_single_line(tmp_path):
    path = write_file(tmp_path, toml_of(_apply(raw(), {"train": {"dropout": 1.5}})))
    result = run_cli("sweep", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "train.dropout" in result.stderr and not (tmp_path / "out").exists()


def test_bad_cli_argument_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("sweep, message", [
    ({"n_hidden": [2, 0]}, r"sweep\.n_hidden: must be an integer >= 1, got 0"),
    ({"kind": ["relu_output", "relu_out"]}, r"sweep\.kind: must be one of linear, relu_output"),
    ({"steps": [60, 50]}, r"\[steps = 50\]: train\.log_every: must divide train\.steps = 50"),
    ({"n_features": [5, 4]}, r"\[n_features = 4\]: .*importance"),
])
def test_bad_static_axes_name_the_axis_or_the_group(sweep, message):
    bad = raw(train=FAST, sweep={**sweep, "seed": [0]})
    if "n_features" in sweep:
        bad["data"] = {"importance": [1.0] * 5}
    with pytest.raises(UserError, match=message):
        tm.parse_config(bad)


def test_unset_removes_a_key_before_set_and_names_a_missing_one(tmp_path):
    """`--unset sae.runs` then `--set sae.source=...`: switching an SAE sweep from a
    results directory to a zoo model, which refuses `runs`."""
    path = tmp_path / "s.toml"
    path.write_text('[sae]\nsource = "runs/x"\nruns = [0]\n[sweep]\nseed = [0]\n')
    with pytest.raises(tm.UserError, match="sae.runs: a zoo model is one run"):
        get_trainer("sae").resolve(tm.load_config(path, ('sae.source="zoo:intro_pentagon"',)))
    c = tm.load_config(path, ('sae.source="zoo:intro_pentagon"',), ("sae.runs",))
    assert c.table["sae"] == {"source": "zoo:intro_pentagon"}  # unresolved: the file as given
    assert get_trainer("sae").resolve(c).spec.model.n_hidden == 2
    with pytest.raises(tm.UserError, match=r"--unset sae\.rns: unknown key of the file; did you "
                                           r"mean sae\.runs\?"):
        tm.load_config(path, (), ("sae.rns",))


def test_a_config_prints_as_the_toml_that_runs_it():
    c = zoo.config("intro_pentagon")
    text = repr(c)
    assert text.startswith('name = "zoo_intro"\nseed = 0\n\n[model]\n')
    assert tm.parse_config(tomllib.loads(text)) == c
