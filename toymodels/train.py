"""Training: per-model init, step and evaluation, batched over runs in blocks.

`make_train(spec)` returns `train(seed_keys, slot, hyper, eval_key)`, which trains R
models in one `lax.scan` over steps. Every per-model function (`init_one`, `step_one`,
`exact_one`, `fit_one`, ...) is written for ONE model and takes the static `spec` first;
runs are vmapped only over the V runs of a block, the blocks mapped one after another
(`step_block`, `toymodels.blocks.map_blocks`), and, for the init, over all R runs
(`train_runs`). Runs that share a seed share one draw per step (common random numbers):
`slot[r]` says which of the S seed keys run r uses, and `step_block` gathers each run's
draw from its seed's.

With a finite dataset (`DataSpec.dataset_size` = N > 0) each run's N examples
(`toymodels.data.training_set`, from its `dataset_keys` entry) are made once at the start,
a constant of the scan ([G, V, F, N] floats); each step trains on the minibatch that
`toymodels.data.batch_indices` picks, in an order shared by the runs of a seed, with the
seed's dropout draws as online.

Shapes: R runs, V runs of a block, G blocks (R = G V), S seed keys, B batch, F features,
H hidden, T log points, N training examples.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from toymodels import blocks, data, evaluation
from toymodels.hyper import Hyper
from toymodels.kinds import KGON_KINDS, OPTIMIZER_READS  # noqa: F401 (OPTIMIZER_READS: its home is kinds)
from toymodels.models import ModelKind, Params, kgon_params, model_of, perturb
from toymodels.progress import Report, ticker
from toymodels.spec import EVAL_BATCH, ModelSpec, Spec, TrainSpec

INIT, DATA, EVAL, DATASET = 0, 1, 2, 3  # fold_in tags: a seed key's independent streams
ORDER = 2**32 - 1  # fold_in tag of a seed's DATA key for the minibatch order (steps < 2**31)
Schedule = Callable[[jax.Array], jax.Array]  # update count c -> learning rate


@struct.dataclass
class TrainState:
    """One model's parameters and optimiser state."""

    params: Params
    opt_state: optax.OptState


@struct.dataclass
class RunOutput:
    """What a run returns. Shapes for one run; batched runs add a leading R.

    Attributes:
      params: the final parameters, e.g. {"W": [H, F], "b": [F]}.
      loss: [T] the mean training objective of each log period of `log_every` steps: the
        importance-weighted error with dropout, plus the L1 penalties on the hidden
        activations (`l1_hidden`) and on the weights (`l1_weights`).
      final_loss: [] the population loss of the final parameters (no dropout, no L1
        penalties: the importance-weighted error alone), exact in the strata of zero and
        one active feature and sampled in the rest (`toymodels.evaluation`).
      final_loss_se: [] its standard error.
      snapshots: the parameters at steps 0, k, 2k, ... (k = snapshot_every), each with a
        leading [1 + steps / k] axis; {} when snapshots are off.
      train_loss: [] with a finite dataset, the importance-weighted error (no dropout, no
        L1) of the final parameters averaged over the N training examples; NaN for
        online training (a sweep then stores no `train_loss`).
    """

    params: Params
    loss: jax.Array
    final_loss: jax.Array
    final_loss_se: jax.Array
    snapshots: Params
    train_loss: jax.Array


def lr_multiplier(train: TrainSpec) -> Schedule:
    """The schedule as a factor of the peak learning rate, a function of the update count c
    (the first update has c = 0, optax's convention).

    With W = warmup_steps and D = steps − W: c / W while c < W (no warm-up when W = 0),
    then 1 ("constant") or ½(1 + cos(π min(c − W, D) / D)) ("cosine"), which reaches 0 at
    c = steps. Times the peak lr this is `optax.warmup_cosine_decay_schedule(0, lr, W,
    steps, 0)` for "cosine" and `optax.linear_schedule(0, lr, W)` for "constant", to
    float rounding (tests/test_train.py).
    """
    W = train.warmup_steps

    def after_warmup(count: jax.Array) -> jax.Array:
        if train.schedule == "constant":
            return jnp.ones_like(count)
        progress = (count - W) / max(train.steps - W, 1)
        return 0.5 * (1.0 + jnp.cos(jnp.pi * jnp.clip(progress, 0.0, 1.0)))

    def multiplier(count: jax.Array) -> jax.Array:
        count = count.astype(jnp.float32)
        if W == 0:
            return after_warmup(count)
        return jnp.where(count < W, count / W, after_warmup(count))

    return multiplier


