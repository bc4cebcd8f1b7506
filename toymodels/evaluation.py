"""The population loss of ONE trained model: exact where it can be, sampled where it must.

`final_loss` is L = E_x[Σ_i I_i (y_i(x) − y'_i(x))²] over the data distribution (no
dropout, no L1 penalty). At the densities where geometry is interesting almost every
sample has zero or one active feature, and the solutions a best-of-seeds choice must tell
apart differ only on the rare samples with two or more: a plain Monte Carlo estimate
spends nearly all its samples where the candidates agree. So the expectation is split by
the number K of active features,

  L = P(K=0) L(0) + Σ_i P(only i on) E[L | only i on] + P(K≥2) E[L | K≥2],

and the first two strata are computed exactly:

- K = 0: one evaluation at x = 0.
- K = 1: with one feature of size t on, every kind's hidden layer is positively
  homogeneous, so each output pre-activation is affine in t on each side of 0 and each
  output's squared error is a quadratic in t with at most one kink (where its
  pre-activation crosses 0). Summed over outputs, the error is piecewise quadratic with a
  breakpoint at each crossing; integrating each output's term separately over [0, kink]
  and [kink, 1] with 2-point Gauss-Legendre (exact for cubics) is the same integral as
  quadrature between the sorted breakpoints, without the sort, in O(F²) per model.

Only the K ≥ 2 stratum is sampled, conditioned on K ≥ 2, so its weight P(K≥2) ~ (Fp)²/2
multiplies the sampling error: the error shrinks as density falls, where a plain
estimate's relative error grows. The conditional samples are exact: features are decided
one after another, each with its probability given the count so far and the chance that
the rest still bring the count to 2 (`sample_many`). `final_loss_se` is the standard
error of this sampled part; the exact strata add only float rounding.

Which distributions are exact: independent features with "uniform" magnitudes
(Uniform[0, 1), or [-1, 1) for signed inputs, integrated side by side) or "constant"
magnitudes (value 1). With `unit_norm` every K = 1 example is exactly ±e_i whatever its
magnitude law (the "constant" case; both signs for signed inputs), and the K >= 2
samples are normalised. Correlated and anticorrelated sets and "exponential" magnitudes
without `unit_norm` use plain Monte Carlo over all strata with the same common random
numbers (`final_loss_se` then covers the whole estimate).

The other input laws are the K = 1 stratum alone, so nothing is sampled and
`final_loss_se` is 0: "exactly_one" gives L = mean_i E[L | only i on] (exact where the
one-feature integral is: uniform or constant magnitudes, or unit norm; otherwise plain
Monte Carlo) and "one_hot" gives L = mean_i L(e_i).

For a finite dataset `final_loss` is still this population (test) loss on fresh
samples; the loss on the training examples is `train.RunOutput.train_loss`.

Every run of a sweep is evaluated on the same uniforms, drawn from the sweep's root key
(`eval_key`), so differences between runs are not blurred by each run's own sampling
noise, and adding a grid point changes no run.

`exactly_one_loss_jnp(W, b)` is the "exactly_one" loss of a tied ReLU-output model with
unit importances, as a function of its weights alone: the differentiable population loss
of Chen et al.'s k-gon setting, which `toymodels.theory.exactly_one_loss` gives
independently in closed form.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from toymodels import data
from toymodels.hyper import Hyper, make_hyper
from toymodels.models import ModelKind, Params, get_model
from toymodels.spec import EVAL_BATCH, DataSpec, Spec

EVAL_STREAM = 2**32 - 1  # fold_in tag of the root key for evaluation; seeds are < 2**31
GAUSS_2 = 3.0**-0.5  # 2-point Gauss-Legendre nodes on [-1, 1]: ±1/√3, weights 1


def eval_key(root_seed: int) -> jax.Array:
    """The key of a sweep's evaluation draws, shared by every run; no seed key equals it."""
    return jax.random.fold_in(jax.random.key(root_seed), EVAL_STREAM)


