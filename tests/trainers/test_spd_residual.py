"""SPD of a residual MLP (toymodels.spd with a `ResidualTarget`), the science: a hand-built
one-layer residual MLP whose every feature has a dedicated neuron decomposes into one W_in
subcomponent per feature; and the whole route (a residual sweep, its SPD, `analyze`).

Slow: each test compiles one SPD training program (18 s and 26 s on 2 shared cores at load
7; 80 s and 115 s at load 10-13).
"""

import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toymodels as tm
from toymodels.analysis import analyze
from toymodels.analysis.spd_residual import score_one
from toymodels.residual_config import ResidualSpec
from toymodels.spd import decomposition
from toymodels.spd.train import SPDRun, make_train_spd, spd_block_size
from toymodels.spd_config import SPDSpec
from toymodels.spec import ModelSpec, Spec, TrainSpec

pytestmark = pytest.mark.slow

# The hand-built target: n = 3 features embedded by orthonormal columns W_E [5, 3] (a
# fixed rotation), 3 neurons, neuron i reading feature i (W_in = W_Eᵀ) and writing it back
# (W_out = W_E), no biases, task relu (the stream not read): y = W_Eᵀ W_E ReLU(x) = ReLU(x).
# Feature i's piece of W_in is e_i W_E[:, i]ᵀ (the part reading W_E[:, i]). Settings as the
# TMS hand-built test (tests/trainers/test_spd.py: C = k + 1, 600 steps of 64 at a
# cosine-decayed 0.1, β 2e-2, p 1, feature probability 0.4), inputs signed (the residual
# law): 64 seeds in one block (V = 64, the smallest whole block here). When written, 63 of
# the 64 had every piece at a flattened cosine > 0.99 and 3 live W_in subcomponents (the
# 64th a spare fourth live one).
N, D, K, SEEDS = 3, 5, 3, 64


def hand_arrays() -> dict:
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(D, D)))
    W_E = q[:, :N].astype(np.float32)
    return {"W_E": W_E, "W_in": W_E.T.copy(), "W_out": W_E.copy(), "b_in": np.zeros(K, np.float32),
            "b_out": np.zeros(D, np.float32), "W_U": W_E.T.copy()}


def hand_spec() -> Spec:
    return Spec(ModelSpec(n_features=N, n_hidden=K),
                TrainSpec(steps=600, batch_size=64, log_every=300, schedule="cosine",
                          optimizer="adam"),
                residual=ResidualSpec(N, D, K, 1, (K,), False, "fixed", "transpose", "relu"),
                spd=SPDSpec(C=K + 1, d_gate=4))


def folded_cosines(U, V, W_E, W_in) -> np.ndarray:
    """[n] each feature's best flattened cosine (numpy, float64): subcomponent c folded onto
    the features, U_c (W_Eᵀ V_c)ᵀ [k, n], against the piece (W_in W_E)[:, i] e_iᵀ."""
    A = W_in.astype(np.float64) @ W_E
    subs = np.einsum("ck,cn->ckn", U, V.astype(np.float64) @ W_E).reshape(len(U), -1)
    subs /= np.maximum(np.linalg.norm(subs, axis=1, keepdims=True), 1e-30)
    pieces = np.stack([np.outer(A[:, i], np.eye(A.shape[1])[i]).ravel() for i in range(A.shape[1])])
    pieces /= np.linalg.norm(pieces, axis=1, keepdims=True)
    return (pieces @ subs.T).max(axis=1)


@pytest.fixture(scope="module")
def hand_decomposed():
    spec = hand_spec()
    assert spd_block_size(spec) >= SEEDS
    R = SEEDS
    full = lambda v: jnp.full(R, v, jnp.float32)
    hyper = decomposition.SPDHyper(beta=full(2e-2), p=full(1.0), faithfulness_coefficient=full(1.0),
                                   stochastic_coefficient=full(1.0), layerwise_coefficient=full(1.0),
                                   learning_rate=full(0.1), feature_probability=full(0.4))
    arrays = hand_arrays()
    runs = SPDRun(hyper, {k: jnp.broadcast_to(v, (R, *v.shape)) for k, v in arrays.items()})
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(0), jnp.arange(R))
    out = jax.jit(make_train_spd(spec))(keys, jnp.arange(R), runs)
    return arrays, {k: np.asarray(v) for k, v in out.items()}


