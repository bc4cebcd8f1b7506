"""Inverted dropout on one hidden unit: the exact mixture, and the 2 -> 1 phase diagram.

Where this sits: re-exported by ``toymodels.theory``; ``toymodels.plotting.dropout``
overlays ``boundary_2_1_dropout`` on the dropout phase diagram
(``sweeps/dropout_phase.toml``).

The mixture. The trainer applies inverted dropout to the hidden vector: ``h = W x`` is
multiplied by ``keep``, 0 with probability ``q`` and ``1/(1 - q)`` otherwise
(``toymodels.data.dropout_keep``), before the tied readout ``ReLU(Wᵀ h + b)``. With one
hidden unit (``m = 1``) the whole hidden vector is dropped or kept at once, so

- dropped (probability ``q``): the output is ``ReLU(b)``, the zero model ``W = 0``;
- kept (probability ``1 - q``): ``ReLU(Wᵀ W x / (1 - q) + b)``, the dropout-free model
  with weights ``V = W / √(1 - q)`` (``Vᵀ V = Wᵀ W / (1 - q)``).

So the expected training loss is exactly ``L_q(W, b) = q L(0, b) + (1 - q) L(W/√(1 - q), b)``
(``dropout_loss``), for any input law and importances.

Candidates. The dropout-free theory's fixed configurations (``theory.CANDIDATES_2_1``:
unit columns with bias 0, dropped columns with the mean bias ``p/2``) are taken as the
*effective* weights ``V``, i.e. ``W = √(1 - q) V`` (``candidates_2_1_dropout``). By the
mixture each represented feature pays ``q I p/3`` more (dropped, its output is 0 and its
error ``E[x²] = p/3``) and everything else is scaled by ``1 - q``; a dropped feature
costs ``I (p/3 - p²/4)`` as before. Per unit importance, with ``k = 1 - q``:
dedicated ``q p/3``, antipodal pair ``(I_i + I_j)(q p/3 + k p²/6)``. Under dropout a
fourth candidate can win, both features dropped (``W = 0``; ``CANDIDATES_2_1_DROPOUT``):
a represented feature with bias 0 costs ``q p/3``, more than dropping it
(``p/3 - p²/4``) when ``p > 4k/3``, so for ``q > 1/4`` the densest rows lose both.

Boundaries (each comparison with the antipodal loss is linear in ``p`` after dividing by
``p``): superposition wins iff ``p < p* = 4 s k / (2 (1 + r) k + 3 s)`` with
``s = min(r, 1)`` (``boundary_2_1_dropout``; ``theory.boundary_2_1`` at ``q = 0``,
symmetric under ``r -> 1/r``); the triple point is ``(1, 4k/(4k + 3))``; the vertical
boundary at ``r = 1`` runs up to ``min(1, 4k/3)``, above which nothing is represented.

What this leaves out, as the dropout-free theory does: free norms and biases. A positive
bias would lower the cost of being dropped (``q p/3``) for every represented feature,
by ``O(q² p²)``, and the best dedicated feature then always beats dropping it; its norm
``√(k a)`` with ``a < 1`` can fall under the analysis's 0.5 cut at high ``q`` and
density, where the labels then read "unrepresented" either way.

Example:
  >>> np.round(boundary_2_1_dropout(1.0, [0.0, 0.5]), 4)
  array([0.5714, 0.4   ])
"""

from __future__ import annotations

import numpy as np

from toymodels.theory.phases import (
    CANDIDATES_2_1,
    Candidate,
    _column_roles,
    _optimal_phase,
    candidate_loss,
    dropped_loss,
)

CANDIDATES_2_1_DROPOUT = CANDIDATES_2_1 + (
    Candidate("drop both", np.zeros((1, 2)), "unrepresented"),
)
"""n=2, m=1 under dropout: ``CANDIDATES_2_1`` and the zero model (never best at q = 0)."""


def dropout_loss(loss_fn, W, b, q):
    """Expected loss under inverted dropout ``q`` on the single hidden unit (m = 1).

    ``L_q(W, b) = q L(0, b) + (1 - q) L(W / √(1 - q), b)``, exact (see the module).

    Args:
      loss_fn: ``(W [1, F], b [F]) -> float``, the dropout-free expected loss.
      W: [1, F] weights (one hidden unit: with more, the units are dropped independently
        and the loss is not this two-term mixture).
      b: [F] biases.
      q: dropout rate in [0, 1).

    Returns:
      float.

    Example:
      >>> loss = lambda W, b: float(np.sum((W - 1.0) ** 2) + np.sum(b ** 2))
      >>> dropout_loss(loss, np.ones((1, 2)), np.zeros(2), 0.0)
      0.0
    """
    W = np.asarray(W, np.float64)
    if W.ndim != 2 or W.shape[0] != 1:
        raise ValueError(f"the dropout mixture needs one hidden unit, W [1, F]; got {W.shape}")
    if not 0.0 <= q < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {q}")
    return q * loss_fn(np.zeros_like(W), b) + (1.0 - q) * loss_fn(W / np.sqrt(1.0 - q), b)


