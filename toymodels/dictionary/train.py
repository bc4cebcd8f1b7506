"""Training sparse autoencoders: the per-SAE step, batched over SAEs in blocks.

`make_train_sae(spec)` returns `train(seed_keys, slot, hyper)`, the SAE counterpart of
`toymodels.train.make_train`: R SAEs trained in one `lax.scan` over steps, in blocks of
V SAEs (`sae_block_size`; `step_block` vmaps the per-SAE `step_one`), so that an SAE's
bits do not depend on the chunk size or the device count. Each step, every seed draws
one batch of the source's inputs x: [F, B] (`toymodels.data.sample_inputs`, common
random numbers), every SAE reads its source's activations h = W x ([d, B]) and takes one
optimiser step on its kind's loss (`toymodels.dictionary.sae`). The sweep engine
(`toymodels.sweep`) chunks, shards, stores and resumes these runs exactly as toy models.

A synthetic world (`spec.sae.world`, `toymodels.dictionary.world`) is built once per
sweep (`world_of`) and closed over by the compiled program, not copied into every SAE's
hyperparameters: each seed's batch h = codes @ truth + b ([d, B]) is drawn once per step
from its DATA key and shared by that seed's SAEs, whatever their kind or width.

Shapes: R SAEs, V SAEs of a block, G blocks (R = G V), S seed keys, B batch, F the
source's features, d its hidden dims, N latents, T log points.
"""

from __future__ import annotations

import functools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from toymodels import blocks, data
from toymodels.dictionary import world as worlds
from toymodels.dictionary.sae import get_sae
from toymodels.dictionary.sae_parts import (Params, SAEHyper, Stats, init_stats, matmul,
                                            project_out_rows, random_directions, smallest_kept,
                                            unit_rows, update_stats)
from toymodels.progress import Report, ticker
from toymodels.spec import Spec
from toymodels.train import DATA, INIT, make_optimizer
from toymodels.world_spec import WorldSpec

TRUTH_STREAM = 2**32 - 3  # fold_in tag of key(truth_seed): the synthetic directions


@struct.dataclass
class SAEState:
    """One SAE's parameters, optimiser state and statistics."""

    params: dict
    opt_state: optax.OptState
    stats: Stats


def sae_block_size(spec: Spec) -> int:
    """V, the SAEs one compiled step updates at once (`toymodels.blocks.block_size` of
    [B, N + d + F] values per SAE)."""
    N, d, F = spec.sae.width, spec.model.n_hidden, spec.model.n_features
    return blocks.block_size(spec.train.batch_size * (N + d + F))


def activations(hyper: SAEHyper, noise: data.Noise, spec: Spec) -> jax.Array:
    """[d, B] the source's hidden vectors h = W x for one batch of its inputs x: [F, B]
    (one example per column, the SAE kinds' layout)."""
    x = data.sample_inputs(noise, hyper.feature_probability, spec.data)
    return matmul(hyper.truth, x)


def world_of(spec: Spec) -> worlds.World:
    """The synthetic world of an SAE sweep (`spec.sae.world`, seed `spec.sae.truth_seed`),
    the same object for every static group, chunk and program of the sweep (`shared_world`)."""
    return shared_world(spec.sae.world, spec.sae.truth_seed)


@functools.lru_cache(maxsize=2)
def shared_world(world: WorldSpec, seed: int) -> worlds.World:
    """`build_world(world, seed)`, built once (cached: the 16k world's orthogonalisation
    takes a while) and eagerly even when first asked for inside a trace (the programs
    close over its arrays)."""
    with jax.ensure_compile_time_eval():
        return worlds.build_world(world, seed)


def world_batch(spec: Spec, key: jax.Array) -> jax.Array:
    """[d, B] one batch of the world's activations h = codes @ truth + b, example b
    from `fold_in(key, b)` (the SAE kinds' layout: one example per column)."""
    world = world_of(spec)
    codes = worlds.sample_codes(world, spec.sae.world, key, spec.train.batch_size)
    return worlds.hidden(world, codes).T


def synthetic_truth(truth_seed: int, n_features: int, n_hidden: int) -> np.ndarray:
    """[d, F] the synthetic source's features: F independent uniformly random unit
    directions in d dims, from `fold_in(key(truth_seed), TRUTH_STREAM)`."""
    key = jax.random.fold_in(jax.random.key(truth_seed), TRUTH_STREAM)
    return np.asarray(random_directions(key, n_features, n_hidden)).T


