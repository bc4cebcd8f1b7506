"""Training SPD decompositions: the per-decomposition step, batched over runs in blocks.

`make_train_spd(spec)` returns `train(seed_keys, slot, run)`, the SPD counterpart of
`toymodels.dictionary.train.make_train_sae`: R decompositions trained in one `lax.scan`
over steps, in blocks of V runs (`spd_block_size`; `step_block` vmaps the per-run
`step_one`), so that a run's bits do not depend on the chunk size or the device count.
Each step, every seed draws one batch of uniforms (common random numbers: runs that share
a seed see the same inputs, thresholded by their own feature probability, and the same
mask uniforms); every run takes one Adam step (torch's defaults: β = (0.9, 0.999), ε 1e-8)
on `toymodels.spd.decomposition.loss` with the schedule of `spec.train` (cosine by default),
its value and gradient computed on the nonzero inputs only where a zero input leaves every
matrix's input 0, else on every input (`toymodels.spd.decomposition.value_and_grad` and
`inert`: exact, equal to float rounding).

Shapes: R runs, V runs of a block, G blocks (R = G V), S seed keys, B batch, n features,
d hidden, C subcomponents, T log points.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import optax
from flax import struct

from toymodels import blocks, threefry
from toymodels.progress import Report, ticker
from toymodels.spd import decomposition as spd
from toymodels.spd.targets import (matrix_names, residual_shapes, residual_target, shapes,
                                   tms_target)
from toymodels.spec import Spec
from toymodels.train import DATA, INIT, lr_multiplier

MASKS = 4  # fold_in tag of a seed key: the stream of its mask uniforms (INIT, DATA: 0, 1)
CURVES = ("loss", *(f"loss_{part}" for part in spd.PARTS))  # total, then each part


@struct.dataclass
class SPDRun:
    """What one decomposition reads of its run: its hyperparameters and its target.

    Attributes:
      hyper: `toymodels.spd.decomposition.SPDHyper`.
      target: the target's arrays: {"W": [d, n], "b": [n]} of a toy model, or a residual
        MLP's `toymodels.spd.targets.RESIDUAL_ARRAYS` (`spec.residual` set).
    """

    hyper: spd.SPDHyper
    target: dict


@struct.dataclass
class SPDState:
    """One decomposition's parameters and Adam state."""

    params: dict
    opt_state: optax.OptState


def names_of(spec: Spec) -> tuple[str, ...]:
    """The decomposed matrices of the group's target, in forward order."""
    return ("W_in", "W_out") if spec.residual is not None else matrix_names(spec.spd.identity)


def target_shapes(spec: Spec) -> dict[str, tuple[int, int]]:
    """{name: (d_out, d_in)} of the group's target."""
    if spec.residual is not None:
        return residual_shapes(spec.residual.d_embed, spec.residual.d_mlp)
    return shapes(spec.model.n_features, spec.model.n_hidden, spec.spd.identity)


def is_signed(spec: Spec) -> bool:
    """Whether the target's inputs are signed (a residual MLP's real-valued tasks)."""
    return spec.residual is not None


def spd_block_size(spec: Spec) -> int:
    """V, the decompositions one compiled step updates at once (`toymodels.blocks.block_size`
    of the [B, L, C, d_gate] gate activations of one run)."""
    L = len(names_of(spec))
    return blocks.block_size(spec.train.batch_size * L * spec.spd.C * (spec.spd.d_gate + 2))


def optimizer(spec: Spec, hyper: spd.SPDHyper) -> optax.GradientTransformation:
    """Adam at `hyper.learning_rate` times the schedule of `spec.train`."""
    multiplier = lr_multiplier(spec.train)
    return optax.adam(lambda count: hyper.learning_rate * multiplier(count))


def target_of(spec: Spec, run: SPDRun):
    """The run's `toymodels.spd.targets.Target` (W_hidden = I with `spec.spd.identity`), or
    its `ResidualTarget` (`spec.residual` set; the stream read for identity_relu)."""
    if spec.residual is not None:
        return residual_target(run.target, spec.residual.task == "identity_relu")
    return tms_target(run.target["W"], run.target["b"], spec.spd.identity)


def init_one(spec: Spec, seed_key: jax.Array, run: SPDRun) -> SPDState:
    """One decomposition's state, from its seed key's INIT stream (consumed)."""
    params = spd.init(jax.random.fold_in(seed_key, INIT), target_shapes(spec), spec.spd)
    return SPDState(params, optimizer(spec, run.hyper).init(params))


def inputs(uniforms: jax.Array, feature_probability: jax.Array, signed: bool = False
           ) -> jax.Array:
    """[B, n] x_i = u_i where feature i is on (its `on` uniform below p_i), else 0, from
    uniforms [2, B, n] = (on, value) and p [n] (or one p for every feature): the paper's
    TMS inputs, Uniform[0, 1] with probability p_i; `signed` (static): 2 u_i − 1,
    Uniform[-1, 1), the residual MLPs' law."""
    p = jnp.broadcast_to(feature_probability, uniforms.shape[-1:])
    value = 2.0 * uniforms[1] - 1.0 if signed else uniforms[1]
    return jnp.where(uniforms[0] < p[None], value, 0.0)


