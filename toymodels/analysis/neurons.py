"""Neuron-basis measures of ONE model (REFERENCE 1.12, 1.13): who uses which neuron.

Role in the data flow: `analyze(ds)` vmaps these over the runs in one place
(`toymodels.analysis.variables`). Everything is pure `jax.numpy` on one model's
`W: [H, F]`, whose rows are neurons: the hidden layer of `relu_hidden`, or `W1` of
`abs_computation`. The functions are defined for every model, but neurons mean
something only where the hidden layer has a ReLU (relu_hidden, abs_computation); in the
linear and ReLU-output models the hidden basis is arbitrary (W -> O W changes nothing).

When a feature loads on a neuron (`features_per_neuron`): feature i counts on neuron k
iff both
  * W_ki^2 >= `NEURON_SHARE` * ||W_k||^2 (share 0.1 of the neuron's squared norm). A
    share, not an absolute weight, so that it does not depend on the neuron's scale
    (the abs model can rescale a neuron by alpha in and 1/alpha out, footnote 15) and
    so that k features loading equally are all counted up to k = 10; a secondary
    weight counts once it is about a third of the primary one (0.35 vs 1.0 counts, 0.3
    does not), where its interference through the neuron (W_ki W_kj) is no longer small;
  * |W_ki| >= `NEURON_FLOOR` = 0.1: drops dead neurons (every share of a near-zero row
    would otherwise count) and weight-decay residue (trained off-entries are <= 0.01,
    REFERENCE 9, privileged basis), while represented features have weights of order 1.
A neuron is monosemantic when exactly one feature loads on it; dead neurons (none) are
neither monosemantic nor polysemantic.

Asymmetric superposition (REFERENCE 1.13; `asymmetric_pairs`), for the abs model
y' = ReLU(W2 ReLU(W1 x) + b): neuron k stores features i ("strong in") and j ("strong
out") asymmetrically iff
  * both are computed by k: gain_kl = W2_lk |W1_kl| >= `GAIN_FLOOR` = 0.5 for l = i, j
    (|x_l| reaches output l through k with weight gain_kl on the side where
    sign(W1_kl) x_l > 0, so k carries at least half of each feature's output on that side; the paper's
    example carries all of it, gains 1 and 1. Gains are invariant under the
    alpha / 1/alpha rescaling; a positive output weight is what computing |x_l| needs.
    A floor of 0.1 would also count features that pass a small part of their output
    through k, which at low density is most neurons: 6-8 of 10 in trained n=20, m=10
    models at density <= 0.03, against 0-2 with 0.5);
  * unequal inputs: |W1_ki| >= `ASYMMETRY_RATIO` * |W1_kj| (ratio 2);
  * reciprocal outputs: W2_jk >= `ASYMMETRY_RATIO` * W2_ik.
The paper's example W1 = [2, -1/2], W2 = [1/2, 2] passes with ratios 4 each way; a
symmetric pair (ratios 1) does not. Then feature i interferes heavily with output j
(W2_jk |W1_ki|, 4 in the example) but not vice versa (1/4). The motif is *inhibited*
(`asymmetric_inhibited`) when the other neurons cancel that interference: with only x_i
active, on the side s = sign(W1_ki), output j's pre-activation slope
sum_k' W2_jk' ReLU(s W1_k'i) is <= 0 (so the interference is negative, hence free under
the output ReLU), as the paper's second, inhibiting neuron does.
"""

import jax
import jax.numpy as jnp

NEURON_SHARE = 0.1  # W_ki^2 / ||W_k||^2 at least this: feature i loads on neuron k
NEURON_FLOOR = 0.1  # and |W_ki| at least this (drops dead neurons and residue)
ASYMMETRY_RATIO = 2.0  # unequal input and reciprocal output weights, each way
GAIN_FLOOR = 0.5  # W2_lk |W1_kl| at least this: neuron k computes |x_l|

_HIGHEST = jax.lax.Precision.HIGHEST


def neuron_shares(W: jax.Array) -> jax.Array:
    """Share of each neuron's squared norm that each feature holds, W_ki^2 / ||W_k||^2.

    Args:
      W: [H, F] weights; row k is neuron k.

    Returns:
      [H, F] shares; each row sums to 1 (exactly 0 for an all-zero neuron).

    Example:
      >>> neuron_shares(jnp.array([[1.0, -1.0], [0.0, 0.0]]))
      Array([[0.5, 0.5],
             [0. , 0. ]], dtype=float32)
    """
    sq = jnp.square(W)
    total = jnp.sum(sq, axis=1, keepdims=True)
    ok = total > 0
    return jnp.where(ok, sq / jnp.where(ok, total, 1.0), 0.0)