def is_exact(spec: DataSpec, homogeneous: bool = True) -> bool:
    """Whether the K = 0 and K = 1 strata are computed exactly for this distribution.

    `homogeneous` is the model's `ModelKind.homogeneous`: with a norm on the hidden
    vector (False) only a single point per feature is exact (constant magnitudes, unit
    norm, one-hot inputs), not the integral over uniform magnitudes.
    """
    if spec.inputs == "one_hot":
        return True
    known = spec.unit_norm or spec.magnitude == "constant" or (
        homogeneous and spec.magnitude == "uniform")
    return known and spec.correlation == "independent"


def needs_samples(spec: DataSpec, homogeneous: bool = True) -> bool:
    """Whether any part of the loss is sampled: False when every example has exactly one
    active feature and that stratum is exact ("one_hot"; "exactly_one" where exact)."""
    return spec.inputs == "bernoulli" or not is_exact(spec, homogeneous)


@struct.dataclass
class Strata:
    """The probabilities of the numbers of active independent features.

    Attributes:
      none: [] P(K = 0).
      only: [F] P(feature i is the only one on).
      tail: [F + 1, 3] for the features j..F-1 (row F: none left), P(count >= 0, 1, 2).
    """

    none: jax.Array
    only: jax.Array
    tail: jax.Array

    @property
    def many(self) -> jax.Array:
        """[] P(K >= 2), computed without cancellation."""
        return self.tail[0, 2]


def strata(p: jax.Array) -> Strata:
    """The strata of independent features that are on with probabilities p: [F].

    Example:
      >>> s = strata(jnp.array([0.5, 0.5]))
      >>> float(s.none), s.only.tolist(), float(s.many)
      (0.25, [0.25, 0.25], 0.25)
    """

    def add(counts, p_j):  # P(count = 0, 1, >= 2) of features j+1.. -> of features j..
        c0, c1, c2 = counts
        counts = (c0 * (1 - p_j), c1 * (1 - p_j) + c0 * p_j, c2 + c1 * p_j)
        return counts, jnp.stack(counts)

    one, zero = jnp.ones((), p.dtype), jnp.zeros((), p.dtype)
    _, rows = jax.lax.scan(add, (one, zero, zero), p, reverse=True)  # [F, 3]
    rows = jnp.concatenate([rows, jnp.array([[1.0, 0.0, 0.0]], p.dtype)])
    tail = jnp.stack([jnp.ones_like(rows[:, 0]), rows[:, 1] + rows[:, 2], rows[:, 2]], 1)
    before = jnp.cumprod(jnp.concatenate([one[None], 1 - p[:-1]]))  # Π_{j<i} (1 - p_j)
    return Strata(rows[0, 0], p * before * rows[1:, 0], tail)


