"""Per-step random draws, the batches built from them, and finite training sets.

Runs that share a seed share their draws (common random numbers): the uniforms are drawn
once per seed and step (`sample_noise`), and each run turns them into its own batch with
its own traced hyperparameters (`make_batch`, `dropout_keep`). One uniform per entry
serves both the on/off decision and the value: given u < p, u / p is Uniform[0, 1).

The law of which features are on is `DataSpec.inputs` (`INPUT_LAWS`): independent
Bernoulli features (with the correlation structures), exactly one uniformly chosen
feature per example, or the F one-hot vectors. With `DataSpec.unit_norm` every example
is then rescaled to unit L2 norm.

Finite datasets (`DataSpec.dataset_size` = T): a run's T examples are `training_set`,
drawn once from `dataset_key(root seed, data_seed)`, which depends on neither the run's
init seed nor its place in the grid: runs sharing a data_seed share the dataset's
uniforms, and each makes its own examples from them with its own density. Minibatches
visit them in shuffled order (`batch_indices`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from toymodels import threefry
from toymodels.models import ModelKind, get_model
from toymodels.spec import DataSpec, Spec

DATASET_STREAM = 2**32 - 2  # fold_in tag of the root key for datasets; seeds are < 2**31


@struct.dataclass
class Noise:
    """The uniforms one seed draws for one step.

    Batches are matrices with one example per column ([F, B]): the layout that makes the
    model's matmuls fastest on CPU (measured in benchmarks/).

    Attributes:
      values: [F, B] Uniform[0, 1): independent features are active iff values < p_i;
        otherwise the values of active features.
      dropout: [H, B] Uniform[0, 1): hidden unit k is kept iff dropout >= rate.
      sets: [n_set_rows, B] Uniform[0, 1) (`n_set_rows`): for correlated and
        anticorrelated sets ([F // set_size, B]) set s is on iff sets < p, and u / p
        picks its active member; for "exactly_one" inputs ([1, B]) floor(u F) is the
        active feature; [0, B] otherwise.
    """

    values: jax.Array
    dropout: jax.Array
    sets: jax.Array


def sample_noise(key: jax.Array, spec: Spec, batch: int | None = None) -> Noise:
    """Draws one step's uniforms for one seed; the key is consumed.

    The values are those of `jax.random.uniform`, computed by `toymodels.threefry`.
    `batch` overrides B (the evaluation uses `toymodels.spec.EVAL_BATCH`).
    """
    values_key, dropout_key, sets_key = jax.random.split(key, 3)
    B = spec.train.batch_size if batch is None else batch
    F, H = spec.model.n_features, spec.model.n_hidden
    return Noise(
        values=threefry.uniform(values_key, (F, B)),
        dropout=threefry.uniform(dropout_key, (H, B)),
        sets=threefry.uniform(sets_key, (n_set_rows(spec.data, F), B)),
    )


def sample_dropout(key: jax.Array, spec: Spec) -> jax.Array:
    """[H, B] the dropout uniforms of `sample_noise(key, spec)`, alone (the same bits);
    the key is consumed. Finite datasets draw only these per step."""
    dropout_key = jax.random.split(key, 3)[1]
    return threefry.uniform(dropout_key, (spec.model.n_hidden, spec.train.batch_size))


def n_set_rows(data: DataSpec, n_features: int) -> int:
    """Rows of `Noise.sets`: F // set_size for sets, 1 for "exactly_one", else 0."""
    if data.inputs == "exactly_one":
        return 1
    return 0 if data.correlation == "independent" else n_features // data.set_size


def sample_inputs(noise: Noise, feature_probability: jax.Array, data: DataSpec,
                  signed: bool = False) -> jax.Array:
    """Inputs x: [F, B] for one run: which features are on, then their magnitudes, then
    (with `data.unit_norm`) each example rescaled to ||x||_2 = 1.

    Args:
      noise: the seed's draws for this step.
      feature_probability: [F] p_i (for sets, the set's probability is its members' p;
        unused by "exactly_one" and "one_hot" inputs).
      data: the static structure (input law, correlation, set size, magnitude, norm).
      signed: values in [-1, 1) instead of [0, 1) (the absolute-value task; "one_hot"
        values are always 1).

    Example:
      >>> noise = Noise(jnp.array([[0.5], [0.2]]), jnp.zeros((0, 1)), jnp.array([[0.7]]))
      >>> sample_inputs(noise, jnp.ones(2), DataSpec(inputs="exactly_one"))
      Array([[0. ],
             [0.2]], dtype=float32)
    """
    x = input_law(data.inputs)(noise, feature_probability, data, signed)
    return unit_normalize(x) if data.unit_norm else x


def bernoulli_inputs(noise: Noise, feature_probability: jax.Array, data: DataSpec,
                     signed: bool) -> jax.Array:
    """[F, B]: feature i on with probability p_i (or by sets), with its magnitude."""
    if data.correlation == "independent":
        unit = make_batch(noise.values, feature_probability)
        active = noise.values < feature_probability[:, None]
    else:
        active = set_active(noise.sets, feature_probability, data)
        unit = jnp.where(active, noise.values, 0.0)
    return jnp.where(active, magnitude(unit, data, signed), 0.0)


def exactly_one_inputs(noise: Noise, feature_probability: jax.Array, data: DataSpec,
                       signed: bool) -> jax.Array:
    """[F, B]: one feature per example, floor(u F) for u = `noise.sets[0]`, with the
    magnitude of its own uniform in `noise.values` (independent of the choice)."""
    del feature_probability
    F = noise.values.shape[0]
    chosen = jnp.minimum(jnp.floor(noise.sets[0] * F), F - 1).astype(jnp.int32)  # [B]
    active = jnp.arange(F)[:, None] == chosen[None, :]
    return jnp.where(active, magnitude(noise.values, data, signed), 0.0)


def one_hot_inputs(noise: Noise, feature_probability: jax.Array, data: DataSpec,
                   signed: bool) -> jax.Array:
    """[F, F]: the one-hot vectors e_1..e_F, value 1 (no draws are used)."""
    del feature_probability, data, signed
    return jnp.eye(noise.values.shape[0], dtype=noise.values.dtype)


INPUT_LAWS = {
    "bernoulli": bernoulli_inputs,
    "exactly_one": exactly_one_inputs,
    "one_hot": one_hot_inputs,
}


def input_law(name: str):
    """Looks up an input law; an unknown name raises a ValueError listing the valid ones."""
    if name not in INPUT_LAWS:
        raise ValueError(f"unknown input law {name!r}; valid: {', '.join(INPUT_LAWS)}")
    return INPUT_LAWS[name]


def magnitude(unit: jax.Array, data: DataSpec, signed: bool) -> jax.Array:
    """The value of an active feature from its Uniform[0, 1) `unit` (any shape)."""
    value = MAGNITUDES[data.magnitude](unit)
    return 2.0 * value - 1.0 if signed else value


def unit_normalize(x: jax.Array) -> jax.Array:
    """Each column of x: [F, B] divided by its L2 norm; zero columns stay zero.

    Example:
      >>> unit_normalize(jnp.array([[3.0, 0.0], [4.0, 0.0]]))
      Array([[0.6, 0. ],
             [0.8, 0. ]], dtype=float32)
    """
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=0, keepdims=True))
    return jnp.where(norm > 0, x / jnp.where(norm > 0, norm, 1.0), 0.0)


