"""Phase candidates: closed-form expected losses and phase boundaries of the paper's
n=2, m=1 and n=3, m=2 phase diagrams.

Where this sits in the data flow: re-exported by ``toymodels.theory``; nothing here
trains or reads results. ``plotting.phase`` overlays these boundaries on empirical phase
diagrams, ``theory.dropout`` builds its candidates on these, and tests compare sweeps
against them.

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
