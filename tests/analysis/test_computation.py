"""Per-run analysis of residual-MLP runs on hand-built parameters with known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels.analysis import computation as A
from toymodels.theory import computation as C


def embedding(F=10, d=16, seed=0):
    W = np.random.default_rng(seed).normal(size=(d, F))
    return W / np.linalg.norm(W, axis=0)


def as_jax(params):
    return {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}


def test_relative_loss_of_the_naive_construction_is_one():
    W_E, p = embedding(), np.full(10, 0.2)
    base = C.naive_loss(W_E, "relu", 4, p)
    out = A.relative_loss(jnp.asarray(base.per_output), jnp.asarray(base.per_output))
    assert float(out["ratio"]) == pytest.approx(1.0)
    per = np.asarray(out["per_output"])
    assert np.all(np.isnan(per[:4])) and np.allclose(per[4:], 1.0)  # computed: naive 0


def test_relative_loss_weighs_by_importance():
    out = A.relative_loss(jnp.array([1.0, 0.0]), jnp.array([1.0, 1.0]), jnp.array([3.0, 1.0]))
    assert float(out["ratio"]) == pytest.approx(0.75)


@pytest.mark.parametrize("task,split", [("relu", [3]), ("abs", [2, 3]),
                                        ("identity_relu", [1, 1, 2])])
def test_naive_neurons_serve_their_own_features(task, split):
    """Neuron q of the naive construction reads ±x_j and writes output j: gain ±1 on
    feature j and 0 on every other, whatever the layer."""
    W_E, p = embedding(d=20), np.linspace(0.5, 0.1, 10)
    params = as_jax(C.naive_params(W_E, task, split, p))
    gains = np.asarray(A.serve_gains(params))
    jobs = C.naive_jobs(task, sum(split), p, np.ones(10))
    expected = np.zeros_like(gains)
    for q, (j, sign) in enumerate(jobs):
        expected[q, j] = sign
    assert np.allclose(gains, expected, atol=1e-4)
    assert np.asarray(A.served(params)).sum(1).tolist() == [1] * sum(split)


def test_served_threshold_counts_shared_neurons():
    W_E = np.eye(3)
    params = {"W_E": W_E, "W_in_0": np.array([[1.0, 0.5, 0.05]]),
              "W_out_0": np.array([[1.0], [0.5], [1.0]])}
    gains = np.asarray(A.serve_gains(as_jax(params)))
    assert np.allclose(gains, [[1.0, 0.25, 0.05]])
    assert np.asarray(A.served(as_jax(params))).tolist() == [[True, True, False]]


def test_mixing_alignment_of_eigenvector_neurons():
    """A neuron reading the top eigenvector of M has top share 1; one reading the
    bottom one has 0; random directions have about top / F."""
    W_E = embedding(F=10, d=16)
    M = W_E.T @ W_E - np.eye(10)
    values, vectors = np.linalg.eigh(M)
    D = C.dual_basis(W_E)  # W_in = v D^T reads v . x
    reads = np.stack([vectors[:, -1], vectors[:, 0]])
    random = np.random.default_rng(1).normal(size=(400, 10))
    params = {"W_E": W_E, "W_in_0": np.concatenate([reads, random]) @ D.T,
              "W_out_0": np.zeros((16, 402))}
    out = A.mixing_alignment(as_jax(params), top=3)
    assert np.allclose(out["eigenvalues"], values[::-1], atol=1e-5)
    share = np.asarray(out["top_share"])
    assert share[0] == pytest.approx(1.0, abs=1e-4) and share[1] == pytest.approx(0, abs=1e-4)
    assert abs(share[2:].mean() - 0.3) < 4 * share[2:].std() / np.sqrt(400)


def hand_uand():
    """Three neurons over m = 4 inputs: an AND of (0, 1), a neuron reading (1, 2, 3)
    with bias −1 (fires 1 on each of its 3 pairs), and a linear neuron x_0 (no bias)."""
    W_E = np.eye(4)
    W_in = np.array([[1, 1, 0, 0], [0, 1, 1, 1], [1, 0, 0, 0]], float)
    return {"W_E": W_E, "W_in_0": W_in, "b_in_0": np.array([-1.0, -1.0, 0.0]),
            "W_out_0": np.zeros((4, 3)), "b_out_0": np.zeros(4)}


def test_uand_truth_tables_of_hand_built_neurons():
    t = A.uand_tables(as_jax(hand_uand()))
    pairs = [tuple(p) for p in C.pairs(4)]  # (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    and_pairs = np.asarray(t["and_pairs"])
    assert [pairs[i] for i in np.flatnonzero(and_pairs[0])] == [(0, 1)]
    assert [pairs[i] for i in np.flatnonzero(and_pairs[1])] == [(1, 2), (1, 3), (2, 3)]
    assert not and_pairs[2].any()  # fires on x_0 alone: no AND
    assert np.asarray(t["fires_single"])[2].tolist() == [True, False, False, False]
    assert np.asarray(t["n_pairs"]).tolist() == [1, 3, 3]
    assert np.allclose(t["interaction"][0], [1, 0, 0, 0, 0, 0])
    assert np.allclose(t["interaction"][2], 0)  # linear in x


def test_win_metrics_of_dedicated_neurons():
    W_E = embedding(d=20)
    params = as_jax(C.naive_params(W_E, "relu", [4], np.full(10, 0.2)))
    m = A.win_metrics(params)
    assert np.allclose(m["feature_dimensionality"], [1] * 4 + [0] * 6, atol=1e-4)
    assert int(m["n_monosemantic"]) == 4 and int(m["n_represented"]) == 4


def test_summarise_runs_batched_equals_unbatched():
    runs = [hand_uand(), {**hand_uand(), "W_in_0": hand_uand()["W_in_0"][::-1].copy()}]
    stacked = {k: jnp.asarray(np.stack([r[k] for r in runs]), jnp.float32) for k in runs[0]}
    batched = A.summarise_runs("uand", 2)(stacked)
    unbatched = jax.jit(lambda p: A.summarise_one(p, "uand", 2))  # one compilation
    for i, run in enumerate(runs):
        one = unbatched(as_jax(run))
        for key, value in one.items():
            assert np.allclose(batched[key][i], value, equal_nan=True), key


@pytest.mark.parametrize("task,p", [("uand", np.linspace(0.3, 0.6, 7)),
                                    ("uand", np.full(7, 0.05)), ("abs", np.linspace(0.1, 0.4, 7))])
def test_naive_bias_baseline_equals_the_float64_theory(task, p):
    """Both branches of uand (the constant neuron pays at p 0.3-0.6, not at 0.05) and abs
    with an odd neuron, against `toymodels.theory.computation.naive_bias_loss`."""
    W_E = embedding(F=7, d=12)
    imp = None if task == "uand" else np.linspace(1.0, 0.5, 7)
    want = C.naive_bias_loss(W_E, task, 5, p, imp)
    got = A.naive_bias_baseline(jnp.asarray(W_E, jnp.float32), jnp.asarray(p, jnp.float32),
                                jnp.ones(7) if imp is None else jnp.asarray(imp, jnp.float32),
                                0.0, task, 5, True)
    np.testing.assert_allclose(got["per_output"], want.per_output, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got["total"], want.total, rtol=1e-5)