def set_active(sets: jax.Array, feature_probability: jax.Array, data: DataSpec) -> jax.Array:
    """[F, B] bool: which features of correlated / anticorrelated sets are on."""
    k = data.set_size
    u = jnp.repeat(sets, k, axis=0)  # [F, B]: each feature sees its set's uniform
    p = feature_probability[:, None]
    on = u < p
    if data.correlation == "correlated":
        return on
    member = jnp.floor(u / jnp.maximum(p, 1e-30) * k)  # Uniform over 0..k-1 given on
    position = (jnp.arange(sets.shape[0] * k) % k)[:, None]
    return on & (member == position)


MAGNITUDES = {
    "uniform": lambda u: u,
    "exponential": lambda u: -0.5 * jnp.log1p(-u),  # mean 1/2, like Uniform[0, 1)
    "constant": lambda u: jnp.ones_like(u),
}


def make_batch(values: jax.Array, feature_probability: jax.Array) -> jax.Array:
    """Sparse inputs x: [F, B] from uniforms `values: [F, B]` and p: [F].

    Each feature is non-zero with probability p_i and then Uniform[0, 1).

    Example:
      >>> make_batch(jnp.array([[0.05], [0.5]]), jnp.array([0.1, 0.1]))
      Array([[0.5],
             [0. ]], dtype=float32)
    """
    p = feature_probability[:, None]
    return jnp.where(values < p, values / jnp.maximum(p, 1e-30), 0.0)


def dropout_keep(values: jax.Array, rate: jax.Array) -> jax.Array:
    """Inverted-dropout multipliers `[H, B]`: 0 with probability `rate`, else 1/(1-rate)."""
    return jnp.where(values >= rate, 1.0 / (1.0 - rate), 0.0)


# ---- finite datasets


def dataset_key(root_seed: int | jax.Array, data_seed: int | jax.Array) -> jax.Array:
    """The key of a finite dataset: fold_in(fold_in(key(root_seed), DATASET_STREAM),
    data_seed). No run key (seeds < 2**31) or evaluation key (2**32 - 1) equals it, and
    it does not depend on the run's init seed. `data_seed` may be traced.

    Example:
      >>> jax.random.key_data(dataset_key(0, 1)).shape
      (2,)
    """
    stream = jax.random.fold_in(jax.random.key(root_seed), DATASET_STREAM)
    return jax.random.fold_in(stream, data_seed)


