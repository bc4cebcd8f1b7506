"""Polytope labels: which uniform polytope each feature belongs to (REFERENCE 1.9, 8).

Role in the data flow: `analyze(ds)` calls `components` (pure jnp on one model, vmapped
once in `toymodels.analysis.variables`: the [F, F] interference graph and its connected
components by label propagation) and then `label_runs` (numpy on the host, vectorised
over all runs at once: only components whose size matches a polytope are gathered, as
[G, 8, H] stacks, and checked by batched Gram / eigenvalue computations).

Method. Represented features (||W_i|| > 0.5) are nodes; an edge joins i and j when
|What_i . What_j| > `EDGE_TOL`. Connected components are the tegum factors. A component
of N features spanning rank d is named after the uniform polytope with the same (N, d)
(`POLYTOPES`) when all of these hold, and is `other` otherwise:
  * every member's dimensionality, computed *within the component*, is d/N +- `DIM_TOL`
    (within the component so that sub-threshold interference with other factors, which
    adds up over hundreds of features in a trained model, does not blur the label);
  * for N >= 2 the unit vectors sum to almost zero, ||sum_i What_i|| <= `CENTROID_TOL`,
    as every listed polytope is centred (this rejects a parallel "confused" pair, which
    also has D = 1/2 and rank 1, and sign-flipped variants, whose sum is about 2);
  * the numerical rank of the component's columns is d: singular values above
    `RANK_RTOL` times the largest (this rejects e.g. three vectors at 60 degrees, which
    have D = 2/3 like a triangle but span 3 dimensions).
Unrepresented features are `unrepresented`.

Tolerances, and why:
  * `DIM_TOL` = 0.03: REFERENCE 8's loose band; the closest listed values (2/5, 3/8) are
    told apart by N anyway. Exact polytopes under 1% noise stay within about 0.01.
  * `EDGE_TOL` = 0.1: the smallest non-zero |cos| inside a listed polytope is 0.138
    (square antiprism, between its squares; connectivity does not even need those),
    while 1% noise puts at most about 0.02 between orthogonal factors.
  * `CENTROID_TOL` = 0.5: centred polytopes give about 0.01 * sqrt(N) under 1% noise;
    flipping one vector of a centred set moves the sum by 2.
  * `RANK_RTOL` = 0.1 (singular values): 1% noise adds singular values about 0.01 of
    the largest; genuinely higher-rank sets that pass the D test sit at 0.5 or more.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from toymodels.analysis.metrics import REPRESENTED_NORM, feature_norms, unit_columns

EDGE_TOL = 0.1  # |What_i . What_j| above this joins two represented features
DIM_TOL = 0.03  # each member's D within this of the polytope's d/N
CENTROID_TOL = 0.5  # ||sum of a component's unit vectors|| at most this (N >= 2)
RANK_RTOL = 0.1  # singular values above this times the largest count towards the rank


@dataclasses.dataclass(frozen=True)
class Polytope:
    """A uniform polytope a tegum factor can form: N features spanning rank d."""

    name: str
    size: int  # N features; distinct across POLYTOPES, so N picks the candidate
    rank: int  # d hidden dimensions

    @property
    def dimensionality(self) -> float:
        """Each member's fractional dimensionality, d/N."""
        return self.rank / self.size


POLYTOPES = (  # by decreasing dimensionality, the lines of the paper's figure
    Polytope("dedicated", 1, 1),
    Polytope("tetrahedron", 4, 3),
    Polytope("triangle", 3, 2),
    Polytope("digon", 2, 1),
    Polytope("pentagon", 5, 2),
    Polytope("square_antiprism", 8, 3),
)
POLYTOPE_KINDS = tuple(p.name for p in POLYTOPES) + ("other", "unrepresented")
OTHER = POLYTOPE_KINDS.index("other")
UNREPRESENTED = POLYTOPE_KINDS.index("unrepresented")
MAX_SIZE = max(p.size for p in POLYTOPES)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Components:
    """Tegum factors of one model (with a leading [R] when vmapped).

    Attributes:
      label: [F] int32, smallest feature index in i's component (i if unrepresented).
      size: [F] int32, members of i's component (0 if unrepresented).
    """

    label: jax.Array
    size: jax.Array