def candidate_loss_dropout(W, p, importance, q):
    """Expected loss under dropout ``q`` of the candidate with effective weights ``W``.

    The mixture with ``V = W``: ``(1 - q) L(V) + q L(0, b)``, where ``L(V)`` is
    ``theory.candidate_loss`` and ``L(0, b) = Σ_dropped I_i (p/3 - p²/4) + Σ_represented
    I_i p/3`` (bias ``p/2`` on dropped features, 0 on represented ones).

    Args:
      W: [1, F] effective candidate (columns zero, unit, or antipodal unit pairs).
      p: feature density, any shape.
      importance: sequence of F importances, each broadcast with ``p``.
      q: dropout rate in [0, 1), broadcast with ``p``.

    Returns:
      float64 array, the broadcast shape.

    Example:
      >>> round(float(candidate_loss_dropout(np.array([[1.0, 0.0]]), 0.6, [1.0, 1.0], 0.5)), 6)
      0.21
    """
    if np.shape(W)[0] != 1:
        raise ValueError(f"dropout candidates need one hidden unit, W [1, F]; got {np.shape(W)}")
    dropped = set(_column_roles(W)[0])
    p, q = np.broadcast_arrays(np.asarray(p, np.float64), np.asarray(q, np.float64))
    at_zero = sum(dropped_loss(p, I) if i in dropped else np.asarray(I, np.float64) * p / 3.0
                  for i, I in enumerate(importance))
    return (1.0 - q) * candidate_loss(W, p, importance) + q * at_zero


def candidate_losses_2_1_dropout(p, r, q):
    """Losses of ``CANDIDATES_2_1_DROPOUT`` under dropout q: [4, *broadcast(p, r, q)].

    ``r(p/3 - p²/4) + qp/3``, ``p/3 - p²/4 + rqp/3``, ``(1 + r)(qp/3 + (1 - q)p²/6)``,
    ``(1 + r)(p/3 - p²/4)``; the first three are ``theory.candidate_losses_2_1`` at q = 0.
    """
    p, r, q = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (p, r, q)))
    return np.stack([candidate_loss_dropout(c.W, p, [1.0, r], q)
                     for c in CANDIDATES_2_1_DROPOUT])


def candidates_2_1_dropout(p, q):
    """The trained weights of ``CANDIDATES_2_1_DROPOUT``: ``W = √(1 - q) V`` and biases.

    Args:
      p: feature density (scalar); the dropped features' bias is ``p/2``.
      q: dropout rate (scalar).

    Returns:
      list of (W [1, 2], b [2]) float64, in ``CANDIDATES_2_1_DROPOUT`` order.

    Example:
      >>> W, b = candidates_2_1_dropout(0.1, 0.75)[2]
      >>> W.tolist(), b.tolist()
      ([[0.5, -0.5]], [0.0, 0.0])
    """
    out = []
    for c in CANDIDATES_2_1_DROPOUT:
        dropped = _column_roles(c.W)[0]
        b = np.array([p / 2.0 if i in dropped else 0.0 for i in range(c.W.shape[1])])
        out.append((np.sqrt(1.0 - q) * c.W, b))
    return out


def phase_2_1_dropout(p, r, q):
    """Phase of the extra feature in the best candidate under dropout q.

    Argmin over ``CANDIDATES_2_1_DROPOUT`` (ties to the earlier one); ``theory.phase_2_1``
    at ``q = 0``.

    Returns:
      str array of ``theory.PHASES`` names, broadcast shape of ``p``, ``r``, ``q``.

    Example:
      >>> [str(phase_2_1_dropout(0.4, 1.5, q)) for q in (0.0, 0.5)]
      ['superposition', 'dedicated']
    """
    return _optimal_phase(CANDIDATES_2_1_DROPOUT, candidate_losses_2_1_dropout(p, r, q))


