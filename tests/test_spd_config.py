"""`[spd]` sweep files (toymodels.spd_config): the paper's defaults, static and traced
axes, pure parsing, and bad input as one line naming the file and the key."""

import tomllib

import pytest

import toymodels as tm
from toymodels.cli import main
from toymodels.errors import UserError
from toymodels.residual_config import ResidualSpec
from toymodels.spd_config import SPD_STATIC, SPD_TRACED, parse_spd
from toymodels.spec import ModelSpec

HAND = {"name": "h", "spd": {"source": "hand"}}


def test_defaults_are_the_papers_tms_5_2_settings():
    c = tm.parse_config(HAND, "h.toml")
    assert c.trainer == "spd" and c.spec.model.n_features == 5 and c.spec.model.n_hidden == 2
    s = c.spec.spd
    assert (s.C, s.d_gate, s.n_mask_samples, s.identity) == (20, 16, 1, False)
    assert c.table["beta"] == 3e-3 and c.table["p"] == 1.0 and c.table["feature_probability"] == 0.05
    assert [c.table[k] for k in ("faithfulness_coefficient", "stochastic_coefficient",
                                 "layerwise_coefficient")] == [1.0, 1.0, 1.0]
    t = c.spec.train
    assert (t.steps, t.batch_size, t.schedule, c.train["learning_rate"]) == (40_000, 4096, "cosine", 1e-3)


def test_static_axes_make_groups_and_traced_ones_do_not():
    assert {"C", "identity", "d_gate", "n_mask_samples", "steps", "batch_size"} <= set(SPD_STATIC)
    assert {"seed", "beta", "p", "learning_rate"} <= set(SPD_TRACED)
    c = tm.parse_config({**HAND, "train": {"steps": 100},
                         "sweep": {"C": [10, 20], "identity": [False, True], "beta": [1e-3, 1e-2],
                                   "seed": [0, 1]}}, "h.toml")
    assert c.shape == (2, 2, 2, 2) and len(c.groups) == 4
    assert [(g.spec.spd.C, g.spec.spd.identity) for g in c.groups] == [
        (10, False), (10, True), (20, False), (20, True)]
    assert all(g.shape == (2, 2) for g in c.groups)


def test_a_hand_targets_shape_is_a_static_axis():
    c = tm.parse_config({**HAND, "sweep": {"n_features": [3, 4], "C": [4, 8]}}, "h.toml")
    assert [(g.spec.model.n_features, g.spec.spd.C) for g in c.groups] == [(3, 4), (3, 8), (4, 4), (4, 8)]
    assert tm.parse_config(tomllib.loads(repr(c)), "again") == c
    with pytest.raises(UserError, match='sweep.n_features: only for spd.source = "hand"'):
        tm.parse_config({"spd": {"source": "zoo:intro_pentagon"}, "sweep": {"n_features": [3, 4]}}, "z.toml")


def test_a_resolved_config_reads_back_as_itself():
    c = tm.parse_config({**HAND, "spd": {"source": "hand", "n_features": 4, "C": 8},
                         "sweep": {"seed": [0, 1], "p": [1.0, 2.0]}}, "h.toml")
    assert tm.parse_config(tomllib.loads(repr(c)), "again") == c


def test_parsing_a_zoo_or_results_source_reads_nothing():
    c = parse_spd({"spd": {"source": "no/such/dir"}}, "x.toml")
    assert c.spec is None and c.trainer == "spd"


def test_a_results_directory_keeps_its_own_law_unless_feature_probability_is_given():
    """Resolved against a results directory (a stand-in reader), the config leaves
    feature_probability out (each run keeps its source run's density); given, it is
    kept; a zoo or hand target resolves to the paper's 0.05."""
    toy = tm.ModelSpec("relu_output", 2, 1)
    reader = lambda spd, source: (toy, (0, 1, 2), None, None)
    own = parse_spd({"spd": {"source": "runs/x"}}, "x.toml", reader=reader)
    assert "feature_probability" not in own.table and own.table["beta"] == 3e-3
    assert dict(own.axes)["source_run"] == (0, 1, 2)
    assert tm.parse_config(tomllib.loads(repr(own)), "again").table == own.table
    given = parse_spd({"spd": {"source": "runs/x", "feature_probability": 0.2}}, "x.toml",
                      reader=reader)
    assert given.table["feature_probability"] == 0.2
    zoo = parse_spd({"spd": {"source": "zoo:intro_pentagon"}}, "z.toml",
                    reader=lambda spd, source: (tm.ModelSpec("relu_output", 5, 2), (), None, None))
    assert zoo.table["feature_probability"] == 0.05