def step_one(spec: Spec, state: SPDState, run: SPDRun, uniforms: jax.Array,
             mask_key: jax.Array, step: jax.Array):
    """One Adam step of one decomposition on the batch of `uniforms` [2, B, n] (its seed's);
    `mask_key` draws its mask uniforms. Returns (the new state, [5] the total and the four
    losses before it)."""
    target = target_of(spec, run)
    x = inputs(uniforms, run.hyper.feature_probability, is_signed(spec))
    key = jax.random.fold_in(mask_key, step)
    (total, parts), grads = spd.value_and_grad(state.params, target, x, key, run.hyper,
                                               spec.spd.n_mask_samples)
    tx = optimizer(spec, run.hyper)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    curves = jnp.stack([total, *(parts[p] for p in spd.PARTS)])
    return SPDState(optax.apply_updates(state.params, updates), opt_state), curves


def step_block(spec: Spec, uniforms: jax.Array, step: jax.Array, block):
    """One step of the V runs of one block, `block = (states, runs, mask_keys, slot)` of
    [V] trees: each run reads its seed's `uniforms[slot]` ([S, 2, B, n])."""
    states, runs, mask_keys, slot = block
    return jax.vmap(partial(step_one, spec), in_axes=(0, 0, 0, 0, None))(
        states, runs, uniforms[slot], mask_keys, step)


def train_step(spec: Spec, data_keys, runs, mask_keys, slot, tick, carry, step):
    """Step `step` of every run: carry (states [G, V], curve sums [G, V, 5])."""
    states, sums = carry
    tick(step)
    n, B = spec.model.n_features, spec.train.batch_size
    step_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(data_keys, step)
    uniforms = jax.vmap(lambda k: threefry.uniform(k, (2, B, n)))(step_keys)
    states, curves = jax.lax.map(partial(step_block, spec, uniforms, step),
                                 (states, runs, mask_keys, slot))
    return (states, sums + curves), None


def log_period(spec: Spec, data_keys, runs, mask_keys, slot, tick, states, t):
    """The `log_every` steps of log point t: the new states and [G, V, 5] mean curves."""
    K = spec.train.log_every
    zero = jnp.zeros((*slot.shape, len(CURVES)), jnp.float32)
    (states, sums), _ = jax.lax.scan(
        partial(train_step, spec, data_keys, runs, mask_keys, slot, tick), (states, zero),
        t * K + jnp.arange(K))
    return states, sums / K


def final_importance(spec: Spec, state: SPDState, run: SPDRun) -> dict:
    """{name: [n, C]} the final causal importances σ_H(γ) on the one-hot inputs."""
    return spd.one_hot_importance(state.params, target_of(spec, run))


def spd_outputs(spec: Spec, states: SPDState, runs: SPDRun, curve: jax.Array) -> dict:
    """{name: [R, ...]} (`spd_keys`) from the final states [G, V] and curves [T, G, V, 5]."""
    out = {f"{part}_{name}": blocks.as_runs(value)
           for name, parts in states.params.items() for part, value in parts.items()}
    curve = blocks.as_runs(jnp.moveaxis(curve, 0, -2))  # [R, T, 5]
    out.update({name: curve[..., i] for i, name in enumerate(CURVES)})
    ci = blocks.map_blocks(partial(final_importance, spec))(states, runs)
    out.update({f"ci_{name}": blocks.as_runs(value) for name, value in ci.items()})
    return out


def train_spd(spec: Spec, seed_keys: jax.Array, slot: jax.Array, runs: SPDRun,
              report: Report | None = None) -> dict:
    """`make_train_spd(spec)`'s train; see there."""
    V = spd_block_size(spec)
    data_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(seed_keys, DATA)
    mask_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(seed_keys[slot], MASKS)
    states = blocks.as_blocks(jax.vmap(partial(init_one, spec))(seed_keys[slot], runs), V)
    runs, mask_keys, slot = blocks.as_blocks((runs, mask_keys, slot), V)
    period = partial(log_period, spec, data_keys, runs, mask_keys, slot,
                     ticker(report, spec.train.steps))
    states, curve = jax.lax.scan(period, states, jnp.arange(spec.train.n_logs))
    return spd_outputs(spec, states, runs, curve)


def make_train_spd(spec: Spec, report: Report | None = None):
    """Builds `train(seed_keys, slot, runs) -> dict of arrays` for the static `spec`
    (`spec.spd` set); its steps call `report` (`toymodels.progress`), if given.

    Args of the returned function:
      seed_keys: [S] one key per distinct seed, `fold_in(root_key, seed)`; consumed.
      slot: [R] int, which seed key each run uses; R a multiple of `spd_block_size(spec)`.
      runs: SPDRun with leading axis R.

    Returns:
      {name: [R, ...]} (`spd_keys`): per matrix M its U_M [C, d_out], V_M [C, d_in], the
      CI MLPs' gate_in_w_M, gate_in_b_M, gate_out_w_M [C, d_gate], gate_out_b_M [C] and
      ci_M [n, C] (σ_H on the one-hot inputs); the curves loss, loss_faithfulness,
      loss_stochastic, loss_layerwise, loss_importance [T] (each log period's mean, before
      the coefficients but `loss`, the total).
    """

    def train(seed_keys: jax.Array, slot: jax.Array, runs: SPDRun) -> dict:
        return train_spd(spec, seed_keys, slot, runs, report)

    return train


def spd_keys(spec: Spec) -> list[str]:
    """The arrays of every chunk of an SPD group (what `make_train_spd`'s train returns)."""
    names = sorted(names_of(spec))
    params = [f"{part}_{name}" for name in names for part in ("U", "V", *spd.GATE_PARTS)]
    return [*params, *CURVES, *(f"ci_{name}" for name in names)]


__all__ = ["CURVES", "SPDRun", "SPDState", "inputs", "is_signed", "make_train_spd", "names_of",
           "spd_block_size", "spd_keys", "target_shapes"]
