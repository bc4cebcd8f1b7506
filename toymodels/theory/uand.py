"""Universal AND constructions (Hänni, Mendel, Vaintrob, Chan 2024) in the residual layout.

Where this sits: hand-written uand models of the residual-MLP family, evaluated by
`toymodels.theory.computation_loss.uand_loss`, beside the naive baseline of
`toymodels.theory.computation`. The task: m boolean features, on independently with
probability p_i; outputs the C(m, 2) ANDs x_i x_j (row-major i < j); ŷ = R a, a the
neurons' activations. Neurons read the residual stream r_0 = W_E x through the dual
basis D (`computation.dual_basis`, D[:, i] · r_0 = x_i), so reading is exact for
d_embed >= m and the constructions are the paper's with basis-aligned inputs.

**Random U-AND** (`random_uand_params`; the paper's one-layer construction): neuron k
reads a random subset S_k of the inputs, each input in it independently with
probability p_c, with weight 1 and bias −1: a_k = ReLU(Σ_{i in S_k} x_i − 1), which is
1 when exactly two of its inputs are on (0 with fewer). The AND of (i, j) is read off as
the mean of the neurons with i, j in S_k (their set K_ij, N_ij = |K_ij| ~ Bin(d, p_c²);
0 when N_ij = 0). The paper takes p_c = log² m / √d (`paper_connection`), so that every
pair has about log⁴ m readout neurons.

Its error, exactly, on inputs with K <= 1 active: 0 (every neuron's input is <= 0). On
inputs with exactly the pair Q on (`random_uand_error`, expected over the random
construction): output Q is 1 unless N_Q = 0 (error 1 with P(N = 0) = (1 − p_c²)^d); an
output P sharing one feature with Q reads the fraction of its N_P neurons that also
contain Q's other feature, Bin(N_P, p_c)/N_P; an output disjoint from Q reads
Bin(N_P, p_c²)/N_P. With q = p_c², h = E[1{N >= 1}/N] and g = P(N >= 1), N ~ Bin(d, q):

  E Σ_P (ŷ_P − y_P)² = (1 − q)^d + 2(m − 2)(p_c² g + p_c(1 − p_c) h)
                      + C(m − 2, 2)(p_c⁴ g + p_c²(1 − p_c²) h).

Scaling: for large d, h ≈ 1/(d q) and g ≈ 1, so with p_c = c/√d the shared-feature
term is 2m(c²/d + 1/(c√d)) and the disjoint one m²/2 (c⁴/d² + 1/d): the paper's
regime (c = log² m, so c³ ≫ √d) has the squared error per output falling like 1/d,
i.e. error ε ∝ d^{-1/2} per output, until d ~ c⁶ where the readout's sampling noise
(∝ d^{-1/2} in squared error) takes over. For m = 20 the closed form's slope of
log error against log d is −1.38 over d = 128..2048 (the disjoint pairs' p_c⁴ term still
counts), −0.95 over 4096..65536 and −0.58 over 2²²..2²⁶ (past c⁶ ≈ 5·10⁵).

**Block construction for one active circuit** (`block_uand_params`). The stored copies
hold no exact definition from the paper; the closest found is the LessWrong post
"Block-structured computation in superposition" (the z = 1 case, exactly one circuit
active): neurons are partitioned into blocks, each of T small multi-layer circuits is
assigned a block (several circuits share one), the input carries a one-hot code of the
active circuit's block, and an extra error-correction layer removes whatever lies outside
that block, for zero error with T = (D/d)² circuits. That needs a one-hot block code in
the input and several layers, which the U-AND task has not; here is the natural one-layer
version: the neurons are partitioned into blocks of `block` neurons, one block per pair
(the pairs with the largest p_i p_j first), every neuron of a block computes
ReLU(x_i + x_j − 1) = x_i x_j and the readout averages its block. Each covered pair's
output is exact on every input, so the error on inputs with exactly one active circuit
(pair) is 0 when that circuit is covered and 1 when it is not. No one-layer construction
with a linear readout does better with fewer neurons than circuits: zero error on every
input with exactly one active pair needs R a(e_i + e_j) = e_(i,j) for all C(m, 2) pairs,
i.e. R A = I with A = [a(e_i + e_j)] (d_mlp × C(m, 2)), so C(m, 2) = rank A <= d_mlp. With block = 1 it is the naive baseline.

Example:
  >>> P = block_uand_params(np.eye(4), d_mlp=2, p=np.full(4, 0.1))
  >>> P["R"].shape, P["b_in_0"].tolist()
  ((6, 2), [-1.0, -1.0])
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from toymodels.theory.computation import (
    dual_basis,
    empty_params,
    naive_priority,
    pairs,
)


def paper_connection(m: int, d: int) -> float:
    """The paper's connection probability p_c = log² m / √d, capped at 1."""
    return float(min(1.0, np.log(m) ** 2 / np.sqrt(d)))


