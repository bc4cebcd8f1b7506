"""The SynthSAEBench metrics of toymodels.dictionary.benchmark on hand-built SAEs.

Every expected value is derived from the construction (in the comments), never produced
by the code under test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels.dictionary import benchmark, scores

# the functions under test, jitted: one compilation is far cheaper than eager dispatch here
uniqueness, best_latents, hedging, absorption_gap, firing_scores, mean_firing_scores = map(
    jax.jit, (benchmark.uniqueness, benchmark.best_latents, benchmark.hedging,
              benchmark.absorption_gap, benchmark.firing_scores, benchmark.mean_firing_scores))
norm_shrinkage, explained_variance, decoder_projection_profile, nan_mean = map(
    jax.jit, (benchmark.norm_shrinkage, benchmark.explained_variance,
              benchmark.decoder_projection_profile, benchmark.nan_mean))
nth_decoder_projection = jax.jit(benchmark.nth_decoder_projection, static_argnums=3)

# an orthonormal basis of R^3 that is not the coordinate axes
_Q = np.linalg.qr(np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]]))[0].T
TRUTH = jnp.asarray(_Q, jnp.float32)  # [3, 3] unit, orthogonal rows


def test_decoder_mcc_and_uniqueness_of_hand_built_decoders():
    t0, t1, t2 = _Q
    # the truth permuted, rescaled and negated: every |cos| matched is 1, every latent unique
    exact = np.stack([-2.0 * t2, 0.5 * t0, 3.0 * t1])
    assert benchmark.decoder_mcc(TRUTH, exact) == pytest.approx(1.0, abs=1e-6)
    assert float(uniqueness(TRUTH, jnp.asarray(exact))) == pytest.approx(1.0)
    # t0 twice and t1: the matching pairs t0-t0, t1-t1 and t2 with the spare t0 (|cos| 0)
    duplicate = np.stack([t0, t0, t1])
    assert benchmark.decoder_mcc(TRUTH, duplicate) == pytest.approx(2 / 3, abs=1e-6)
    assert float(uniqueness(TRUTH, jnp.asarray(duplicate))) == pytest.approx(2 / 3)
    # wider (N = 4): the three true latents match perfectly (3 pairs), the fourth,
    # (t0 + t1)/sqrt2, best matches t0 (a tie, the first): 3 distinct features / 4 latents
    wide = np.stack([t0, t1, t2, (t0 + t1) / np.sqrt(2)])
    assert benchmark.decoder_mcc(TRUTH, wide) == pytest.approx(1.0, abs=1e-6)
    assert float(uniqueness(TRUTH, jnp.asarray(wide))) == pytest.approx(0.75)
    # narrower (N = 2): min(F, N) = 2 pairs, both perfect, so 1 (the project's
    # matched_mean of the same |cos| counts the unmatched feature 0: 2/3)
    narrow = np.stack([t1, t0])
    assert benchmark.decoder_mcc(TRUTH, narrow) == pytest.approx(1.0, abs=1e-6)
    assert scores.matched_mean(np.abs(_Q @ narrow.T)) == pytest.approx(2 / 3, abs=1e-6)
    # feature 2 not represented: the latent t2 must match a represented feature (|cos| 0
    # with both, the first: 0), so t0, t2 -> {0} and t1 -> {1}: 2 distinct / 3
    represented = jnp.array([True, True, False])
    assert float(uniqueness(TRUTH, jnp.asarray(exact), represented)) == pytest.approx(2 / 3)


def test_firing_scores_count_each_latent_against_its_matched_feature():
    """Feature 0 on in examples 0-2, feature 1 in 3-4, nothing in 5. Latent 0 (feature 0)
    fires in 0, 1, 3: TP 2, FP 1, FN 1, TN 2 -> precision = recall = F1 = 2/3, accuracy 4/6.
    Latent 1 (feature 1) fires exactly in 3, 4 (one code negative: non-zero fires): all 1.
    Latent 2 (feature 1) never fires: precision, recall, F1 0 (undefined counts 0), TN 4:
    accuracy 4/6. Means: 5/9, 5/9, 5/9 and 7/9."""
    true = np.zeros((6, 2), np.float32)
    true[0:3, 0], true[3:5, 1] = [0.5, 1.0, 0.2], [0.7, 0.3]
    codes = np.zeros((6, 3), np.float32)
    codes[[0, 1, 3], 0], codes[[3, 4], 1] = [1.0, 2.0, 0.1], [0.4, -0.3]
    out = firing_scores(jnp.asarray(true), jnp.asarray(codes), jnp.array([0, 1, 1]))
    np.testing.assert_allclose(out["precision"], [2 / 3, 1, 0], atol=1e-6)
    np.testing.assert_allclose(out["recall"], [2 / 3, 1, 0], atol=1e-6)
    np.testing.assert_allclose(out["f1"], [2 / 3, 1, 0], atol=1e-6)
    np.testing.assert_allclose(out["accuracy"], [4 / 6, 1, 4 / 6], atol=1e-6)
    means = mean_firing_scores(jnp.asarray(true), jnp.asarray(codes), jnp.array([0, 1, 1]))
    for name, value in {"precision": 5 / 9, "recall": 5 / 9, "f1": 5 / 9, "accuracy": 7 / 9}.items():
        assert float(means[name]) == pytest.approx(value, abs=1e-6), name


def test_shrinkage_and_explained_variance_of_known_codes():
    """x_hat = x / 2 on a batch {v, -v, w, -w, 0} (mean 0): every counted ratio
    ||x_hat|| / ||x|| is 1/2 (the zero example, reconstructed as (1, 1), is not counted);
    the residual is x / 2, so the unexplained share is 1/4 and the explained 3/4 - with the
    zero example's residual (1, 1) adding 2 / (sum ||x||² = 2 (9 + 25)) to the unexplained."""
    x = jnp.array([[3.0, 0.0], [-3.0, 0.0], [3.0, 4.0], [-3.0, -4.0], [0.0, 0.0]])
    x_hat = (0.5 * x).at[4].set(jnp.array([1.0, 1.0]))
    assert float(norm_shrinkage(x, x_hat)) == pytest.approx(0.5, abs=1e-6)
    assert float(explained_variance(x, x_hat)) == pytest.approx(0.75 - 2 / 68, abs=1e-6)
    assert float(explained_variance(x, x)) == pytest.approx(1.0)