def loads(
    W: jax.Array, share: float = NEURON_SHARE, floor: float = NEURON_FLOOR
) -> jax.Array:
    """Which features load materially on which neuron (see the module docstring).

    Args:
      W: [H, F] weights.
      share: minimum W_ki^2 / ||W_k||^2.
      floor: minimum |W_ki|.

    Returns:
      [H, F] bool.

    Example:
      >>> loads(jnp.array([[1.0, 0.35, 0.05], [0.0, 0.0, 0.01]]))
      Array([[ True,  True, False],
             [False, False, False]], dtype=bool)
    """
    return (neuron_shares(W) >= share) & (jnp.abs(W) >= floor)


def features_per_neuron(
    W: jax.Array, share: float = NEURON_SHARE, floor: float = NEURON_FLOOR
) -> jax.Array:
    """How many features load materially on each neuron (0 for a dead neuron).

    Args:
      W: [H, F] weights; rows are neurons (relu_hidden's W, abs_computation's W1).
      share: minimum share W_ki^2 / ||W_k||^2 of the neuron's squared norm (0.1).
      floor: minimum |W_ki| (0.1).

    Returns:
      [H] int32 counts.

    Example:
      >>> features_per_neuron(jnp.array([[1.0, 0.0, 0.9], [0.0, 1.0, 0.0]]))
      Array([2, 1], dtype=int32)
    """
    return jnp.sum(loads(W, share, floor), axis=1, dtype=jnp.int32)


def monosemantic(W: jax.Array) -> jax.Array:
    """Neurons on which exactly one feature loads; [H, F] -> [H] bool.

    Example:
      >>> monosemantic(jnp.array([[1.0, 0.0, 0.9], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
      Array([False,  True, False], dtype=bool)
    """
    return features_per_neuron(W) == 1


def n_monosemantic(W: jax.Array) -> jax.Array:
    """Number of monosemantic neurons; [H, F] -> scalar int32.

    Example:
      >>> n_monosemantic(jnp.eye(3))
      Array(3, dtype=int32)
    """
    return jnp.sum(monosemantic(W), dtype=jnp.int32)


INCIDENTAL_RANGE = (0.8, 1.2)
"""|W_ki| range of a feature that "fires" on a neuron (Lecomte et al. 2023)."""


def n_polysemantic(W: jax.Array, lo: float = INCIDENTAL_RANGE[0],
                   hi: float = INCIDENTAL_RANGE[1]) -> jax.Array:
    """Neurons with more than one weight of size in [lo, hi]; [H, F] -> scalar int32.

    The count of incidental polysemanticity (Lecomte et al. 2023): after training with
    L1 on one-hot inputs the weights are near 0 or near ±1, and a neuron is polysemantic
    when two or more features have ``lo <= |W_ki| <= hi`` on it.

    Example:
      >>> n_polysemantic(jnp.array([[1.0, -0.9, 0.0], [1.0, 0.5, 0.0], [0.0, 0.0, 1.1]]))
      Array(1, dtype=int32)
    """
    size = jnp.abs(W)
    hits = jnp.sum((size >= lo) & (size <= hi), axis=1)
    return jnp.sum(hits > 1, dtype=jnp.int32)


def neuron_polysemanticity(W: jax.Array) -> jax.Array:
    """Continuous polysemanticity of each neuron, 1 - max_i W_ki^2 / ||W_k||^2.

    0 for a neuron holding one feature, 1 - 1/k for k features loading equally; 0 for
    an all-zero neuron. Free of thresholds (the counts above are not).

    Args:
      W: [H, F] weights.

    Returns:
      [H] values in [0, 1 - 1/F].

    Example:
      >>> neuron_polysemanticity(jnp.array([[1.0, 0.0], [1.0, -1.0]]))
      Array([0. , 0.5], dtype=float32)
    """
    shares = neuron_shares(W)
    alive = jnp.sum(shares, axis=1) > 0
    return jnp.where(alive, 1.0 - jnp.max(shares, axis=1), 0.0)