def training_set(data_key: jax.Array, hyper, spec: Spec, kind: ModelKind | str) -> jax.Array:
    """The T = `spec.data.dataset_size` training examples x: [F, T] of ONE run.

    They are `sample_inputs` of one draw of T examples' uniforms from `data_key`
    (`dataset_key(root seed, data_seed)` in a sweep), with the run's own
    `hyper.feature_probability`, input law and unit norm: training and analysis call
    this one function, so the analysis regenerates exactly the examples a run saw.

    Args:
      data_key: the dataset's key; consumed.
      hyper: the run's `Hyper` (only `feature_probability` is used).
      spec: the static spec (shape, data law, T).
      kind: the model kind (or its name): signed inputs for abs_computation.

    Example:
      >>> from toymodels.hyper import make_hyper
      >>> from toymodels.spec import ModelSpec
      >>> spec = Spec(ModelSpec("relu_output", 4, 2), data=DataSpec(dataset_size=3))
      >>> training_set(dataset_key(0, 0), make_hyper(4), spec, "relu_output").shape
      (4, 3)
    """
    kind = get_model(kind) if isinstance(kind, str) else kind
    noise = sample_noise(data_key, spec, spec.data.dataset_size)
    return sample_inputs(noise, hyper.feature_probability, spec.data, kind.signed_inputs)


def epoch_of(step: jax.Array, dataset_size: int, batch_size: int) -> jax.Array:
    """[] uint32, the epoch of the first example of step `step`'s batch: kB // T.

    Positions are uint32: exact while steps * B < 2**32 (the config checks it).
    """
    return jnp.asarray(step, jnp.uint32) * jnp.uint32(batch_size) // jnp.uint32(dataset_size)


def epoch_order(order_key: jax.Array, epoch: jax.Array, dataset_size: int) -> jax.Array:
    """[T] int32, the order in which epoch `epoch` visits the T examples: a uniformly
    random permutation, `jax.random.permutation(fold_in(order_key, epoch), T)`."""
    return jax.random.permutation(jax.random.fold_in(order_key, epoch), dataset_size)


def orders_at(order_key: jax.Array, step: jax.Array, dataset_size: int,
              batch_size: int) -> jax.Array:
    """[2, T] the orders of the two epochs that step `step`'s batch may span."""
    epoch = epoch_of(step, dataset_size, batch_size)
    return jnp.stack([epoch_order(order_key, e, dataset_size) for e in (epoch, epoch + 1)])


def indices_from(orders: jax.Array, step: jax.Array, batch_size: int) -> jax.Array:
    """[B] the examples of step `step`'s batch from `orders_at(..., step, ...)`: [2, T]."""
    T = orders.shape[1]
    offset = (jnp.asarray(step, jnp.uint32) * jnp.uint32(batch_size) % jnp.uint32(T))
    here = offset.astype(jnp.int32) + jnp.arange(batch_size, dtype=jnp.int32)  # < 2T
    first, second = orders[0, jnp.minimum(here, T - 1)], orders[1, jnp.maximum(here - T, 0)]
    return jnp.where(here < T, first, second)


def batch_indices(order_key: jax.Array, step: jax.Array, dataset_size: int,
                  batch_size: int) -> jax.Array:
    """[B] which of the T examples step `step` trains on; the same for every run of a seed.

    The examples are visited epoch after epoch, each epoch a fresh permutation
    (`epoch_order`), concatenated into one stream; batch k is stream positions
    kB..kB+B-1, so it may span two epochs and no example is dropped. With B = T (full
    batch) it is 0..T-1 every step, unshuffled. This is the definition; the trainer
    keeps the two current epochs' orders from step to step instead (`next_orders`:
    a permutation is a sort, far costlier on CPU than a training step) and gets the
    same indices.

    Args:
      order_key: the seed's key of the order (not consumed: every epoch folds in).
      step: [] int, the step k (may be traced).
      dataset_size, batch_size: T and B (static; B <= T).

    Example:
      >>> idx = batch_indices(jax.random.key(0), jnp.int32(0), 4, 4)
      >>> idx.tolist()
      [0, 1, 2, 3]
    """
    if batch_size == dataset_size:
        return jnp.arange(dataset_size, dtype=jnp.int32)
    orders = orders_at(order_key, step, dataset_size, batch_size)
    return indices_from(orders, step, batch_size)


def next_orders(order_keys: jax.Array, orders: jax.Array, step: jax.Array,
                dataset_size: int, batch_size: int) -> jax.Array:
    """`orders_at(..., step + 1, ...)` of S seeds at once from theirs at `step`: [S, 2, T].

    Batched over seeds on purpose: whether step + 1 starts in a new epoch is one scalar
    for every seed, so `lax.cond` draws the next epoch's permutations only then (inside
    a vmap it would draw them every step).
    """
    now, then = (epoch_of(k, dataset_size, batch_size) for k in (step, step + 1))

    def shift(orders):
        later = jax.vmap(lambda k: epoch_order(k, then + 1, dataset_size))(order_keys)
        return jnp.stack([orders[:, 1], later], axis=1)

    return jax.lax.cond(then > now, shift, lambda orders: orders, orders)
