"""Closed-form expected losses and phase boundaries of the paper's phase diagrams.

Where this sits in the data flow: nothing here trains or reads results.
``plotting.phase`` overlays these boundaries on empirical phase diagrams, and tests
compare sweeps against them.

Source: Elhage et al. (2022), "Toy Models of Superposition", section "Superposition as a
Phase Change", and the theoretical notebook ``wattenberg/superposition``
(``Exploring_Exact_Toy_Models.ipynb``); see REFERENCE.md section 1.8. The boundaries are
derived here as the argmin of the candidate losses.

Setting: the ReLU-output model ``x' = ReLU(Wᵀ W x + b)``; every feature is zero with
probability ``1 - p`` and otherwise ``Uniform[0, 1]`` (``p`` = feature density =
``1 - S``). All features have importance 1 except the *extra* feature (the last one),
whose importance is ``r``.

Each candidate solution is a fixed ``W`` whose columns are of three kinds, and its
expected loss is the sum of one closed-form term per feature (or per antipodal pair):

- dedicated (unit norm, orthogonal to every other column): loss 0;
- dropped (zero column, bias ``p/2`` = its mean): ``I (p/3 - p²/4)`` = ``I·Var[x]``;
- antipodal pair ``W_j = -W_i`` (unit norm, bias 0): each feature's output is
  ``ReLU(x_i - x_j)``, wrong only when both are active (probability ``p²``), with error
  ``min(x_i, x_j)²`` each and ``E[min(U, U')²] = 1/6``: ``(I_i + I_j) p² / 6``.

So for the paper's cases: drop a unit feature ``p/3 - p²/4``; drop the extra feature
``r (p/3 - p²/4)``; antipodal pair of two unit features ``p²/3``; antipodal pair
containing the extra feature ``(1 + r) p² / 6``.

These are losses of fixed configurations (unit norms, zero bias in superposition), not
of trained models; the empirical boundary is blurred near the triple point (REFERENCE
1.8, McGrath's comment).

Example:
  >>> round(float(boundary_2_1(0.5)), 3)
  0.444
  >>> str(phase_2_1(0.1, 0.5))
  'superposition'
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

PHASES = ("unrepresented", "dedicated", "superposition")
"""Phase names of the extra feature, shared with ``toymodels.analysis``."""

TRIPLE_POINT = (1.0, 4.0 / 7.0)
"""``(r, p)`` where the three phases of the n=2, m=1 diagram meet."""


class Candidate(NamedTuple):
    """One candidate solution of a phase diagram.

    Attributes:
      name: short description.
      W: [H, F] weights; columns are zero, unit and orthogonal to the rest, or antipodal
        pairs.
      phase: what the extra (last) feature does in this solution, one of ``PHASES``.
    """

    name: str
    W: np.ndarray
    phase: str


CANDIDATES_2_1 = (
    Candidate("drop extra", np.array([[1.0, 0.0]]), "unrepresented"),
    Candidate("drop feature 0", np.array([[0.0, 1.0]]), "dedicated"),
    Candidate("antipodal", np.array([[1.0, -1.0]]), "superposition"),
)
"""n=2, m=1: W = [1, 0], [0, 1], [1, -1] (REFERENCE 1.8)."""

CANDIDATES_3_2 = (
    Candidate(
        "W ⊥ [0,0,1]: drop extra", np.array([[1.0, 0, 0], [0, 1, 0]]), "unrepresented"
    ),
    Candidate(
        "W ⊥ [1,0,0]: drop feature 0", np.array([[0, 1.0, 0], [0, 0, 1]]), "dedicated"
    ),
    Candidate(
        "W ⊥ [0,1,1]: extra antipodal with feature 1",
        np.array([[1.0, 0, 0], [0, 1, -1]]),
        "superposition",
    ),
    Candidate(
        "W ⊥ [1,1,0]: features 0, 1 antipodal, extra dedicated",
        np.array([[1.0, -1, 0], [0, 0, 1]]),
        "dedicated",
    ),
)
"""n=3, m=2: the notebook's four solutions (W ⊥ [1,1,1] is not considered). Antipodal
columns are drawn with unit norm, as the closed-form losses assume."""


def dropped_loss(p, importance=1.0):
    """Expected loss of a feature the model does not represent: ``I (p/3 - p²/4)``.

    The bias outputs the mean ``p/2``, so the loss is ``I·Var[x] = I (E[x²] - E[x]²)``
    with ``E[x] = p/2`` and ``E[x²] = p/3`` (REFERENCE 1.1, 1.8).

    Args:
      p: feature density ``1 - S``, any shape.
      importance: the feature's importance ``I``, broadcast against ``p``.

    Returns:
      float64 array, broadcast shape of the inputs.
    """
    p = np.asarray(p, dtype=np.float64)
    return np.asarray(importance, dtype=np.float64) * (p / 3.0 - p**2 / 4.0)


def antipodal_loss(p, importance_i=1.0, importance_j=1.0):
    """Expected loss of an antipodal pair ``W_j = -W_i`` (unit norms, zero bias).

    Formula: ``(I_i + I_j) p² / 6`` -- both active with probability ``p²``, then each
    output is ``ReLU(x_i - x_j)`` and each error is ``min(x_i, x_j)²``,
    ``E[min(U, U')²] = 1/6``.

    Args:
      p: feature density ``1 - S``.
      importance_i: importance of one member.
      importance_j: importance of the other.

    Returns:
      float64 array, broadcast shape of the inputs.
    """
    p = np.asarray(p, dtype=np.float64)
    total = np.asarray(importance_i, dtype=np.float64) + np.asarray(
        importance_j, np.float64
    )
    return total * p**2 / 6.0


def _column_roles(W, atol=1e-9):
    """Splits the columns of ``W: [H, F]`` into dropped, dedicated, antipodal pairs."""
    W = np.asarray(W, dtype=np.float64)
    norms = np.linalg.norm(W, axis=0)
    gram = W.T @ W
    dropped = [i for i in range(W.shape[1]) if norms[i] < atol]
    pairs, dedicated = [], []
    for i in range(W.shape[1]):
        if i in dropped:
            continue
        if not np.isclose(norms[i], 1.0, atol=1e-6):
            raise ValueError(
                f"column {i} has norm {norms[i]:.3g}; closed forms need 0 or 1"
            )
        partners = [j for j in range(W.shape[1]) if j != i and abs(gram[i, j]) > atol]
        if not partners:
            dedicated.append(i)
        elif len(partners) == 1 and np.isclose(gram[i, partners[0]], -1.0, atol=1e-6):
            pairs.append(tuple(sorted((i, partners[0]))))
        else:
            raise ValueError(
                f"column {i} interferes with {partners}; not a closed-form case"
            )
    return dropped, dedicated, sorted(set(pairs))


def candidate_loss(W, p, importance):
    """Expected loss of a candidate ``W`` as the sum of its per-feature terms.

    ``Σ_dropped I_i (p/3 - p²/4) + Σ_antipodal pairs (I_i + I_j) p²/6`` (dedicated
    features cost nothing). Biases are implied: ``p/2`` for dropped features, 0
    otherwise.

    Args:
      W: [H, F] candidate weights (columns zero, orthonormal, or antipodal unit pairs).
      p: feature density, any shape.
      importance: sequence of F importances; each entry may be an array broadcast with
        ``p``.

    Returns:
      float64 array, broadcast shape of ``p`` and the importances.

    Example:
      >>> float(candidate_loss(np.array([[1.0, -1.0]]), 0.5, [1.0, 1.0]))
      0.08333333333333333
    """
    dropped, _, pairs = _column_roles(W)
    total = np.zeros(np.broadcast(np.asarray(p), *map(np.asarray, importance)).shape)
    for i in dropped:
        total = total + dropped_loss(p, importance[i])
    for i, j in pairs:
        total = total + antipodal_loss(p, importance[i], importance[j])
    return total


def candidate_losses_2_1(p, r):
    """Losses of the n=2, m=1 candidates, stacked: [3, *broadcast(p, r)].

    Order as ``CANDIDATES_2_1``: ``r (p/3 - p²/4)``, ``p/3 - p²/4``, ``(1 + r) p²/6``.
    """
    return _stacked_losses(CANDIDATES_2_1, p, r)


def candidate_losses_3_2(p, r):
    """Losses of the n=3, m=2 candidates, stacked: [4, *broadcast(p, r)].

    Order as ``CANDIDATES_3_2``: ``r (p/3 - p²/4)``, ``p/3 - p²/4``, ``(1 + r) p²/6``,
    ``p²/3``.
    """
    return _stacked_losses(CANDIDATES_3_2, p, r)


def _stacked_losses(candidates, p, r):
    p, r = np.broadcast_arrays(np.asarray(p, np.float64), np.asarray(r, np.float64))
    n_features = candidates[0].W.shape[1]
    importance = [1.0] * (n_features - 1) + [r]
    return np.stack([candidate_loss(c.W, p, importance) for c in candidates])


def _optimal_phase(candidates, losses):
    labels = np.array([c.phase for c in candidates])
    return labels[np.argmin(losses, axis=0)]


def phase_2_1(p, r):
    """Phase of the extra feature in the optimal n=2, m=1 candidate.

    Argmin over ``CANDIDATES_2_1`` (ties go to the earlier candidate).

    Args:
      p: feature density ``1 - S``.
      r: the extra feature's relative importance.

    Returns:
      str array of ``PHASES`` names, broadcast shape of ``p`` and ``r`` (a
      ``numpy.str_`` for scalar inputs).

    Example:
      >>> [str(phase_2_1(0.9, r)) for r in (0.5, 2.0)]
      ['unrepresented', 'dedicated']
    """
    return _optimal_phase(CANDIDATES_2_1, candidate_losses_2_1(p, r))


def phase_3_2(p, r):
    """Phase of the extra feature in the best n=3, m=2 candidate (as ``phase_2_1``)."""
    return _optimal_phase(CANDIDATES_3_2, candidate_losses_3_2(p, r))


def optimal_loss_2_1(p, r):
    """Lowest candidate loss for n=2, m=1: ``min`` over ``candidate_losses_2_1``."""
    return candidate_losses_2_1(p, r).min(axis=0)


def optimal_loss_3_2(p, r):
    """Lowest candidate loss for n=3, m=2: ``min`` over ``candidate_losses_3_2``."""
    return candidate_losses_3_2(p, r).min(axis=0)


def boundary_2_1(r):
    """Critical density of the extra feature's superposition boundary, n=2, m=1.

    Superposition is optimal iff ``p < p*``: ``p* = 4r / (2 + 5r)`` for ``r <= 1``
    (antipodal vs dropping the extra feature) and ``p* = 4 / (5 + 2r)`` for ``r >= 1``
    (antipodal vs dropping feature 0); symmetric under ``r -> 1/r``, ``4/7`` at
    ``r = 1`` (REFERENCE 1.8).

    Args:
      r: relative importance of the extra feature, any shape, positive.

    Returns:
      float64 array of ``p*``, same shape as ``r``.

    Example:
      >>> np.round(boundary_2_1([0.1, 1.0, 10.0]), 3)
      array([0.16 , 0.571, 0.16 ])
    """
    r = np.asarray(r, dtype=np.float64)
    return np.where(r <= 1.0, 4.0 * r / (2.0 + 5.0 * r), 4.0 / (5.0 + 2.0 * r))


def boundary_3_2(r):
    """Critical density of the extra feature's superposition boundary, n=3, m=2.

    For ``r < 1`` the extra feature is dropped above ``p* = 4r / (2 + 5r)`` and forms an
    antipodal pair with feature 1 below it (the same comparison as n=2, m=1). For
    ``r > 1`` it always has a dedicated dimension, so it has no superposition boundary:
    NaN. (There the two unit features form an antipodal pair iff ``p < 4/7``, which does
    not change the extra feature's phase.) At ``r = 1`` the value is the limit from
    below, ``4/7``.

    Args:
      r: relative importance of the extra feature, any shape, positive.

    Returns:
      float64 array of ``p*`` (NaN where ``r > 1``), same shape as ``r``.
    """
    r = np.asarray(r, dtype=np.float64)
    return np.where(r <= 1.0, 4.0 * r / (2.0 + 5.0 * r), np.nan)


BOUNDARIES = {"2_1": boundary_2_1, "3_2": boundary_3_2}
"""Superposition boundary ``p*(r)`` of the extra feature, by diagram ("n_m")."""

PHASE_FUNCTIONS = {"2_1": phase_2_1, "3_2": phase_3_2}
"""Optimal phase of the extra feature ``phase(p, r)``, by diagram ("n_m")."""


def dedicated_boundary_density(kind):
    """Density range ``(p_low, p_high)`` of the vertical boundary at ``r = 1``.

    Crossing ``r = 1`` the extra feature switches to dedicated: for n=2, m=1 only above
    the triple point (``4/7 <= p <= 1``); for n=3, m=2 at every density
    (``0 <= p <= 1``).

    Args:
      kind: "2_1" or "3_2".

    Returns:
      (p_low, p_high) floats.
    """
    ranges = {"2_1": (TRIPLE_POINT[1], 1.0), "3_2": (0.0, 1.0)}
    if kind not in ranges:
        raise ValueError(f"unknown phase diagram {kind!r}; valid: {sorted(ranges)}")
    return ranges[kind]


# --- Chen et al. (2023): exactly-one-active features and k-gon critical points ---------
# (REFERENCE section E.) x = mu e_i, i uniform over the c features, mu ~ U[0, 1].


def _relu_sq_integral(a, b, t):
    """``∫_0^1 (t μ - ReLU(a μ + b))² dμ`` elementwise, closed form (float64).

    The ReLU is active on ``[lo, hi] ∩ [0, 1]`` (``μ > -b/a`` for ``a > 0``, ``μ < -b/a``
    for ``a < 0``, everywhere or nowhere for ``a = 0``), where the integrand is the
    quadratic ``(a² - 2ta) μ² + 2b(a - t) μ + b²`` on top of ``t² μ²``.
    """
    a, b, t = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (a, b, t)))
    safe = np.where(a == 0.0, 1.0, a)
    root = np.clip(-b / safe, 0.0, 1.0)
    on = (b > 0.0).astype(np.float64)  # a == 0: active on all of [0, 1] iff b > 0
    lo = np.where(a > 0.0, root, np.where(a < 0.0, 0.0, 1.0 - on))
    hi = np.where(a > 0.0, 1.0, np.where(a < 0.0, root, 1.0))
    A, B, C = a * a - 2.0 * t * a, 2.0 * b * (a - t), b * b

    def prim(u):
        return A * u**3 / 3.0 + B * u**2 / 2.0 + C * u

    return t * t / 3.0 + prim(hi) - prim(lo)


def exactly_one_loss(W, b):
    """Exact loss of ``x' = ReLU(WᵀW x + b)`` when exactly one feature is active.

    ``L = (1/c) Σ_i ∫_0^1 Σ_j (μ δ_ij - ReLU(μ W_j·W_i + b_j))² dμ`` (REFERENCE E),
    summed in closed form per ``(i, j)`` (see ``_relu_sq_integral``).

    Args:
      W: [m, c] weights.
      b: [c] biases.

    Returns:
      float, the loss. The zero model has ``L = E[μ²] = 1/3``.

    Example:
      >>> round(exactly_one_loss(np.zeros((2, 6)), np.zeros(6)), 6)
      0.333333
    """
    W = np.asarray(W, np.float64)
    b = np.asarray(b, np.float64)
    c = W.shape[1]
    gram = W.T @ W  # [c, c]; row i = input feature, column j = output
    terms = _relu_sq_integral(gram, b[None, :], np.eye(c))
    return float(terms.sum() / c)


class KGon(NamedTuple):
    """A k-gon critical point (REFERENCE E).

    Attributes:
      c, k, sigma: features, polygon size, unused biases set to ``1/(2c)``.
      length: ``l*``, the norm of the used columns.
      bias: ``b*``, the shared bias of the used columns.
      loss: ``exactly_one_loss(W, b)``.
      W: [2, c]; ``W_j = l* (cos 2πj/k, sin 2πj/k)`` for ``j < k``, zero after.
      b: [c]; ``b*`` for ``j < k``, ``1/(2c)`` for the next ``sigma``, then
        ``unused_bias``.
    """

    c: int
    k: int
    sigma: int
    length: float
    bias: float
    loss: float
    W: np.ndarray
    b: np.ndarray


def _kgon_arrays(c, k, length, bias, sigma, unused_bias):
    angles = 2.0 * np.pi * np.arange(k) / k
    W = np.zeros((2, c))
    W[:, :k] = length * np.stack([np.cos(angles), np.sin(angles)])
    b = np.full(c, float(unused_bias))
    b[:k] = bias
    b[k : k + sigma] = 1.0 / (2.0 * c)
    return W, b


def kgon(c, k, sigma=0, unused_bias=0.0):
    """The regular k-gon in ``m = 2`` with ``(l*, b*)`` minimising ``exactly_one_loss``.

    An unused feature with bias ``β`` costs ``(1/c)(1/3 - ReLU(β) + c ReLU(β)²)`` (its
    own input plus the ``c - 1`` others), so ``β ≤ 0`` gives ``1/(3c)`` and
    ``β = 1/(2c)`` (the ``σ+`` variant) lowers L by ``1/(4c²)`` per such bias; the used
    columns' optimum does not depend on them. At ``β = 0`` exactly the loss has a kink
    in ``β`` (one-sided derivative ``-1/c``); pass ``unused_bias < 0`` for a smooth
    critical point.

    Args:
      c: number of features.
      k: polygon size, ``2 <= k <= c``.
      sigma: unused biases set to ``1/(2c)``, ``0 <= sigma <= c - k``.
      unused_bias: bias (``<= 0``) of the remaining unused features.

    Returns:
      ``KGon``.

    Example:
      >>> g = kgon(6, 5)
      >>> g.W.shape, g.b.shape
      ((2, 6), (6,))
    """
    from scipy.optimize import minimize

    if not 2 <= k <= c or not 0 <= sigma <= c - k or unused_bias > 0:
        raise ValueError(f"need 2 <= k <= c, 0 <= sigma <= c - k, unused_bias <= 0; "
                         f"got c={c}, k={k}, sigma={sigma}, unused_bias={unused_bias}")

    def family_loss(x):
        return exactly_one_loss(*_kgon_arrays(c, k, abs(x[0]), x[1], 0, -1.0))

    best = None  # (1, 0) is the exact optimum for k <= 4: interference cos <= 0
    exact = family_loss([1.0, 0.0])
    for l0 in (0.5, 1.0, 1.5):
        for b0 in (-0.5, -0.1, 0.0, 0.2):
            res = minimize(family_loss, [l0, b0], method="Nelder-Mead",
                           options={"xatol": 1e-12, "fatol": 1e-15, "maxiter": 4000})
            if best is None or res.fun < best.fun:
                best = res
    length, bias = abs(float(best.x[0])), float(best.x[1])
    if exact <= best.fun + 1e-13:
        length, bias = 1.0, 0.0
    W, b = _kgon_arrays(c, k, length, bias, sigma, unused_bias)
    return KGon(c, k, sigma, length, bias, exactly_one_loss(W, b), W, b)


def free_energy_crossing(dL, dlam, dnorm, n_range=(1.0, 1e12)):
    """Smallest ``n`` in ``n_range`` with ``n ΔL + Δλ ln n + Δ(½‖w*‖²) = 0``, or None.

    The free-energy difference ``ΔF_n ≈ n ΔL + Δλ ln n + Δ(½‖w*‖²)`` of two critical
    points (REFERENCE E, standard normal prior) changes sign at ``n_cr``.

    Args:
      dL, dlam, dnorm: differences of loss, learning coefficient and ``½‖w*‖²``.
      n_range: search interval ``(n_min, n_max)`` of sample sizes, scanned on a log grid.

    Returns:
      float ``n_cr`` or None if ``ΔF_n`` has no sign change there.

    Example:
      >>> round(free_energy_crossing(-0.01, -1.0, 5.0), 2)
      72.14
    """
    from scipy.optimize import brentq

    def f(n):
        return n * dL + dlam * np.log(n) + dnorm

    grid = np.geomspace(n_range[0], n_range[1], 4001)
    values = f(grid)
    change = np.nonzero(np.sign(values[:-1]) * np.sign(values[1:]) <= 0)[0]
    if change.size == 0:
        return None
    i = int(change[0])
    if values[i] == 0.0:
        return float(grid[i])
    return float(brentq(f, grid[i], grid[i + 1], xtol=1e-12, rtol=1e-14))


def _rrr_case(M, N, H, r):
    """Aoyagi & Watanabe (2005) main theorem: ``(lambda, multiplicity)``."""
    for name, v in (("M", M), ("N", N), ("H", H), ("r", r)):
        if int(v) != v:
            raise ValueError(f"{name} must be an integer, got {v!r}")
    M, N, H, r = int(M), int(N), int(H), int(r)
    if min(M, N, H) < 1 or not 0 <= r <= min(M, N, H):
        raise ValueError(f"need M, N, H >= 1 and 0 <= r <= min(M, N, H); "
                         f"got M={M}, N={N}, H={H}, r={r}")
    if M + H < N + r:
        return (H * M - H * r + N * r) / 2.0, 1
    if N + H < M + r:
        return (H * N - H * r + M * r) / 2.0, 1
    if M + N < H + r:
        return M * N / 2.0, 1
    s = 2 * (H + r) * (M + N) - (M - N) ** 2 - (H + r) ** 2
    if (M + N + H + r) % 2 == 0:
        return s / 8.0, 1
    return (s + 1) / 8.0, 2


def rrr_learning_coefficient(M, N, H, r=0):
    """Learning coefficient of reduced-rank regression ``y = B A x`` (true rank ``r``).

    Aoyagi, M. & Watanabe, S. (2005), "Stochastic complexities of reduced rank
    regression in Bayesian estimation", Neural Networks 18(7), 924-933, main theorem.
    ``A``: [H, M], ``B``: [N, H] (``M`` inputs, ``N`` outputs, ``H`` hidden), the true
    ``B*A*`` of rank ``r``:

    - ``M + H < N + r``: ``λ = (HM - Hr + Nr) / 2``;
    - ``N + H < M + r``: ``λ = (HN - Hr + Mr) / 2``;
    - ``M + N < H + r``: ``λ = MN / 2``;
    - otherwise (``N + r <= M + H``, ``M + r <= N + H``, ``H + r <= M + N``), with
      ``s = 2(H + r)(M + N) - (M - N)² - (H + r)²``: ``λ = s / 8`` (multiplicity 1) if
      ``M + N + H + r`` is even, ``(s + 1) / 8`` (multiplicity 2) if odd.

    Checks: ``r = H <= min(M, N)`` gives ``H(M + N - H) / 2``, half the dimension of the
    rank-``H`` matrices (regular); ``H = 1, r = 0`` gives ``min(M, N) / 2``
    (``‖b‖²‖a‖²``, a normal-crossing-like form).

    Args:
      M, N, H: input, output and hidden sizes (``>= 1``).
      r: rank of the true map, ``0 <= r <= min(M, N, H)``.

    Returns:
      float ``λ``; ``rrr_multiplicity`` gives its multiplicity.

    Example:
      >>> rrr_learning_coefficient(2, 2, 2), rrr_learning_coefficient(5, 2, 2)
      (1.5, 2.0)
    """
    return _rrr_case(M, N, H, r)[0]


def rrr_multiplicity(M, N, H, r=0):
    """Multiplicity ``m`` of ``rrr_learning_coefficient`` (Aoyagi & Watanabe 2005).

    Example:
      >>> rrr_multiplicity(2, 2, 1), rrr_multiplicity(2, 2, 2)
      (2, 1)
    """
    return _rrr_case(M, N, H, r)[1]


# --- inverted dropout on one hidden unit (toymodels.theory.dropout) ---------------------
from toymodels.theory.dropout import (  # noqa: E402  (needs the names above)
    CANDIDATES_2_1_DROPOUT,
    antipodal_dropout,
    antipodal_pair_loss,
    boundary_2_1_biased,
    boundary_2_1_dropout,
    candidate_losses_2_1_biased,
    candidates_2_1_biased,
    dedicated_dropout,
    phase_2_1_biased,
    candidate_loss_dropout,
    candidate_losses_2_1_dropout,
    candidates_2_1_dropout,
    dedicated_range_2_1_dropout,
    dropout_loss,
    phase_2_1_dropout,
)
