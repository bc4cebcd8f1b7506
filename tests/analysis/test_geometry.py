"""Polytope labels on hand-built geometries (REFERENCE 1.9): exact, moved, broken."""

import numpy as np
import pytest

from toymodels.analysis import (
    POLYTOPE_KINDS,
    feature_dimensionality,
    polytope_counts,
    polytopes,
)
from toymodels.analysis.geometry import POLYTOPES, components, numerical_rank


def polygon(k: int) -> np.ndarray:
    """Regular k-gon of unit vectors in 2-D, [2, k]."""
    t = 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(t), np.sin(t)]).astype(np.float32)


def tetrahedron() -> np.ndarray:
    """Regular tetrahedron of unit vectors in 3-D, [3, 4]."""
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], np.float32)
    return v.T / np.sqrt(3)


def square_antiprism() -> np.ndarray:
    """Squares at heights +-1/sqrt(3) on the unit sphere, turned 45 degrees; [3, 8]."""
    t = np.pi / 2 * np.arange(4)
    r, z = np.sqrt(2 / 3), np.sqrt(1 / 3)
    top = np.stack([r * np.cos(t), r * np.sin(t), np.full(4, z)])
    bottom = np.stack([r * np.cos(t + np.pi / 4), r * np.sin(t + np.pi / 4), -top[2]])
    return np.concatenate([top, bottom], axis=1).astype(np.float32)


def tegum(*blocks: np.ndarray) -> np.ndarray:
    """Block-diagonal direct sum of [d_k, N_k] blocks: [sum d, sum N]."""
    W = np.zeros((sum(b.shape[0] for b in blocks), sum(b.shape[1] for b in blocks)))
    row = col = 0
    for b in blocks:
        W[row : row + b.shape[0], col : col + b.shape[1]] = b
        row, col = row + b.shape[0], col + b.shape[1]
    return W.astype(np.float32)


def rotation(rng: np.random.Generator, h: int) -> np.ndarray:
    """Random orthogonal [h, h]."""
    q, r = np.linalg.qr(rng.normal(size=(h, h)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


def noisy(W: np.ndarray, rng: np.random.Generator, scale: float = 0.01) -> np.ndarray:
    """Add to each column a random vector of `scale` times its norm (1% noise)."""
    noise = rng.normal(size=W.shape)
    noise *= scale * np.linalg.norm(W, axis=0) / np.linalg.norm(noise, axis=0)
    return (W + noise).astype(np.float32)


DIGON = np.array([[1.0, -1.0]], np.float32)
CASES = [  # (name, W, expected labels, expected D per feature)
    ("orthonormal", np.eye(4, dtype=np.float32), ["dedicated"] * 4, [1.0] * 4),
    ("digon", DIGON, ["digon"] * 2, [0.5] * 2),
    ("triangle", polygon(3), ["triangle"] * 3, [2 / 3] * 3),
    ("pentagon", polygon(5), ["pentagon"] * 5, [0.4] * 5),
    ("tetrahedron", tetrahedron(), ["tetrahedron"] * 4, [0.75] * 4),
    ("square_antiprism", square_antiprism(), ["square_antiprism"] * 8, [0.375] * 8),
    (
        "pentagon+digon",
        tegum(polygon(5), DIGON),
        ["pentagon"] * 5 + ["digon"] * 2,
        [0.4] * 5 + [0.5] * 2,
    ),
    (
        "triangle+digon+dedicated+zero",
        tegum(polygon(3), DIGON, np.ones((1, 1)), np.zeros((1, 1))),
        ["triangle"] * 3 + ["digon"] * 2 + ["dedicated", "unrepresented"],
        [2 / 3] * 3 + [0.5] * 2 + [1.0, 0.0],
    ),
    ("hexagon", polygon(6), ["other"] * 6, [1 / 3] * 6),
]
IDS = [c[0] for c in CASES]


def test_square_antiprism_is_a_tight_frame():
    W = square_antiprism()
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), 1, atol=1e-6)
    np.testing.assert_allclose(W @ W.T, 8 / 3 * np.eye(3), atol=1e-5)  # equal angles


@pytest.mark.parametrize("name,W,labels,dims", CASES, ids=IDS)
def test_exact_geometry(name, W, labels, dims):
    np.testing.assert_allclose(feature_dimensionality(W), dims, atol=1e-5)
    assert polytopes(W).tolist() == labels


@pytest.mark.parametrize("name,W,labels,dims", CASES, ids=IDS)
def test_labels_invariant_to_rotation_embedding_and_noise(name, W, labels, dims):
    rng = np.random.default_rng(IDS.index(name))
    h = W.shape[0]
    assert polytopes(rotation(rng, h) @ W).tolist() == labels
    padded = np.concatenate([W, np.zeros((3, W.shape[1]), np.float32)])  # H + 3 dims
    assert polytopes(rotation(rng, h + 3) @ padded).tolist() == labels
    for _ in range(10):  # 1% noise in all H + 3 dims, random rotation each time
        assert polytopes(noisy(rotation(rng, h + 3) @ padded, rng)).tolist() == labels


def test_labels_are_plain_strings_from_kinds():
    out = polytopes(tegum(polygon(5), DIGON))
    assert out.dtype.kind == "U" and out.shape == (7,)
    assert set(out.tolist()) <= set(POLYTOPE_KINDS)
    assert POLYTOPE_KINDS[-2:] == ("other", "unrepresented")
    assert [p.name for p in POLYTOPES] == list(POLYTOPE_KINDS[:-2])


