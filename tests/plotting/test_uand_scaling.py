"""The U-AND scaling experiment (sweeps/uand_scaling.toml, plot kind uand_scaling): the
neuron census on the random construction, and the science of a small trained U-AND.

Expected values come from the construction's definition and from numpy written here
(every one of the 2^m boolean inputs enumerated with its probability), never from the
code under test.
"""

import itertools
import math

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import toymodels as tm
from toymodels import plotting
from toymodels.plotting import uand_scaling as u
from toymodels.theory.uand import random_uand_params


def test_a_construction_neuron_reads_its_subset_and_fires_on_its_pairs():
    """Neuron k of the random construction is ReLU(Σ_{i in S_k} x_i − 1): it reads |S_k|
    inputs, is active on exactly the C(|S_k|, 2) pairs inside S_k (on no single), and is an
    AND neuron of one pair exactly when |S_k| = 2."""
    m, d = 7, 40
    W_E = np.linalg.qr(np.random.default_rng(1).standard_normal((9, m)))[0]
    P = random_uand_params(W_E, d, 0.35, seed=3)
    S = (np.random.default_rng(3).random((d, m)) < 0.35)  # the construction's own draw
    size = S.sum(1)
    batch = {k: jnp.asarray(v, jnp.float32)[None] for k, v in P.items()}  # one run
    c = {k: np.asarray(v)[0] for k, v in u._census_runs(u.READ_SHARE)(batch).items()}
    alive = size >= 2
    np.testing.assert_array_equal(c["alive"], alive)
    np.testing.assert_array_equal(c["reads"][alive], size[alive])
    np.testing.assert_array_equal(c["reads"][~alive], 0)
    np.testing.assert_array_equal(c["pairs"], [math.comb(int(s), 2) if s >= 2 else 0 for s in size])
    np.testing.assert_array_equal(c["and_one"], size == 2)
    assert 0 < (size == 2).sum() < alive.sum()  # the test covers both kinds


def test_slope_of_a_power_law():
    d = np.array([8, 16, 64, 256])
    assert u.slope(d, 3.0 * d**-0.5) == pytest.approx(-0.5)
    assert u.slope(d, np.array([1.0, 0.0, 0.0, 2.0])) == pytest.approx(np.log(2) / np.log(32))


M, P_ON, D_MLP = 6, 0.2, 15  # D_MLP = C(6, 2): the naive baseline is exact (loss 0)


def _exact_loss(W_E, W_in, b_in, R) -> float:
    """The population loss per output of one trained model: all 2^M inputs, weighted by
    their probability (numpy, from the task's definition)."""
    X = np.array(list(itertools.product([0.0, 1.0], repeat=M)))
    weight = np.prod(np.where(X == 1, P_ON, 1 - P_ON), axis=1)
    i, j = np.triu_indices(M, 1)
    acts = np.maximum(X @ W_E.T @ W_in.T + b_in, 0.0)
    return float(weight @ ((acts @ R.T - X[:, i] * X[:, j]) ** 2).mean(1))


def _dedicated(W_E, W_in, b_in) -> int:
    """Neurons active on exactly one of the inputs with 1 or 2 features on, and that one
    a pair (numpy): a dedicated AND neuron, as the naive baseline's every neuron is."""
    eye = np.eye(M)
    i, j = np.triu_indices(M, 1)
    X = np.concatenate([eye, eye[i] + eye[j]])
    acts = np.maximum(X @ W_E.T @ W_in.T + b_in, 0.0)  # [M + C, K]
    on = acts >= 0.5 * acts.max(0)
    return int(((on.sum(0) == 1) & on[M:].any(0) & (acts.max(0) > 0)).sum())