def true_dictionary(spec: Spec, hyper: SAEHyper) -> tuple[jax.Array, jax.Array]:
    """(decoder [F, d], b_dec [d]) of an SAE with `dictionary = "truth"`: the source's true
    unit feature directions and its offset. A synthetic world's are its `truth` rows and its
    `bias`; another source's the columns of the run's `truth` [d, F], normalised, and 0.
    (The one place a fixed decoder reads the truth from.)"""
    if spec.sae.world is not None:
        world = world_of(spec)
        return world.truth, world.bias
    return unit_rows(hyper.truth.T), jnp.zeros(spec.model.n_hidden, jnp.float32)


def tie(params: Params) -> Params:
    """The encoder made the decoder (W_e = W_dᵀ in the column convention): `tied` SAEs."""
    return {**params, "encoder": params["decoder"]}


def init_one(spec: Spec, seed_key: jax.Array, hyper: SAEHyper) -> SAEState:
    """One SAE's state: its kind's init of N latents over d dims, from its seed key's INIT
    stream (consumed; a kind that reads `init_threshold` gets it as `threshold`), the
    optimiser's state and fresh statistics. With `dictionary =
    "truth"` the decoder and b_dec are `true_dictionary`'s and the encoder, which every kind
    with one starts at W_dᵀ, starts at the truth too; `tied`: the encoder is the decoder."""
    kind, N = get_sae(spec.sae.kind), spec.sae.width
    own = {"threshold": hyper.init_threshold} if "init_threshold" in kind.reads else {}
    params = kind.init(jax.random.fold_in(seed_key, INIT), N, spec.model.n_hidden, **own)
    if spec.sae.dictionary == "truth":
        decoder, b_dec = true_dictionary(spec, hyper)
        params = {**params, "decoder": decoder, "b_dec": b_dec}
        params = tie(params) if "encoder" in params else params
    if spec.sae.tied:
        params = tie(params)
    return SAEState(params, make_optimizer(spec.train, hyper).init(params), init_stats(N))


def objective(spec: Spec):
    """The kind's loss; for a `tied` SAE the loss of `tie(params)`, so that the decoder
    gets the encoder's gradient too (and the stored encoder none); an MP-SAE's pursuit
    runs `spec.sae.pursuit_steps` iterations (the sweep's largest k), not N."""
    loss = get_sae(spec.sae.kind).loss
    if spec.sae.pursuit_steps:
        loss = partial(loss, max_k=spec.sae.pursuit_steps)
    if not spec.sae.tied:
        return loss
    return lambda params, *args: loss(tie(params), *args)


def step_on_noise(spec: Spec, state: SAEState, hyper: SAEHyper, noise: data.Noise,
                  step: jax.Array):
    """`step_one` on its source's activations of the batch that `noise` (its seed's draw
    of `step`) makes, h = W x with the SAE's own source W and density."""
    return step_one(spec, state, hyper, activations(hyper, noise, spec), step)


def step_one(spec: Spec, state: SAEState, hyper: SAEHyper, x: jax.Array, step: jax.Array):
    """One optimiser step of one SAE on the activations x: [d, B]: (the new state, [] the
    loss before it)."""
    kind = get_sae(spec.sae.kind)
    learned = spec.sae.dictionary == "learned"
    progress = step.astype(jnp.float32) / spec.train.steps
    (loss, codes), grads = jax.value_and_grad(objective(spec), has_aux=True)(
        state.params, state.stats, x, hyper, progress)
    if kind.unit_decoder and learned:
        grads = {**grads, "decoder": project_out_rows(grads["decoder"], state.params["decoder"])}
    tx = make_optimizer(spec.train, hyper)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    if kind.unit_decoder and learned:
        params = {**params, "decoder": unit_rows(params["decoder"])}
    if not learned:  # the true dictionary, kept to the bit (weight decay would move it)
        params = {**params, "decoder": state.params["decoder"], "b_dec": state.params["b_dec"]}
    if spec.sae.tied:
        params = tie(params)
    stats = update_stats(state.stats, codes, smallest_kept(codes))
    return SAEState(params, opt_state, stats), loss