def sample_many(u: jax.Array, p: jax.Array, tail: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Which features are on, drawn exactly from the distribution conditioned on K >= 2.

    Feature j is decided after features 0..j-1, with count c of them on (capped at 2):
    P(on | c, K >= 2) = p_j P(R_{j+1} >= n - 1) / P(R_j >= n), n = 2 - c, R_j the count
    among features j..F-1. One uniform per entry decides (u < q) and, given on, u / q is
    Uniform[0, 1): the same trick as the training batches.

    Args:
      u: [F, B] uniforms, shared by all runs (common random numbers).
      p: [F] each feature's probability; tail: `strata(p).tail`.

    Returns:
      (on [F, B] bool, unit [F, B] in [0, 1), meaningful where on).
    """

    def decide(count, row):
        u_j, p_j, here, after = row
        need = 2 - count  # [B] in 0..2
        below = jnp.take(here, need)
        q = p_j * jnp.take(after, jnp.maximum(need - 1, 0)) / jnp.where(below > 0, below, 1.0)
        q = jnp.clip(q, 1e-30, 1.0)
        on = u_j < q
        return jnp.minimum(count + on, 2), (on, u_j / q)

    start = jnp.zeros(u.shape[1], jnp.int32)
    _, (on, unit) = jax.lax.scan(decide, start, (u, p, tail[:-1], tail[1:]))
    return on, unit


def example_losses(params: Params, x: jax.Array, importance: jax.Array,
                   kind: ModelKind) -> jax.Array:
    """[B] Σ_i I_i (target_i − y'_i)² of each example x: [F, B] (no dropout)."""
    y_hat, _ = kind.forward(params, x, jnp.ones((), x.dtype))  # keep every hidden unit
    return jnp.sum(importance[:, None] * (kind.target(x) - y_hat) ** 2, axis=0)


def one_feature_side(params: Params, importance: jax.Array, kind: ModelKind, sign: float,
                     point: bool) -> tuple[jax.Array, jax.Array]:
    """The loss at x = 0 and, for each feature i, ∫_0^1 L(sign · t · e_i) dt exactly
    (or L(sign · e_i) when `point`, constant magnitudes).

    Returns:
      (L(0) [], [F] per feature).
    """
    F = importance.shape[0]
    eye = sign * jnp.eye(F, dtype=importance.dtype)
    x = jnp.concatenate([jnp.zeros((F, 1), eye.dtype), eye], axis=1)  # [F, 1 + F]
    z, _ = kind.logits(params, x, jnp.ones((), x.dtype))
    z0, slope = z[:, :1], z[:, 1:] - z[:, :1]  # output j, input i: z = z0 + t slope
    goal = kind.target(eye)  # [F, F] the target at t = 1 (linear in t on this side)
    error = lambda t: importance[:, None] * (t * goal - kind.readout(z0 + t * slope)) ** 2
    at_zero = jnp.sum(error(jnp.zeros(()))[:, 0])
    if point:
        return at_zero, jnp.sum(error(jnp.ones(())), axis=0)
    kink = jnp.clip(-z0 / jnp.where(slope != 0, slope, 1.0), 0.0, 1.0)
    kink = jnp.where(slope != 0, kink, 0.0)
    pieces = _gauss_legendre(error, jnp.zeros_like(kink), kink) + _gauss_legendre(error, kink, 1.0)
    return at_zero, jnp.sum(pieces, axis=0)


def _gauss_legendre(f, a, b) -> jax.Array:
    """∫_a^b f elementwise, 2 nodes: exact for f a cubic on [a, b]."""
    mid, half = (a + b) / 2, (b - a) / 2
    return half * (f(mid - half * GAUSS_2) + f(mid + half * GAUSS_2))


def one_feature_losses(params: Params, importance: jax.Array, kind: ModelKind,
                       spec: DataSpec) -> tuple[jax.Array, jax.Array]:
    """(L(0), [F] E[L | only feature i on]) for one model, for an exact `spec`.

    The value of the active feature is 1 (a point) for constant magnitudes, unit norm
    and one-hot inputs, else the magnitude law integrated; signed inputs average both
    signs (except constant magnitudes and one-hot inputs, always +1).
    """
    point = spec.magnitude == "constant" or spec.unit_norm or spec.inputs == "one_hot"
    both = kind.signed_inputs and spec.magnitude != "constant" and spec.inputs != "one_hot"
    sides = [one_feature_side(params, importance, kind, s, point)
             for s in ((1.0, -1.0) if both else (1.0,))]
    return sides[0][0], sum(side[1] for side in sides) / len(sides)


def exact_strata(params: Params, hyper: Hyper, kind: ModelKind,
                 spec: DataSpec) -> tuple[jax.Array, jax.Array]:
    """(exact part, weight of the sampled part) of the loss of one model.

    Bernoulli inputs: (P(K=0) L(0) + Σ_i P(only i) E[L | only i], P(K >= 2)).
    "exactly_one" and "one_hot": (mean_i E[L | only i], 0). Where the distribution is
    not exact (`is_exact`), (0, 1): everything is sampled.
    """
    if not is_exact(spec, kind.homogeneous):
        return jnp.zeros(()), jnp.ones(())
    at_zero, per_feature = one_feature_losses(params, hyper.importance, kind, spec)
    if spec.inputs != "bernoulli":
        return jnp.mean(per_feature), jnp.zeros(())
    s = strata(hyper.feature_probability)
    return s.none * at_zero + jnp.sum(s.only * per_feature), s.many


def sample_eval_inputs(noise: data.Noise, hyper: Hyper, tail: jax.Array, spec: DataSpec,
                       kind: ModelKind) -> jax.Array:
    """[F, B] evaluation inputs: from the K >= 2 stratum where exact, else from the data.

    `tail` is `strata(hyper.feature_probability).tail`, computed once per run.
    """
    p = hyper.feature_probability
    if not is_exact(spec, kind.homogeneous):
        return data.sample_inputs(noise, p, spec, kind.signed_inputs)
    on, unit = sample_many(noise.values, p, tail)
    x = jnp.where(on, data.magnitude(unit, spec, kind.signed_inputs), 0.0)
    return data.unit_normalize(x) if spec.unit_norm else x


def batch_stats(params: Params, hyper: Hyper, tail: jax.Array, noise: data.Noise,
                spec: DataSpec, kind: ModelKind) -> jax.Array:
    """[2] (mean, Σ squared deviations) of the sampled stratum's loss over one batch
    (`tail`: see `sample_eval_inputs`)."""
    losses = example_losses(params, sample_eval_inputs(noise, hyper, tail, spec, kind),
                            hyper.importance, kind)
    mean = jnp.mean(losses)
    return jnp.stack([mean, jnp.sum((losses - mean) ** 2)])


def combine(exact: jax.Array, many: jax.Array, stats: jax.Array,
            batch: int) -> tuple[jax.Array, jax.Array]:
    """(loss, standard error) from `exact_strata` and the `batch_stats` of N batches.

    Args:
      exact, many: `exact_strata`'s two values.
      stats: [N, 2] per-batch (mean, squared deviations), each over `batch` samples.
    """
    means, deviations = stats[:, 0], stats[:, 1]
    mean = jnp.mean(means)
    n = means.shape[0] * batch
    spread = jnp.sum(deviations) + batch * jnp.sum((means - mean) ** 2)
    se = jnp.sqrt(spread / jnp.maximum(n - 1, 1) / n)
    return exact + many * mean, many * se


def population_loss(params: Params, hyper: Hyper, spec: Spec, kind: ModelKind,
                    key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(final_loss, final_loss_se) of ONE model, as a sweep stores them.

    Uses `spec.train.n_eval_batches` batches of `EVAL_BATCH` samples drawn from `key`
    (a sweep uses `eval_key(root seed)` for every run); none where nothing is sampled
    (`needs_samples`), and the standard error is then 0.

    Example:
      >>> from toymodels.hyper import make_hyper
      >>> from toymodels.models import get_model
      >>> from toymodels.spec import ModelSpec
      >>> zero = {"W": jnp.zeros((2, 5)), "b": jnp.zeros(5)}   # outputs 0: L = Σ_i p_i / 3
      >>> loss, se = population_loss(zero, make_hyper(5, feature_probability=0.1),
      ...                            Spec(ModelSpec("relu_output", 5, 2)),
      ...                            get_model("relu_output"), jax.random.key(0))
      >>> bool(abs(loss - 5 * 0.1 / 3) < 4 * se), bool(se < 1e-3)
      (True, True)
    """

    exact, many = exact_strata(params, hyper, kind, spec.data)
    if not needs_samples(spec.data, kind.homogeneous):
        return exact, jnp.zeros_like(exact)
    tail = strata(hyper.feature_probability).tail

    def one_batch(i):
        noise = data.sample_noise(jax.random.fold_in(key, i), spec, EVAL_BATCH)
        return batch_stats(params, hyper, tail, noise, spec.data, kind)

    stats = jax.lax.map(one_batch, jnp.arange(spec.train.n_eval_batches))
    return combine(exact, many, stats, EVAL_BATCH)


def exactly_one_loss_jnp(W: jax.Array, b: jax.Array) -> jax.Array:
    """The exactly-one loss of ``x' = ReLU(WᵀW x + b)``, differentiable, for
    gradient-based samplers (``toymodels.sgld.llc``).

    It is `exact_strata` of a "relu_output" model with ``inputs = "exactly_one"`` and
    unit importances: the exact loss the training code already has, which
    ``toymodels.theory.exactly_one_loss`` checks independently (tests/test_kgon_llc.py).

    Args:
      W: [H, F] weights.
      b: [F] biases.

    Returns:
      [] the loss. The zero model has ``L = E[μ²] = 1/3``.

    Example:
      >>> round(float(exactly_one_loss_jnp(jnp.zeros((2, 6)), jnp.zeros(6))), 6)
      0.333333
    """
    params, hyper = {"W": W, "b": b}, make_hyper(W.shape[1])
    return exact_strata(params, hyper, get_model("relu_output"),
                        DataSpec(inputs="exactly_one"))[0]