@pytest.mark.slow  # one compiled program, 2 seeds x 600 steps: about 15 s on 2 loaded cores
def test_trained_uand_with_as_many_neurons_as_pairs_is_dense_not_naive(tmp_path):
    """m = 6 boolean inputs on with p = 0.2, d_mlp = C(6, 2) = 15 neurons, learned readout.
    Measured (2 seeds, 600 steps of Adam at lr 0.01): exact loss 0.0143 and 0.0116 per
    output. Both far below outputting nothing (p² = 0.04) and below the best affine
    readout of the inputs (p²(1 − p)² = 0.0256), so the network computes ANDs; but far
    above the naive baseline's exact 0 (one dedicated ReLU(x_i + x_j − 1) per pair): the
    trained circuit is not the dedicated one, and few of its neurons are AND neurons of one
    pair. The trainer's sampled final_loss agrees with the exact enumeration."""
    c = tm.parse_config({
        "name": "uand_small",
        "residual": {"n_features": M, "d_embed": 8, "d_mlp": D_MLP, "task": "uand",
                     "readout": "learned"},
        "data": {"feature_probability": P_ON},
        "train": {"steps": 600, "batch_size": 512, "log_every": 100, "learning_rate": 0.01,
                  "eval_samples": 16384},
        "sweep": {"seed": [0, 1]}}, "uand_small.toml")
    ds = tm.load(tm.run_sweep(c, tmp_path / "uand", quiet=True))
    for seed in (0, 1):
        r = ds.sel(seed=seed)
        W = [np.asarray(r[k].values, np.float64) for k in ("W_E", "W_in_0", "b_in_0", "R")]
        exact = _exact_loss(*W)
        assert abs(float(r.final_loss) - exact) < 4 * float(r.final_loss_se) + 1e-5, seed
        assert 0.004 < exact < 0.02, (seed, exact)
        assert exact < P_ON**2 * (1 - P_ON) ** 2
        assert _dedicated(*W[:3]) < D_MLP // 2, seed


def _fake_sweep(ds_d=(4, 6), m=5) -> xr.Dataset:
    """A uand sweep over d_mlp made by hand: seed 0 of each d is the random construction
    (neurons past d NaN, as the trainer pads a static axis), final_loss a power law."""
    W_E = np.eye(m + 1, m)
    K, n_out = max(ds_d), m * (m - 1) // 2
    stack = {k: [] for k in u.PARAMS}
    for d in ds_d:
        P = random_uand_params(W_E, d, 0.6, seed=d)
        pad = {"W_in_0": ((0, K - d), (0, 0)), "b_in_0": ((0, K - d),),
               "W_out_0": ((0, 0), (0, K - d)), "R": ((0, 0), (0, K - d))}
        for k in u.PARAMS:
            width = pad.get(k, ((0, 0),) * P[k].ndim)
            stack[k].append(np.pad(P[k], width, constant_values=np.nan)[None])
    dims = {"W_E": ("embed", "feature"), "W_in_0": ("neuron_0", "embed"),
            "b_in_0": ("neuron_0",), "W_out_0": ("embed", "neuron_0"), "b_out_0": ("embed",),
            "R": ("output", "neuron")}
    d = np.array(ds_d, float)
    return xr.Dataset(
        {**{k: (("d_mlp", "seed", *dims[k]), np.stack(v)) for k, v in stack.items()},
         "final_loss": (("d_mlp", "seed"), (0.1 * d**-0.7)[:, None]),
         "final_loss_se": (("d_mlp", "seed"), np.full((len(d), 1), 1e-4)),
         "density": (("d_mlp", "seed", "feature"), np.full((len(d), 1, m), 0.2))},
        coords={"d_mlp": list(ds_d), "seed": [0]},
        attrs={"name": "fake", "trainer": "residual", "task": "uand", "n_layers": 1})


def test_the_figure_draws_the_fitted_slope_and_the_census(monkeypatch):
    monkeypatch.setattr(u, "EXTRA_D", ())
    ds = _fake_sweep()
    assert plotting.why_not("uand_scaling", ds) is None
    fig = plotting.PLOTS["uand_scaling"](ds, construction_seeds=1)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("trained" in t and "slope -0.70" in t for t in labels), labels
    shares = [sum(b.get_height() for b in c) for c in fig.axes[1].containers]
    assert len(fig.axes[1].containers) == 4 and sum(shares) == pytest.approx(2.0)  # 2 d's
    census = u.census(ds)
    assert [c["alive"].shape for c in census.values()] == [(1, 4), (1, 6)]
