"""The "Sparse but wrong" measures (toymodels.dictionary.sparse_but_wrong) on hand-built
decoders and curves, and (slow) the paper's finding on a small trained version of
sweeps/sae_sparse_but_wrong.toml.

Every expected value is derived from the construction (in the comments) or is the
paper's stated finding (Chanin & Garriga-Alonso 2025), never produced by the code under
test.
"""

import tomllib
from pathlib import Path

import numpy as np
import pytest

import toymodels as tm
from toymodels.dictionary import benchmark
from toymodels.dictionary import sparse_but_wrong as sbw

# an orthonormal basis of R^4 that is not the coordinate axes: rows t0 .. t3
_Q = np.linalg.qr(np.array([[2.0, 1.0, 0.0, 1.0], [1.0, 3.0, 1.0, 0.0],
                            [0.0, 1.0, 4.0, 1.0], [1.0, 0.0, 1.0, 5.0]]))[0].T
SWEEP = Path(__file__).parents[2] / "sweeps" / "sae_sparse_but_wrong.toml"


def test_partner_mixing_reads_each_latents_lean_towards_the_partner_with_its_sign():
    t0, t1, t2, t3 = _Q
    a = 0.3
    latents = np.stack([
        3.0 * (np.cos(a) * t0 + np.sin(a) * t1),  # t0's latent leans to t1 by sin(a)
        (t1 - 0.5 * t0) / np.sqrt(1.25),          # t1's leans away from t0: -0.5/sqrt(1.25)
        -2.0 * t2,                                 # t2's, flipped: turned back, no lean
        0.6 * t3 + 0.8 * t2,                       # t3's, leaning to t2 by 0.8
    ])
    # t3's best latent by |cos| is latent 3 (cos 0.6; latent 2 has cos 0 with t3); t2's
    # best is latent 2 (|cos| 1 > latent 3's 0.8), so t2 -> t3 reads latent 2: 0, and
    # t3 -> t2 reads latent 3: +0.8
    first, second = np.array([0, 1, 2, 3]), np.array([1, 0, 3, 2])
    expected = [np.sin(a), -0.5 / np.sqrt(1.25), 0.0, 0.8]
    np.testing.assert_allclose(sbw.partner_mixing(_Q, latents, first, second), expected,
                               atol=1e-12)


def test_partner_mixing_of_a_perfect_latent_is_zero_even_for_non_orthogonal_features():
    # features at cosine 0.5: a latent that IS feature 0 has cos 0.5 with feature 1, but
    # no mixing beyond the features' own overlap
    truth = np.array([[1.0, 0.0], [0.5, np.sqrt(0.75)]])
    np.testing.assert_allclose(sbw.partner_mixing(truth, truth * 2.0, [0, 1], [1, 0]), 0.0,
                               atol=1e-12)


def test_both_ways_and_mixing_by_sign():
    first, second, rho = sbw.both_ways([[0, 1, 0.6], [2, 3, -0.4]])
    assert first.tolist() == [0, 2, 1, 3] and second.tolist() == [1, 3, 0, 2]
    assert rho.tolist() == [0.6, -0.4, 0.6, -0.4]
    positive, negative = sbw.mixing_by_sign([0.2, -0.1, 0.4, -0.3], rho)
    assert positive == pytest.approx(0.3) and negative == pytest.approx(-0.2)
    assert np.isnan(sbw.mixing_by_sign([0.1], [0.5])[1])  # no negative pair


@pytest.mark.parametrize("curve, knee", [
    ([9.0, 7.0, 5.0, 3.0, 1.0, 0.9, 0.8, 0.7], 4),   # falls by 2 a step to x[4], then 0.1
    ([0.8, 0.6, 0.3, 0.1, 0.02, 0.2, 0.4, 0.6], 4),   # a V, lowest at x[4]
    ([1.0, 0.5, 0.25, 0.125, 0.0625], 2),             # 2^-i, i = 0..4, both axes to [0, 1]:
])                                                    # 0.28, 0.30, 0.18 below the chord
def test_elbow_of_hand_built_curves(curve, knee):
    assert sbw.elbow(np.arange(len(curve)), curve) == knee


def test_a_straight_or_concave_curve_has_no_elbow_and_bad_input_raises():
    assert sbw.elbow([1, 2, 3], [3.0, 2.0, 1.0]) == 0
    assert sbw.elbow([1, 2, 3], [3.0, 2.9, 1.0]) == 0  # above the chord
    with pytest.raises(ValueError, match="increasing"):
        sbw.elbow([1, 1, 2], [1.0, 0.5, 0.0])


# ---- science: the paper's finding on a small trained version of the sweep (slow)


def small_sweep(steps: int, batch: int, ks: list, seeds: list) -> tm.SweepConfig:
    """The sweep file with fewer steps, a smaller batch, and these k and seeds."""
    raw = tomllib.loads(SWEEP.read_text())
    raw["train"].update(steps=steps, batch_size=batch)
    raw["sweep"] = {"k": ks, "seed": seeds}
    return tm.parse_config(raw, str(SWEEP))


@pytest.mark.slow
def test_the_right_k_recovers_the_features_and_a_low_k_mixes_positive_partners(tmp_path):
    """The paper: MCC peaks at the true L0; too low a k mixes a latent's positively
    correlated partner in with a positive sign. The true L0 is the sum of the world's
    firing probabilities (5.0: the copula keeps each marginal, and a magnitude N(1, 0.15²)
    is almost never rectified to 0)."""
    raw = tomllib.loads(SWEEP.read_text())
    true_l0 = sum(raw["synthetic"]["probabilities"])
    assert true_l0 == pytest.approx(5.0)
    ks = [2, 3, 4, 5, 6, 7, 8]
    ds = tm.load(tm.run_sweep(small_sweep(1000, 512, ks, [0]), tmp_path / "sbw", quiet=True))
    truth = ds.truth.values.T  # [F, d]
    decoders = ds.decoder.isel(seed=0).values  # [K, N, d]
    mcc = [benchmark.decoder_mcc(truth, w) for w in decoders]
    peak = ks[int(np.argmax(mcc))]
    assert abs(peak - true_l0) <= 1, (peak, mcc)
    first, second, rho = sbw.both_ways(raw["synthetic"]["correlations"])
    positive, _ = sbw.mixing_by_sign(sbw.partner_mixing(truth, decoders[0], first, second), rho)
    at_true, _ = sbw.mixing_by_sign(sbw.partner_mixing(truth, decoders[3], first, second), rho)
    assert positive > 0.1 and abs(at_true) < 0.05, (positive, at_true)