def scale_by_adam(hyper: Hyper) -> optax.GradientTransformation:
    """`optax.scale_by_adam(beta1, beta2, eps)` with traced hyperparameters, except that the
    moments weigh the new gradient by 1 − β as rounded on the host (`Hyper.one_minus_beta1`):

      m ← (1 − β₁) g + β₁ m,   v ← (1 − β₂) g² + β₂ v,   step = m̂ / (√v̂ + ε)

    with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ) at the t-th update. A float32 1 − β₂ taken on
    the device from β₂ = 0.999 would be off by 1.3e-5 of itself; this is the arithmetic of
    optax with Python-float betas, operation for operation.
    """

    def init_fn(params):
        zeros = optax.tree.zeros_like(params)
        return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros)

    def update_fn(updates, state, params=None):
        del params  # below: optax's expressions, g ** 1 included, in optax's order
        mu = jax.tree.map(lambda g, t: hyper.one_minus_beta1 * g ** 1 + hyper.beta1 * t,
                          updates, state.mu)
        nu = jax.tree.map(lambda g, t: hyper.one_minus_beta2 * g ** 2 + hyper.beta2 * t,
                          updates, state.nu)
        count = optax.safe_increment(state.count)
        mu_hat = optax.tree.bias_correction(mu, hyper.beta1, count)
        nu_hat = optax.tree.bias_correction(nu, hyper.beta2, count)
        step = jax.tree.map(lambda m, v: m / (jnp.sqrt(v + 0.0) + hyper.eps), mu_hat, nu_hat)
        return step, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


def adamw(hyper: Hyper, lr: Schedule) -> optax.GradientTransformation:
    """AdamW, as `torch.optim.AdamW` and `optax.adamw`: Adam's step on the gradient, then
    the DECOUPLED decay w ← w − lr·wd·w on every parameter (the bias too), unseen by the
    moments."""
    return optax.chain(scale_by_adam(hyper), optax.add_decayed_weights(hyper.weight_decay),
                       optax.scale_by_learning_rate(lr))


def adam(hyper: Hyper, lr: Schedule) -> optax.GradientTransformation:
    """Adam with COUPLED L2 decay on every parameter, as `torch.optim.Adam(weight_decay=wd)`:
    the moments see g + wd·w, so the decay is rescaled by Adam's preconditioner like the
    gradient."""
    return optax.chain(optax.add_decayed_weights(hyper.weight_decay), scale_by_adam(hyper),
                       optax.scale_by_learning_rate(lr))


def sgd(hyper: Hyper, lr: Schedule) -> optax.GradientTransformation:
    """Plain SGD with L2 decay on every parameter, as `torch.optim.SGD(weight_decay=wd)`:
    w ← w − lr·(g + wd·w) (coupled and decoupled decay are the same thing here)."""
    return optax.chain(optax.add_decayed_weights(hyper.weight_decay),
                       optax.scale_by_learning_rate(lr))


def momentum(hyper: Hyper, lr: Schedule) -> optax.GradientTransformation:
    """Heavy-ball SGD, as `torch.optim.SGD(momentum=μ, weight_decay=wd)` (no Nesterov, no
    dampening): v ← μ·v + g + wd·w, w ← w − lr·v, on every parameter; the L2 decay goes
    into the buffer with the gradient."""
    return optax.chain(optax.add_decayed_weights(hyper.weight_decay),
                       optax.trace(decay=hyper.momentum),
                       optax.scale_by_learning_rate(lr))


# Keyed by `toymodels.kinds.OPTIMIZER_NAMES`, which parsing checks without JAX; the keys
# each optimizer reads are `toymodels.kinds.OPTIMIZER_READS`.
OPTIMIZERS: dict[str, Callable[[Hyper, Schedule], optax.GradientTransformation]] = {
    "adamw": adamw, "adam": adam, "sgd": sgd, "momentum": momentum,
}