def step_block(spec: Spec, inputs, step: jax.Array, block):
    """One step of the V SAEs of one block, `block = (states, hyper, slot)` of [V] trees:
    each SAE reads its seed's `inputs[slot]` (one per seed key [S]: the draws
    `data.Noise`, or a world's activations [d, B])."""
    states, hyper, slot = block
    shared = jax.tree.map(lambda a: a[slot], inputs)
    one = step_one if spec.sae.world is not None else step_on_noise
    return jax.vmap(partial(one, spec), in_axes=(0, 0, 0, None))(states, hyper, shared, step)


def train_step(spec: Spec, data_keys: jax.Array, hyper: SAEHyper, slot: jax.Array, tick, carry,
               step: jax.Array):
    """Step `step` of every SAE: carry (states [G, V], loss sum [G, V]); each seed's DATA
    key [S] draws one batch (its noise, or a world's activations), shared by its SAEs;
    hyper and slot [G, V]; `tick(step)` the engine's progress (`toymodels.progress.ticker`)."""
    states, loss_sum = carry
    tick(step)
    step_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(data_keys, step)
    if spec.sae.world is not None:
        inputs = jax.vmap(partial(world_batch, spec))(step_keys)
    else:
        inputs = jax.vmap(data.sample_noise, in_axes=(0, None))(step_keys, spec)
    states, loss = jax.lax.map(partial(step_block, spec, inputs, step), (states, hyper, slot))
    return (states, loss_sum + loss), None


def log_period(spec: Spec, data_keys: jax.Array, hyper: SAEHyper, slot: jax.Array, tick,
               states: SAEState, t: jax.Array):
    """The K = `log_every` steps of log point t of every SAE (states, hyper, slot
    [G, V]): the new states and [G, V] each SAE's mean loss over these steps."""
    K = spec.train.log_every
    zero = jnp.zeros(slot.shape, jnp.float32)
    (states, loss_sum), _ = jax.lax.scan(partial(train_step, spec, data_keys, hyper, slot, tick),
                                         (states, zero), t * K + jnp.arange(K))
    return states, loss_sum / K


def sae_outputs(spec: Spec, states: SAEState, curve: jax.Array) -> dict:
    """{name: [R, ...]} (`sae_keys`) from the final states [G, V] and the curve [T, G, V]."""
    out = {name: blocks.as_runs(value) for name, value in states.params.items()}
    out["loss"] = blocks.as_runs(jnp.moveaxis(curve, 0, -1))
    out["since_fired"] = blocks.as_runs(states.stats.since_fired)
    if get_sae(spec.sae.kind).threshold:
        out["threshold"] = blocks.as_runs(states.stats.threshold)
    return out


def train_saes(spec: Spec, seed_keys: jax.Array, slot: jax.Array, hyper: SAEHyper,
               report: Report | None = None) -> dict:
    """`make_train_sae(spec)`'s train; see there."""
    V = sae_block_size(spec)
    data_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(seed_keys, DATA)
    states = blocks.as_blocks(jax.vmap(partial(init_one, spec))(seed_keys[slot], hyper), V)
    hyper, slot = blocks.as_blocks((hyper, slot), V)
    period = partial(log_period, spec, data_keys, hyper, slot, ticker(report, spec.train.steps))
    states, curve = jax.lax.scan(period, states, jnp.arange(spec.train.n_logs))
    return sae_outputs(spec, states, curve)


def make_train_sae(spec: Spec, report: Report | None = None):
    """Builds `train(seed_keys, slot, hyper) -> dict of arrays` for the static `spec`
    (`spec.sae` set); its steps call `report` (`toymodels.progress`), if given.

    Args of the returned function:
      seed_keys: [S] one key per distinct seed, `fold_in(root_key, seed)`; consumed.
      slot: [R] int, which seed key each SAE uses; R a multiple of `sae_block_size(spec)`.
      hyper: SAEHyper with leading axis R.

    Returns:
      {name: [R, ...]}: the parameters (`SAEKind.dims`), `loss` [R, T] (the mean
      training objective of each period of `log_every` steps), `since_fired` [R, N]
      (steps since each latent last fired, at the end) and, for BatchTopK kinds,
      `threshold` [R].
    """

    def train(seed_keys: jax.Array, slot: jax.Array, hyper: SAEHyper) -> dict:
        return train_saes(spec, seed_keys, slot, hyper, report)

    return train


def sae_keys(spec: Spec) -> list[str]:
    """The arrays of every chunk of an SAE group (what `make_train_sae`'s train returns)."""
    kind = get_sae(spec.sae.kind)
    return [*kind.dims, "loss", "since_fired", *(["threshold"] if kind.threshold else [])]