def connected_components(adjacency: jax.Array) -> jax.Array:
    """Component labels by min-label propagation with pointer jumping.

    Args:
      adjacency: [F, F] symmetric bool.

    Returns:
      [F] int32, the smallest node index in each node's component.

    Example:
      >>> connected_components(jnp.array([[0, 0, 1], [0, 0, 0], [1, 0, 0]], bool))
      Array([0, 1, 0], dtype=int32)
    """
    n = adjacency.shape[0]

    def step(carry):  # float32 labels (exact below 2**24): XLA vectorises a float min
        labels, _ = carry
        neighbour_min = jnp.min(jnp.where(adjacency, labels[None, :], n), axis=1)
        new = jnp.minimum(labels, neighbour_min)
        return new[new.astype(jnp.int32)], labels

    start = jnp.arange(n, dtype=jnp.float32)
    labels, _ = jax.lax.while_loop(
        lambda c: jnp.any(c[0] != c[1]), step, step((start, start))
    )
    return labels.astype(jnp.int32)


def components(W: jax.Array, edge_tol: float = EDGE_TOL) -> Components:
    """Connected components of the interference graph of represented features (jnp).

    Args:
      W: [H, F] weights.
      edge_tol: |What_i . What_j| above which two represented features are joined.

    Returns:
      `Components` of [F] arrays; `label_runs` names them on the host.

    Example:
      >>> components(jnp.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.1]])).size
      Array([2, 2, 1, 0], dtype=int32)
    """
    rep = feature_norms(W) > REPRESENTED_NORM
    w_hat = unit_columns(W)
    cos = jnp.einsum("hi,hj->ij", w_hat, w_hat, precision=jax.lax.Precision.HIGHEST)
    edges = rep[:, None] & rep[None, :] & (jnp.abs(cos) > edge_tol)
    label = connected_components(edges)
    size = jnp.zeros(W.shape[1], jnp.int32).at[label].add(rep.astype(jnp.int32))
    return Components(label, jnp.where(rep, size[label], 0))


def _gather(W: np.ndarray, mask: np.ndarray, label: np.ndarray):
    """Stack the columns of each masked component, zero-padded to `MAX_SIZE`.

    Args:
      W: [R, H, F] weights; mask: [R, F] members to gather; label: [R, F] components.

    Returns:
      columns [G, MAX_SIZE, H], the group of each member [n] and its (r, f) indices.
    """
    r, f = np.nonzero(mask)
    key = r * W.shape[2] + label[r, f]
    order = np.argsort(key, kind="stable")
    r, f, key = r[order], f[order], key[order]
    _, start, group = np.unique(key, return_index=True, return_inverse=True)
    slot = np.arange(key.size) - start[group]
    columns = np.zeros((start.size, MAX_SIZE, W.shape[1]), np.float32)
    columns[group, slot] = W[r, :, f]
    return columns, group, (r, f)


def _by_size(field: str, missing: float = 0) -> np.ndarray:
    """A `Polytope` field (or "code") indexed by component size 0..MAX_SIZE."""
    table = np.full(MAX_SIZE + 1, missing, np.float64)
    for p in POLYTOPES:
        value = POLYTOPE_KINDS.index(p.name) if field == "code" else getattr(p, field)
        table[p.size] = value
    return table


def numerical_rank(columns: np.ndarray, rtol: float = RANK_RTOL) -> np.ndarray:
    """Rank of stacked vectors [G, N, H]: singular values above rtol * largest; [G]."""
    gram = columns @ columns.swapaxes(1, 2)
    s = np.sqrt(np.maximum(np.linalg.eigvalsh(gram), 0.0))  # ascending
    return np.sum(s > rtol * s[:, -1:], axis=1)


