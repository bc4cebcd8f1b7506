"""A hand-built target: one weight matrix made of k known rank-1 pieces.

Role in the data flow: the known answer for the tests of SPD (issue 28): a decomposition
of ``W`` should find the pieces U_k V_kᵀ (`toymodels.spd.metrics.rank_one_pieces`), and
the metrics score exactly 1 on the ground truth itself.

Two layouts (``aligned``, static):
  * aligned (default): V_k = e_k, so piece k is W[:, k] e_kᵀ, the layout of a TMS
    embedding's features; inputs sparse in the standard basis use one piece per active
    input coordinate (`toymodels.spd.metrics.column_pieces` of W gives the same pieces
    when k = d_in);
  * not aligned: the V_k are random orthonormal rows, so the pieces are generic rank-1
    matrices; inputs must then be sparse in the basis {V_k} for a piece to be used alone.
Each U_k is a uniformly random direction with a norm uniform in [0.5, 1.5], so that
norm ratios (ML2R) are not all 1 by accident.

Example:
  >>> hand = hand_built(jax.random.key(0), 3, 2, 4)
  >>> hand.W.shape, hand.U.shape, hand.V.shape
  ((2, 4), (3, 2), (3, 4))
  >>> bool(jnp.allclose(hand.W, hand.U.T @ hand.V))
  True
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

PIECE_NORMS = (0.5, 1.5)  # ||U_k|| is uniform in this range; ||V_k|| = 1


class HandBuilt(NamedTuple):
    """W [d_out, d_in] = Σ_k U_k V_kᵀ = Uᵀ V; U [k, d_out]; V [k, d_in] (unit rows)."""

    W: jax.Array
    U: jax.Array
    V: jax.Array


def hand_built(key: jax.Array, n_pieces: int, d_out: int, d_in: int,
               aligned: bool = True) -> HandBuilt:
    """A target matrix made of ``n_pieces`` known rank-1 pieces, and its ground truth.

    Args:
      key: a JAX PRNG key (consumed).
      n_pieces: k <= d_in, so that the V_k are orthonormal (static).
      d_out, d_in: the matrix's shape (static).
      aligned: V_k = e_k when True, random orthonormal rows otherwise (static).

    Returns:
      `HandBuilt` (W [d_out, d_in], U [k, d_out], V [k, d_in]).

    Example:
      >>> hand_built(jax.random.key(1), 2, 3, 2).V
      Array([[1., 0.],
             [0., 1.]], dtype=float32)
    """
    if not 1 <= n_pieces <= d_in:
        raise ValueError(f"hand_built: n_pieces must be in 1..d_in = {d_in}, got {n_pieces}")
    key_direction, key_norm, key_basis = jax.random.split(key, 3)
    direction = jax.random.normal(key_direction, (n_pieces, d_out))
    direction = direction / jnp.linalg.norm(direction, axis=1, keepdims=True)
    norm = jax.random.uniform(key_norm, (n_pieces,), minval=PIECE_NORMS[0], maxval=PIECE_NORMS[1])
    U = direction * norm[:, None]
    if aligned:
        V = jnp.eye(n_pieces, d_in)
    else:
        q, _ = jnp.linalg.qr(jax.random.normal(key_basis, (d_in, n_pieces)))
        V = q.T
    return HandBuilt(jnp.matmul(U.T, V, precision=jax.lax.Precision.HIGHEST), U, V)