def _hierarchy_batch():
    """Features 0 (root) > children 1, 2; feature 3 a root with child 4 that is never on.
    Examples: parent 0 on with no child (4), with child 1 (4), with child 2 (4), off (4)."""
    true = np.zeros((16, 5), np.float32)
    true[0:12, 0] = 1.0
    true[4:8, 1] = 1.0
    true[8:12, 2] = 1.0
    true[12:16, 3] = 1.0
    return jnp.asarray(true), jnp.array([-1, 0, 0, -1, 3])


def test_absorption_gap_of_a_parent_latent_built_to_absorb_one_child():
    """The parent latent (latent 0 = feature 0's direction) fires when feature 0 is on
    except with child 1 (child 1 absorbed it): P(fire | 0 on, 1 off) = 8/8 (the examples
    without a child or with child 2), P(fire | 0 on, 1 on) = 0: gap 1. For child 2:
    P(fire | 0 on, 2 off) = 4/8, P(fire | 0 on, 2 on) = 4/4: gap -1/2. Child 4 is never
    on: NaN; roots NaN. The mean over the two pairs seen is 1/4."""
    true, parent = _hierarchy_batch()
    latents = jnp.eye(5)
    codes = true.at[4:8, 0].set(0.0)  # every latent copies its feature, but latent 0 is off with child 1
    chosen = best_latents(jnp.eye(5), latents)
    gap = np.asarray(absorption_gap(true, codes, parent, chosen))
    np.testing.assert_allclose(gap[[1, 2]], [1.0, -0.5], atol=1e-6)
    assert np.isnan(gap[[0, 3, 4]]).all()
    assert float(nan_mean(jnp.asarray(gap))) == pytest.approx(0.25)
    # a parent latent that fires whenever its feature is on absorbs nothing
    flat = absorption_gap(true, true, parent, chosen)
    np.testing.assert_allclose(np.asarray(flat)[[1, 2]], [0.0, 0.0], atol=1e-7)


def test_hedging_is_the_child_component_of_the_parent_latent():
    """Truth: the axes of R^5. Feature 0's latent is 0.8 e0 + 0.6 e1 (a child-1 component
    of 0.6; its best match is still feature 0, |cos| 0.8); feature 3's latent is e3 - e4
    normalised (child 4 at -1/sqrt2). Child 2 is orthogonal to its parent latent: 0. With
    feature 2 not represented its pair is NaN."""
    _, parent = _hierarchy_batch()
    latents = jnp.array([[0.8, 0.6, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0],
                         [0, 0, 0, 1, -1], [0, 0, 0, 0, 0.5]], jnp.float32)
    truth = jnp.eye(5)
    chosen = best_latents(truth, latents)
    assert chosen.tolist()[0] == 0 and chosen.tolist()[3] == 3
    hedge = np.asarray(hedging(truth, latents, parent, chosen))
    np.testing.assert_allclose(hedge[[1, 2, 4]], [0.6, 0.0, -2**-0.5], atol=1e-6)
    assert np.isnan(hedge[[0, 3]]).all()
    represented = jnp.array([True, True, False, True, True])
    masked = np.asarray(hedging(truth, latents, parent, chosen, represented))
    assert np.isnan(masked[2]) and masked[1] == pytest.approx(0.6, abs=1e-6)


def test_nth_decoder_projection_reads_the_pooled_sorted_projections():
    """x - b_dec = [[3, 1, 0], [2, 0, 5]] on the unit axes: the B N = 6 projections sorted
    decreasingly are 5, 3, 2, 1, 0, 0; s_n sits at position n B = 0, 2, 4: 5, 2, 0. A
    decoder row of norm 2 along e0 would double its projections: unit rows are the scale."""
    x = jnp.array([[4.0, 2.0, 1.0], [3.0, 1.0, 6.0]])
    b_dec = jnp.ones(3)
    np.testing.assert_allclose(decoder_projection_profile(x, b_dec, jnp.eye(3)), [5, 2, 0])
    assert float(nth_decoder_projection(x, b_dec, jnp.eye(3), 1)) == 2.0
