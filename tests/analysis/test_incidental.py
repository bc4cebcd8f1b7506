"""Incidental polysemanticity: the neuron count on hand-made weights, the N(0, 1/m) init
and its config key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toymodels as tm
from tests import helpers
from toymodels.analysis import n_polysemantic
from toymodels.analysis.variables import NEURON_VARIABLES
from toymodels.errors import UserError
from toymodels.hyper import make_hyper
from toymodels.spec import DataSpec, ModelSpec, Spec, TrainSpec
from toymodels.train import INIT, make_train_one, normal_init


def test_n_polysemantic_on_hand_made_weights():
    W = jnp.array([
        [1.0, -0.9, 0.0, 0.0],   # two in range, opposite signs: polysemantic
        [1.0, 0.5, 0.79, 0.0],   # one in range: no
        [0.8, 1.2, 1.21, 0.0],   # both edges are in range: polysemantic
        [1.1, 1.1, 1.1, 1.1],    # four in range: one neuron
        [0.0, 0.0, 0.0, 0.0],    # dead
        [-1.3, 0.7, 0.0, 2.0],   # none in range
    ])
    assert int(n_polysemantic(W)) == 3
    assert int(n_polysemantic(W.at[1, 1].set(0.8))) == 4
    assert "n_polysemantic" in [name for name, *_ in NEURON_VARIABLES]  # analyze adds it
    assert int(n_polysemantic(jnp.eye(5))) == 0  # monosemantic basis
    assert int(n_polysemantic(W, lo=0.5, hi=1.0)) == 2  # rows 0 and 1


def test_normal_init_has_std_one_over_sqrt_m_and_zero_bias():
    spec = Spec(ModelSpec("relu_output", 50, 400), TrainSpec(init="normal"))
    params = normal_init(jax.random.key(3), spec)
    W = np.asarray(params["W"], np.float64)
    assert W.shape == (400, 50) and not np.asarray(params["b"]).any()
    se = 1 / np.sqrt(400) / np.sqrt(2 * W.size)  # of the sample std of normals
    assert abs(W.std() - 1 / np.sqrt(400)) < 4 * se
    assert abs(W.mean()) < 4 / np.sqrt(400) / np.sqrt(W.size)
    untied = normal_init(jax.random.key(3), Spec(ModelSpec("abs_computation", 6, 9)))
    assert untied["W1"].shape == (9, 6) and untied["W2"].shape == (6, 9)
    assert not np.allclose(untied["W1"], untied["W2"].T)  # one draw per matrix


def test_init_normal_in_a_sweep_file(tmp_path):
    raw = {"name": "inc", "model": {"n_features": 4, "n_hidden": 16, "bias": False},
           "data": {"inputs": "one_hot"},
           "train": {"init": "normal", "steps": 2, "log_every": 1, "l1_weights": 1e-3},
           "sweep": {"n_hidden": [8, 16], "seed": [0, 1]}}
    cfg = tm.parse_config(raw)
    assert cfg.spec.train.init == "normal" and cfg.spec.train.batch_size == 4
    assert "init" in cfg.to_dict()["train"] and "init_k" not in cfg.to_dict()["train"]
    assert tm.parse_config(cfg.to_dict()).spec == cfg.spec  # round-trips
    with pytest.raises(UserError, match="train.init_k: needs train.init"):
        helpers.config(train={"init": "normal", "init_k": 2})


def test_training_starts_from_the_normal_init():
    spec = Spec(ModelSpec("relu_output", 4, 16, bias=False),
                TrainSpec(init="normal", steps=2, log_every=1, batch_size=4, snapshot_every=1),
                DataSpec(inputs="one_hot"))
    key = jax.random.key(5)
    out = make_train_one(spec)(key, make_hyper(4))
    start = normal_init(jax.random.fold_in(key, INIT), spec)
    np.testing.assert_array_equal(out.snapshots["W"][0], start["W"])
    assert not np.asarray(out.params["b"]).any()  # bias = false keeps b at 0


@pytest.mark.slow
def test_trained_collisions_follow_the_opposite_sign_birthday_count(tmp_path):
    """n = 16 features, m = 64 neurons, 16 instances, the paper's recipe. A pair of
    features sharing a neuron survives training only with opposite signs (same signs
    interfere through the ReLU), so the count is about half the birthday problem's
    C(n, 2)/m pairs per neuron set: n(n - 1)/(4m) = 0.94 per instance."""
    n, m = 16, 64
    raw = {"name": "inc", "model": {"n_features": n, "n_hidden": m, "bias": False},
           "data": {"inputs": "one_hot"},
           "train": {"init": "normal", "steps": 7500, "log_every": 500,
                     "l1_weights": 1e-3 / n, "weight_decay": 0.01},
           "sweep": {"seed": list(range(16))}}
    ds = tm.analyze(tm.load(tm.run_sweep(tm.parse_config(raw), tmp_path / "r", quiet=True)))
    W = ds["W"].values  # [seed, m, n]
    size = np.abs(W)
    on = (size >= 0.8) & (size <= 1.2)
    poly = on.sum(-1) > 1
    np.testing.assert_array_equal(poly.sum(-1), ds["n_polysemantic"].values)
    for s, k in zip(*np.nonzero(poly)):
        signs = np.sign(W[s, k][on[s, k]])
        assert signs.min() < 0 < signs.max(), (s, k, W[s, k][on[s, k]])
    counts = poly.sum(-1)
    expected = n * (n - 1) / (4 * m)
    se = max(counts.std(ddof=1), np.sqrt(expected)) / np.sqrt(len(counts))
    assert abs(counts.mean() - expected) < 3 * se, (counts, expected)
