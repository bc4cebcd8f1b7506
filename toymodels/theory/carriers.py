"""The carrier construction: |x| on more features than neurons/2, by cancellation.

Where this sits: `toymodels.theory.computation` holds the naive baseline of the residual
MLP (|x| = ReLU(x) + ReLU(−x): two dedicated neurons a feature); this module builds, in
the same parameter layout, the pattern found in trained |x| models at low density
(docs/computation.md, "The mechanism of the |x| win"), and gives its loss in the limit.

**The one-active picture.** With one feature i on (value ±t) and no biases, a one-layer
model outputs t W h_{i±}, W = W_Eᵀ W_out [F, K] its output weights in feature space and
h_{i±} = ReLU(±A[:, i]) ≥ 0, A = W_in W_E [K, F], the code of the half-feature (i, ±).
The codes of one feature's two halves have disjoint supports (a neuron reads x_i with one
sign). The half costs (p_i/6) ‖W h_{i±} − e_i‖² (E t² = 1/3, each sign w.p. ½); the
naive baseline does 2 halves exactly per 2 neurons. Putting several half-features on
one neuron with positive output weights never beats it: m halves on one neuron with
output weights 1/m cost m − 1, the same as one exact half and m − 1 left out.

**Carriers.** A *carrier* feature c has large output weights λ B[c, k] of both signs and
small input weights (O(1/λ)): its halves are exact, each on a code of neurons whose
B-columns sum to e_c. A *passenger* half-feature has large input weights on a code r
with B r = 0 (the carriers' outputs cancel) and small output weights V that send r to
e_i. Per block of 4 neurons (n0..n3) with carriers c1, c2 (B's columns for (c1, c2)):

  n0: (−1, ½)   n1: (½, −1)   n2: (1, 0)   n3: (0, 1)
  c1: + on n2 (1/λ), − on n1 and n3 (2/λ each: ½ + 0, −1 + 1 → (½, 0))
  c2: + on n3 (1/λ), − on n0 and n2 (2/λ each)
  passengers: r = (1, ½, ¾, 0) and r' = (1, 2, 0, 3/2), B r = B r' = 0.

So 4 neurons do 6 halves exactly as λ → ∞ (naive: 4): two whole carriers and two
passenger halves. Blocks have disjoint neurons, so a passenger's two halves sit in two
blocks: with b >= 2 blocks (d_mlp = 4b), 2b carriers and b passenger features are whole,
3b = 3 d_mlp / 4 features of |x| with d_mlp neurons. In the limit the one-active loss is
that of leaving F − 3 d_mlp / 4 features at zero; at finite λ the cancellations fail
when two features are on together, a cost of order λ² p², so a λ of a few is best at
small p (`carrier_params` takes λ; `toymodels.theory.computation_loss.signed_loss`
evaluates it).

Example:
  >>> params = carrier_params(np.eye(9), 8, scale=4.0)
  >>> sorted(params)[:3], params["W_in_0"].shape
  (['W_E', 'W_in_0', 'W_out_0'], (8, 9))
"""

from __future__ import annotations

import numpy as np

from toymodels.theory.computation import dual_basis

CARRIER_COLUMNS = np.array([[-1.0, 0.5, 1.0, 0.0],  # B [2 carriers, 4 neurons]
                            [0.5, -1.0, 0.0, 1.0]])
CARRIER_CODES = (  # per carrier: (+ half's neurons and input weight × λ, − half's)
    (((2,), 1.0), ((1, 3), 2.0)),
    (((3,), 1.0), ((0, 2), 2.0)),
)
PASSENGER_CODES = np.array([[1.0, 0.5, 0.75, 0.0],  # r, r' [2, 4 neurons], B r = 0
                            [1.0, 2.0, 0.0, 1.5]])


