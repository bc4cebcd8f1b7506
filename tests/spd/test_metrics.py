"""The science of toymodels.spd.metrics: each score on decompositions with a known answer.

Expected values come from hand derivations (written out in each test), brute force over
all matchings, or a numpy implementation of the SPD paper's definitions written here;
never from the code under test.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels.spd import metrics
from toymodels.spd.hand import hand_built
from toymodels.spd.metrics import (
    CI_THRESHOLD,
    FAIL_COSINE,
    ci_pattern_errors,
    ci_pattern_errors_runs,
    cosines,
    failed,
    feature_pieces,
    is_live,
    live,
    matched,
    matrices,
    ml2r,
    mmcs,
    rank_one_pieces,
    supports,
    tms_scores,
    whole,
)

# One compilation per shape for the three scores (eager calls compile op by op).
PIECES = jax.jit(feature_pieces, static_argnums=1)


@jax.jit
def score(pieces, U, V, represented=None):
    """(matched, mmcs, ml2r) of one decomposition."""
    return (matched(pieces, U, V), mmcs(pieces, U, V, represented),
            ml2r(pieces, U, V, represented))


def pentagon(n=5, radius=1.0):
    """W [2, n]: the 5 -> 2 pentagon, feature i at angle 2 pi i / n."""
    angle = 2 * np.pi * np.arange(n) / n
    return jnp.asarray(radius * np.stack([np.cos(angle), np.sin(angle)]), jnp.float32)


# --- the pieces -------------------------------------------------------------------------


def test_feature_pieces_are_rank_one_and_sum_to_each_matrix():
    W = jnp.asarray(np.random.default_rng(0).normal(size=(3, 5)), jnp.float32)
    pieces = PIECES(W, True)
    targets = {"W_in": W, "W_out": W.T, "W_hidden": jnp.eye(3)}
    assert set(pieces) == set(targets)
    for name, target in targets.items():
        m, support = np.asarray(matrices(pieces[name])), np.asarray(supports(pieces[name]))
        np.testing.assert_allclose(m.sum(0), target, atol=1e-6)
        assert all(np.linalg.matrix_rank(a) <= 1 for a in m)
        assert np.all(m * (1 - support) == 0)  # every piece lies inside its own support
    # W_in piece i is W[:, i] e_i^T, compared on column i; W_out's is e_i W[:, i]^T, on row i
    expected = np.zeros((3, 5))
    expected[:, 2] = W[:, 2]
    np.testing.assert_array_equal(matrices(pieces["W_in"])[2], expected)
    np.testing.assert_array_equal(supports(pieces["W_in"])[2], expected != 0)
    expected_out = np.zeros((5, 3))
    expected_out[4] = W[:, 4]
    np.testing.assert_array_equal(matrices(pieces["W_out"])[4], expected_out)
    np.testing.assert_array_equal(supports(pieces["W_out"])[4], expected_out != 0)


# --- exact, permuted, rescaled ------------------------------------------------------------


@pytest.mark.parametrize("identity", [False, True])
def test_exact_pieces_give_mmcs_and_ml2r_one(identity):
    W = pentagon()
    pieces = PIECES(W, identity)
    exact = {"W_in": (W.T, jnp.eye(5)), "W_out": (jnp.eye(5), W.T),
             "W_hidden": (jnp.eye(2), jnp.eye(2))}
    for name, p in pieces.items():
        U, V = exact[name]
        for q in (p, whole(p)):
            _, got_mmcs, got_ml2r = score(q, U, V)
            assert float(got_mmcs) == pytest.approx(1.0, abs=1e-6)
            assert float(got_ml2r) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("aligned", [True, False])
def test_hand_built_ground_truth_scores_one(aligned):
    hand = hand_built(jax.random.key(3), 4, 3, 4 if aligned else 6, aligned=aligned)
    pieces = rank_one_pieces(hand.U, hand.V)
    _, got_mmcs, got_ml2r = score(pieces, hand.U, hand.V)
    assert float(got_mmcs) == pytest.approx(1.0, abs=1e-6)
    assert float(got_ml2r) == pytest.approx(1.0, abs=1e-6)
    if aligned:  # k = d_in and V_k = e_k: the column pieces of W are the same pieces
        p = PIECES(hand.W, False)["W_in"]
        np.testing.assert_allclose(matrices(p), matrices(pieces), atol=1e-6)
        assert float(score(p, hand.U, hand.V)[1]) == pytest.approx(1.0, abs=1e-6)


def test_permuted_rescaled_copy_gives_mmcs_one_and_the_known_norm_ratio():
    """Subcomponent c = (s_c U_{pi(c)}) (t_c V_{pi(c)})^T = s_c t_c P_{pi(c)}: cosine 1, norm
    ratio s_c t_c for feature pi(c). Signs flip in pairs (s, t < 0), which leaves S_c and
    its signed cosine unchanged. Six tiny random subcomponents are added (whole support
    only: under the column support a random one can tie a perfect match in 3 dims)."""
    rng = np.random.default_rng(1)
    true_U = rng.normal(size=(5, 3))
    true_V = np.linalg.qr(rng.normal(size=(5, 5)))[0].T  # generic orthonormal rows
    perm = rng.permutation(5)
    s = rng.uniform(0.3, 2.0, 5) * np.array([1, -1, 1, -1, 1])
    t = rng.uniform(0.3, 2.0, 5) * np.array([1, -1, 1, -1, 1])
    U, V = true_U[perm] * s[:, None], true_V[perm] * t[:, None]
    junk_U, junk_V = 1e-3 * rng.normal(size=(6, 3)), 1e-3 * rng.normal(size=(6, 5))
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    U, V = f32(np.concatenate([U, junk_U])), f32(np.concatenate([V, junk_V]))
    pieces = rank_one_pieces(f32(true_U), f32(true_V))
    m, got_mmcs, got_ml2r = score(pieces, U, V)
    inverse = np.argsort(perm)  # feature i is rebuilt by subcomponent inverse[i]
    np.testing.assert_array_equal(m.subcomponent, inverse)
    np.testing.assert_allclose(m.cosine, 1.0, atol=1e-6)
    np.testing.assert_allclose(m.ratio, (s * t)[inverse], rtol=1e-5)
    assert float(got_mmcs) == pytest.approx(1.0, abs=1e-6)
    assert float(got_ml2r) == pytest.approx(np.mean(s * t), rel=1e-5)


# --- rotated pieces, signs, failure -------------------------------------------------------


@pytest.mark.parametrize("theta", [np.pi / 6, np.pi / 12])
def test_rotated_decomposition_gives_the_hand_computed_cosines(theta):
    """Target W = e1 e1^T + e2 e2^T (two features, unit columns, d = 2) decomposed as
    (A R)(R^T B) with A = B = I and R the rotation by theta < pi/4: subcomponents
      S_a = (c e1 + s e2)(c e1 + s e2)^T,  S_b = (-s e1 + c e2)(-s e1 + c e2)^T,
    c = cos theta, s = sin theta. Faithful: S_a + S_b = I.
      column cosine (paper): column 1 of S_a is c (c e1 + s e2), cosine with e1 = c;
        of S_b is -s (-s e1 + c e2), cosine s. Best c for both features; norm ratio
        ||c (c e1 + s e2)|| / 1 = c.
      flattened cosine: <e1 e1^T, S_a> = c^2, ||S_a|| = 1: best c^2; ratio 1.
    """
    c, s = math.cos(theta), math.sin(theta)
    U = jnp.array([[c, s], [-s, c]], jnp.float32)
    V = U
    np.testing.assert_allclose(U.T @ V, np.eye(2), atol=1e-6)
    pieces = PIECES(jnp.eye(2), False)["W_in"]
    column, flat = score(pieces, U, V)[0], score(whole(pieces), U, V)[0]
    np.testing.assert_allclose(column.cosine, [c, c], atol=1e-6)
    np.testing.assert_allclose(column.ratio, [c, c], atol=1e-6)
    np.testing.assert_allclose(flat.cosine, [c * c, c * c], atol=1e-6)
    np.testing.assert_allclose(flat.ratio, [1.0, 1.0], atol=1e-6)
    np.testing.assert_array_equal(column.subcomponent, [0, 1])
    np.testing.assert_allclose(cosines(pieces, U, V), [[c, s], [s, c]], atol=1e-6)
    # pi/6: c = 0.866 < 0.9 fails under both cosines; pi/12: c = 0.966 passes the
    # column cosine, c^2 = 0.933 passes the flattened one
    assert bool(failed(column.cosine).failed) == (c < FAIL_COSINE)
    assert bool(failed(flat.cosine).failed) == (c * c < FAIL_COSINE)


def test_cosine_is_signed():
    """S = -P_1 rebuilds nothing with masks in [0, 1]: its cosine with P_1 is -1 (the
    paper's signed MMCS), so feature 1's best is 0 (the other subcomponent, zero on its
    column) and the run fails on feature 1. Flipping U and V together changes nothing."""
    pieces = PIECES(jnp.eye(2), False)["W_in"]
    U, V = jnp.array([[1.0, 0.0], [0.0, -1.0]]), jnp.eye(2)
    m = score(pieces, U, V)[0]
    np.testing.assert_allclose(cosines(pieces, U, V), [[1.0, 0.0], [0.0, -1.0]], atol=1e-7)
    np.testing.assert_allclose(m.cosine, [1.0, 0.0], atol=1e-7)
    f = failed(m.cosine)
    assert bool(f.failed) and f.missed.tolist() == [False, True] and int(f.worst) == 1
    np.testing.assert_allclose(cosines(pieces, -U, -V), cosines(pieces, U, V), atol=1e-7)


@pytest.mark.parametrize("missing", [0, 3])
def test_one_missing_piece_fails_on_that_feature(missing):
    """The exact pentagon decomposition without feature k's subcomponent: every other
    subcomponent W_j e_j^T is zero on column k, so feature k's best cosine is 0 under both
    supports; the others stay 1."""
    W = pentagon()
    keep = np.array([j for j in range(5) if j != missing])
    U, V = W.T[keep], jnp.eye(5)[keep]
    for pieces in (PIECES(W, False)["W_in"], whole(PIECES(W, False)["W_in"])):
        m, got_mmcs, _ = score(pieces, U, V)
        expected = np.ones(5)
        expected[missing] = 0.0
        np.testing.assert_allclose(m.cosine, expected, atol=1e-6)
        f = failed(m.cosine)
        assert bool(f.failed)
        assert np.flatnonzero(f.missed).tolist() == [missing]
        assert int(f.worst) == missing
        assert float(got_mmcs) == pytest.approx(0.8, abs=1e-6)
    # a feature that is not represented does not count
    represented = np.arange(5) != missing
    assert not bool(failed(m.cosine, represented=represented).failed)
    _, got_mmcs, got_ml2r = score(pieces, U, V, jnp.asarray(represented))
    assert float(got_mmcs) == pytest.approx(1.0, abs=1e-6)
    assert float(got_ml2r) == pytest.approx(1.0, abs=1e-6)


def test_column_cosine_is_fooled_by_a_negligible_subcomponent_and_the_flattened_is_not():
    """Why `failed` should use `whole` pieces: a 1e-4-norm subcomponent u v^T with u = W_k
    and v = (1, ..., 1) has column k exactly parallel to W_k (column cosine 1, norm ratio
    1e-4 / sqrt(5) / 1) but is spread over 5 columns (flattened cosine 1 / sqrt(5))."""
    W = pentagon()
    k = 2
    keep = np.array([j for j in range(5) if j != k])
    U = jnp.concatenate([W.T[keep], 1e-4 * W.T[k:k + 1]])
    V = jnp.concatenate([jnp.eye(5)[keep], jnp.ones((1, 5)) / math.sqrt(5)])
    pieces = PIECES(W, False)["W_in"]
    column, flat = score(pieces, U, V)[0], score(whole(pieces), U, V)[0]
    assert float(column.cosine[k]) == pytest.approx(1.0, abs=1e-5)
    assert float(column.ratio[k]) == pytest.approx(1e-4 / math.sqrt(5), rel=1e-4)
    assert float(flat.cosine[k]) == pytest.approx(1 / math.sqrt(5), abs=1e-5)
    assert bool(failed(flat.cosine).failed) and not bool(failed(column.cosine).failed)


# --- an independent MMCS and ML2R from the paper's definitions ----------------------------


def numpy_scores(W, U, V, rows=False, flattened=False):
    """MMCS and ML2R written from the SPD paper's formulas, one loop per feature and
    subcomponent: column j of U_c V_c^T against W[:, j] (rows=True: row j of the
    subcomponents of W^T); flattened=True: the whole matrices U_c V_c^T and W_j e_j^T."""
    n = W.shape[1]
    cos_best, ratio_best = [], []
    for j in range(n):
        best = (-np.inf, None)
        for c in range(U.shape[0]):
            S = np.outer(U[c], V[c])
            if flattened:
                P = np.zeros_like(S)
                if rows:
                    P[j] = W[:, j]
                else:
                    P[:, j] = W[:, j]
                a, b = S.ravel(), P.ravel()
            else:
                a, b = (S[j] if rows else S[:, j]), W[:, j]
            denom = np.linalg.norm(a) * np.linalg.norm(b)
            cos = a @ b / denom if denom > 0 else 0.0
            if cos > best[0]:
                best = (cos, np.linalg.norm(a) / np.linalg.norm(b))
        cos_best.append(best[0])
        ratio_best.append(best[1])
    return np.mean(cos_best), np.mean(ratio_best)


@pytest.mark.parametrize("seed", range(4))
def test_mmcs_and_ml2r_match_numpy_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    d, n, C = 3, 6, 9
    W = rng.normal(size=(d, n))
    pieces = PIECES(jnp.asarray(W, jnp.float32), False)
    U_in, V_in = rng.normal(size=(C, d)), rng.normal(size=(C, n))
    U_out, V_out = rng.normal(size=(C, n)), rng.normal(size=(C, d))
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    for name, U, V, rows in (("W_in", U_in, V_in, False), ("W_out", U_out, V_out, True)):
        for flattened in (False, True):
            p = whole(pieces[name]) if flattened else pieces[name]
            expected = numpy_scores(W, U, V, rows=rows, flattened=flattened)
            got = [float(a) for a in score(p, f32(U), f32(V))[1:]]
            np.testing.assert_allclose(got, expected, rtol=2e-5)


def test_scores_vmap_over_runs():
    rng = np.random.default_rng(7)
    W = jnp.asarray(rng.normal(size=(4, 2, 5)), jnp.float32)
    U = jnp.asarray(rng.normal(size=(4, 7, 2)), jnp.float32)
    V = jnp.asarray(rng.normal(size=(4, 7, 5)), jnp.float32)
    one = lambda w, u, v: mmcs(feature_pieces(w)["W_in"], u, v)
    batched = jax.jit(jax.vmap(one))(W, U, V)
    each = [score(PIECES(W[r], False)["W_in"], U[r], V[r])[1] for r in range(4)]
    np.testing.assert_allclose(batched, each, rtol=1e-6)


def test_tms_scores_of_the_exact_decomposition_and_of_one_missing_out_piece():
    """The exact decomposition of the pentagon with the identity inserted scores 1
    everywhere; zeroing W_out's subcomponent of feature 3 (the others are zero on row 3)
    leaves W_in perfect but fails the run on feature 3 (best cosine 0). (Without
    W_hidden: the module's example.)"""
    W = pentagon()
    U = {"W_in": W.T, "W_out": jnp.eye(5), "W_hidden": jnp.eye(2)}
    V = {"W_in": jnp.eye(5), "W_out": W.T, "W_hidden": jnp.eye(2)}
    run = jax.jit(tms_scores)
    scores = run(W, U, V)
    for name in ("W_in", "W_out", "W_hidden"):
        assert float(scores[f"{name}_mmcs"]) == pytest.approx(1.0, abs=1e-6)
        assert float(scores[f"{name}_ml2r"]) == pytest.approx(1.0, abs=1e-6)
    assert not bool(scores["failed"])
    U["W_out"] = U["W_out"].at[3].set(0.0)
    scores = run(W, U, V)
    np.testing.assert_allclose(scores["best_cosine_W_in"], np.ones(5), atol=1e-6)
    np.testing.assert_allclose(scores["best_cosine_W_out"], [1, 1, 1, 0, 1], atol=1e-6)
    assert float(scores["W_out_mmcs"]) == pytest.approx(0.8, abs=1e-6)
    # with `represented` (what analyze passes: [n] features) W_hidden still counts its d
    # pieces; feature 3 not represented: W_out's MMCS over the other four is 1, no failure
    four = run(W, U, V, jnp.arange(5) != 3)
    assert float(four["W_hidden_mmcs"]) == pytest.approx(1.0, abs=1e-6)
    assert float(four["W_out_mmcs"]) == pytest.approx(1.0, abs=1e-6)
    assert not bool(four["failed"])
    assert bool(scores["failed"]) and int(scores["worst"]) == 3
    assert np.flatnonzero(scores["missed"]).tolist() == [3]


# --- causal importances -------------------------------------------------------------------


def test_live_counts_subcomponents_above_the_threshold_on_some_input():
    ci = jnp.array([[0.05, 0.2, 0.0, 0.1], [0.0, 0.09, 0.11, 0.1], [0.0, 0.0, 0.0, 0.0]])
    # maxima over the batch: 0.05, 0.2, 0.11, 0.1 -> only 0.2 and 0.11 exceed 0.1
    assert is_live(ci).tolist() == [False, True, True, False]
    assert int(live(ci)) == 2
    assert int(live(ci, threshold=0.01)) == 4
    assert CI_THRESHOLD == 0.1


def test_ci_pattern_errors_of_a_known_permuted_matrix():
    """Identity placed at columns perm = (3, 0, 5, 1) of a [4, 6] matrix, then two
    spurious entries above 0.1 (g[0, 2] = 0.5, g[2, 4] = 0.3), one below (g[1, 5] = 0.05,
    not an error), and feature 3's diagonal weakened to 0.05 (missing). Expected: 2
    spurious + 1 missing = 3 errors, and the matching is perm."""
    perm = np.array([3, 0, 5, 1])
    g = np.zeros((4, 6))
    g[np.arange(4), perm] = [0.9, 0.8, 1.0, 0.05]
    g[0, 2], g[2, 4], g[1, 5] = 0.5, 0.3, 0.05
    p = ci_pattern_errors(g)
    assert (p.errors, p.spurious, p.missing) == (3, 2, 1)
    np.testing.assert_array_equal(p.matching, perm)
    # a subcomponent firing for two features: one of them is spurious
    g2 = g.copy()
    g2[3, 1] = 0.9
    g2[1, 1] = 0.7  # feature 1 now fires on its own column 0 and on feature 3's column 1
    p2 = ci_pattern_errors(g2)
    assert (p2.errors, p2.spurious, p2.missing) == (3, 3, 0)
    np.testing.assert_array_equal(p2.matching, perm)


def brute_force_errors(g, threshold):
    """Min over every one-to-one map of features to subcomponents (or to nothing, via
    zero padding columns) of the entries that disagree with the matched identity."""
    n, C = g.shape
    padded = np.concatenate([g, np.zeros((n, n))], axis=1)  # a padding column = unmatched
    fires = padded > threshold
    best = np.inf
    for cols in itertools.permutations(range(C + n), n):
        target = np.zeros_like(fires)
        target[np.arange(n), cols] = True
        best = min(best, int(np.sum(fires != target[:, :C + n])))
    return best


def errors_of(g, matching, threshold):
    """The disagreements of one given matching, from the definition."""
    n, C = g.shape
    target = np.zeros((n, C), bool)
    for i, c in enumerate(matching):
        if c >= 0:
            target[i, c] = True
    return int(np.sum((g > threshold) != target)) + int(np.sum(np.asarray(matching) < 0))


@pytest.mark.parametrize("n, C", [(2, 2), (3, 3), (3, 5), (4, 4), (4, 3)])
def test_hungarian_matching_matches_brute_force(n, C):
    rng = np.random.default_rng(10 * n + C)
    for _ in range(10):
        g = rng.uniform(0, 1, (n, C)) * (rng.uniform(size=(n, C)) < 0.5)
        p = ci_pattern_errors(g, threshold=0.3)
        assert p.errors == brute_force_errors(g, 0.3)
        assert p.errors == errors_of(g, p.matching, 0.3)
        assert p.errors == p.spurious + p.missing
        matched_cols = p.matching[p.matching >= 0]
        assert len(set(matched_cols.tolist())) == len(matched_cols) == min(n, C)


def test_ci_pattern_errors_runs_equals_each_run():
    rng = np.random.default_rng(2)
    ci = rng.uniform(0, 1, (5, 3, 4)) * (rng.uniform(size=(5, 3, 4)) < 0.4)
    out = ci_pattern_errors_runs(ci)
    for r in range(5):
        p = ci_pattern_errors(ci[r])
        got = tuple(int(out[k][r]) for k in ("errors", "spurious", "missing"))
        assert got == (p.errors, p.spurious, p.missing)
        np.testing.assert_array_equal(out["matching"][r], p.matching)


# --- the residual MLP: W_in folded onto the features ---------------------------------------


def _residual_case(seed=0, D=7, n=4, k=3):
    rng = np.random.default_rng(seed)
    W_E = rng.normal(size=(D, n))
    W_E /= np.linalg.norm(W_E, axis=0)  # unit columns, not orthogonal
    return W_E, rng.normal(size=(k, D))


def test_residual_scores_of_the_exact_feature_pieces_are_one():
    """Subcomponent i = (W_in W_E)[:, i] w_iᵀ, w_i the dual vector of W_E's column i (so
    Σ_i = W_in on the span of W_E), plus one reading only a direction orthogonal to every
    feature: MMCS = ML2R = 1, every flattened cosine 1, no failure."""
    W_E, W_in = _residual_case()
    A, dual = W_in @ W_E, np.linalg.pinv(W_E)  # dual [n, D], dual @ W_E = I
    ortho = np.linalg.svd(W_E.T)[2][-1]  # ⊥ every column of W_E
    U = np.concatenate([A.T, np.ones((1, 3))])
    V = np.concatenate([dual, ortho[None]])
    s = metrics.residual_scores(*(jnp.asarray(a, jnp.float32) for a in (W_E, W_in, U, V)))
    assert float(s["mmcs"]) == pytest.approx(1.0, abs=1e-5)
    assert float(s["ml2r"]) == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(s["best_cosine"], 1.0, atol=1e-5)
    assert not bool(s["failed"]) and bool(s["read"].all())


def test_residual_scores_are_the_folded_cosines_of_numpy():
    """Random subcomponents: each feature's best flattened cosine of U_c (W_Eᵀ V_c)ᵀ with
    (W_in W_E)[:, i] e_iᵀ, and MMCS from the column cosines, by numpy in float64."""
    W_E, W_in = _residual_case(1)
    rng = np.random.default_rng(2)
    U, V = rng.normal(size=(6, 3)), rng.normal(size=(6, 7))
    A, Vf = W_in @ W_E, V @ W_E
    flat, col = np.zeros((4, 6)), np.zeros((4, 6))
    for i in range(4):
        piece = np.outer(A[:, i], np.eye(4)[i])
        for c in range(6):
            sub = np.outer(U[c], Vf[c])
            flat[i, c] = np.sum(piece * sub) / np.linalg.norm(piece) / np.linalg.norm(sub)
            col[i, c] = A[:, i] @ sub[:, i] / np.linalg.norm(A[:, i]) / np.linalg.norm(sub[:, i])
    s = metrics.residual_scores(*(jnp.asarray(a, jnp.float32) for a in (W_E, W_in, U, V)))
    np.testing.assert_allclose(s["best_cosine"], flat.max(axis=1), rtol=1e-4, atol=1e-5)
    assert float(s["mmcs"]) == pytest.approx(col.max(axis=1).mean(), abs=1e-4)


def test_a_subcomponent_merging_two_features_fails_and_an_unread_feature_is_not_counted():
    """Features 0 and 1 in one subcomponent (U = A_0 + A_1, V = w_0 + w_1), 2 and 3 exact:
    0 and 1 are missed (flattened cosine 1/sqrt 2 with equal columns) and the run fails;
    with feature 0's column shrunk below READ_FRACTION of the largest, it is not counted."""
    W_E, W_in = _residual_case(3)
    dual = np.linalg.pinv(W_E)
    W_in = W_in - np.outer(W_in @ W_E[:, 1] - W_in @ W_E[:, 0], dual[1])  # A_1 = A_0
    A = W_in @ W_E
    np.testing.assert_allclose(A[:, 0], A[:, 1], atol=1e-9)
    U = np.stack([A[:, 0] + A[:, 1], A[:, 2], A[:, 3]])
    V = np.stack([dual[0] + dual[1], dual[2], dual[3]])
    s = metrics.residual_scores(*(jnp.asarray(a, jnp.float32) for a in (W_E, W_in, U, V)))
    np.testing.assert_allclose(s["best_cosine"][:2], 1 / np.sqrt(2), atol=1e-5)
    assert bool(s["failed"]) and int(s["worst"]) in (0, 1)
    small = W_in - np.outer(W_in @ W_E[:, 0] * 0.95, dual[0])  # feature 0's column x 0.05
    assert np.linalg.norm((small @ W_E)[:, 0]) < metrics.READ_FRACTION * np.linalg.norm(small @ W_E, axis=0).max()
    s = metrics.residual_scores(*(jnp.asarray(a, jnp.float32) for a in (W_E, small, U, V)))
    assert s["read"].tolist() == [False, True, True, True]
