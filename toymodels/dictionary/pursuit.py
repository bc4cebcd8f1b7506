"""Sparse coding against a fixed dictionary by pursuit (inference-time optimisation).

Role in the data flow: given a dictionary (the decoder of a trained SAE, or the ground
truth features of a toy model), these functions find sparse codes for a batch of
activations without any encoder. Comparing an SAE's encoder with pursuit on its own
decoder separates encoder error from dictionary error (Smith 2024).

Conventions: ``dictionary`` is [N, d] with unit rows (N atoms, i.e. latents, in d
dimensions); ``x`` is [B, d]; codes are [B, N] and the reconstruction is
``x_hat = codes @ dictionary``.

Each algorithm is written for ONE example (``_mp_one`` etc.: ``x`` [d], ``k`` [], a
``lax.fori_loop`` over ``max_k`` iterations) and vmapped over the batch in one place,
``_pursue``. ``k`` is a Python int (the same for every example) or an int array [B]
(per-example sparsity, e.g. an SAE encoder's L0 example by example); the loop then runs
``max_k`` (static) iterations and an example leaves iteration ``i >= k`` unchanged, so
its result is the one that int ``k`` would give. Everything jits, e.g.
``jax.jit(matching_pursuit, static_argnames=("max_k", "nonnegative"))``.

References:
  S. Mallat, Z. Zhang (1993), "Matching pursuits with time-frequency dictionaries",
  IEEE Trans. Signal Processing 41(12).
  Y. C. Pati, R. Rezaiifar, P. S. Krishnaprasad (1993), "Orthogonal matching pursuit".
  T. Blumensath, M. E. Davies (2008), "Gradient pursuits", IEEE Trans. Signal
  Processing 56(6).
  L. Smith (2024), "Replacing SAE encoders with inference-time optimisation"
  (LessWrong / Alignment Forum).

Example:
  >>> x = jnp.array([[0.0, 2.0, -1.0]])
  >>> matching_pursuit(jnp.eye(3), x, 2)
  Array([[ 0.,  2., -1.]], dtype=float32)
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import numpy as np

_HIGHEST = jax.lax.Precision.HIGHEST  # float32 matmuls on CPU and GPU alike
NOISE_FLOOR = 1e-5
"""An atom is added only if its score exceeds NOISE_FLOOR * ||x||: below that the
residual is float32 rounding noise of an exact fit, and adding atoms would only inflate
L0 (and make OMP's Gram system singular once the support spans x)."""


def _scores(correlations: jax.Array, nonnegative: bool) -> jax.Array:
    """How much each atom is wanted: <r, d_j>, or |<r, d_j>| when signed; [N] -> [N]."""
    return correlations if nonnegative else jnp.abs(correlations)


def _correlations(dictionary: jax.Array, residual: jax.Array) -> jax.Array:
    """<r, d_j> for every atom; dictionary [N, d], residual [d] -> [N]."""
    return jnp.matmul(dictionary, residual, precision=_HIGHEST)


def _decode(dictionary: jax.Array, code: jax.Array) -> jax.Array:
    """Reconstruction sum_j c_j d_j; dictionary [N, d], code [N] -> [d]."""
    return jnp.matmul(code, dictionary, precision=_HIGHEST)


def _floor(x: jax.Array) -> jax.Array:
    """The smallest score that adds an atom, NOISE_FLOOR * ||x||; [d] -> []."""
    return NOISE_FLOOR * jnp.sqrt(x @ x)


def _mp_one(dictionary, x, k, *, max_k: int, nonnegative: bool) -> jax.Array:
    """Matching pursuit for ONE example; x [d], k [] -> code [N].

    Each iteration i < k picks j = argmax |<r, d_j>| (argmax <r, d_j> when
    nonnegative), adds c_j += <r, d_j> (an atom may be picked again: coefficients
    accumulate) and sets r -= <r, d_j> d_j. Nothing is added when the best score is not
    above `_floor(x)` (r is rounding noise, or no correlation is positive when
    nonnegative).
    """
    floor = _floor(x)

    def step(i, carry):
        code, residual = carry
        correlations = _correlations(dictionary, residual)
        scores = _scores(correlations, nonnegative)
        j = jnp.argmax(scores)
        coefficient = jnp.where((i < k) & (scores[j] > floor), correlations[j], 0.0)
        return code.at[j].add(coefficient), residual - coefficient * dictionary[j]

    code = jnp.zeros(dictionary.shape[:1], x.dtype)
    code, _ = jax.lax.fori_loop(0, max_k, step, (code, x))
    return code


def _gp_one(dictionary, x, k, *, max_k: int, nonnegative: bool) -> jax.Array:
    """Gradient pursuit for ONE example; x [d], k [] -> code [N].

    Iteration i < k: r = x - D^T c, g = D r (minus the gradient of ||r||²/2 in c);
    the support S = {c != 0} plus the atom of largest score (if above `_floor(x)`);
    g_S = g on S, 0 elsewhere; c += a g_S with the exact line search (derivation in
    `gradient_pursuit`); clip c >= 0 when nonnegative.
    """
    floor = _floor(x)

    def step(i, code):
        residual = x - _decode(dictionary, code)
        correlations = _correlations(dictionary, residual)
        scores = _scores(correlations, nonnegative)
        j = jnp.argmax(scores)
        support = (code != 0).at[j].set((code[j] != 0) | (scores[j] > floor))
        direction = jnp.where(support, correlations, 0.0)
        image = _decode(dictionary, direction)
        numerator, denominator = direction @ direction, image @ image
        size = numerator / jnp.where(denominator > 0, denominator, 1.0)
        new = code + size * direction
        if nonnegative:
            new = jnp.maximum(new, 0.0)
        return jnp.where(i < k, new, code)

    code = jnp.zeros(dictionary.shape[:1], x.dtype)
    return jax.lax.fori_loop(0, max_k, step, code)


def _masked_least_squares(atoms, filled, x) -> jax.Array:
    """Least squares on the filled slots; atoms [K, d], filled [K] bool, x [d] -> [K].

    Solves (M G M + I - M) c = M D_S x with G = D_S D_S^T and M = diag(filled), so the
    shapes stay static: an empty slot's row is the identity and its coefficient 0. The
    system is symmetric positive definite when the filled atoms are linearly
    independent, and is solved by Cholesky.
    """
    mask = filled.astype(x.dtype)
    gram = jnp.matmul(atoms, atoms.T, precision=_HIGHEST)
    system = gram * jnp.outer(mask, mask) + jnp.diag(1.0 - mask)
    rhs = mask * jnp.matmul(atoms, x, precision=_HIGHEST)
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(system), rhs)


