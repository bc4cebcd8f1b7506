"""The ground-truth scores of `toymodels analyze` on SAE sweeps, checked where the answer
is known: a perfect SAE scores perfectly, random decoders score the exact random-dictionary
value, and the analysis of a trained sweep agrees with a numpy recomputation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import toymodels as tm
from toymodels import data
from toymodels.dictionary import analysis, scores
from toymodels.spec import DataSpec, ModelSpec, Spec, TrainSpec

D = 4


def _spec(F=D):
    return Spec(ModelSpec("linear", F, D), TrainSpec(batch_size=64), DataSpec())


def _score(params, truth, density, n=2048, kind="relu", seed=0):
    spec = _spec(truth.shape[1])
    noise = data.sample_noise(jax.random.key(seed), spec, n)
    fn = jax.jit(lambda p, t, q: analysis.score_one(
        p, jnp.float32(0), jnp.int32(1), jnp.float32(1e-3), t, q, noise, kind=kind,
        spec=spec, max_k=D))
    return jax.tree.map(np.asarray, fn(params, truth, density))


def test_a_perfect_sae_on_orthogonal_features_scores_perfectly():
    """Truth: the D coordinate axes, scaled by 0.9 (represented); SAE: encoder = decoder =
    identity, no biases, so its codes are exactly x."""
    truth = 0.9 * np.eye(D, dtype=np.float32)
    eye = np.eye(D, dtype=np.float32)
    params = {"encoder": eye / 0.9, "b_enc": np.zeros(D, np.float32), "decoder": 0.9 * eye,
              "b_dec": np.zeros(D, np.float32)}
    out = _score(params, truth, np.full(D, 0.3, np.float32))
    for name in ("mmcs", "recovered_90", "recovered_99", "support_encoder", "support_gp",
                 "support_mp", "support_omp", "support_truth_gp", "support_truth_mp",
                 "support_truth_omp", "support_oracle_gp", "support_oracle_omp",
                 "mcc_truth_mp", "mcc_truth_gp", "mcc_truth_omp", "mcc_oracle_gp",
                 "mcc_oracle_omp", "recall_encoder",
                 "precision_encoder", "shrinkage", "uniqueness", "firing_precision",
                 "firing_recall", "firing_f1", "firing_accuracy", "explained_variance",
                 "norm_shrinkage"):
        assert out[name] == pytest.approx(1.0, abs=1e-5), name
    assert out["fvu"] < 1e-10 and out["fvu_gp"] < 1e-10
    assert out["l0"] == pytest.approx(out["true_l0"]) and out["true_l0"] == pytest.approx(1.2, abs=0.1)
    assert out["latent_feature"].tolist() == list(range(D))
    for name in ("correlations", "correlations_mp", "correlations_gp", "correlations_omp"):
        assert scores.matched_mean(out[name], np.ones(D, bool)) == pytest.approx(1.0, abs=1e-5), name
    assert "absorption_gap" not in out and "hedging" not in out  # no parent, no hierarchy


def test_unrepresented_features_are_not_targets():
    """A column of norm 0.1 (< 0.5) is no ground truth: a perfect SAE of the other three
    still has MMCS 1 and finds every support, and n_truth is 3."""
    truth = 0.9 * np.eye(D, dtype=np.float32)
    truth[3, 3] = 0.1
    eye = np.eye(D, dtype=np.float32)[:3]
    params = {"encoder": eye / 0.9, "b_enc": np.zeros(3, np.float32), "decoder": 0.9 * eye,
              "b_dec": np.zeros(D, np.float32)}
    out = _score(params, truth, np.full(D, 0.3, np.float32))
    assert out["n_truth"] == 3
    assert out["mmcs"] == pytest.approx(1.0, abs=1e-6)
    assert out["support_encoder"] == pytest.approx(1.0)
    assert np.isnan(out["best_cosine"][3])


def test_random_decoders_score_the_exact_random_dictionary_value():
    """The mean MMCS of 200 SAEs with uniformly random decoders (N = 6 latents, 10
    features in 4 dims) equals `random_mmcs(6, 4)` (exact, by quadrature) within 3
    standard errors; so does the share recovered above 0.9."""
    N, F = 6, 10
    keys = jax.random.split(jax.random.key(1), 200)
    truth = np.array(jax.random.normal(jax.random.key(2), (D, F)))
    truth /= np.linalg.norm(truth, axis=0)
    spec = _spec(F)
    noise = data.sample_noise(jax.random.key(3), spec, 64)

    def one(key):
        dec = jax.random.normal(key, (N, D))
        p = {"encoder": dec, "b_enc": jnp.zeros(N), "decoder": dec, "b_dec": jnp.zeros(D)}
        out = analysis.score_one(p, jnp.float32(0), jnp.int32(1), jnp.float32(1e-3), truth,
                                 jnp.full(F, 0.2), noise, kind="relu", spec=spec, max_k=D)
        return out["mmcs"], out["recovered_90"]

    mmcs, rec = map(np.asarray, jax.jit(jax.vmap(one))(keys))
    for values, exact in ((mmcs, scores.random_mmcs(N, D)), (rec, scores.random_recovered(N, D, 0.9))):
        se = values.std(ddof=1) / np.sqrt(len(values))
        assert abs(values.mean() - exact) < 3 * se, (values.mean(), exact, se)


@pytest.mark.slow  # 9-12 s (the default suite took 441 s of its 420; CI runs it)
def test_analyze_of_a_trained_sweep_matches_numpy(tmp_path):
    """`analyze` on a small synthetic SAE sweep: mmcs, recovered_90, the random baseline,
    the lift and SynthSAEBench's decoder MCC agree with numpy computed from the stored
    decoder and truth. Given a hierarchy (a `parent` variable: 0 > 1, 2 and 3 > 4, 5), the
    hierarchy metrics are NaN at the roots and in range at the children; every benchmark
    variable is in range."""
    raw = {"name": "a", "sae": {"source": "synthetic", "n_features": 6, "n_hidden": 3,
                                "kind": "relu", "width": 6, "l1_coefficient": 0.1},
           "data": {"feature_probability": 0.1},
           "train": {"steps": 200, "batch_size": 256, "log_every": 100, "learning_rate": 1e-2},
           "sweep": {"seed": [0, 1]}}
    out = tm.run_sweep(tm.parse_config(raw, "a.toml"), tmp_path / "a", quiet=True)
    ds = tm.analyze(tm.load(out).assign(parent=("feature", np.array([-1, 0, 0, -1, 3, 3]))))
    for s in range(2):
        run = ds.isel(seed=s)
        truth = run.truth.values.T / np.linalg.norm(run.truth.values.T, axis=1, keepdims=True)
        dec = run.decoder.values / np.linalg.norm(run.decoder.values, axis=1, keepdims=True)
        best = (truth @ dec.T).max(axis=1)
        assert float(run.mmcs) == pytest.approx(best.mean(), abs=1e-5)
        assert float(run.recovered_90) == pytest.approx((best > 0.9).mean())
        assert float(run.mmcs_lift) == pytest.approx(best.mean() - scores.random_mmcs(6, 3), abs=1e-5)
        similarity = np.abs(truth @ dec.T)
        rows, cols = scipy.optimize.linear_sum_assignment(-similarity)
        assert float(run.decoder_mcc) == pytest.approx(similarity[rows, cols].mean(), abs=1e-5)
        for name in ("absorption_gap", "hedging"):
            values = run[name].values
            assert np.isnan(values[[0, 3]]).all() and (np.abs(values[[1, 2, 4, 5]]) <= 1).all(), name
    assert {"support_gp", "fvu_omp", "mcc", "matched_cosine", "dead_fraction", "mcc_gp",
            "mcc_truth_omp", "support_oracle_omp"} <= set(ds.data_vars)
    for name in ("mcc_mp", "mcc_gp", "mcc_omp", "mcc_truth_gp", "mcc_oracle_gp", "mcc_oracle_omp"):
        assert ((ds[name] > -1) & (ds[name] <= 1)).all(), name
    for name in ("uniqueness", "firing_precision", "firing_recall", "firing_f1", "firing_accuracy",
                 "latent_firing_f1"):
        assert ((ds[name] >= 0) & (ds[name] <= 1)).all(), name
    np.testing.assert_allclose(ds.explained_variance, 1 - ds.fvu, atol=1e-6)
    assert ds.decoder_projection.sizes["rank"] == 6 and (ds.decoder_projection.diff("rank") <= 0).all()
    assert "rank" in ds.indexes  # indexed like latent, so groups of different widths combine
    assert np.isfinite(ds.absorption_gap_mean).all() and np.isfinite(ds.hedging_mean).all()