def random_uand_params(W_E: np.ndarray, d_mlp: int, connection: float,
                       seed: int = 0, read: str = "dual") -> dict[str, np.ndarray]:
    """The random U-AND construction in the layout (one layer of d_mlp neurons).

    Args:
      W_E: [d_embed, m] the embedding.
      d_mlp: neurons; connection: p_c, the probability that a neuron reads an input.
      seed: the subsets' draw (numpy's default generator).
      read: "dual" reads Σ_{i in S_k} x_i exactly through the dual basis (W_E of full
        column rank); "embedding" reads Σ_{i in S_k} W_E[:, i] · r_0 = Σ_{i in S_k}
        (G x)_i, the paper's reading of inputs in superposition (d_embed < m allowed;
        the interference G − I then adds to every neuron's input).

    Returns:
      W_E, W_in_0 [d_mlp, d_embed], b_in_0 = −1, W_out_0 = 0, b_out_0 = 0 and
      R [C(m, 2), d_mlp] (the mean over K_ij), float64.
    """
    if read not in ("dual", "embedding"):
        raise ValueError(f"unknown read {read!r}; valid: dual, embedding")
    D = dual_basis(W_E) if read == "dual" else np.asarray(W_E, np.float64)
    m = D.shape[1]
    S = (np.random.default_rng(seed).random((d_mlp, m)) < connection).astype(np.float64)
    params = empty_params(np.asarray(W_E, np.float64), [d_mlp], bias=True)
    params["W_in_0"] = S @ D.T
    params["b_in_0"] = -np.ones(d_mlp)
    P = pairs(m)
    both = S[:, P[:, 0]] * S[:, P[:, 1]]  # [d, C(m, 2)]: neuron k reads both of pair P
    count = both.sum(0)
    params["R"] = (both / np.where(count > 0, count, 1.0)).T
    return params


def random_uand_error(m: int, d: int, connection: float) -> float:
    """E over constructions of Σ_P (ŷ_P − y_P)² on an input with exactly one pair on.

    The closed form of the module docstring (exact, numerically summed over N).
    Divide by C(m, 2) for the mean per output.

    Example:
      >>> random_uand_error(3, 10, 1.0)  # every neuron reads all: outputs P != Q read 1
      2.0
    """
    p = float(connection)
    q = p * p
    N = np.arange(1, d + 1)
    pmf = stats.binom.pmf(N, d, q)
    h, g = float(pmf @ (1.0 / N)), float(pmf.sum())
    none = float(stats.binom.pmf(0, d, q))
    shared = 2 * (m - 2) * (p * p * g + p * (1 - p) * h)
    disjoint = (m - 2) * (m - 3) / 2 * (p**4 * g + q * (1 - q) * h)
    return none + shared + disjoint


def block_uand_params(W_E: np.ndarray, d_mlp: int, p, block: int = 1
                      ) -> dict[str, np.ndarray]:
    """The block construction for one active circuit in the layout (one layer).

    Args:
      W_E: [d_embed, m]; d_mlp: neurons; p: [m] or scalar (which pairs are covered:
      the d_mlp // block pairs with the largest p_i p_j, row-major order on ties);
      block: neurons per pair (their mean is read off).

    Returns:
      A dict in the layout with R [C(m, 2), d_mlp]; neurons past the last whole block
      are left dead (zero weights, bias −1).
    """
    D = dual_basis(W_E)
    m = D.shape[1]
    p = np.broadcast_to(np.asarray(p, np.float64), (m,))
    P = pairs(m)
    covered = naive_priority(p[P[:, 0]] * p[P[:, 1]])[: d_mlp // block]
    params = empty_params(np.asarray(W_E, np.float64), [d_mlp], bias=True)
    params["b_in_0"] = -np.ones(d_mlp)
    params["R"] = np.zeros((len(P), d_mlp))
    for b, pair in enumerate(covered):
        rows = slice(b * block, (b + 1) * block)
        params["W_in_0"][rows] = D[:, P[pair, 0]] + D[:, P[pair, 1]]
        params["R"][pair, rows] = 1.0 / block
    return params
