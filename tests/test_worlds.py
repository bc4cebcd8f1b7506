"""More worlds from the paper: model kinds, correlated sets, magnitudes, per-feature density,
L1 on the hidden layer, snapshots of training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toymodels as tm
from toymodels import data
from toymodels.spec import DataSpec

N = 100_000


def _noise(F, n_sets, key=0):
    k1, k2 = jax.random.split(jax.random.key(key))
    return data.Noise(values=jax.random.uniform(k1, (F, N)), dropout=jnp.zeros((1, N)),
                      sets=jax.random.uniform(k2, (n_sets, N)))


def test_correlated_sets_switch_on_and_off_together():
    x = np.asarray(data.sample_inputs(_noise(4, 2), jnp.full(4, 0.2), DataSpec("correlated", 2)))
    on = x > 0
    np.testing.assert_array_equal(on[0], on[1])
    np.testing.assert_array_equal(on[2], on[3])
    assert abs(on[0].mean() - 0.2) < 0.01 and abs(on[2].mean() - 0.2) < 0.01
    assert abs((on[0] & on[2]).mean() - 0.04) < 0.005  # the two sets are independent
    both = on[0]
    assert abs(np.corrcoef(x[0, both], x[1, both])[0, 1]) < 0.03  # values independent
    assert abs(x[0, both].mean() - 0.5) < 0.01


def test_anticorrelated_sets_have_at_most_one_active_member():
    x = np.asarray(data.sample_inputs(_noise(6, 2), jnp.full(6, 0.3), DataSpec("anticorrelated", 3)))
    on = x > 0
    per_set = on.reshape(2, 3, N).sum(axis=1)
    assert per_set.max() == 1
    assert abs((per_set[0] == 1).mean() - 0.3) < 0.01  # the set is on with probability p
    np.testing.assert_allclose(on.mean(axis=1), 0.1, atol=0.005)  # members equally likely
    assert abs(x[on].mean() - 0.5) < 0.01


@pytest.mark.parametrize("magnitude,mean", [("uniform", 0.5), ("exponential", 0.5), ("constant", 1.0)])
def test_magnitudes(magnitude, mean):
    x = np.asarray(data.sample_inputs(_noise(2, 0), jnp.full(2, 0.5), DataSpec(magnitude=magnitude)))
    active = x[x > 0]
    assert abs((x > 0).mean() - 0.5) < 0.01 and abs(active.mean() - mean) < 0.01
    if magnitude == "exponential":
        assert active.max() > 2.0 and abs(np.median(active) - 0.5 * np.log(2)) < 0.01


def test_signed_inputs_and_abs_target():
    x = np.asarray(data.sample_inputs(_noise(2, 0), jnp.full(2, 0.5), DataSpec(), signed=True))
    active = x[x != 0]
    assert active.min() < -0.99 and active.max() > 0.99 and abs(active.mean()) < 0.01
    assert abs((x != 0).mean() - 0.5) < 0.01
    assert tm.get_model("abs_computation").target is jnp.abs


@pytest.mark.parametrize("changes,fragment", [
    ({"data": {"correlation": "correlated", "set_size": 3}}, "data.set_size: must divide"),
    ({"data": {"set_size": 2}}, "data.set_size: needs data.correlation"),
    ({"data": {"magnitude": "gaussian"}}, "data.magnitude: must be one of"),
    ({"data": {"sparsity": [0.1, 0.2]}}, "data.sparsity: a list needs model.n_features = 4"),
    ({"train": {"steps": 100, "log_every": 10, "snapshot_every": 15}}, "train.snapshot_every"),
    ({"train": {"l1_hidden": -1.0}}, "train.l1_hidden"),
])
def test_bad_new_keys(changes, fragment):
    raw = {"model": {"n_features": 4, "n_hidden": 2}, **changes}
    with pytest.raises(tm.UserError, match=fragment.replace(".", r"\.")):
        tm.parse_config(raw)


def _sweep(tmp_path, name, model, data_table, train, sweep):
    cfg = tm.parse_config({"name": name, "model": model, "data": data_table, "train": train,
                           "sweep": sweep})
    return tm.load(tm.run_sweep(cfg, tmp_path / name, quiet=True))


def test_snapshots_hold_the_parameters_over_training(tmp_path):
    ds = _sweep(tmp_path, "snap", {"n_features": 5, "n_hidden": 2}, {"sparsity": 0.5},
                {"steps": 300, "log_every": 50, "snapshot_every": 100}, {"seed": [0, 1]})
    np.testing.assert_array_equal(ds.snapshot, [0, 100, 200, 300])
    assert ds.W_snapshots.dims == ("seed", "snapshot", "hidden", "feature")
    np.testing.assert_array_equal(ds.W_snapshots.isel(snapshot=-1), ds.W)
    np.testing.assert_array_equal(ds.b_snapshots.isel(snapshot=0), 0.0)  # the init
    init_norm = np.linalg.norm(ds.W_snapshots.isel(snapshot=0).values, axis=-2).mean()
    assert 0.4 < init_norm < 1.2  # Xavier: std sqrt(2/7) per entry, two entries per column
    assert not np.allclose(ds.W_snapshots.isel(snapshot=1), ds.W_snapshots.isel(snapshot=0))


# The next three are full trainings (4,000-5,000 steps, 5-9 s on 2 cores): `slow`. The
# default suite checks the same results on the zoo's shipped models (privileged_basis,
# abs_circuit, l1_sparse in tests/test_zoo.py) and rebuilds abs_circuit from its recipe.
@pytest.mark.slow
def test_relu_hidden_model_puts_dense_features_on_their_own_neurons(tmp_path):
    """Privileged basis (paper section 1.12): at density 0.7 the five most important of
    10 features each get a dedicated neuron (monosemantic), the others are dropped."""
    ds = _sweep(tmp_path, "hidden", {"kind": "relu_hidden", "n_features": 10, "n_hidden": 5},
                {"importance_decay": 0.75, "feature_probability": 0.7},
                {"steps": 5000, "log_every": 500}, {"seed": [0, 1, 2, 3]})
    W = ds.W.isel(seed=int(ds.final_loss.argmin("seed"))).values
    share = (W**2).max(axis=0) / np.maximum((W**2).sum(axis=0), 1e-12)
    norms = np.linalg.norm(W, axis=0)
    assert (norms[:5] > 0.9).all() and (norms[5:] < 0.3).all(), norms
    assert (share[:5] > 0.8).all(), share  # mostly on one neuron each
    assert len(set(np.abs(W[:, :5]).argmax(axis=0))) == 5  # five different neurons


@pytest.mark.slow
def test_abs_computation_uses_a_positive_and_a_negative_neuron_per_feature(tmp_path):
    """Paper section 1.13, n=3, m=6: |x| = ReLU(x) + ReLU(-x), one neuron for each side."""
    ds = _sweep(tmp_path, "abs", {"kind": "abs_computation", "n_features": 3, "n_hidden": 6},
                {}, {"steps": 5000, "log_every": 500}, {"seed": [0]})
    assert float(ds.final_loss.squeeze()) < 1e-3  # baseline (predict the mean) is ~0.25
    W1 = ds.W1.squeeze().values  # [H, F]
    for i in range(3):
        assert W1[:, i].max() > 0.5 and W1[:, i].min() < -0.5, W1[:, i]


@pytest.mark.slow
def test_l1_on_hidden_activations_removes_features(tmp_path):
    """Paper 1.14: an L1 penalty on h kills the least important features."""
    ds = _sweep(tmp_path, "l1", {"n_features": 20, "n_hidden": 5},
                {"importance_decay": 0.9, "sparsity": 0.9}, {"steps": 4000, "log_every": 500},
                {"l1_hidden": [0.0, 0.3], "seed": [0]})
    n = (np.linalg.norm(ds.W.values, axis=-2) > 0.5).sum(axis=-1).ravel()
    assert n[0] > 5 and n[1] < n[0] - 2, n