def get_optimizer(name: str) -> Callable[[Hyper, Schedule], optax.GradientTransformation]:
    """Looks up an optimizer; an unknown name raises a ValueError listing the valid ones."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def make_optimizer(train: TrainSpec, hyper: Hyper) -> optax.GradientTransformation:
    """`train.optimizer` at the learning rate `hyper.learning_rate × lr_multiplier(train)`."""
    multiplier = lr_multiplier(train)
    return get_optimizer(train.optimizer)(
        hyper, lambda count: hyper.learning_rate * multiplier(count))


def weighted_mse(params, x, target, keep, importance, forward, l1_hidden=0.0) -> jax.Array:
    """Σ_i I_i (y_i − y'_i)² + λ Σ_k |h_k|, averaged over the batch.

    Args:
      x, target: [F, B] inputs and the outputs to reproduce (target = x for autoencoders).
      keep: [H, B] dropout multipliers; importance: [F]; l1_hidden: λ.
    """
    y_hat, h = forward(params, x, keep)
    error = jnp.sum(importance[:, None] * (target - y_hat) ** 2, axis=0)
    return jnp.mean(error + l1_hidden * jnp.sum(jnp.abs(h), axis=0))


def l1_norm(params: Params, weights: tuple[str, ...]) -> jax.Array:
    """Σ|W| over the entries of the weight matrices named in `weights` (not the bias)."""
    return sum(jnp.sum(jnp.abs(params[name])) for name in weights)


def without_bias(params: Params, model: ModelSpec) -> Params:
    """The params with `b` set to exactly zero when `model.bias` is False (else as given)."""
    return params if model.bias else {**params, "b": jnp.zeros_like(params["b"])}


def normal_init(key: jax.Array, spec: Spec) -> Params:
    """Every weight matrix entry N(0, 1/H) (std 1/√n_hidden, the init of Lecomte et al.
    2023), every bias 0; one draw per weight matrix, in name order, from `split(key)`.
    The key is consumed."""
    kind = model_of(spec.model)
    shapes = jax.eval_shape(lambda k: kind.init(k, spec.model), key)  # shapes only
    names = sorted(kind.weights)
    keys = dict(zip(names, jax.random.split(key, len(names))))
    scale = 1.0 / jnp.sqrt(jnp.float32(spec.model.n_hidden))
    return {n: scale * jax.random.normal(keys[n], s.shape, s.dtype) if n in keys
            else jnp.zeros(s.shape, s.dtype) for n, s in shapes.items()}


def initial_params(spec: Spec) -> Params | None:
    """The params every run of `spec` starts from before its own noise: the k-gon
    (`kgon_params(spec.model, spec.train.init_k)`) for `spec.train.init` = "kgon"; None
    for "random" and "normal" (each run draws its own init)."""
    if spec.train.init in ("random", "normal"):
        return None
    if spec.train.init != "kgon":
        raise ValueError(f"unknown init {spec.train.init!r}; valid: random, normal, kgon")
    if spec.model.kind not in KGON_KINDS:
        raise ValueError(f"init kgon needs a tied W and b ({', '.join(KGON_KINDS)}), "
                         f"got {spec.model.kind!r}")
    return kgon_params(spec.model, spec.train.init_k)


def block_size(spec: Spec) -> int:
    """V, the runs one compiled step updates at once (`toymodels.blocks.block_size` of
    [F + H, B] values per run); a function of the static spec only."""
    return blocks.block_size(spec.train.batch_size * (spec.model.n_features + spec.model.n_hidden))


def is_finite(spec: Spec) -> bool:
    """Whether runs train on a finite dataset of N = `spec.data.dataset_size` examples."""
    return spec.data.dataset_size > 0


def is_shuffled(spec: Spec) -> bool:
    """Whether steps take minibatches of a finite dataset in a shuffled order (N ≠ B; a
    full batch keeps the examples' order)."""
    return 0 < spec.data.dataset_size != spec.train.batch_size


def log_periods_per_snapshot(spec: Spec) -> int:
    """P, the log periods (of `log_every` steps) between two snapshots; T, all of them,
    when snapshots are off."""
    every = spec.train.snapshot_every
    return every // spec.train.log_every if every else spec.train.n_logs


class TrainInputs(NamedTuple):
    """What every step of training reads and none changes, in blocks of V runs.

    Attributes:
      data_keys: [S] each seed key's DATA stream.
      hyper: Hyper with leading [G, V].
      slot: [G, V] int, which seed key each run uses.
      examples: ([G, V, F, N],) every run's training set with a finite dataset; () online.
      tick: `tick(step)`, the engine's progress (`toymodels.progress.ticker`).
    """

    data_keys: jax.Array
    hyper: Hyper
    slot: jax.Array
    examples: tuple
    tick: Callable[[jax.Array], None] = ticker(None, 0)


# ---- one model: its init, objective, step and evaluation (each for ONE run)


def init_one(spec: Spec, start: Params | None, seed_key: jax.Array, hyper: Hyper) -> TrainState:
    """One run's TrainState, from its seed key's INIT stream: the kind's init,
    `normal_init`, or the k-gon `start` (`initial_params(spec)`) plus noise."""
    key = jax.random.fold_in(seed_key, INIT)
    if spec.train.init == "normal":
        params = normal_init(key, spec)
    elif start is None:
        params = model_of(spec.model).init(key, spec.model)
    else:
        params = without_bias(perturb(start, key, spec.train.init_noise), spec.model)
    return TrainState(params, make_optimizer(spec.train, hyper).init(params))


def objective(params: Params, x, target, keep, hyper: Hyper, kind: ModelKind) -> jax.Array:
    """[] the training objective of one run: `weighted_mse` of x, target [F, B] with the
    dropout multipliers keep [H, B], plus l1_weights · Σ|W| over the weight matrices when
    the run has that term (`hyper.l1_weights` is not None)."""
    error = weighted_mse(params, x, target, keep, hyper.importance, kind.forward,
                         hyper.l1_hidden)
    if hyper.l1_weights is None:  # static: no term, the program of a run without it
        return error
    return error + hyper.l1_weights * l1_norm(params, kind.weights)


def step_one(spec: Spec, state: TrainState, hyper: Hyper, x: jax.Array, keep: jax.Array):
    """One optimiser step of one run on the inputs x [F, B] with the dropout multipliers
    keep [H, B]: (the new TrainState, [] the objective before the step)."""
    kind = model_of(spec.model)
    loss, grads = jax.value_and_grad(objective)(state.params, x, kind.target(x), keep, hyper,
                                                kind)
    tx = make_optimizer(spec.train, hyper)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = without_bias(optax.apply_updates(state.params, updates), spec.model)
    return TrainState(params, opt_state), loss


def online_step(spec: Spec, state: TrainState, hyper: Hyper, noise: data.Noise):
    """`step_one` on the batch [F, B] of fresh inputs that `noise` (one step's) makes."""
    x = data.sample_inputs(noise, hyper.feature_probability, spec.data,
                           model_of(spec.model).signed_inputs)
    return step_one(spec, state, hyper, x, data.dropout_keep(noise.dropout, hyper.dropout))


def finite_step(spec: Spec, state: TrainState, hyper: Hyper, examples: jax.Array, draws):
    """`step_one` on the minibatch `draws = (index [B] or None, dropout [H, B])` of the
    run's examples [F, N] (all of them, in order, for a full batch)."""
    index, dropout = draws
    x = jnp.take(examples, index, axis=1) if is_shuffled(spec) else examples
    return step_one(spec, state, hyper, x, data.dropout_keep(dropout, hyper.dropout))


def batch_stats_one(spec: Spec, params: Params, hyper: Hyper, tail: jax.Array,
                    noise: data.Noise) -> jax.Array:
    """[2] one run's statistics of one evaluation batch (`evaluation.batch_stats`), with
    its strata's tail [F + 1, 3]."""
    return evaluation.batch_stats(params, hyper, tail, noise, spec.data, model_of(spec.model))


def exact_one(spec: Spec, params: Params, hyper: Hyper) -> jax.Array:
    """[2] one run's exact strata of the loss (`evaluation.exact_strata`), stacked."""
    return jnp.stack(evaluation.exact_strata(params, hyper, model_of(spec.model), spec.data))


def tail_one(hyper: Hyper) -> jax.Array:
    """[F + 1, 3] one run's `evaluation.strata` tail (once per run, not per batch)."""
    return evaluation.strata(hyper.feature_probability).tail


def combine_one(exact: jax.Array, stats: jax.Array):
    """One run's (loss, standard error) from its exact strata [2] and the statistics of
    its evaluation batches [n_eval_batches, 2]."""
    return evaluation.combine(exact[0], exact[1], stats, EVAL_BATCH)


def fit_one(spec: Spec, params: Params, hyper: Hyper, examples: jax.Array) -> jax.Array:
    """[] one run's mean loss over its N training examples [F, N] (no dropout, no L1)."""
    losses = evaluation.example_losses(params, examples, hyper.importance, model_of(spec.model))
    return jnp.mean(losses)


# ---- the draws of a step, one per seed key (shared by the runs of a seed)


def order_keys(keys: jax.Array) -> jax.Array:
    """[S] each seed's key of the minibatch order (its DATA stream's tag ORDER)."""
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, ORDER)


def first_orders(spec: Spec, keys: jax.Array):
    """[S, 2, N] the orders of epochs 0 and 1 of every seed (DATA keys [S]); () unless
    shuffled."""
    if not is_shuffled(spec):
        return ()
    n_examples, B = spec.data.dataset_size, spec.train.batch_size
    at_zero = lambda k: data.orders_at(k, jnp.zeros((), jnp.int32), n_examples, B)
    return jax.vmap(at_zero)(order_keys(keys))


def advance(spec: Spec, keys: jax.Array, orders, step: jax.Array):
    """The orders [S, 2, N] of step + 1 (a permutation drawn only when an epoch begins)."""
    if not is_shuffled(spec):
        return orders
    return data.next_orders(order_keys(keys), orders, step, spec.data.dataset_size,
                            spec.train.batch_size)


def step_draws(spec: Spec, keys: jax.Array, orders, step: jax.Array):
    """What each seed's DATA key [S] draws for `step`: a Noise (online), or the minibatch's
    indices [S, B] (from the seed's epoch `orders` [S, 2, N]; None unless shuffled) and
    the dropout uniforms [S, H, B]."""
    step_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, step)
    if not is_finite(spec):
        return jax.vmap(data.sample_noise, in_axes=(0, None))(step_keys, spec)
    B = spec.train.batch_size
    index = jax.vmap(lambda o: data.indices_from(o, step, B))(orders) if is_shuffled(spec) else None
    return index, jax.vmap(lambda k: data.sample_dropout(k, spec))(step_keys)


