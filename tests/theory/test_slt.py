"""Closed forms of singular learning theory: the free-energy crossing (REFERENCE E) and
Aoyagi and Watanabe's learning coefficient of reduced-rank regression (REFERENCE D)."""

import numpy as np
import pytest

from toymodels import theory
from toymodels.theory import rrr_learning_coefficient, rrr_multiplicity


def test_free_energy_crossing():
    n = theory.free_energy_crossing(-0.01, -1.0, 5.0)
    assert -0.01 * n - np.log(n) + 5.0 == pytest.approx(0.0, abs=1e-9)
    assert theory.free_energy_crossing(0.01, 1.0, 1.0) is None  # positive for n >= 1


def _fixed_point(c, a, start, iterations=60):
    """A root of -n/a + ln n + c = 0 by the hand iteration n <- a (ln n + c)."""
    n = start
    for _ in range(iterations):
        n = a * (np.log(n) + c)
    return n


def test_the_crossing_without_the_prior_term_is_the_transition_not_n_near_1():
    # dL = -1e-3, dlam = 1, no prior term: dF = -n/1000 + ln n is 0 at n = 1.001 (where
    # ln n ~ n/1000) and at n = 1000 ln n = 9118.0 (the fixed point, iterated by hand)
    big = _fixed_point(0.0, 1000.0, 9000.0)
    assert big == pytest.approx(9118.0, abs=0.05)
    assert theory.free_energy_roots(-1e-3, 1.0, 0.0) == pytest.approx([1.001001, big], rel=1e-6)
    assert theory.free_energy_crossing(-1e-3, 1.0, 0.0) == pytest.approx(big, rel=1e-9)


def test_with_a_prior_term_both_roots_are_real_and_the_larger_is_the_crossing():
    # dF = -n/1000 + ln n - 2: roots at ln n = 2 + n/1000 (n = 7.44, iterated as
    # n = exp(2 + n/1000)) and n = 1000 (ln n - 2) = 6828.9
    small = 7.0
    for _ in range(60):
        small = np.exp(2 + small / 1000)
    big = _fixed_point(-2.0, 1000.0, 7000.0)
    roots = theory.free_energy_roots(-1e-3, 1.0, -2.0)
    assert roots == pytest.approx([small, big], rel=1e-6)
    assert small == pytest.approx(7.444, abs=1e-3) and big == pytest.approx(6828.9, abs=0.1)
    assert theory.free_energy_crossing(-1e-3, 1.0, -2.0) == roots[1]


def test_rrr_formula_known_cases():
    for M in range(1, 6):
        for N in range(1, 6):
            # H = 1: ||b||^2 ||a||^2, lambda = min(M, N)/2, multiplicity 2 iff M = N
            assert rrr_learning_coefficient(M, N, 1) == min(M, N) / 2
            assert rrr_multiplicity(M, N, 1) == (2 if M == N else 1)
            # N = M = 1, any H: (b . a)^2 for a, b in R^H, lambda = 1/2
            assert rrr_learning_coefficient(1, 1, N) == 0.5
            for H in range(1, 6):
                lam = rrr_learning_coefficient(M, N, H)
                # transposing the map swaps M and N
                assert lam == rrr_learning_coefficient(N, M, H)
                # never above the regular value d/2, never decreasing in H
                assert 0 < lam <= H * (M + N) / 2
                assert lam <= rrr_learning_coefficient(M, N, H + 1)
                if H <= min(M, N):  # true rank r = H: regular, d_rank-H / 2
                    assert rrr_learning_coefficient(M, N, H, H) == H * (M + N - H) / 2
                if H >= M + N:  # every B A reachable near 0: lambda = MN/2
                    assert lam == M * N / 2


def test_rrr_formula_continuous_across_cases():
    # where a case inequality becomes equality the even-parity case-1 value (s / 8)
    # equals the neighbouring closed form
    for M in range(1, 7):
        for N in range(1, 7):
            for H in range(1, 7):
                for r in range(0, min(M, N, H) + 1):
                    lam = rrr_learning_coefficient(M, N, H, r)
                    if M + H == N + r:
                        assert lam == (H * M - H * r + N * r) / 2
                    if N + H == M + r:
                        assert lam == (H * N - H * r + M * r) / 2
                    if M + N == H + r:
                        assert lam == M * N / 2


def test_rrr_formula_values_and_validation():
    # case 1 even (1.5, 2.5), case 1 odd (multiplicity 2), case 3 (N + H < M), case 4
    assert rrr_learning_coefficient(2, 2, 2) == 1.5
    assert rrr_learning_coefficient(3, 3, 2) == 2.5
    assert (rrr_learning_coefficient(3, 2, 2), rrr_multiplicity(3, 2, 2)) == (2.0, 2)
    assert rrr_learning_coefficient(5, 2, 2) == 2.0
    assert rrr_learning_coefficient(1, 1, 3) == 0.5
    for bad in [(0, 2, 2, 0), (2, 2, 2, 3), (2, 2, 2, -1), (2.5, 2, 2, 0)]:
        with pytest.raises(ValueError):
            rrr_learning_coefficient(*bad)