def test_squashed_pentagon_is_other():
    squashed = polygon(5) * np.array([[1.0], [0.7]], np.float32)
    assert polytopes(squashed).tolist() == ["other"] * 5
    assert polytopes(polygon(5) * np.array([[1.0], [0.97]], np.float32)).tolist() == [
        "pentagon"
    ] * 5  # a 3% squash is still within tolerance


def test_shrunk_column_changes_labels():
    W = tegum(polygon(5), DIGON)
    W[:, 0] *= 0.45  # below the 0.5 norm threshold
    assert polytopes(W).tolist() == ["unrepresented"] + ["other"] * 4 + ["digon"] * 2
    W = tegum(polygon(5), DIGON)
    W[:, 6] *= 0.45  # the digon loses a member: its partner is now alone
    assert polytopes(W).tolist() == ["pentagon"] * 5 + ["dedicated", "unrepresented"]


# Eight unit vectors in 4-D, centred, every D = 3/8 like a square antiprism, but rank 4
# (found by least squares; singular values 2.00, 1.26, 1.12, 1.08).
FAKE_ANTIPRISM = np.array(
    [
        [0.7004, -0.6967, 0.709, 0.7128, 0.6992, -0.7144, -0.7139, -0.6964],
        [-0.4685, -0.5507, -0.3524, 0.3254, 0.4953, 0.3791, -0.3833, 0.5553],
        [0.5374, -0.1893, -0.6075, 0.5335, -0.4645, -0.1134, 0.1447, 0.1591],
        [0.0333, -0.4189, 0.0636, -0.3185, 0.2239, -0.5771, 0.5679, 0.4259],
    ],
    np.float32,
)


def test_rank_check_rejects_a_rank_4_set_with_antiprism_dimensionalities():
    W = FAKE_ANTIPRISM
    np.testing.assert_allclose(feature_dimensionality(W), 3 / 8, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), 1, atol=1e-4)  # unit norms
    assert np.linalg.norm((W / np.linalg.norm(W, axis=0)).sum(1)) < 1e-3  # centred
    np.testing.assert_array_equal(components(W).size, 8)  # one component
    assert polytopes(W).tolist() == ["other"] * 8
    assert numerical_rank(W.T[None]) == 4
    assert numerical_rank(square_antiprism().T[None]) == 3


def test_three_vectors_at_60_degrees_are_not_a_triangle():
    gram = np.full((3, 3), 0.5) + 0.5 * np.eye(3)  # D = 2/3 each, but rank 3
    W = np.linalg.cholesky(gram).T.astype(np.float32)
    np.testing.assert_allclose(feature_dimensionality(W), 2 / 3, atol=1e-5)
    assert polytopes(W).tolist() == ["other"] * 3


def test_centroid_check_rejects_parallel_and_flipped_sets():
    parallel = np.array([[0.8, 0.8]], np.float32)  # "confused" pair: D = 1/2, rank 1
    np.testing.assert_allclose(feature_dimensionality(parallel), 0.5, atol=1e-6)
    assert polytopes(parallel).tolist() == ["other"] * 2
    flipped = polygon(3) * np.array([1.0, -1.0, 1.0], np.float32)  # tight, D = 2/3
    np.testing.assert_allclose(feature_dimensionality(flipped), 2 / 3, atol=1e-5)
    assert polytopes(flipped).tolist() == ["other"] * 3


def test_edge_tolerance_separates_and_joins_factors():
    def two_digons(c):  # second digon tilted towards the first by cos c
        d = np.array([c, np.sqrt(1 - c**2)], np.float32)
        return np.stack([[1, 0], [-1, 0], d, -d], axis=1).astype(np.float32)

    assert polytopes(two_digons(0.05)).tolist() == ["digon"] * 4
    assert polytopes(two_digons(0.3)).tolist() == ["other"] * 4
    assert polytopes(two_digons(0.3), tol=0.5).tolist() == ["digon"] * 4


def test_random_dense_weights_are_other():
    W = np.random.default_rng(0).normal(size=(5, 40)).astype(np.float32)
    labels = polytopes(W)
    rep = np.linalg.norm(W, axis=0) > 0.5
    assert set(labels[rep]) == {"other"} and set(labels[~rep]) <= {"unrepresented"}


def test_all_zero_weights():
    assert polytopes(np.zeros((3, 6), np.float32)).tolist() == ["unrepresented"] * 6
    comps = components(np.zeros((3, 6), np.float32))
    np.testing.assert_array_equal(comps.size, 0)


def test_components_label_and_size():
    comps = components(tegum(polygon(5), DIGON, np.zeros((1, 1))))
    np.testing.assert_array_equal(comps.label, [0] * 5 + [5, 5, 7])
    np.testing.assert_array_equal(comps.size, [5] * 5 + [2, 2, 0])


def test_polytope_counts():
    labels = polytopes(tegum(polygon(5), DIGON, np.zeros((1, 1))))
    counts = dict(zip(POLYTOPE_KINDS, polytope_counts(labels).tolist()))
    assert counts == {k: 0 for k in POLYTOPE_KINDS} | {
        "pentagon": 5,
        "digon": 2,
        "unrepresented": 1,
    }
    batched = polytope_counts(np.array([labels, labels[::-1]]))
    assert batched.shape == (2, len(POLYTOPE_KINDS)) and (batched.sum(1) == 8).all()
    with pytest.raises(ValueError, match="unknown polytope labels"):
        polytope_counts(["digon", "hexagon"])
