"""The exactly-one-active loss of the ReLU-output model, closed form (numpy, float64).

Where this sits: re-exported by ``toymodels.theory``; ``theory.kgons`` finds its k-gon
critical points, and ``toymodels.analysis.kgon`` compares trained losses with them. The
same loss in ``jax.numpy``, differentiable, is the trainer's own exact evaluation
(``toymodels.evaluation.exactly_one_loss_jnp``), which tests check against this one.

Source: Chen, Lau, Mendel, Wei, Murfet (2023), "Dynamical versus Bayesian Phase
Transitions in a Toy Model of Superposition", arXiv 2310.06301 (via
``ztreisman/arc-llc``); REFERENCE.md sections 4 and E. Inputs are ``x = μ e_i`` with
``i`` uniform over the ``c`` features and ``μ ~ U[0, 1]`` (exactly one feature active);
the model is ``x' = ReLU(Wᵀ W x + b)`` with ``W: [m, c]`` and the unhalved loss
``L = E‖x - x'‖²``.

Example:
  >>> round(exactly_one_loss(np.eye(2, 6), np.zeros(6)), 6)  # 2 dedicated, 4 dropped
  0.222222
"""

from __future__ import annotations

import numpy as np


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
