"""Scores of ONE SPD decomposition against the known answer of its target (issue 28, 3).

Role in the data flow: after SPD has decomposed a toy model's weight matrices into
rank-1 *subcomponents*, these functions say how well the subcomponents match the
target's known rank-1 *pieces* (one per feature), how many subcomponents are live, and
how far the causal-importance pattern on one-hot inputs is from the identity. Every
array function is written for ONE decomposition of ONE matrix and is pure JAX, so the
analysis vmaps it over runs in one place; the Hungarian step of `ci_pattern_errors` is
numpy / scipy on the host (`ci_pattern_errors_runs` maps it over a leading run axis).

Shapes: n features (pieces), C subcomponents, B inputs; a decomposed matrix is
[d_out, d_in] and its subcomponents are ``U`` [C, d_out], ``V`` [C, d_in] (subcomponent c
is the outer product U_c V_cᵀ; their sum is Uᵀ V), as in the project's SPD layout.

Definitions (Bushnaq et al. 2025, "Stochastic Parameter Decomposition", the TMS section,
after Braun et al. 2025 (APD)), for a TMS embedding W [d, n] and feature j:

    MMCS = 1/n Σ_j max_c  (U_c V_{c,j}) · W[:, j] / (||U_c V_{c,j}|| ||W[:, j]||)
    ML2R = 1/n Σ_j ||U_{c*} V_{c*,j}|| / ||W[:, j]||,   c* = that argmax

Two points where the paper differs from the first written schema of issue 28 (which
compared whole flattened matrices by |cos|), both followed here as the paper has them:
the cosine is SIGNED (U_c V_cᵀ is unchanged by flipping both U_c and V_c, so the sign is
meaningful: a subcomponent -P_j does not rebuild piece P_j with a mask in [0, 1]), and it
compares only column j of each subcomponent with column j of W. To say which entries are
compared, a feature's piece comes with a 0/1 ``support`` of its shape (`Pieces`):

    cos_ic = <P_i, S_c ⊙ M_i> / (||P_i ⊙ M_i|| ||S_c ⊙ M_i||),   S_c = U_c V_cᵀ

With M_i = column i this is the paper's formula exactly (`feature_pieces`' ``W_in``);
``W_out`` = Wᵀ uses row i, the same formula for the transposed matrix (the paper reports
W only). `whole` sets the support to every entry: the flattened cosine, which is
stricter (a subcomponent must also vanish outside the piece's column). Use it for
`failed`: under the paper's column cosine, a negligible subcomponent pointing by chance
near W[:, j] in a 2-dimensional hidden space scores near 1 for a feature that nothing
really represents, while its flattened cosine is small unless it also lives on column j.

`tms_scores` gathers the weight scores of one TMS decomposition in one dict (the
analysis vmaps it); `live` and `ci_pattern_errors` take the causal importances.

Thresholds: `FAIL_COSINE` = 0.9 (a feature is missed when its best cosine is below it),
`CI_THRESHOLD` = 0.1 (a causal importance above it counts as firing; live
subcomponents and the one-hot pattern).

Example:
  >>> W = jnp.array([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]])
  >>> pieces = feature_pieces(W)["W_in"]
  >>> float(mmcs(pieces, W.T, jnp.eye(3))), float(ml2r(pieces, W.T, jnp.eye(3)))
  (1.0, 1.0)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

FAIL_COSINE = 0.9  # a feature whose best cosine is below this is missed: the run fails
CI_THRESHOLD = 0.1  # causal importance above this counts as firing (live, CI pattern)

_HIGHEST = jax.lax.Precision.HIGHEST  # float32 contractions on CPU and GPU alike


class Pieces(NamedTuple):
    """A matrix's known rank-1 pieces, one per feature, and the entries compared.

    Piece i is P_i = u_i v_iᵀ and is compared on the entries M_i = rows_i cols_iᵀ (0/1).
    Kept as factors, so a score costs n C (d_out + d_in), never a [n, C, d_out, d_in]
    array (the analysis vmaps it over thousands of runs); `matrices` and `supports`
    expand them.

    Attributes:
      u: [n, d_out]; v: [n, d_in]: the piece's factors.
      rows: [n, d_out]; cols: [n, d_in]: 0/1, the support's factors.
    """

    u: jax.Array
    v: jax.Array
    rows: jax.Array
    cols: jax.Array


class Match(NamedTuple):
    """Each feature's best subcomponent: index [n] int32, cosine [n], norm ratio [n]."""

    subcomponent: jax.Array
    cosine: jax.Array
    ratio: jax.Array