# ---- every run: blocks of V runs, vmapped over the runs of a block and mapped over blocks


def training_sets(spec: Spec, dataset_keys: jax.Array, hyper: Hyper) -> jax.Array:
    """[G, V, F, N] every run's examples (`data.training_set`) from its dataset key [G, V]."""
    kind = model_of(spec.model)
    return blocks.map_blocks(lambda key, h: data.training_set(key, h, spec, kind))(
        dataset_keys, hyper)


def step_block(spec: Spec, draws, block):
    """One step of the V runs of one block, `block = (states, hyper, slot, *examples)` of
    [V] trees: each run takes its seed's draw, `draws[slot]` (`draws` holds one per seed
    key [S], shared by the runs of a seed, not redrawn). Returns (states, loss [V])."""
    states, hyper, slot, *examples = block
    step = finite_step if is_finite(spec) else online_step
    return jax.vmap(partial(step, spec))(states, hyper, *examples,
                                         jax.tree.map(lambda a: a[slot], draws))


def train_step(spec: Spec, inputs: TrainInputs, carry, step: jax.Array):
    """Step `step` of every run: carry (states [G, V], orders, loss sum [G, V])."""
    states, orders, loss_sum = carry
    inputs.tick(step)
    draws = step_draws(spec, inputs.data_keys, orders, step)
    states, loss = jax.lax.map(partial(step_block, spec, draws),
                               (states, inputs.hyper, inputs.slot, *inputs.examples))
    return (states, advance(spec, inputs.data_keys, orders, step), loss_sum + loss), None


