"""The science of the amortisation-gap experiment (sweeps/sae_amortisation.toml): 16
random unit features in 8 dims, exactly 3 active per example, half-normal magnitudes.

Expected values come from numpy written here (an exhaustive least-squares search over
every support, a greedy OMP of its own), never from the code under test.
"""

import itertools
import tomllib
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import toymodels as tm
from toymodels.dictionary import analysis
from toymodels.dictionary.pursuit import NOISE_FLOOR, orthogonal_matching_pursuit

F, D, K = 16, 8, 3
SWEEP = Path(__file__).resolve().parents[2] / "sweeps" / "sae_amortisation.toml"


def _world(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features [F, D] unit rows, codes [n, F] with exactly K active at |N(0, 1)|,
    h = codes @ features [n, D]), float64, from numpy."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((F, D))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    codes = np.zeros((n, F))
    for row in codes:
        row[rng.choice(F, K, replace=False)] = np.abs(rng.standard_normal(K))
    return features, codes, codes @ features


def _exhaustive(features, h) -> np.ndarray:
    """[n, F] the least-squares fit on the best of all C(F, K) supports (smallest
    residual), per example: the exact K-sparse code when it is unique."""
    supports = list(itertools.combinations(range(F), K))
    atoms = np.stack([features[list(s)] for s in supports])  # [S, K, D]
    coefficients = np.einsum("skd,nd->nsk", np.linalg.pinv(atoms.transpose(0, 2, 1)), h)
    residual = np.linalg.norm(h[:, None] - np.einsum("nsk,skd->nsd", coefficients, atoms), axis=-1)
    best = residual.argmin(axis=1)
    codes = np.zeros((len(h), F))
    for i, s in enumerate(best):
        codes[i, list(supports[s])] = coefficients[i, s]
    return codes


def _greedy_omp(features, x) -> np.ndarray:
    """[F] non-negative OMP of one example x [D], K steps: add the unchosen atom of largest
    positive correlation with the residual (above NOISE_FLOOR ||x||), refit the support by
    least squares, clip at 0."""
    code, chosen = np.zeros(F), []
    for _ in range(K):
        scores = features @ (x - code @ features)
        scores[chosen] = -np.inf
        j = int(np.argmax(scores))
        if scores[j] <= NOISE_FLOOR * np.linalg.norm(x):
            break
        chosen.append(j)
        fit = np.linalg.lstsq(features[chosen].T, x, rcond=None)[0]
        code = np.zeros(F)
        code[chosen] = np.maximum(fit, 0.0)
    return code


def test_omp_with_the_true_features_and_k_3_is_numpys_omp_and_short_of_the_exact_code():
    """The 3-sparse code is unique here (any 6 of 16 random directions in 8 dims are
    independent): the exhaustive search finds every example's code exactly. Our OMP at
    k = 3 gives the codes of the numpy OMP above (the same greedy algorithm), and greedy
    selection among features at cosine up to ~0.8 misses the true support in about a third
    of the examples (0.63 found exactly, code MCC 0.91 at this seed; 0.65 and 0.73 at
    seeds 1, 2): even with the true
    dictionary and the true k, OMP is not the exact code."""
    features, codes, h = _world(seed=0, n=256)
    exact = _exhaustive(features, h)
    np.testing.assert_allclose(exact, codes, atol=1e-8)
    ours = np.asarray(orthogonal_matching_pursuit(jnp.asarray(features, jnp.float32),
                                                  jnp.asarray(h, jnp.float32), K, nonnegative=True))
    numpy_omp = np.stack([_greedy_omp(features, x) for x in h])
    same = np.all(np.abs(ours - numpy_omp) < 1e-4, axis=1)
    assert same.mean() >= 0.99, same.mean()
    found = np.all((ours > 0) == (codes > 0), axis=1).mean()
    mcc = float(np.mean(np.asarray(analysis.paired_pearson(jnp.asarray(codes), jnp.asarray(ours)))))
    assert 0.45 < found < 0.9 and 0.8 < mcc < 0.97, (found, mcc)


def _mean_se(values) -> tuple[float, float]:
    """(mean, standard error) over the seeds."""
    values = np.asarray(values, float).ravel()
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


@pytest.mark.slow
def test_the_relu_encoder_leaves_an_amortisation_gap_beyond_the_seeds_spread(tmp_path):
    """sweeps/sae_amortisation.toml's ReLU SAEs, 4 seeds, 1,000 steps (about 20 s: one
    compile to train, one to analyse). With the decoder fixed to the truth, the encoder's
    code MCC is below OMP's on the true features, at the true k = 3 and at the encoder's
    own L0, by more than 0.05 and by more than 5 standard errors of the seeds (0.75
    against 0.88 when written); OMP beats gradient pursuit at the same k."""
    raw = tomllib.loads(SWEEP.read_text())
    raw["train"]["steps"] = 1000
    raw["sae"].pop("k")  # topk's
    raw["sweep"] = {"kind": ["relu"], "seed": [0, 1, 2, 3]}
    out = tm.run_sweep(tm.parse_config(raw, SWEEP.name), tmp_path / "a", quiet=True)
    ds = tm.analyze(tm.load(out))
    encoder, se = _mean_se(ds.mcc)
    for name in ("mcc_oracle_omp", "mcc_truth_omp"):
        omp, _ = _mean_se(ds[name])
        assert omp - encoder > max(0.05, 5 * se), (name, omp, encoder, se)
    assert float(ds.mcc_oracle_omp.mean()) > float(ds.mcc_oracle_gp.mean())