class Failure(NamedTuple):
    """failed [] bool; missed [n] bool (best cosine below the threshold); worst [] int32
    (the feature of lowest best cosine among those counted)."""

    failed: jax.Array
    missed: jax.Array
    worst: jax.Array


class CIPattern(NamedTuple):
    """The one-hot causal-importance pattern against the identity, after matching.

    errors = spurious + missing; matching [n] int: feature i's subcomponent, -1 if none
    (possible only when C < n).
    """

    errors: int
    spurious: int
    missing: int
    matching: np.ndarray


# --- the known pieces -------------------------------------------------------------------


def matrices(pieces: Pieces) -> jax.Array:
    """The pieces' matrices P_i = u_i v_iᵀ; [n, d_out, d_in]."""
    return pieces.u[:, :, None] * pieces.v[:, None, :]


def supports(pieces: Pieces) -> jax.Array:
    """The pieces' supports M_i (0/1); [n, d_out, d_in]."""
    return pieces.rows[:, :, None] * pieces.cols[:, None, :]


def column_pieces(A: jax.Array) -> Pieces:
    """Pieces A[:, i] e_iᵀ of A [d_out, n], each compared on its column i.

    Example:
      >>> matrices(column_pieces(jnp.array([[1.0, 2.0]])))[1]
      Array([[0., 2.]], dtype=float32)
    """
    eye = jnp.eye(A.shape[1], dtype=A.dtype)
    return Pieces(A.T, eye, jnp.ones_like(A.T), eye)


def row_pieces(A: jax.Array) -> Pieces:
    """Pieces e_i A[i]ᵀ of A [n, d_in], each compared on its row i.

    Example:
      >>> matrices(row_pieces(jnp.array([[1.0], [2.0]])))[1]
      Array([[0.],
             [2.]], dtype=float32)
    """
    eye = jnp.eye(A.shape[0], dtype=A.dtype)
    return Pieces(eye, A, eye, jnp.ones_like(A))


def rank_one_pieces(U: jax.Array, V: jax.Array) -> Pieces:
    """Known pieces U_k V_kᵀ (e.g. `toymodels.spd.hand.hand_built`'s), compared on every
    entry; U [n, d_out], V [n, d_in]."""
    return Pieces(U, V, jnp.ones_like(U), jnp.ones_like(V))


def whole(pieces: Pieces) -> Pieces:
    """The same pieces compared on every entry: the flattened-matrix cosine."""
    return Pieces(pieces.u, pieces.v, jnp.ones_like(pieces.rows), jnp.ones_like(pieces.cols))


def feature_pieces(W: jax.Array, identity: bool = False) -> dict[str, Pieces]:
    """The TMS features' rank-1 pieces of each decomposed matrix.

    ``W_in`` = W [d, n]: piece i = W[:, i] e_iᵀ on column i (the paper's MMCS);
    ``W_out`` = Wᵀ [n, d]: piece i = e_i W[:, i]ᵀ on row i. With ``identity``, the inserted
    ``W_hidden`` = I_d: pieces e_k e_kᵀ on column k, in the standard basis. The paper
    names no basis for I (any orthonormal basis u_k gives I = Σ u_k u_kᵀ, and it says
    the subcomponents "need not align with any particular basis"); its check there is
    d live subcomponents summing to I, so scores of ``W_hidden`` against these pieces
    are basis-dependent and informative only.

    Args:
      W: [d, n] the TMS weights; column i is feature i's direction.
      identity: add the hidden identity's pieces (static).

    Returns:
      {"W_in": Pieces [n, d, n], "W_out": Pieces [n, n, d]} (+ "W_hidden" [d, d, d]).

    Example:
      >>> p = feature_pieces(jnp.array([[1.0, 0.5], [0.0, 2.0]]))
      >>> matrices(p["W_out"]).sum(0)
      Array([[1. , 0. ],
             [0.5, 2. ]], dtype=float32)
    """
    pieces = {"W_in": column_pieces(W), "W_out": row_pieces(W.T)}
    if identity:
        pieces["W_hidden"] = column_pieces(jnp.eye(W.shape[0], dtype=W.dtype))
    return pieces


# --- matching features to subcomponents ---------------------------------------------------