def is_polytope(columns: np.ndarray, size: np.ndarray, dim_tol: float = DIM_TOL):
    """Whether each stacked component is the polytope of its size.

    Args:
      columns: [G, N, H] members' columns, zero rows after the first size[g].
      size: [G] members per component.
      dim_tol: allowed distance of each member's within-component D from d/N.

    Returns:
      [G] bool: D within tolerance for every member, centred, and rank d.
    """
    gram = columns @ columns.swapaxes(1, 2)  # [G, N, N]
    diag = np.diagonal(gram, axis1=1, axis2=2)
    dim = diag**2 / np.maximum(np.sum(gram**2, axis=2), 1e-30)
    member = np.arange(columns.shape[1])[None, :] < size[:, None]
    off = np.abs(dim - _by_size("dimensionality")[size][:, None]) > dim_tol
    inv_norm = np.where(member, 1.0 / np.sqrt(np.maximum(diag, 1e-30)), 0.0)
    centroid_sq = np.einsum("gi,gij,gj->g", inv_norm, gram, inv_norm)
    rank_ok = numerical_rank(columns) == _by_size("rank")[size]
    return ~np.any(member & off, axis=1) & (centroid_sq <= CENTROID_TOL**2) & rank_ok


def label_runs(
    W: np.ndarray, comps: Components, dim_tol: float = DIM_TOL
) -> np.ndarray:
    """Name the components of many runs on the host (vectorised over runs).

    Args:
      W: [R, H, F] weights.
      comps: `Components` of [R, F] arrays (from a vmapped `components`).
      dim_tol: allowed distance of each member's within-component D from d/N.

    Returns:
      [R, F] int codes into `POLYTOPE_KINDS`.
    """
    size, label = np.asarray(comps.size), np.asarray(comps.label)
    code_by_size = _by_size("code", missing=OTHER).astype(np.int32)
    codes = code_by_size[np.minimum(size, MAX_SIZE)]
    codes[size > MAX_SIZE] = OTHER
    codes[size == 0] = UNREPRESENTED
    check = (codes != OTHER) & (size >= 2)
    columns, group, (r, f) = _gather(np.asarray(W, np.float32), check, label)
    ok = is_polytope(columns, np.bincount(group, minlength=len(columns)), dim_tol)
    codes[r, f] = np.where(ok[group], codes[r, f], OTHER)
    return codes


def kind_names(codes: np.ndarray) -> np.ndarray:
    """Int codes [...] -> names [...] from `POLYTOPE_KINDS` (numpy unicode strings)."""
    return np.asarray(POLYTOPE_KINDS)[np.asarray(codes)]


def polytopes(W: jax.Array, tol: float = EDGE_TOL) -> np.ndarray:
    """Polytope label of every feature of one model (host numpy; not jittable).

    Args:
      W: [H, F] weights.
      tol: edge threshold on |What_i . What_j| among represented features.

    Returns:
      [F] strings from `POLYTOPE_KINDS`.

    Example:
      >>> polytopes(jnp.array([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]])).tolist()
      ['digon', 'digon', 'dedicated']
    """
    comps = jax.jit(components)(W, tol)
    batched = jax.tree_util.tree_map(lambda x: np.asarray(x)[None], comps)
    return kind_names(label_runs(np.asarray(W)[None], batched)[0])


def polytope_codes(labels: np.ndarray) -> np.ndarray:
    """Names [...] -> int codes [...] into `POLYTOPE_KINDS`; unknown names raise."""
    labels = np.asarray(labels)
    order = np.argsort(POLYTOPE_KINDS)
    known = np.asarray(POLYTOPE_KINDS)[order]
    idx = np.clip(np.searchsorted(known, labels), 0, len(known) - 1)
    if not np.all(known[idx] == labels):
        bad = sorted(set(labels[known[idx] != labels].tolist()))
        raise ValueError(f"unknown polytope labels {bad}; valid: {POLYTOPE_KINDS}")
    return order[idx]


def counts_from_codes(codes: np.ndarray) -> np.ndarray:
    """Int codes [..., F] -> features of each kind [..., len(POLYTOPE_KINDS)]."""
    kinds = np.arange(len(POLYTOPE_KINDS))
    return np.sum(np.asarray(codes)[..., None] == kinds, axis=-2)


def polytope_counts(labels: np.ndarray) -> np.ndarray:
    """How many features carry each label, in `POLYTOPE_KINDS` order.

    Args:
      labels: [..., F] strings from `polytopes` (any leading run axes).

    Returns:
      [..., K] int counts, K = len(POLYTOPE_KINDS).

    Example:
      >>> counts = polytope_counts(["digon", "digon", "other"])
      >>> counts[POLYTOPE_KINDS.index("digon")]
      np.int64(2)
    """
    return counts_from_codes(polytope_codes(labels))