def test_a_residual_mlp_of_dedicated_neurons_has_one_w_in_subcomponent_per_feature(hand_decomposed):
    """Every feature's piece of W_in has a subcomponent at a flattened cosine > 0.99 (numpy,
    folded onto the features) in at least 60 of the 64 seeds, and the analysis finds
    exactly 3 live W_in subcomponents (the spare one dead) and no failure there."""
    arrays, out = hand_decomposed
    worst = np.array([folded_cosines(out["U_W_in"][s], out["V_W_in"][s], arrays["W_E"],
                                     arrays["W_in"]).min() for s in range(SEEDS)])
    noise = jax.random.uniform(jax.random.key(1), (2, 4096, N))
    params = {m: {part: jnp.asarray(out[f"{part}_{m}"]) for part in
                  ("U", "V", *decomposition.GATE_PARTS)} for m in ("W_in", "W_out")}
    scores = jax.jit(jax.vmap(lambda p: score_one(p, arrays, jnp.float32(0.4), noise,
                                                  jnp.float32(0.1), False)))(params)
    good = ((worst > 0.99) & (np.asarray(scores["n_live_W_in"]) == N)
            & ~np.asarray(scores["failed"]) & (np.asarray(scores["mmcs_W_in"]) > 0.99))
    assert (worst > 0.99).sum() >= 60, np.sort(worst)[:8]
    assert good.sum() >= 60, good.sum()


def test_the_whole_route_from_a_residual_sweep(tmp_path):
    """A residual sweep of two seeds, its SPD (`spd.source` its directory: the shape, the
    feature probability and the residual defaults pinned; a source_run axis with the
    source's seeds as `source_seed`; each run's `density` the source's 0.25), then
    `analyze`."""
    source = tmp_path / "resid"
    tm.run_sweep(tm.parse_config({"name": "r", "residual": {"n_features": 4, "d_embed": 8, "d_mlp": 2},
                                  "data": {"feature_probability": 0.25},
                                  "train": {"steps": 20, "log_every": 10, "batch_size": 64,
                                            "eval_samples": 8192},
                                  "sweep": {"seed": [3, 4]}}), source, quiet=True)
    spd = {"name": "s", "spd": {"source": str(source), "C": 6, "d_gate": 4},
           "train": {"steps": 20, "log_every": 10, "batch_size": 64}, "sweep": {"seed": [0, 1]}}
    ds = analyze(tm.load(tm.run_sweep(tm.parse_config(spd, "s.toml"), tmp_path / "spd", quiet=True)))
    pinned = tomllib.loads(ds.attrs["config"])["spd"]
    assert pinned["source_residual"]["d_embed"] == 8 and pinned["feature_probability"] == 0.25
    assert (pinned["beta"], pinned["p"]) == (1e-5, 2.0) and pinned["runs"] == [0, 1]
    runs = ("source_run", "seed")
    assert ds.U_W_in.dims == (*runs, "component", "neuron") and ds.V_W_in.shape[-1] == 8
    assert ds.target_W_E.dims == (*runs, "embed", "feature") and ds.attrs["target"] == "residual"
    assert list(ds.source_seed.values) == [3, 4] and ds.source_seed.dims == ("source_run",)
    assert ds.density.dims == (*runs, "feature") and (ds.density == 0.25).all()
    assert ds.mmcs_W_in.dims == runs and ds.best_cosine_W_in.dims == (*runs, "feature")
    assert (ds.n_live_W_in <= 6).all() and np.isfinite(ds.faithfulness).all()
