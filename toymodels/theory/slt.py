"""Closed forms of singular learning theory: learning coefficients and free energy.

Where this sits: re-exported by ``toymodels.theory``; the LLC estimator
``toymodels.sgld.llc`` is tested against ``rrr_learning_coefficient``, and
``free_energy_crossing`` gives the sample size of a Bayesian phase transition between
two critical points (the k-gons of ``theory.kgons``).

Sources: Aoyagi, M. & Watanabe, S. (2005), "Stochastic complexities of reduced rank
regression in Bayesian estimation", Neural Networks 18(7), 924-933 (REFERENCE.md
section D); Chen, Lau, Mendel, Wei, Murfet (2023), arXiv 2310.06301, for the free energy
``F_n ≈ n L + λ ln n + ½‖w*‖²`` with a standard normal prior (REFERENCE.md sections 4
and E).

Example:
  >>> rrr_learning_coefficient(3, 3, 3, r=3)  # regular: d/2 = 9/2
  4.5
"""

from __future__ import annotations

import numpy as np


def free_energy_crossing(dL, dlam, dnorm, n_range=(1.0, 1e12)):
    """The sample size ``n_cr`` past which ``ΔF_n = n ΔL + Δλ ln n + Δ(½‖w*‖²)`` keeps
    the sign of ``ΔL`` for good: the Bayesian phase transition between two critical points
    (REFERENCE E, standard normal prior), or None.

    ``ΔF_n`` has at most two roots (its slope ``ΔL + Δλ / n`` changes sign once). The
    crossing is the LARGER one, after which the lower-loss point is preferred at every
    larger n. A smaller root sits where ``ln n`` is of order one (for ``Δ(½‖w*‖²) = 0``
    it is always near n = 1, where ``ln n = 0``), where the asymptotic expansion behind
    ``ΔF_n`` does not hold: it is not the transition. `free_energy_roots` gives both.

    Args:
      dL, dlam, dnorm: differences of loss, learning coefficient and ``½‖w*‖²``.
      n_range: search interval ``(n_min, n_max)`` of sample sizes, scanned on a log grid.

    Returns:
      float ``n_cr`` or None if ``ΔF_n`` has no sign change there.

    Example:
      >>> round(free_energy_crossing(-0.01, -1.0, 5.0), 2)
      72.14
      >>> round(free_energy_crossing(-0.001, 1.0, 0.0), 1)  # not the root at n = 1.001
      9118.0
    """
    roots = free_energy_roots(dL, dlam, dnorm, n_range)
    return roots[-1] if roots else None


def free_energy_roots(dL, dlam, dnorm, n_range=(1.0, 1e12)) -> list[float]:
    """Every n in ``n_range`` (at most two) where ``ΔF_n`` of `free_energy_crossing`
    changes sign, in increasing order: a sign change on a log grid of 4001 points, then
    bisection in ln n to the float's resolution.

    Example:
      >>> [round(n, 4) for n in free_energy_roots(-0.001, 1.0, 0.0)]
      [1.001, 9118.0065]
    """
    def f(log_n):
        return np.exp(log_n) * dL + dlam * log_n + dnorm

    grid = np.linspace(np.log(n_range[0]), np.log(n_range[1]), 4001)
    values = f(grid)
    roots = []
    for i in np.nonzero(np.sign(values[:-1]) * np.sign(values[1:]) <= 0)[0]:
        lo, hi = grid[i], grid[i + 1]
        if values[i] == 0.0:
            root = lo
        else:
            for _ in range(100):  # bisection in ln n: 2^-100 of a grid step
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if np.sign(f(mid)) == np.sign(values[i]) else (lo, mid)
            root = 0.5 * (lo + hi)
        if not roots or not np.isclose(np.exp(root), roots[-1], rtol=1e-9):
            roots.append(float(np.exp(root)))
    return roots


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