def _omp_one(dictionary, x, k, *, max_k: int, nonnegative: bool) -> jax.Array:
    """Orthogonal matching pursuit for ONE example; x [d], k [] -> code [N].

    The support is kept as max_k slots (atom index, filled flag). Iteration i < k fills
    slot i with the best-scoring atom not yet chosen (if above `_floor(x)`), then
    the code is the least-squares fit on the filled slots, clipped >= 0 when
    nonnegative.
    """
    n_atoms, floor = dictionary.shape[0], _floor(x)

    def step(i, carry):
        slots, filled, code = carry
        residual = x - _decode(dictionary, code)
        chosen = jnp.zeros(n_atoms, jnp.int32).at[slots].add(filled.astype(jnp.int32))
        scores = _scores(_correlations(dictionary, residual), nonnegative)
        scores = jnp.where(chosen > 0, -jnp.inf, scores)
        j = jnp.argmax(scores)
        add = (i < k) & (scores[j] > floor)
        slots = slots.at[i].set(jnp.where(add, j, 0))
        filled = filled.at[i].set(add)
        coefficients = _masked_least_squares(dictionary[slots], filled, x)
        if nonnegative:
            coefficients = jnp.maximum(coefficients, 0.0)
        code = jnp.zeros(n_atoms, x.dtype).at[slots].add(coefficients)
        return slots, filled, code

    start = (
        jnp.zeros(max_k, jnp.int32),
        jnp.zeros(max_k, bool),
        jnp.zeros(n_atoms, x.dtype),
    )
    return jax.lax.fori_loop(0, max_k, step, start)[2]


def _iterations(k, max_k: int | None) -> int:
    """The static number of iterations: max_k, else k (an int) or max(k) (an array)."""
    if max_k is not None:
        return int(max_k)
    if isinstance(k, (int, np.integer)):
        return int(k)
    if isinstance(k, jax.core.Tracer):
        raise ValueError("max_k (a static int) is needed when k is traced (under jit)")
    return int(np.max(np.asarray(k)))


def _pursue(one: Callable, dictionary, x, k, max_k, nonnegative) -> jax.Array:
    """The one place where a per-example pursuit is vmapped over the batch [B]."""
    per_example = functools.partial(
        one, max_k=_iterations(k, max_k), nonnegative=nonnegative
    )
    dtype = jnp.result_type(dictionary, x)
    ks = jnp.broadcast_to(jnp.asarray(k, jnp.int32), x.shape[:1])
    return jax.vmap(per_example, in_axes=(None, 0, 0))(
        dictionary.astype(dtype), x.astype(dtype), ks
    )