def log_period(spec: Spec, inputs: TrainInputs, carry, t: jax.Array):
    """The K = `log_every` steps of log point t: carry (states [G, V], orders); returns
    the new carry and [G, V] each run's mean objective over these steps."""
    states, orders = carry
    K = spec.train.log_every
    zero = jnp.zeros(inputs.slot.shape, jnp.float32)
    steps = t * K + jnp.arange(K)
    (states, orders, loss_sum), _ = jax.lax.scan(partial(train_step, spec, inputs),
                                                 (states, orders, zero), steps)
    return (states, orders), loss_sum / K


def snapshot_period(spec: Spec, inputs: TrainInputs, carry, i: jax.Array):
    """The P log periods between snapshots i and i + 1 (`log_periods_per_snapshot`):
    carry (states [G, V], orders); returns the new carry, the loss curve [P, G, V] and
    the params at the end ({} when snapshots are off)."""
    P = log_periods_per_snapshot(spec)
    (states, orders), curve = jax.lax.scan(partial(log_period, spec, inputs), carry,
                                           i * P + jnp.arange(P))
    return (states, orders), (curve, states.params if spec.train.snapshot_every else {})


def train_loop(spec: Spec, inputs: TrainInputs, states: TrainState):
    """Every step of every run: the final states [G, V], the loss curve [T / P, P, G, V]
    and the snapshots (params at step 0 [G, V, ...], then [T / P, G, V, ...]; ({}, {})
    when snapshots are off)."""
    P = log_periods_per_snapshot(spec)
    first = states.params if spec.train.snapshot_every else {}
    carry = (states, first_orders(spec, inputs.data_keys))
    (states, _), (curve, snaps) = jax.lax.scan(partial(snapshot_period, spec, inputs), carry,
                                               jnp.arange(spec.train.n_logs // P))
    return states, curve, (first, snaps)


def evaluate(spec: Spec, params: Params, hyper: Hyper, eval_key: jax.Array):
    """(final_loss, final_loss_se), each [G, V], of params and hyper in [G, V] blocks.

    The sampled stratum's batches are drawn once from `eval_key` for every run. The
    optimization barriers stop XLA from fusing the exact strata into the code around
    them: fused, their bits depended on the number of blocks G (1 ulp across chunk
    sizes); kept apart, each block's arithmetic is the same whatever the chunk.
    Where nothing is sampled (`evaluation.needs_samples`) the loss is the exact part
    and its standard error 0.
    """
    exact_of = blocks.map_blocks(partial(exact_one, spec))
    if not evaluation.needs_samples(spec.data, model_of(spec.model).homogeneous):
        exact = exact_of(params, hyper)
        return exact[..., 0], jnp.zeros_like(exact[..., 0])
    tails = blocks.map_blocks(tail_one)(hyper)  # [G, V, F + 1, 3]
    batch = partial(eval_batch, spec, eval_key, params, hyper, tails)
    stats = jax.lax.map(batch, jnp.arange(spec.train.n_eval_batches))  # [n, G, V, 2]
    exact = exact_of(*jax.lax.optimization_barrier((params, hyper)))  # [G, V, 2]
    exact, stats = jax.lax.optimization_barrier((exact, stats))
    return blocks.map_blocks(combine_one, in_axes=(0, 1))(exact, jnp.moveaxis(stats, 0, 1))


def eval_batch(spec: Spec, eval_key: jax.Array, params: Params, hyper: Hyper,
               tails: jax.Array, i: jax.Array) -> jax.Array:
    """[G, V, 2] every run's statistics of evaluation batch i (one draw for all runs)."""
    noise = data.sample_noise(jax.random.fold_in(eval_key, i), spec, EVAL_BATCH)
    stats = blocks.map_blocks(partial(batch_stats_one, spec), in_axes=(0, 0, 0, None))
    return stats(params, hyper, tails, noise)


def training_losses(spec: Spec, params: Params, inputs: TrainInputs) -> jax.Array:
    """[G, V] each run's mean loss over its training examples (`fit_one`); NaN online."""
    if not is_finite(spec):
        return jnp.full(inputs.slot.shape, jnp.nan, jnp.float32)
    return blocks.map_blocks(partial(fit_one, spec))(params, inputs.hyper, *inputs.examples)


def run_output(params: Params, curve: jax.Array, snapshots, final: jax.Array,
               final_se: jax.Array, fit: jax.Array) -> RunOutput:
    """The RunOutput of R runs from [G, V] blocks: params, final, final_se and fit [G, V]
    as `evaluate` and `training_losses` give them, the curve [T / P, P, G, V] and the
    snapshots (step 0's, the later ones) as `train_loop` does."""
    first, later = snapshots
    curve = jnp.moveaxis(curve.reshape(-1, *final.shape), 0, -1)  # [G, V, T]
    snaps = jax.tree.map(lambda a, b: jnp.moveaxis(jnp.concatenate([a[None], b]), 0, 2),
                         first, later)  # [G, V, 1 + n_snapshots, ...]
    return RunOutput(blocks.as_runs(params), blocks.as_runs(curve), blocks.as_runs(final),
                     blocks.as_runs(final_se), blocks.as_runs(snaps), blocks.as_runs(fit))


def train_runs(spec: Spec, start: Params | None, seed_keys: jax.Array, slot: jax.Array,
               hyper: Hyper, eval_key: jax.Array, dataset_keys: jax.Array | None = None,
               report: Report | None = None) -> RunOutput:
    """`make_train(spec)`'s train (see there for the args), with `start =
    initial_params(spec)`: every run's init (vmapped over the R runs), then in [G, V]
    blocks its training set, the training loop, the evaluation and the fit."""
    V, finite = block_size(spec), is_finite(spec)
    if finite and dataset_keys is None:
        raise ValueError("a finite dataset (spec.data.dataset_size > 0) needs dataset_keys")
    data_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(seed_keys, DATA)
    init = jax.vmap(partial(init_one, spec, start))
    states = blocks.as_blocks(init(seed_keys[slot], hyper), V)
    hyper, slot = blocks.as_blocks((hyper, slot), V)
    examples = (training_sets(spec, blocks.as_blocks(dataset_keys, V), hyper),) if finite else ()
    inputs = TrainInputs(data_keys, hyper, slot, examples, ticker(report, spec.train.steps))
    states, curve, snapshots = train_loop(spec, inputs, states)
    final, final_se = evaluate(spec, states.params, hyper, eval_key)
    fit = training_losses(spec, states.params, inputs)
    return run_output(states.params, curve, snapshots, final, final_se, fit)


def make_train(spec: Spec, report: Report | None = None):
    """Builds `train(seed_keys, slot, hyper, eval_key, dataset_keys=None) -> RunOutput`
    for the static `spec`; its steps call `report` (`toymodels.progress`), if given.

    Args of the returned function:
      seed_keys: [S] one key per distinct seed, `fold_in(root_key, seed)`; consumed.
      slot: [R] int, which seed key each run uses; R a multiple of `block_size(spec)`.
      hyper: Hyper with leading axis R.
      eval_key: the key of the evaluation draws, shared by every run (a sweep passes
        `evaluation.eval_key(root seed)`).
      dataset_keys: [R] each run's dataset key (a sweep passes
        `data.dataset_key(root seed, data_seed)`); needed only with a finite dataset.

    Returns:
      RunOutput with leading axis R.
    """
    start = initial_params(spec)  # the k-gon for init = "kgon" (host, once); else None

    def train(seed_keys: jax.Array, slot: jax.Array, hyper: Hyper, eval_key: jax.Array,
              dataset_keys: jax.Array | None = None) -> RunOutput:
        return train_runs(spec, start, seed_keys, slot, hyper, eval_key, dataset_keys, report)

    return train


def make_train_one(spec: Spec):
    """`train_one(key, hyper, eval_key=None, dataset_key=None) -> RunOutput` for ONE model
    (a block padded with copies). The evaluation draws come from `eval_key`, default
    `fold_in(key, EVAL)` (a sweep's come from its root key: `evaluation.eval_key(seed)`);
    a finite dataset's from `dataset_key`, default `fold_in(key, DATASET)` (a sweep's:
    `data.dataset_key(root seed, data_seed)`).

    Example:
      >>> from toymodels.hyper import make_hyper
      >>> from toymodels.spec import ModelSpec, TrainSpec
      >>> spec = Spec(ModelSpec("relu_output", 5, 2), TrainSpec(steps=20, log_every=10))
      >>> out = make_train_one(spec)(jax.random.key(0), make_hyper(5))
      >>> out.params["W"].shape, out.loss.shape
      ((2, 5), (2,))
    """
    train, V = make_train(spec), block_size(spec)

    def train_one(key: jax.Array, hyper: Hyper, eval_key: jax.Array | None = None,
                  dataset_key: jax.Array | None = None) -> RunOutput:
        batched = jax.tree.map(lambda a: jnp.broadcast_to(a, (V, *jnp.shape(a))), hyper)
        eval_key = jax.random.fold_in(key, EVAL) if eval_key is None else eval_key
        dataset_key = jax.random.fold_in(key, DATASET) if dataset_key is None else dataset_key
        dataset_keys = jnp.broadcast_to(dataset_key, (V,))
        out = train(key[None], jnp.zeros((V,), jnp.int32), batched, eval_key, dataset_keys)
        return jax.tree.map(lambda a: a[0], out)

    return train_one