def boundary_2_1_dropout(r, q):
    """Critical density of the superposition boundary under dropout q, n=2, m=1.

    ``p* = 4 s k / (2 (1 + r) k + 3 s)`` with ``s = min(r, 1)``, ``k = 1 - q``:
    superposition is the best candidate iff ``p < p*``.

    Args:
      r: relative importance of the extra feature, positive, any shape.
      q: dropout rate in [0, 1), broadcast with ``r``.

    Returns:
      float64 array of ``p*``.

    Example:
      >>> np.round(boundary_2_1_dropout([0.1, 1.0, 10.0], 0.3), 3)
      array([0.152, 0.483, 0.152])
    """
    r, q = np.broadcast_arrays(np.asarray(r, np.float64), np.asarray(q, np.float64))
    s, k = np.minimum(r, 1.0), 1.0 - q
    return 4.0 * s * k / (2.0 * (1.0 + r) * k + 3.0 * s)


def dedicated_range_2_1_dropout(q):
    """``(p_low, p_high)`` of the boundary at ``r = 1`` under dropout q.

    From the triple point ``4k/(4k + 3)`` up to ``min(1, 4k/3)``, above which both
    features are dropped (``k = 1 - q``); ``theory.dedicated_boundary_density("2_1")``
    at ``q = 0``.
    """
    k = 1.0 - float(q)
    return 4.0 * k / (4.0 * k + 3.0), min(1.0, 4.0 * k / 3.0)


# --- the same candidates with their biases (and the dedicated norm) optimised -----------
# Trained models under dropout pay back the dropped branch with a positive bias, which
# the fixed candidates above forbid. Per unit importance, k = 1 - q:
#
# - dedicated, output β + a z x (z ~ Bernoulli(k), no clipping for a, β >= 0): least
#   squares in (β, a) gives β = 2qp/(4 - 3kp), a = 1 - 3β/2 and loss
#   D(p, q) = qp/3 - q²p²/(4 - 3kp) (0 at q = 0, p/3 - p²/4 at q = 1); ‖W_i‖² = k a.
# - antipodal pair with unit effective norm and a shared bias β in [0, 1): dropped,
#   (x - β)²; kept, β² with no feature or only its own on, ReLU(β - ν)² (integral β³/3)
#   with only the partner on, and with both on (u, v uniform) (v - β)² where
#   v <= u + β, else u²: with s = 1 - β the two pieces are (s⁴/4 + β³s)/3 + β(s³ + β³)/3
#   and s⁴/12. The loss is a quartic in β, minimised on [0, 1).
# - dropped: the mean bias, p/3 - p²/4, as before.
#
# At q = 0 the pair's best bias is already positive (the both-on error falls by p²β/3 to
# first order), so these candidates differ from the fixed ones even without dropout.


def dedicated_dropout(p, q):
    """The best dedicated feature under dropout: (loss, effective scale a, bias β).

    Per unit importance: ``β = 2qp / (4 - 3kp)``, ``a = 1 - 3β/2`` (``‖W_i‖² = k a``),
    loss ``qp/3 - q²p² / (4 - 3kp)``, with ``k = 1 - q`` (see above).

    Args:
      p: feature density, any shape.
      q: dropout rate in [0, 1), broadcast with ``p``.

    Returns:
      (loss, a, β), float64 arrays of the broadcast shape.

    Example:
      >>> [round(float(v), 4) for v in dedicated_dropout(1.0, 0.5)]
      [0.0667, 0.4, 0.4]
    """
    p, q = np.broadcast_arrays(np.asarray(p, np.float64), np.asarray(q, np.float64))
    k = 1.0 - q
    bias = 2.0 * q * p / (4.0 - 3.0 * k * p)
    loss = q * p / 3.0 - q**2 * p**2 / (4.0 - 3.0 * k * p)
    return loss, 1.0 - 1.5 * bias, bias


def antipodal_pair_loss(beta, p, q):
    """Loss per unit importance of one member of an antipodal pair with unit effective
    norm and bias ``beta`` in [0, 1) under dropout q (the quartic above)."""
    beta, p, q = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (beta, p, q)))
    k, s = 1.0 - q, 1.0 - beta
    both = (s**4 / 4 + beta**3 * s) / 3 + beta * (s**3 + beta**3) / 3 + s**4 / 12
    kept = ((1 - p) ** 2 * beta**2 + p * (1 - p) * (beta**2 + beta**3 / 3) + p**2 * both)
    return q * (p / 3 - beta * p + beta**2) + k * kept


