"""`[residual]` sweep files (toymodels.residual_config): what they resolve to, their round
trip through the manifest's TOML, and every bad key as one line naming the key."""

import tomllib

import pytest

import toymodels as tm
from toymodels.errors import UserError
from toymodels.residual_config import RESIDUAL_SCHEMA, even_split

from helpers import fails_one_line, toml_of

BASE = {"residual": {"n_features": 8, "d_embed": 16, "d_mlp": 4}}


def parse(**tables):
    raw = {"residual": {**BASE["residual"], **tables.pop("residual", {})}, **tables}
    return tm.parse_config(raw, "r.toml")


def test_defaults_are_braun_et_al_and_the_schema():
    c = tm.parse_config({"residual": {}}, "r.toml")
    r = c.spec.residual
    assert (r.n_features, r.d_embed, r.d_mlp, r.n_layers, r.split) == (100, 1000, 50, 1, (50,))
    assert (r.task, r.embed, r.readout, r.bias) == ("identity_relu", "fixed", "transpose", True)
    assert c.trainer == "residual" and c.spec.train.schedule == "cosine"
    assert (c.train["learning_rate"], c.spec.train.batch_size, c.spec.train.steps) == (3e-3, 2048, 10_000)
    assert {k: RESIDUAL_SCHEMA[k].axis for k in ("label_mixing", "embed_seed", "d_mlp")} == {
        "label_mixing": "traced", "embed_seed": "traced", "d_mlp": "static"}


def test_static_axes_are_groups_and_the_config_round_trips():
    c = parse(residual={"n_layers": 2}, sweep={"d_mlp": [4, 7], "task": ["relu", "uand"],
                                               "feature_probability": [0.1, 0.2], "seed": [0, 1]})
    assert [g.spec.residual.split for g in c.groups] == [(2, 2), (2, 2), (4, 3), (4, 3)]
    assert [g.spec.residual.readout for g in c.groups] == ["transpose", "learned"] * 2
    assert c.n_runs == 16 and all(g.n_runs == 4 for g in c.groups)
    assert tm.parse_config(tomllib.loads(repr(c)), "again") == c
    assert even_split(50, 3) == [17, 17, 16]


BAD = [  # (raw tables, the key the line names, a fragment of it)
    ({"residual": {"n_featurs": 8}}, "residual.n_featurs", "did you mean n_features?"),
    ({"residual": {"task": "absolute"}}, "residual.task", "must be one of identity_relu"),
    ({"residual": {"n_layers": 4}}, "residual.n_layers", "< 4"),
    ({"residual": {"split": [3, 3]}}, "residual.split", "summing to residual.d_mlp = 4"),
    ({"residual": {"split": [2, 0], "n_layers": 2}}, "residual.split", "integers >= 1"),
    ({"residual": {"d_mlp": 2, "n_layers": 3}}, "residual.d_mlp", "a neuron per layer"),
    ({"residual": {"task": "uand", "readout": "transpose"}}, "residual.readout", '"learned"'),
    ({"residual": {"task": "uand", "label_mixing": 0.5}}, "residual.label_mixing", "uand"),
    ({"residual": {"task": "uand"}, "data": {"magnitude": "uniform"}}, "data.magnitude", "boolean"),
    ({"residual": {"embed": "frozen"}}, "residual.embed", "fixed, learned"),
    ({"residual": {"label_mixing": "one"}}, "residual.label_mixing", "finite number"),
    ({"model": {"n_hidden": 3}}, "model", "[residual] table gives the model"),
    ({"train": {"dropout": 0.1}}, "train.dropout", "not used by a residual sweep"),
    ({"train": {"setps": 10}}, "train.setps", "did you mean steps?"),
    ({"train": {"batch_size": "full"}}, "train.batch_size", "integer >= 1"),
    ({"train": {"steps": 100, "log_every": 30}}, "train.log_every", "must divide"),
    ({"data": {"dataset_size": 100}}, "data.dataset_size", "fresh samples"),
    ({"data": {"sparsity": 1.5}}, "data.sparsity", "[0, 1)"),
    ({"sweep": {"labelmixing": [0.0]}}, "sweep.labelmixing", "did you mean label_mixing?"),
    ({"sweep": {"dropout": [0.0]}}, "sweep.dropout", "not used by a residual sweep"),
    ({"sweep": {"split": [[2, 2], [4]]}}, "residual.split", "summing"),
    ({"residual": {}, "sae": {}}, "[sae] and [residual]", "one trainer"),
]


@pytest.mark.parametrize("tables,key,fragment", BAD, ids=[b[1] for b in BAD])
def test_every_bad_key_is_one_line_naming_it(tables, key, fragment):
    with pytest.raises(UserError) as e:
        parse(**tables)
    line = str(e.value)
    assert "\n" not in line and line.startswith("r.toml") and key in line and fragment in line, line


def test_a_bad_file_through_the_command_line(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(toml_of({"residual": {"n_features": 8, "tsak": "relu"}}))
    fails_one_line(capsys, tmp_path, ["sweep", str(path)], "residual.tsak: unknown key; did you mean task?")