def balance(W1: jax.Array, W2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Rescale each hidden unit of an untied model so ||W1_k|| = ||W2_:k||.

    The abs model computes the same function after W1_k -> a W1_k, W2_:k -> W2_:k / a
    for any a > 0 (footnote 15); balancing picks a = sqrt(||W2_:k|| / ||W1_k||), so that
    thresholds on W1 do not depend on this arbitrary scale. Zero units stay zero.

    Args:
      W1: [H, F] first layer.
      W2: [F, H] second layer.

    Returns:
      (W1 [H, F], W2 [F, H]) rescaled.

    Example:
      >>> balance(jnp.array([[4.0, 0.0]]), jnp.array([[1.0], [0.0]]))[0]
      Array([[2., 0.]], dtype=float32)
    """
    n1 = jnp.sqrt(jnp.sum(jnp.square(W1), axis=1))
    n2 = jnp.sqrt(jnp.sum(jnp.square(W2), axis=0))
    ok = (n1 > 0) & (n2 > 0)
    scale = jnp.where(ok, jnp.sqrt(n2 / jnp.where(ok, n1, 1.0)), 1.0)
    return W1 * scale[:, None], W2 / scale[None, :]


def gains(W1: jax.Array, W2: jax.Array) -> jax.Array:
    """gain_kl = W2_lk |W1_kl|: how much of |x_l| neuron k passes to output l.

    Invariant under the alpha / 1/alpha rescaling of a hidden unit.

    Args:
      W1: [H, F] first layer.
      W2: [F, H] second layer.

    Returns:
      [H, F] gains.

    Example:
      >>> gains(jnp.array([[2.0, -0.5]]), jnp.array([[0.5], [2.0]]))
      Array([[1., 1.]], dtype=float32)
    """
    return W2.T * jnp.abs(W1)


def asymmetric_pairs(
    W1: jax.Array, W2: jax.Array, ratio: float = ASYMMETRY_RATIO
) -> jax.Array:
    """Asymmetric-superposition motifs: neuron k, strong-in feature i, strong-out j.

    See the module docstring for the exact rule (both computed by k with gain >= 0.5,
    |W1_ki| >= ratio |W1_kj| and W2_jk >= ratio W2_ik).

    Args:
      W1: [H, F] first layer.
      W2: [F, H] second layer.
      ratio: the asymmetry required each way (2).

    Returns:
      [H, F, F] bool, entry [k, i, j].

    Example:
      >>> W1, W2 = jnp.array([[2.0, -0.5]]), jnp.array([[0.5], [2.0]])
      >>> asymmetric_pairs(W1, W2)[0]
      Array([[False,  True],
             [False, False]], dtype=bool)
    """
    computed = gains(W1, W2) >= GAIN_FLOOR  # [H, F]
    a1, w2 = jnp.abs(W1), W2.T  # [H, F] each
    unequal_in = a1[:, :, None] >= ratio * a1[:, None, :]  # [k, i, j]
    reciprocal_out = w2[:, None, :] >= ratio * w2[:, :, None]  # W2_jk >= r W2_ik
    both = computed[:, :, None] & computed[:, None, :]
    return both & unequal_in & reciprocal_out


def asymmetric_superposition(W1: jax.Array, W2: jax.Array) -> jax.Array:
    """Neurons holding at least one asymmetric-superposition pair; [H] bool.

    Args:
      W1: [H, F] first layer.
      W2: [F, H] second layer.

    Returns:
      [H] bool.

    Example:
      >>> asymmetric_superposition(jnp.array([[2.0, -0.5], [1.0, -1.0]]),
      ...                          jnp.array([[0.5, 1.0], [2.0, 1.0]]))
      Array([ True, False], dtype=bool)
    """
    return jnp.any(asymmetric_pairs(W1, W2), axis=(1, 2))


def interference_slopes(W1: jax.Array, W2: jax.Array) -> jax.Array:
    """Slope of output j's pre-activation in |x_i| when only x_i is on, on each side.

    slope[s, i, j] = sum_k W2_jk ReLU(sign_s W1_ki) with sign_0 = +1 (x_i > 0) and
    sign_1 = -1 (x_i < 0). The output bias is not included.

    Args:
      W1: [H, F] first layer.
      W2: [F, H] second layer.

    Returns:
      [2, F, F] slopes, entry [s, i, j].

    Example:
      >>> interference_slopes(jnp.array([[2.0, -0.5]]), jnp.array([[0.5], [2.0]]))[0]
      Array([[1., 4.],
             [0., 0.]], dtype=float32)
    """
    sides = jnp.stack([jax.nn.relu(W1), jax.nn.relu(-W1)])  # [2, H, F]
    return jnp.einsum("shi,jh->sij", sides, W2, precision=_HIGHEST)


def asymmetric_inhibited(W1: jax.Array, W2: jax.Array) -> jax.Array:
    """Asymmetric neurons whose heavy interference the other neurons cancel; [H] bool.

    A motif (k, i, j) is inhibited when, on the side where feature i drives neuron k
    (sign(W1_ki) x_i > 0), output j's pre-activation slope in |x_i| summed over all
    neurons is <= 0: the positive interference W2_jk |W1_ki| is outweighed by neurons
    with W2_jk' < 0 (the paper's inhibiting neuron).

    Args:
      W1: [H, F] first layer.
      W2: [F, H] second layer.

    Returns:
      [H] bool.

    Example:
      >>> W1 = jnp.array([[2.0, -0.5], [1.0, 0.0]])
      >>> W2 = jnp.array([[0.5, 0.0], [2.0, -5.0]])
      >>> asymmetric_inhibited(W1, W2)
      Array([ True, False], dtype=bool)
    """
    slopes = interference_slopes(W1, W2)  # [2, F(i), F(j)]
    side = (W1 < 0).astype(jnp.int32)  # [H, F]: 0 if W1_ki >= 0, else 1
    slope_kij = jnp.where(side[:, :, None] == 0, slopes[0][None], slopes[1][None])
    return jnp.any(asymmetric_pairs(W1, W2) & (slope_kij <= 0), axis=(1, 2))
