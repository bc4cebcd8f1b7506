"""`[train] init = "kgon"`: runs start at a regular k-gon critical point (Chen et al. 2023).

The start is `toymodels.theory.kgon`'s, bit for bit at init_noise = 0; the noise has the
std asked for and differs between seeds; lr = 0 keeps the k-gon; SGD on exactly-one-active
inputs stays on it (a critical point, at the loss of the k-gon table); bad values are
one-line config errors.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toymodels as tm
from toymodels import theory
from toymodels.errors import UserError
from toymodels.models import kgon_params
from toymodels.spec import DataSpec, ModelSpec, Spec, TrainSpec
from toymodels.train import block_size, make_train, make_train_one

EXACTLY_ONE = DataSpec(inputs="exactly_one")
TABLE = {2: 0.2222, 3: 0.1667, 4: 0.1111, 5: 0.0687, 6: 0.0482}  # c = 6 (REFERENCE E)


def kgon_spec(k, noise=0.0, H=2, steps=10, **train):
    train = {"steps": steps, "batch_size": 20, "log_every": steps, "optimizer": "sgd",
             "snapshot_every": steps, **train}
    return Spec(ModelSpec("relu_output", 6, H),
                TrainSpec(init="kgon", init_k=k, init_noise=noise, **train), EXACTLY_ONE)


def start_of(model, k):
    """`kgon_params` as numpy arrays."""
    return {n: np.asarray(v) for n, v in kgon_params(model, k).items()}


def sgd(lr):
    return tm.make_hyper(6, learning_rate=lr, weight_decay=0.0)


def starts(spec, n_seeds):
    """The step-0 snapshots {"W": [R, H, F], "b": [R, F]} of R = block_size runs, run r
    with seed r % n_seeds, lr = 0."""
    R = block_size(spec)
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(0), s))(jnp.arange(n_seeds))
    hyper = jax.tree.map(lambda a: jnp.broadcast_to(a, (R, *np.shape(a))), sgd(0.0))
    out = make_train(spec)(keys, jnp.arange(R) % n_seeds, hyper, jax.random.key(1))
    return {n: np.asarray(v[:, 0]) for n, v in out.snapshots.items()}, out


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_kgon_params_are_theory_kgon_embedded_in_the_first_two_hidden_dims(k):
    g = theory.kgon(6, k)
    p = kgon_params(ModelSpec("relu_output", 6, 3), k)
    np.testing.assert_array_equal(p["W"][:2], g.W.astype(np.float32))
    np.testing.assert_array_equal(p["W"][2], 0.0)
    np.testing.assert_array_equal(p["b"], g.b.astype(np.float32))
    assert theory.exactly_one_loss(p["W"], p["b"]) == pytest.approx(TABLE[k], abs=5e-5)


def test_the_one_gon_is_feature_zero_alone():
    p = kgon_params(ModelSpec("linear", 4, 2), 1)
    np.testing.assert_array_equal(p["W"], [[1, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(p["b"], 0.0)
    assert theory.exactly_one_loss(p["W"], p["b"]) == pytest.approx(3 / 12)


def test_noise_zero_starts_exactly_at_the_kgon_and_lr_zero_keeps_it():
    spec = kgon_spec(5, H=3)
    first, out = starts(spec, 2)
    want = start_of(spec.model, 5)
    for name in ("W", "b"):
        np.testing.assert_array_equal(first[name], np.broadcast_to(want[name], first[name].shape))
        np.testing.assert_array_equal(out.params[name], first[name])  # 10 steps at lr = 0


def test_noise_has_the_std_asked_for_and_differs_between_seeds():
    spec = kgon_spec(4, noise=0.1)
    first, out = starts(spec, block_size(spec))  # one seed per run
    want = start_of(spec.model, 4)
    noise = np.concatenate([(first["W"] - want["W"]).reshape(len(first["W"]), -1),
                            first["b"] - want["b"]], axis=1)  # [R, H F + F]
    assert noise.size >= 1000 and np.std(noise) == pytest.approx(0.1, rel=0.08)
    assert abs(np.mean(noise)) < 0.01
    assert len({row.tobytes() for row in noise}) == len(noise)  # every seed its own draw
    np.testing.assert_array_equal(out.params["W"], first["W"])  # lr = 0: nothing moves


@pytest.mark.slow  # 5 s (the default suite took 434 s of its 420 with issues 27-28's tests)
def test_same_seed_same_noise_and_the_random_init_is_untouched():
    spec = kgon_spec(4, noise=0.1)
    first, _ = starts(spec, 2)
    np.testing.assert_array_equal(first["W"][0], first["W"][2])
    random = Spec(ModelSpec("relu_output", 6, 2), TrainSpec(steps=10, batch_size=20,
                                                            log_every=10, snapshot_every=10))
    first, _ = starts(random, 2)
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), 1), 0)  # seed 1, INIT
    np.testing.assert_array_equal(first["W"][1], tm.get_model("relu_output").init(key, random.model)["W"])


@pytest.mark.parametrize("k", [*(pytest.param(k, marks=pytest.mark.slow) for k in (2, 3, 4)), 5,
                               pytest.param(6, marks=pytest.mark.slow)])  # 4 s each: the pentagon by default
def test_sgd_on_exactly_one_inputs_stays_at_the_kgon(k):
    """A critical point: 3,000 SGD steps (lr 0.005, B = 20, fresh samples) from it leave
    its used columns where they were and keep the exact loss at the table's value.

    k = 3 shows the kink of theory.kgon's unused biases at exactly 0: float rounding
    nudges them above 0, where the loss falls (slope -1/c), and they slide to 1/(2c):
    the 3^{3+}-gon, 3/(4c²) lower.
    """
    spec = kgon_spec(k, steps=3000, log_every=1000, snapshot_every=0)
    out = make_train_one(spec)(jax.random.key(k), sgd(0.005))
    start = start_of(spec.model, k)
    drift = np.linalg.norm(out.params["W"] - start["W"], axis=0)[:k]  # the used columns
    assert drift.max() < 0.05, drift
    final = float(out.final_loss)
    if k == 3:
        assert final == pytest.approx(theory.kgon(6, 3, sigma=3).loss, abs=1e-3)
        return
    assert final == pytest.approx(TABLE[k], abs=1e-3)
    assert final == pytest.approx(theory.kgon(6, k).loss, abs=1e-3)
    np.testing.assert_allclose(out.loss, TABLE[k], atol=8e-3)  # minibatch means: noisy


KGON = {"model": {"n_features": 6, "n_hidden": 2},
        "data": {"inputs": "exactly_one", "dataset_size": 100},
        "train": {"init": "kgon", "init_k": 4, "init_noise": 0.1, "optimizer": "sgd",
                  "batch_size": 20, "steps": 20, "log_every": 10, "snapshot_every": 10}}


def with_(model=None, train=None, sweep=None):
    return {**KGON, "model": {**KGON["model"], **(model or {})},
            "train": {**KGON["train"], **(train or {})}, "sweep": sweep or {}}


@pytest.mark.parametrize("model, train, message", [
    ({}, {"init_k": 0}, "train.init_k: must be an integer >= 1, got 0"),
    ({}, {"init_k": 7}, "train.init_k: must be at most model.n_features = 6, got 7"),
    ({}, {"init_noise": -0.1}, r"train.init_noise: must be a number in \[0, inf\], got -0.1"),
    ({}, {"init": "foo"}, "train.init: must be one of random, kgon, normal, got 'foo'"),
    ({"kind": "relu_hidden"}, {}, 'train.init: "kgon" needs model.kind = relu_output or linear'),
    ({"kind": "abs_computation"}, {}, 'train.init: "kgon" needs model.kind'),
    ({"n_hidden": 1}, {}, r'train.init: "kgon" with init_k = 4 needs model.n_hidden >= 2'),
    ({}, {"init": "random"}, 'train.init_k: needs train.init = "kgon"'),
])
def test_bad_init_values_are_one_line_errors(model, train, message):
    with pytest.raises(UserError, match=f"^sweeps/x.toml: {message}") as e:
        tm.parse_config(with_(model, train), "sweeps/x.toml")
    assert "\n" not in str(e.value)


def test_kgon_needs_init_k_and_the_noise_alone_needs_kgon():
    train = {k: v for k, v in KGON["train"].items() if k != "init_k"}
    with pytest.raises(UserError, match='train.init_k: needed with train.init = "kgon"'):
        tm.parse_config({**KGON, "train": train}, "sweeps/x.toml")
    with pytest.raises(UserError, match='train.init_noise: needs train.init = "kgon"'):
        tm.parse_config({"train": {"init_noise": 0.1}}, "sweeps/x.toml")
    with pytest.raises(UserError, match=r"\[init_noise = 0.1\]: train.init_noise: needs"):
        tm.parse_config({"sweep": {"init_noise": [0.1]}}, "sweeps/x.toml")


def test_the_init_keys_round_trip_and_default_configs_do_not_name_them():
    import tomllib

    c = tm.parse_config(with_(sweep={"init_noise": [0.0, 0.1], "seed": [0, 1]}))
    assert [g.spec.train.init_noise for g in c.groups] == [0.0, 0.1]
    assert {g.spec.train.init_k for g in c.groups} == {4}
    assert tm.parse_config(tomllib.loads(tm.to_toml(c))) == c
    assert "init" not in tm.to_toml(tm.parse_config({}))
    assert tm.parse_config({}).spec.train.init == "random"


@pytest.mark.slow  # 10 s (the default suite took 434 s of its 420 with issues 27-28's tests)
def test_a_sweep_keeps_the_kgon_in_its_step_zero_snapshots(tmp_path):
    c = tm.parse_config(with_(sweep={"init_noise": [0.0, 0.1], "seed": [0, 1]}))
    ds = tm.load(tm.run_sweep(c, tmp_path / "kgon", quiet=True))
    from toymodels.info import describe
    assert "init: the 4-gon + noise [0.0, 0.1]" in describe(tmp_path / "kgon")
    assert ds.W_snapshots.dims == ("init_noise", "seed", "snapshot", "hidden", "feature")
    start = ds.isel(snapshot=0)
    want = start_of(c.spec.model, 4)
    for name in ("W", "b"):
        exact = start[f"{name}_snapshots"].sel(init_noise=0.0).values
        np.testing.assert_array_equal(exact, np.broadcast_to(want[name], exact.shape))
    noisy = start.W_snapshots.sel(init_noise=0.1).values
    assert not np.array_equal(noisy[0], noisy[1])
    assert 0.03 < np.std(noisy - np.asarray(want["W"])) < 0.3