def _overlaps(pieces: Pieces, U: jax.Array, V: jax.Array):
    """(<P_i ⊙ M_i, S_c> [n, C], ||S_c ⊙ M_i||² [n, C], ||P_i ⊙ M_i||² [n]).

    Every factor is an outer product, so each inner product over [d_out, d_in] is the
    product of one over d_out and one over d_in (M_i is 0/1, so M_i² = M_i).
    """
    mm = lambda a, b: jnp.matmul(a, b.T, precision=_HIGHEST)
    u, v = pieces.u * pieces.rows, pieces.v * pieces.cols
    dot = mm(u, U) * mm(v, V)
    sub_sq = mm(pieces.rows, U * U) * mm(pieces.cols, V * V)
    return dot, sub_sq, jnp.sum(u * u, axis=1) * jnp.sum(v * v, axis=1)


def _cosines(dot: jax.Array, sub_sq: jax.Array, piece_sq: jax.Array) -> jax.Array:
    """dot / sqrt(piece_sq sub_sq), 0 where that is 0; [n, C]."""
    denom = jnp.sqrt(piece_sq[:, None] * sub_sq)
    return jnp.where(denom > 0, dot / jnp.where(denom > 0, denom, 1.0), 0.0)


def cosines(pieces: Pieces, U: jax.Array, V: jax.Array) -> jax.Array:
    """Signed cosine of every piece with every subcomponent on the piece's support.

    Args:
      pieces: n pieces of a [d_out, d_in] matrix.
      U: [C, d_out]; V: [C, d_in] the decomposition of that matrix.

    Returns:
      [n, C]; 0 where either side is zero on the support (no NaN).

    Example:
      >>> p = column_pieces(jnp.eye(2))
      >>> cosines(p, jnp.array([[1.0, 1.0]]), jnp.array([[1.0, 1.0]]))
      Array([[0.70710677],
             [0.70710677]], dtype=float32)
    """
    return _cosines(*_overlaps(pieces, U, V))


def matched(pieces: Pieces, U: jax.Array, V: jax.Array) -> Match:
    """For each feature its best subcomponent (largest signed cosine; ties: the first),
    that cosine, and the ratio ||S_c* ⊙ M_i|| / ||P_i ⊙ M_i|| (NaN for a zero piece).

    Example:
      >>> p = column_pieces(jnp.array([[2.0, 0.0], [0.0, 1.0]]))
      >>> m = matched(p, jnp.array([[0.0, 3.0], [1.0, 0.0]]), jnp.eye(2)[::-1])
      >>> m.subcomponent, m.ratio
      (Array([1, 0], dtype=int32), Array([0.5, 3. ], dtype=float32))
    """
    dot, sub_sq, piece_sq = _overlaps(pieces, U, V)
    cos = _cosines(dot, sub_sq, piece_sq)
    best = jnp.argmax(cos, axis=1).astype(jnp.int32)
    rows = jnp.arange(cos.shape[0])
    ratio = jnp.sqrt(sub_sq[rows, best]) / jnp.where(piece_sq > 0, jnp.sqrt(piece_sq), jnp.nan)
    return Match(best, cos[rows, best], ratio)


def _mean(values: jax.Array, represented) -> jax.Array:
    """Mean of [n] values over the represented features (all when None); NaN if none."""
    if represented is None:
        return jnp.mean(values)
    return jnp.sum(jnp.where(represented, values, 0.0)) / jnp.sum(represented)


def mmcs(pieces: Pieces, U: jax.Array, V: jax.Array, represented=None) -> jax.Array:
    """Mean over features of the best signed cosine (the paper's MMCS); [].

    Args:
      pieces, U, V: as `cosines`.
      represented: optional [n] bool; only these features are averaged (for phase
        diagrams, where a feature with ||W_i|| ~ 0 has no piece to find).

    Example:
      >>> p = column_pieces(jnp.eye(2))
      >>> float(mmcs(p, jnp.array([[1.0, 0.0], [0.0, -1.0]]), jnp.eye(2)))  # (1 + 0) / 2
      0.5
    """
    return _mean(matched(pieces, U, V).cosine, represented)


def ml2r(pieces: Pieces, U: jax.Array, V: jax.Array, represented=None) -> jax.Array:
    """Mean over features of ||best subcomponent|| / ||piece|| on the piece's support
    (the paper's ML2R; 1 means no shrinkage); [].

    Example:
      >>> p = column_pieces(jnp.eye(2))
      >>> float(ml2r(p, 0.5 * jnp.eye(2), jnp.eye(2)))
      0.5
    """
    return _mean(matched(pieces, U, V).ratio, represented)