BAD = [  # (id, [spd] table, other tables, key, what the line says)
    ("unknown key", {"source": "hand", "betta": 1e-3}, {}, "spd.betta", "did you mean beta?"),
    ("no source", {"C": 4}, {}, "spd.source", "missing"),
    ("zero C", {"source": "hand", "C": 0}, {}, "spd.C", "got 0"),
    ("negative beta", {"source": "hand", "beta": -1.0}, {}, "spd.beta", "got -1.0"),
    ("p of zero", {"source": "hand", "p": 0}, {}, "spd.p", "got 0"),
    ("hand keys with a zoo source", {"source": "zoo:intro_pentagon", "n_features": 5}, {},
     "spd.n_features", 'only for spd.source = "hand"'),
    ("runs of a zoo model", {"source": "zoo:intro_pentagon", "runs": [0]}, {}, "spd.runs",
     "leave spd.runs out"),
    ("no hand geometry", {"source": "hand", "n_features": 5, "n_hidden": 3}, {}, "spd.n_hidden",
     "needs 2 or at least"),
    ("unknown axis", {"source": "hand"}, {"sweep": {"bta": [1.0]}}, "sweep.bta", "did you mean beta?"),
    ("a [model] table", {"source": "hand"}, {"model": {"n_features": 5}}, "model",
     "not used by an SPD sweep"),
    ("a [data] key", {"source": "hand"}, {"data": {"sparsity": 0.9}}, "data.sparsity",
     "spd.feature_probability"),
    ("log_every", {"source": "hand"}, {"train": {"steps": 100, "log_every": 30}},
     "train.log_every", "must divide"),
    ("batch full", {"source": "hand"}, {"train": {"batch_size": "full"}}, "train.batch_size", "got 'full'"),
]


@pytest.mark.parametrize("spd, other, key, says", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_spd_input_is_one_line_naming_the_key(spd, other, key, says):
    with pytest.raises(UserError) as e:
        tm.parse_config({"name": "bad", "spd": spd, **other}, "bad.toml")
    line = str(e.value)
    assert "\n" not in line and line.startswith("bad.toml: ") and f"{key}: " in line, line
    assert says in line, line


def test_a_missing_source_is_one_line_through_the_command_line(tmp_path, capsys):
    path, out = tmp_path / "s.toml", tmp_path / "out"
    path.write_text('[spd]\nsource = "nowhere/at/all"\n')
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err == (f"toymodels: error: {path}: spd.source: 'nowhere/at/all' does not exist; "
                   'give a results directory, "zoo:NAME" or "hand"'), err
    assert not out.exists()


def _residual_reader(spd, source):
    """A residual-MLP source as `read_spd_source` gives a finished results directory's."""
    return ModelSpec(n_features=20, n_hidden=10), (0,), ResidualSpec(20, 200, 10, 1, (10,)), 0.05


def test_a_residual_source_takes_its_own_defaults_and_pins_its_shape():
    """Keys not given take the residual target's defaults (C 100, β 1e-5, p 2, lr 2e-3
    constant, 30k steps of 2048) and the source's feature probability; given keys win;
    the resolved config reads back as itself without the reader."""
    c = parse_spd({"spd": {"source": "runs/r"}}, "r.toml", reader=_residual_reader)
    assert c.spec.residual.d_embed == 200 and c.spec.spd.C == 100
    assert (c.table["beta"], c.table["p"], c.table["feature_probability"]) == (1e-5, 2.0, 0.05)
    t = c.spec.train
    assert (t.steps, t.batch_size, t.schedule, c.train["learning_rate"]) == (30_000, 2048, "constant", 2e-3)
    assert c.table["source_residual"]["split"] == [10] and c.table["runs"] == [0]
    assert tm.parse_config(tomllib.loads(repr(c)), "again") == c
    given = parse_spd({"spd": {"source": "runs/r", "C": 40, "beta": 1e-2, "feature_probability": 0.1},
                       "train": {"steps": 500}}, "r.toml", reader=_residual_reader)
    assert (given.spec.spd.C, given.table["beta"], given.table["feature_probability"],
            given.spec.train.steps) == (40, 1e-2, 0.1, 500)


def test_a_residual_source_refuses_the_identity():
    with pytest.raises(UserError, match="r.toml: spd.identity: not for a residual-MLP source"):
        parse_spd({"spd": {"source": "runs/r", "identity": True}}, "r.toml", reader=_residual_reader)