def antipodal_dropout(p, q):
    """The antipodal pair with its best bias: (loss per unit importance, bias β).

    Minimises ``antipodal_pair_loss`` over β in [0, 1): the quartic's coefficients come
    from 5 exact evaluations, its minimum from the real roots of the derivative.

    Example:
      >>> [round(float(v), 4) for v in antipodal_dropout(0.464, 0.5)]
      [0.0725, 0.1684]
    """
    p, q = np.broadcast_arrays(np.asarray(p, np.float64), np.asarray(q, np.float64))
    nodes = np.linspace(0.0, 1.0, 5)
    loss, bias = np.empty(p.shape), np.empty(p.shape)
    for i in np.ndindex(p.shape):
        coef = np.polyfit(nodes, antipodal_pair_loss(nodes, p[i], q[i]), 4)
        roots = np.roots(np.polyder(coef))
        real = roots[np.abs(roots.imag) < 1e-9].real
        trial = np.concatenate([[0.0], real[(real > 0.0) & (real < 1.0)]])
        values = antipodal_pair_loss(trial, p[i], q[i])
        loss[i], bias[i] = values.min(), trial[np.argmin(values)]
    return loss, bias


def candidate_losses_2_1_biased(p, r, q):
    """``CANDIDATES_2_1`` under dropout with their best biases: [3, *broadcast(p, r, q)].

    ``r(p/3 - p²/4) + D``, ``p/3 - p²/4 + rD``, ``(1 + r) A`` with ``D`` from
    ``dedicated_dropout`` and ``A`` from ``antipodal_dropout``.
    """
    p, r, q = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (p, r, q)))
    D, A, var = dedicated_dropout(p, q)[0], antipodal_dropout(p, q)[0], dropped_loss(p)
    return np.stack([r * var + D, var + r * D, (1.0 + r) * A])


def candidates_2_1_biased(p, q):
    """The weights and biases of ``candidate_losses_2_1_biased`` (scalars p, q).

    Returns:
      list of (W [1, 2], b [2]) float64 in ``CANDIDATES_2_1`` order.

    Example:
      >>> W, b = candidates_2_1_biased(0.5, 0.0)[0]
      >>> W.tolist(), b.tolist()
      ([[1.0, 0.0]], [0.0, 0.25])
    """
    _, a, beta = (float(v) for v in dedicated_dropout(p, q))
    pair_bias = float(antipodal_dropout(p, q)[1])
    k = 1.0 - q
    w = float(np.sqrt(k * a))
    return [
        (np.array([[w, 0.0]]), np.array([beta, p / 2.0])),
        (np.array([[0.0, w]]), np.array([p / 2.0, beta])),
        (np.array([[np.sqrt(k), -np.sqrt(k)]]), np.full(2, pair_bias)),
    ]


def phase_2_1_biased(p, r, q):
    """Phase of the extra feature in the best of ``candidate_losses_2_1_biased``.

    Example:
      >>> [str(phase_2_1_biased(0.464, 1.0, q)) for q in (0.0, 0.5)]
      ['superposition', 'superposition']
    """
    return _optimal_phase(CANDIDATES_2_1, candidate_losses_2_1_biased(p, r, q))


def boundary_2_1_biased(r, q, grid=200):
    """Superposition boundary ``p*(r, q)`` of the bias-optimised candidates: the largest
    density where superposition is best, found on a log grid of ``grid`` densities in
    [1e-3, 1] and refined by bisection to 1e-10 (1.0 if superposition wins everywhere).

    Args:
      r: relative importance of the extra feature, any shape.
      q: dropout rate (scalar).
      grid: densities of the initial scan.

    Returns:
      float64 array of ``p*``, shape of ``r``.
    """
    from scipy.optimize import brentq

    r = np.asarray(r, np.float64)
    ps = np.geomspace(1e-3, 1.0, grid)
    A, D, var = antipodal_dropout(ps, q)[0], dedicated_dropout(ps, q)[0], dropped_loss(ps)

    def gap(p, r_):  # superposition minus the better one-feature candidate
        losses = candidate_losses_2_1_biased(p, r_, q)
        return float(losses[2] - losses[:2].min())

    out = np.empty(r.shape)
    for i in np.ndindex(r.shape):
        g = (1 + r[i]) * A - np.minimum(r[i] * var + D, var + r[i] * D)
        wins = np.nonzero(g < 0)[0]
        last = wins.max() if wins.size else -1
        out[i] = (1.0 if last == grid - 1 else np.nan if last < 0
                  else brentq(gap, ps[last], ps[last + 1], args=(r[i],), xtol=1e-10))
    return out
