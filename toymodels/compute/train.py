"""Training residual MLPs: R runs in blocks of V, one `lax.scan` over steps.

Every per-run function (`init_one`, `step_one`, `stats_one`) is written for ONE model and
takes the static `Spec` first; the V runs of a block are vmapped and the blocks mapped
(`toymodels.blocks`), as for toy models (`toymodels.train`), whose optimisers and
schedules (`toymodels.train.make_optimizer`) these runs use. Common random numbers: each
step draws one batch of uniforms per seed key (`toymodels.compute.tasks.sample_noise`),
and every run of that seed makes its inputs from them (with its own feature
probabilities), so runs that share a seed see the same inputs. A fixed W_E is not a trained parameter: it has no
optimiser state, no gradient and no weight decay.

The final loss is sampled: `n_eval_batches` batches of `EVAL_BATCH` fresh inputs, drawn
once from the sweep's evaluation key for every run; its standard error is that of the
mean of the per-example losses.

Shapes: R runs, V runs of a block, G blocks (R = G V), S seed keys, B batch, n features,
O outputs (n, or n(n − 1)/2 for uand), T log points.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from toymodels import blocks, data
from toymodels.compute import model, tasks
from toymodels.progress import Report, ticker
from toymodels.spec import EVAL_BATCH, Spec
from toymodels.train import DATA, INIT, make_optimizer


@struct.dataclass
class ResidualHyper:
    """One run's traced values; a batch of R runs adds a leading axis.

    Attributes:
      feature_probability: [n] p_i of each input feature.
      importance: [n] each output's weight in the loss (unused by uand).
      learning_rate, weight_decay, momentum, beta1, beta2, one_minus_beta1,
        one_minus_beta2, eps: [] the optimiser's (`toymodels.hyper.Hyper`'s meaning).
      label_mixing: [] s, the labels' s (W_EᵀW_E − I) x.
      embed_seed: [] int32, the seed of W_E (`toymodels.compute.model.embed_key`).
    """

    feature_probability: jax.Array
    importance: jax.Array
    learning_rate: jax.Array
    weight_decay: jax.Array
    momentum: jax.Array
    beta1: jax.Array
    beta2: jax.Array
    one_minus_beta1: jax.Array
    one_minus_beta2: jax.Array
    eps: jax.Array
    label_mixing: jax.Array
    embed_seed: jax.Array


@struct.dataclass
class State:
    """One run's trained parameters, its fixed ones (W_E when fixed, else {}), the
    optimiser's state of the trained ones, and gram [n, n] = W_EᵀW_E of a fixed W_E
    (`fixed_gram`; None until the run's block computes it, and where not
    `uses_fixed_gram`)."""

    params: model.Params
    fixed: model.Params
    opt_state: optax.OptState
    gram: jax.Array | None = None


class Output(NamedTuple):
    """What R runs return (leading axis R).

    Attributes:
      params: every parameter, the fixed W_E included (`toymodels.compute.model`).
      loss: [R, T] the mean training loss of each log period.
      final_loss: [R] the loss of the final parameters on the evaluation sample.
      final_loss_se: [R] its standard error.
      loss_per_output: [R, O] each output's mean squared error (ŷ_i − y_i)² on that
        sample, unweighted: final_loss = Σ_i w_i loss_per_output_i / O (w the importance).
    """

    params: model.Params
    loss: jax.Array
    final_loss: jax.Array
    final_loss_se: jax.Array
    loss_per_output: jax.Array


def block_size(spec: Spec) -> int:
    """V: `toymodels.blocks.block_size` of [B, n + d_embed + d_mlp] values per run.

    d_embed counts although the folded step holds no [B, d_embed] array: at n = 100,
    d_embed = 1000, d_mlp = 50, B = 2048 this gives V = 2, and V = 8 trained at the same
    rate per CPU-second (152 model-steps, measured), so V is kept (another V would change
    every run's bits)."""
    r = spec.residual
    return blocks.block_size(spec.train.batch_size * (r.n_features + r.d_embed + r.d_mlp))


# ---- one run


def init_one(spec: Spec, seed_key: jax.Array, hyper: ResidualHyper) -> State:
    """One run's State: `model.init` from its seed key's INIT stream and its embed seed."""
    params = model.init(jax.random.fold_in(seed_key, INIT), spec.residual, hyper.embed_seed)
    fixed = {k: params.pop(k) for k in model.fixed_names(spec.residual)}
    return State(params, fixed, make_optimizer(spec.train, hyper).init(params))


def uses_fixed_gram(spec: Spec) -> bool:
    """Whether the runs keep W_EᵀW_E (`fixed_gram`): a fixed W_E and a real-valued task."""
    return spec.residual.task != "uand" and spec.residual.embed == "fixed"


def fixed_gram(fixed: model.Params) -> jax.Array:
    """[n, n] W_EᵀW_E of one run's fixed W_E, computed once and not at every step (the
    readout's W_U W_E and the labels' mixing)."""
    return fixed["W_E"].T @ fixed["W_E"]


def objective(params: model.Params, fixed: model.Params, gram: jax.Array | None, x: jax.Array,
              hyper: ResidualHyper, spec: Spec) -> jax.Array:
    """[] the training loss of one run on a batch x [B, n] (`tasks.loss`)."""
    return tasks.loss({**params, **fixed}, x, hyper.label_mixing, hyper.importance,
                      spec.residual, gram)


def step_one(spec: Spec, state: State, hyper: ResidualHyper, noise: data.Noise):
    """One optimiser step of one run on the inputs its seed's `noise` makes: (the new
    State, [] the loss before the step)."""
    # The barrier makes x once: else XLA fuses the input law into each of x's consumers
    # and recomputes it there (~1.3x the step's time at n = 100, d_embed = 1000).
    x = jax.lax.optimization_barrier(
        tasks.sample(noise, hyper.feature_probability, spec.data, spec.residual))
    loss, grads = jax.value_and_grad(objective)(state.params, state.fixed, state.gram, x,
                                                hyper, spec)
    updates, opt_state = make_optimizer(spec.train, hyper).update(grads, state.opt_state,
                                                                  state.params)
    return state.replace(params=optax.apply_updates(state.params, updates),
                         opt_state=opt_state), loss


def stats_one(spec: Spec, params: model.Params, hyper: ResidualHyper, noise: data.Noise):
    """One run's statistics of one evaluation batch: ([] mean loss, [] mean squared
    loss, [O] mean squared error of each output)."""
    x = tasks.sample(noise, hyper.feature_probability, spec.data, spec.residual)
    errors = tasks.squared_errors(params, x, hyper.label_mixing, spec.residual)
    losses = errors @ tasks.output_weights(hyper.importance, spec.residual) / spec.residual.n_outputs
    return jnp.mean(losses), jnp.mean(losses ** 2), jnp.mean(errors, axis=0)


# ---- every run, in blocks


class Inputs(NamedTuple):
    """What every step reads: data_keys [S] (each seed's DATA stream), hyper [G, V],
    slot [G, V] (each run's seed key), tick (the engine's progress)."""

    data_keys: jax.Array
    hyper: ResidualHyper
    slot: jax.Array
    tick: Callable[[jax.Array], None]


def step_block(spec: Spec, draws: data.Noise, block):
    """One step of the V runs of a block `(states, hyper, slot)`: each run takes its
    seed's draw `draws[slot]`. Returns (states, loss [V])."""
    states, hyper, slot = block
    mine = jax.tree.map(lambda a: a[slot], draws)
    return jax.vmap(partial(step_one, spec))(states, hyper, mine)


def train_step(spec: Spec, inputs: Inputs, carry, step: jax.Array):
    """Step `step` of every run: carry (states [G, V], loss sum [G, V])."""
    states, loss_sum = carry
    inputs.tick(step)
    keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(inputs.data_keys, step)
    draws = jax.vmap(tasks.sample_noise, in_axes=(0, None))(keys, spec)  # [S] one per seed
    states, loss = jax.lax.map(partial(step_block, spec, draws),
                               (states, inputs.hyper, inputs.slot))
    return (states, loss_sum + loss), None


def log_period(spec: Spec, inputs: Inputs, states, t: jax.Array):
    """The `log_every` steps of log point t: (states, [G, V] the mean loss over them)."""
    K = spec.train.log_every
    zero = jnp.zeros(inputs.slot.shape, jnp.float32)
    (states, loss_sum), _ = jax.lax.scan(partial(train_step, spec, inputs), (states, zero),
                                         t * K + jnp.arange(K))
    return states, loss_sum / K


def evaluate(spec: Spec, params: model.Params, hyper: ResidualHyper, eval_key: jax.Array):
    """(final_loss [G, V], final_loss_se [G, V], loss_per_output [G, V, O]) of params in
    [G, V] blocks on `n_eval_batches` batches drawn from `eval_key`, the same for every
    run. The barrier keeps XLA from fusing the evaluation into the training's last step
    (a block's bits then do not depend on the number of blocks)."""
    params, hyper = jax.lax.optimization_barrier((params, hyper))
    stats = blocks.map_blocks(partial(stats_one, spec), in_axes=(0, 0, None))

    def batch(i):
        noise = tasks.sample_noise(jax.random.fold_in(eval_key, i), spec, EVAL_BATCH)
        return stats(params, hyper, noise)

    mean, square, per_output = jax.lax.map(batch, jnp.arange(spec.train.n_eval_batches))
    n = spec.train.n_eval_batches * EVAL_BATCH
    final = jnp.mean(mean, axis=0)
    variance = jnp.maximum(jnp.mean(square, axis=0) - final ** 2, 0.0) * n / (n - 1)
    return final, jnp.sqrt(variance / n), jnp.mean(per_output, axis=0)


def train_runs(spec: Spec, seed_keys: jax.Array, slot: jax.Array, hyper: ResidualHyper,
               eval_key: jax.Array, report: Report | None = None) -> Output:
    """`make_train(spec)`'s train: every run's init (vmapped over R), then in [G, V]
    blocks its fixed W_E's gram (`fixed_gram`, where `uses_fixed_gram`), the training
    scan and the evaluation."""
    V = block_size(spec)
    data_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(seed_keys, DATA)
    states = blocks.as_blocks(jax.vmap(partial(init_one, spec))(seed_keys[slot], hyper), V)
    if uses_fixed_gram(spec):
        states = states.replace(gram=blocks.map_blocks(fixed_gram)(states.fixed))
    hyper, slot = blocks.as_blocks((hyper, slot), V)
    inputs = Inputs(data_keys, hyper, slot, ticker(report, spec.train.steps))
    states, curve = jax.lax.scan(partial(log_period, spec, inputs), states,
                                 jnp.arange(spec.train.n_logs))  # curve [T, G, V]
    params = {**states.params, **states.fixed}
    final, final_se, per_output = evaluate(spec, params, hyper, eval_key)
    return Output(blocks.as_runs(params), blocks.as_runs(jnp.moveaxis(curve, 0, -1)),
                  blocks.as_runs(final), blocks.as_runs(final_se), blocks.as_runs(per_output))


def make_train(spec: Spec, report: Report | None = None):
    """`train(seed_keys [S], slot [R], hyper [R], eval_key) -> Output` for the static
    `spec` (R a multiple of `block_size(spec)`); its steps call `report`, if given.

    Example:
      >>> from toymodels.residual_config import parse_residual
      >>> from toymodels.trainers.residual import expand_residual
      >>> c = parse_residual({"residual": {"n_features": 4, "d_embed": 8, "d_mlp": 2},
      ...                     "train": {"steps": 10, "batch_size": 16, "log_every": 5,
      ...                               "eval_samples": 8192}})
      >>> grid = expand_residual(c)
      >>> V = block_size(c.spec); hyper = jax.tree.map(lambda a: a.repeat(V, 0), grid.hyper)
      >>> out = make_train(c.spec)(jax.random.key(0)[None], jnp.zeros(V, int), hyper,
      ...                          jax.random.key(1))
      >>> out.loss.shape[1:], out.loss_per_output.shape[1:]
      ((2,), (4,))
    """
    return partial(train_runs, spec, report=report)
