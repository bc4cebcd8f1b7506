"""k-gon critical points of the exactly-one loss in ``m = 2`` (Chen et al. 2023).

Where this sits: re-exported by ``toymodels.theory``; ``toymodels.models.kgon_params``
embeds a k-gon as a model's starting point, ``toymodels.analysis.kgon`` labels trained
solutions by their nearest k-gon loss level, and ``plotting.slt`` draws those levels.

Source: Chen, Lau, Mendel, Wei, Murfet (2023), "Dynamical versus Bayesian Phase
Transitions in a Toy Model of Superposition", arXiv 2310.06301, and the reproduction
``ztreisman/arc-llc`` that quotes its Table A.1; REFERENCE.md sections 4 and E. A
regular k-gon has ``k`` columns of common length ``l*`` at angles ``2πj/k`` with a
shared bias ``b*``, ``(l*, b*)`` minimising ``theory.exactly_one.exactly_one_loss`` in
that family; the other columns are zero with bias ``<= 0``, or ``1/(2c)`` in the
``k^{σ+}`` variants.

Example:
  >>> g = kgon(6, 4)
  >>> (g.length, g.bias), round(g.loss, 5)  # REFERENCE 4: the 4-gon, L = 1/9
  ((1.0, 0.0), 0.11111)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from toymodels.theory.exactly_one import exactly_one_loss


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