def matching_pursuit(
    dictionary: jax.Array,
    x: jax.Array,
    k,
    *,
    max_k: int | None = None,
    nonnegative: bool = False,
) -> jax.Array:
    """Matching pursuit (Mallat & Zhang 1993): k greedy single-atom steps.

    Each step picks the atom with the largest |<r, d_j>| (the largest positive
    <r, d_j> when nonnegative; nothing is added once none is positive, or once the
    best is below `NOISE_FLOOR` * ||x||, i.e. r is rounding noise), adds that
    coefficient to c_j (an atom may be picked again: coefficients accumulate) and
    removes its projection from the residual r.

    Args:
      dictionary: [N, d] atoms with unit rows.
      x: [B, d] inputs.
      k: int, or int array [B] of per-example sparsity (number of steps).
      max_k: static number of iterations; defaults to k when k is an int (or to
        max(k) for a concrete array). Needed under jit when k is an array.
      nonnegative: only positive coefficients.

    Returns:
      [B, N] codes, with at most k non-zeros per example.

    Example:
      >>> d = jnp.array([[1.0, 0.0], [0.6, 0.8]])
      >>> matching_pursuit(d, jnp.array([[0.6, 0.8], [2.0, 0.0]]), 1)
      Array([[0., 1.],
             [2., 0.]], dtype=float32)
    """
    return _pursue(_mp_one, dictionary, x, k, max_k, nonnegative)


def gradient_pursuit(
    dictionary: jax.Array,
    x: jax.Array,
    k,
    *,
    max_k: int | None = None,
    nonnegative: bool = True,
) -> jax.Array:
    """Gradient pursuit (Blumensath & Davies 2008), non-negative as in Smith (2024).

    The non-negative variant is the one used for SAE dictionaries in Smith (2024),
    "Replacing SAE encoders with inference-time optimisation". Each iteration:

    1. r = x - D^T c and g = D r, minus the gradient of f(c) = ||x - D^T c||² / 2;
    2. support S = {j : c_j != 0} plus the atom of largest |g_j| (largest positive g_j
       when nonnegative; none is added if that is not above `NOISE_FLOOR` * ||x||);
    3. one gradient step on S, c <- c + a g_S (g_S = g on S, 0 elsewhere), with the
       exact line search: f(c + a g_S) = ||r - a D^T g_S||² / 2 is minimal at
       a = <r, D^T g_S> / ||D^T g_S||² = ||g_S||² / ||D^T g_S||², since
       <r, D^T g_S> = <D r, g_S> = ||g_S||²;
    4. when nonnegative, c <- max(c, 0) (an atom clipped to 0 leaves the support and
       may be picked again later).

    Cheaper than OMP (no solve) and exact after k steps on an orthonormal dictionary.

    Args:
      dictionary: [N, d] atoms with unit rows.
      x: [B, d] inputs.
      k: int, or int array [B]: iterations (atoms added at most) per example.
      max_k: static number of iterations; defaults to k when k is an int.
      nonnegative: non-negative codes (the default, as for SAE latents).

    Returns:
      [B, N] codes, with at most k non-zeros per example.

    Example:
      >>> d = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
      >>> gradient_pursuit(d, jnp.array([[1.0, 0.25]]), 2)
      Array([[1.  , 0.25, 0.  ]], dtype=float32)
    """
    return _pursue(_gp_one, dictionary, x, k, max_k, nonnegative)


def orthogonal_matching_pursuit(
    dictionary: jax.Array,
    x: jax.Array,
    k,
    *,
    max_k: int | None = None,
    nonnegative: bool = False,
) -> jax.Array:
    """Orthogonal matching pursuit (Pati et al. 1993): least squares on the support.

    Each iteration adds the atom of largest |<r, d_j>| not yet chosen (largest
    positive <r, d_j> when nonnegative; none once that is not above `NOISE_FLOOR` *
    ||x||, so an exact fit stops adding atoms) and refits
    every coefficient on the support by least squares, through a masked [max_k,
    max_k] Gram system so the shapes stay static. For small k: each iteration solves a
    max_k x max_k system per example; the support's atoms must be linearly independent
    (k <= d), or the Cholesky solve returns NaN.

    nonnegative: atoms are selected by positive correlation and the least-squares
    coefficients are then clipped at 0. This is NOT a non-negative least-squares
    solve; it is exact only when the least-squares fit is already non-negative (as for
    positive codes and a well-conditioned support). Use `gradient_pursuit` for a
    principled non-negative pursuit.

    Args:
      dictionary: [N, d] atoms with unit rows.
      x: [B, d] inputs.
      k: int, or int array [B]: atoms per example.
      max_k: static number of iterations; defaults to k when k is an int.
      nonnegative: select by positive correlation and clip the coefficients.

    Returns:
      [B, N] codes, with at most k non-zeros per example.

    Example:
      >>> d = jnp.array([[1.0, 0.0], [0.6, 0.8]])
      >>> orthogonal_matching_pursuit(d, jnp.array([[2.2, 1.6]]), 2).round(4)
      Array([[1., 2.]], dtype=float32)
    """
    return _pursue(_omp_one, dictionary, x, k, max_k, nonnegative)


omp = orthogonal_matching_pursuit