def failed(best_cos: jax.Array, threshold: float = FAIL_COSINE, represented=None) -> Failure:
    """A decomposition fails when some (represented) feature's best cosine is below
    ``threshold``: no subcomponent matches it. ``best_cos`` [n] is `matched(...).cosine`,
    preferably of `whole` pieces (see the module docstring).

    Example:
      >>> f = failed(jnp.array([0.99, 0.5, 1.0]))
      >>> bool(f.failed), f.missed.tolist(), int(f.worst)
      (True, [False, True, False], 1)
    """
    counted = jnp.ones(best_cos.shape, bool) if represented is None else represented
    missed = counted & (best_cos < threshold)
    worst = jnp.argmin(jnp.where(counted, best_cos, jnp.inf)).astype(jnp.int32)
    return Failure(jnp.any(missed), missed, worst)


def tms_scores(W: jax.Array, U: dict, V: dict, represented=None) -> dict[str, jax.Array]:
    """Every weight score of ONE decomposition of a TMS model, for the analysis to vmap.

    Per decomposed matrix (the names of `feature_pieces`), the paper's MMCS and ML2R
    (column / row supports). Failure on the flattened cosine (`whole` pieces) of both
    W_in and W_out: a feature is missed when its best cosine in either is below
    `FAIL_COSINE`. W_hidden (the identity) has no features and never makes a run fail.

    Args:
      W: [d, n] the TMS weights.
      U: {name: [C, d_out]}; V: {name: [C, d_in]} with name in "W_in", "W_out" and,
        for a model with the identity inserted, "W_hidden".
      represented: optional [n] bool: the features counted (all when None).

    Returns:
      {"<name>_mmcs": [], "<name>_ml2r": [] for each name; "best_cosine_W_in",
      "best_cosine_W_out": [n] (flattened); "failed": [] bool; "missed": [n] bool;
      "worst": [] int32}.

    Example:
      >>> W = jnp.array([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]])
      >>> U, V = {"W_in": W.T, "W_out": jnp.eye(3)}, {"W_in": jnp.eye(3), "W_out": W.T}
      >>> s = tms_scores(W, U, V)
      >>> float(s["W_out_mmcs"]), bool(s["failed"])
      (1.0, False)
    """
    pieces = feature_pieces(W, identity="W_hidden" in U)
    out = {}
    for name, p in pieces.items():
        counted = None if name == "W_hidden" else represented  # I's d pieces: all counted
        out[f"{name}_mmcs"] = mmcs(p, U[name], V[name], counted)
        out[f"{name}_ml2r"] = ml2r(p, U[name], V[name], counted)
    for name in ("W_in", "W_out"):
        out[f"best_cosine_{name}"] = matched(whole(pieces[name]), U[name], V[name]).cosine
    best = jnp.minimum(out["best_cosine_W_in"], out["best_cosine_W_out"])
    failure = failed(best, FAIL_COSINE, represented)
    return {**out, "failed": failure.failed, "missed": failure.missed, "worst": failure.worst}


# --- the residual MLP ---------------------------------------------------------------------

READ_FRACTION = 0.1  # a residual MLP reads feature i when ||W_in W_E e_i|| > this x the largest


def residual_scores(W_E: jax.Array, W_in: jax.Array, U: jax.Array, V: jax.Array) -> dict:
    """The W_in scores of ONE decomposition of a one-layer residual MLP, for the analysis
    to vmap.

    W_in [k, D] only ever reads r = W_E x, so it is scored *folded* onto the features:
    A = W_in W_E [k, n] and each subcomponent's U_c (W_Eᵀ V_c)ᵀ. Feature i's piece is
    column i of A, A[:, i] e_iᵀ (`column_pieces`), the part of W_in that feature i's
    input W_E[:, i] x_i goes through (the APD/SPD papers' residual MLP: "one W_in
    subcomponent per input feature"). On the span of W_E it is W_in W_E[:, i] w_iᵀ with
    w_i the dual vector (W_E⁺ row i), which is W_in W_E[:, i] W_E[:, i]ᵀ when the columns
    of W_E are orthonormal; the part of W_in orthogonal to every feature direction
    never acts on an input and is not scored. As for the TMS: MMCS and ML2R on the piece's
    column (the paper's formula), the flattened cosine for failure.

    Args:
      W_E: [D, n]; W_in: [k, D] the target; U: [C, k]; V: [C, D] its decomposition.

    Returns:
      {"mmcs": [], "ml2r": [] over the read features; "best_cosine": [n] flattened;
      "read": [n] bool (||A[:, i]|| > READ_FRACTION max_j ||A[:, j]||); "failed": [] bool
      (a read feature's best flattened cosine below `FAIL_COSINE`); "worst": [] int32}.

    Example:
      >>> s = residual_scores(jnp.eye(2), 2 * jnp.eye(2), 2 * jnp.eye(2), jnp.eye(2))
      >>> float(s["mmcs"]), float(s["ml2r"]), bool(s["failed"])
      (1.0, 1.0, False)
    """
    A = jnp.matmul(W_in, W_E, precision=_HIGHEST)
    V_folded = jnp.matmul(V, W_E, precision=_HIGHEST)
    norms = jnp.linalg.norm(A, axis=0)
    read = norms > READ_FRACTION * jnp.max(norms)
    pieces = column_pieces(A)
    match = matched(pieces, U, V_folded)
    best = matched(whole(pieces), U, V_folded).cosine
    failure = failed(best, FAIL_COSINE, read)
    return {"mmcs": _mean(match.cosine, read), "ml2r": _mean(match.ratio, read),
            "best_cosine": best, "read": read, "failed": failure.failed, "worst": failure.worst}