def carrier_layout(d_mlp: int) -> dict:
    """Which features play which part, for d_mlp = 4b neurons (b >= 2 blocks).

    Returns:
      {"carriers": [b, 2] feature indices of each block's carriers (0 .. 2b − 1);
       "passengers": [b, 2, 2] (feature, sign) of each block's two passenger halves:
       features 2b .. 3b − 1, each feature's + and − halves in two different blocks}.

    Example:
      >>> carrier_layout(8)["passengers"].tolist()
      [[[4, 1], [5, 1]], [[4, -1], [5, -1]]]
    """
    if d_mlp % 4 or d_mlp < 8:
        raise ValueError(f"the carrier construction needs d_mlp = 4b, b >= 2; got {d_mlp}")
    b = d_mlp // 4
    carriers = np.arange(2 * b).reshape(b, 2)
    passengers = np.zeros((b, 2, 2), int)
    for q in range(2 * b):  # half q: block q % b, slot q // b; halves 2m, 2m + 1 pair up
        passengers[q % b, q // b] = (2 * b + q // 2, 1 if q % 2 == 0 else -1)
    return {"carriers": carriers, "passengers": passengers}


def feature_weights(n_features: int, d_mlp: int, scale: float, passenger_input: float = 1.0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(A = W_in W_E [d_mlp, F], W = W_Eᵀ W_out [F, d_mlp]) of the construction.

    Args:
      n_features: F >= 3 d_mlp / 4; d_mlp: 4b, b >= 2.
      scale: λ, the carriers' output scale (their inputs are 1/λ, 2/λ).
      passenger_input: α, the passengers' input scale (their outputs ∝ 1/α).
    """
    layout = carrier_layout(d_mlp)
    if n_features < 3 * d_mlp // 4:
        raise ValueError(f"the carrier construction computes 3 d_mlp / 4 = {3 * d_mlp // 4} "
                         f"features; got n_features = {n_features}")
    A, W = np.zeros((d_mlp, n_features)), np.zeros((n_features, d_mlp))
    # the outputs' weights that send each passenger code r to its feature (min-norm)
    send = np.linalg.pinv(passenger_input * PASSENGER_CODES)  # [4, 2]
    for blk, (cs, ps) in enumerate(zip(layout["carriers"], layout["passengers"])):
        cols = slice(4 * blk, 4 * blk + 4)
        W[cs, cols] = scale * CARRIER_COLUMNS
        for c, halves in zip(cs, CARRIER_CODES):
            for sign, (neurons, weight) in zip((1.0, -1.0), halves):
                A[4 * blk + np.array(neurons), c] = sign * weight / scale
        for slot, (f, sign) in enumerate(ps):
            A[cols, f] = sign * passenger_input * PASSENGER_CODES[slot]
            W[f, cols] += send[:, slot]
    return A, W


def carrier_params(W_E: np.ndarray, d_mlp: int, scale: float, passenger_input: float = 1.0,
                   p=None) -> dict[str, np.ndarray]:
    """The construction in the residual layout (one layer, readout W_Eᵀ, task abs):
    W_in = A Dᵀ, W_out = D W (D = `dual_basis`, so W_in W_E = A, W_Eᵀ W_out = W).

    Args:
      W_E: [d_embed, F], full column rank; d_mlp, scale, passenger_input: as
        `feature_weights`.
      p: [F] densities: if given, biases are added (b_in = 0, b_out = D β with β the
        mean E|x_i| = p_i/2 of every feature the construction leaves at zero).
    """
    W_E = np.asarray(W_E, np.float64)
    F = W_E.shape[1]
    D = dual_basis(W_E)
    A, W = feature_weights(F, d_mlp, scale, passenger_input)
    params = {"W_E": W_E, "W_in_0": A @ D.T, "W_out_0": D @ W}
    if p is not None:
        p = np.broadcast_to(np.asarray(p, np.float64), (F,))
        left = np.arange(F) >= 3 * d_mlp // 4
        params["b_in_0"] = np.zeros(d_mlp)
        params["b_out_0"] = D @ np.where(left, p / 2, 0.0)
    return params


def limit_loss(n_features: int, d_mlp: int, p, importance=None, bias: bool = True) -> float:
    """The construction's loss as λ → ∞ at small p, to first order in p: the 3 d_mlp / 4
    whole features cost nothing, every other feature E|x|² = p/3, or Var |x| = p/3 −
    p²/4 with the output bias (the two-feature terms, O(λ² p²), left out).

    Example:
      >>> round(limit_loss(24, 12, 0.01) / ((24 - 6) * (0.01 / 3 - 0.01**2 / 4) / 24), 4)
      0.8333
    """
    p = np.broadcast_to(np.asarray(p, np.float64), (n_features,))
    importance = np.ones(n_features) if importance is None else np.asarray(importance)
    per = p / 3 - (p**2 / 4 if bias else 0.0)
    per = np.where(np.arange(n_features) >= 3 * d_mlp // 4, per, 0.0)
    return float(importance @ per / n_features)
