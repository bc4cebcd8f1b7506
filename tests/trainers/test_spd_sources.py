"""Which residual-MLP results directories SPD decomposes (toymodels.trainers.spd's
`read_spd_source`): one layer, a real-valued task, independent uniform features, one
feature probability; each refusal one line naming the source. No training: the
directories are manifests written here (what the reader reads)."""

import json

import pytest

from toymodels import store
from toymodels.errors import UserError
from toymodels.trainers.spd import read_spd_source

RESIDUAL = {"n_features": 6, "d_embed": 12, "d_mlp": 3}


def finished(tmp_path, name: str, residual: dict, data: dict | None = None,
             sweep: dict | None = None) -> str:
    """A finished residual results directory of this config: its manifest and a results
    file (the reader reads neither array)."""
    out = tmp_path / name
    out.mkdir()
    lines = ["[residual]", *(f"{k} = {json.dumps(v)}" for k, v in residual.items()),
             "[data]", *(f"{k} = {json.dumps(v)}" for k, v in (data or {}).items()),
             "[sweep]", *(f"{k} = {json.dumps(v)}" for k, v in (sweep or {}).items())]
    manifest = {"schema_version": store.SCHEMA_VERSION, "config": "\n".join(lines) + "\n",
                "n_runs": 1, "versions": {}, "device": "cpu"}
    (out / store.MANIFEST).write_text(json.dumps(manifest))
    (out / store.RESULTS).write_text("")
    return str(out)


def test_a_one_layer_residual_source_gives_its_shape_and_feature_probability(tmp_path):
    path = finished(tmp_path, "ok", {**RESIDUAL, "task": "relu"}, {"feature_probability": 0.1},
                    {"seed": [0, 1]})
    model, runs, residual, p = read_spd_source({"source": path}, "s.toml")
    assert (model.n_features, model.n_hidden, runs) == (6, 3, (0, 1))
    assert (residual.d_embed, residual.task, p) == (12, "relu", 0.1)


@pytest.mark.parametrize("residual, data, sweep, says", [
    ({**RESIDUAL, "n_layers": 2}, {}, {}, "a residual MLP of 2 layer\\(s\\), task identity_relu"),
    ({**RESIDUAL, "task": "uand"}, {}, {}, "a residual MLP of 1 layer\\(s\\), task uand"),
    (RESIDUAL, {"correlation": "anticorrelated"}, {}, "not independent features of uniform"),
    (RESIDUAL, {}, {"feature_probability": [0.05, 0.1]}, "feature probabilities 0.05, 0.1"),
])
def test_a_source_spd_cannot_decompose_is_one_line(tmp_path, residual, data, sweep, says):
    path = finished(tmp_path, "bad", residual, data, sweep)
    with pytest.raises(UserError, match=f"^s.toml: spd.*{says}") as e:
        read_spd_source({"source": path}, "s.toml")
    assert "\n" not in str(e.value)