# --- causal importances -------------------------------------------------------------------


def is_live(ci: jax.Array, threshold: float = CI_THRESHOLD) -> jax.Array:
    """Subcomponents whose causal importance exceeds ``threshold`` on some input;
    ci [B, C] -> [C] bool."""
    return jnp.max(ci, axis=0) > threshold


def live(ci: jax.Array, threshold: float = CI_THRESHOLD) -> jax.Array:
    """The number of live subcomponents; ci [B, C] -> [] int32.

    Example:
      >>> int(live(jnp.array([[0.05, 0.2, 0.0], [0.0, 0.1, 0.11]])))
      2
    """
    return jnp.sum(is_live(ci, threshold), dtype=jnp.int32)


def ci_pattern_errors(ci_one_hot, threshold: float = CI_THRESHOLD) -> CIPattern:
    """Errors of the one-hot causal-importance pattern against the identity (host).

    Features are matched one-to-one to subcomponents (`linear_sum_assignment`), then
    every entry of ``ci_one_hot > threshold`` that disagrees with the matched identity
    counts: a subcomponent firing for a feature it is not matched to (spurious) and a
    matched pair that does not fire (missing; a feature left without a subcomponent
    when C < n counts as missing too). With F firing entries and a matching of k firing
    pairs, errors = n + F - 2k, so the matching maximises the firing pairs; among those,
    it takes the largest summed importance (weights fire + g / (n + 1), whose tie-break
    part sums below 1). The paper orders its figures' columns greedily instead.

    Args:
      ci_one_hot: [n, C] causal importances g on x = e_i (row i).
      threshold: g above it fires.

    Example:
      >>> g = np.array([[0.0, 0.9, 0.3], [0.8, 0.0, 0.0]])
      >>> p = ci_pattern_errors(g)
      >>> p.errors, p.spurious, p.missing, p.matching.tolist()
      (1, 1, 0, [1, 0])
    """
    g = np.asarray(ci_one_hot, dtype=np.float64)
    fires = g > threshold
    n = g.shape[0]
    rows, cols = scipy.optimize.linear_sum_assignment(fires + g / (n + 1), maximize=True)
    matching = np.full(n, -1, dtype=np.int64)
    matching[rows] = cols
    pairs = np.zeros_like(fires)
    pairs[rows, cols] = True
    spurious = int(np.sum(fires & ~pairs))
    missing = int(np.sum(pairs & ~fires)) + (n - rows.size)
    return CIPattern(spurious + missing, spurious, missing, matching)


def ci_pattern_errors_runs(ci_one_hot, threshold: float = CI_THRESHOLD) -> dict:
    """`ci_pattern_errors` of every run; the one host loop over runs, since scipy's
    assignment takes one matrix at a time (milliseconds each at n = 40).

    Args:
      ci_one_hot: [R, n, C].

    Returns:
      {"errors", "spurious", "missing"}: each [R] int; "matching": [R, n] int.

    Example:
      >>> out = ci_pattern_errors_runs(np.stack([np.eye(2), np.ones((2, 2))]))
      >>> out["errors"].tolist(), out["matching"].tolist()
      ([0, 2], [[0, 1], [0, 1]])
    """
    results = [ci_pattern_errors(g, threshold) for g in np.asarray(ci_one_hot)]
    out = {k: np.array([getattr(r, k) for r in results], dtype=np.int64)
           for k in ("errors", "spurious", "missing")}
    out["matching"] = np.stack([r.matching for r in results])
    return out
