"""The LLC of ONE trained run: its loss, and the SGLD estimate at each of its points.

The estimator is `toymodels.sgld.estimate` (localised SGLD, Lau et al. 2023), written for
one model. Here it is applied to the runs of a finished sweep: each LLC "run" is one
trained run, its `LLCHyper` holds that run's parameters (and, with snapshots, its
parameters along training), and `make_llc_block` estimates the LLC of each, V runs at a
time (`llc_block_size`), vmapped in one place (`toymodels.blocks.map_blocks`). The pass
over a results directory is a sweep of an `[llc]` config run by the sweep engine: see
`toymodels.trainers.llc`.

Keys: chain c of the LLC at point p (a snapshot, or the final parameters) of a run with
seed s is ``split(fold_in(fold_in(fold_in(key(root seed), s), LLC_STREAM), p), chains)[c]``:
runs of one seed share their chains' noise (common random numbers, as in training), and
a run's estimate does not depend on the chunk size or the device count.

Loss modes (the loss whose LLC is estimated; no dropout, no L1 terms):

* "dataset": the run's own finite training set (`toymodels.data.training_set`, regenerated
  from the root seed and the run's data_seed), full batch or minibatches of
  ``batch_size`` drawn with replacement; n = dataset_size.
* "online": fresh samples of the run's input law every step (``batch_size`` of them).
* "exact": the exact population loss (`toymodels.evaluation.exact_strata`), where the
  inputs allow it ("exactly_one" and "one_hot" inputs).
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
from flax import struct

from toymodels import blocks, data, evaluation, sgld
from toymodels.hyper import Hyper
from toymodels.llc_config import LLC_SCHEMA
from toymodels.models import model_of
from toymodels.progress import Report, ticker
from toymodels.spec import Spec

LLC_STREAM = 2**32 - 4  # fold_in tag of a seed's key for its LLC chains
POINT_VARIABLES = (  # (name, attrs["description"]), per run and point
    ("llc", "local learning coefficient: nbeta (mean loss over the SGLD draws - L(w*))"),
    ("llc_se", "standard error of llc: sample std over chains (ddof 1) / sqrt(chains)"),
    ("llc_trusted", "the estimate passes every check of toymodels.sgld.LLCResult (its "
                    "docstring states the rule)"),
)
FINAL_VARIABLES = (  # final parameters only
    ("llc_below_init", "fraction of the draws with a loss below L(w*)"),
    ("llc_acceptance", "mean MALA acceptance probability of the SGLD proposals"),
    ("llc_nonfinite", "a draw's loss was not finite"),
    ("llc_diverged", "a draw's loss was not finite or above 1000 (|L(w*)| + 1)"),
    ("llc_init_loss", "L(w*), the loss the draws are compared with"),
    ("llc_epsilon", "the SGLD step used (given, or chosen from the curvature at w*)"),
    ("llc_settings_ratio", "the exact estimate of the local quadratic model (the Hessian "
                           "at w*) under these settings over its d_eff / 2: how far the "
                           "settings alone move a regular estimate (trusted in [0.9, 1.1]; "
                           "toymodels.sgld_quadratic)"),
    ("llc_relaxation", "the burn-in in relaxation times 1 / (epsilon (nbeta h + gamma)) of "
                       "the slowest curved direction (trusted from 3)"),
)


@dataclasses.dataclass(frozen=True)
class LLCSpec:
    """The static part of an LLC pass (one compiled program).

    Attributes:
      loss: "dataset", "online" or "exact" (see the module docstring); None (given to
        `run_llc`) chooses "dataset" with a finite training set, else "exact" where the
        inputs have an exact loss, else "online".
      chains, draws, burn_in: SGLD chains per point, draws kept per chain, steps dropped.
      batch_size: examples per step ("dataset": 0 is the full training set; "online":
        0, given to `run_llc`, is the sweep's training batch).
      snapshots: also estimate at every snapshot of the run (`llc_snapshots`).
      auto_step: choose each point's step from its curvature (`sgld.auto_epsilon`; the
        traced epsilon is then its scale, the pass's `epsilon_scale`).
      spectrum: also return the Hessian eigenvalues at the final parameters
        (`llc_spectrum`, for `toymodels.llc_calibration`).
    """

    loss: str = "dataset"
    chains: int = LLC_SCHEMA["chains"].default
    draws: int = LLC_SCHEMA["draws"].default
    burn_in: int = LLC_SCHEMA["burn_in"].default
    batch_size: int = 0
    snapshots: bool = False
    auto_step: bool = False
    spectrum: bool = False

    @property
    def stochastic(self) -> bool:
        return self.loss == "online" or self.batch_size > 0


@struct.dataclass
class LLCHyper:
    """One LLC run's inputs (leading axis R in a grid).

    Attributes:
      run: the trained run's `Hyper` (importance, feature probabilities).
      params: {name: [P, ...]} the parameters at each of the P points: the snapshots
        (with `LLCSpec.snapshots`) and last the final parameters.
      epsilon, gamma, nbeta: [] the SGLD step, localisation strength and n beta.
    """

    run: Hyper
    params: dict
    epsilon: jax.Array
    gamma: jax.Array
    nbeta: jax.Array


def llc_block_size(spec: Spec) -> int:
    """V, the runs one compiled LLC step updates at once: `toymodels.blocks.block_size`
    of [P, chains, B, F + H] values per run with a budget of 2^15 (smaller than a toy
    model's, as one LLC run is already thousands of SGLD steps of `chains` models)."""
    per_run = _n_points(spec) * spec.llc.chains * _batch(spec) * (
        spec.model.n_features + spec.model.n_hidden)
    return blocks.block_size(per_run, 1 << 15)


def _n_points(spec: Spec) -> int:
    """P, the points of a run whose LLC is estimated: its 1 + n_snapshots snapshots
    (with `LLCSpec.snapshots`), then the final parameters."""
    return 1 + (spec.train.n_snapshots + 1 if spec.llc.snapshots else 0)


def _batch(spec: Spec) -> int:
    """Examples one loss evaluation reads (the exact loss: about F)."""
    if spec.llc.loss == "exact":
        return spec.model.n_features
    return spec.llc.batch_size or spec.data.dataset_size


def llc_keys(spec: Spec) -> list[str]:
    """The arrays of every chunk of an LLC pass (what `make_llc_block` returns)."""
    return ["llc_points", "llc_se_points", "llc_trusted_points", "llc_trace",
            *(name for name, _ in FINAL_VARIABLES), *(["llc_spectrum"] if spec.llc.spectrum else [])]


def run_loss(spec: Spec, run: Hyper, examples: jax.Array | None):
    """The loss of ONE run whose LLC is estimated: `loss(params)`, or
    `loss(params, batch_key)` when `spec.llc.stochastic`.

    Args:
      spec: the source's spec with `llc` set.
      run: the run's Hyper (its importance; its feature probabilities for "online").
      examples: [F, N] the run's training set ("dataset"), else None.
    """
    kind, mode = model_of(spec.model), spec.llc.loss
    full = lambda params: _with_bias(params, spec)
    mean = lambda params, x: jnp.mean(evaluation.example_losses(full(params), x, run.importance, kind))
    if mode == "exact":
        return lambda params: evaluation.exact_strata(full(params), run, kind, spec.data)[0]
    if mode == "online":
        def fresh(params, key):
            noise = data.sample_noise(key, spec, spec.llc.batch_size)
            x = data.sample_inputs(noise, run.feature_probability, spec.data, kind.signed_inputs)
            return mean(params, x)
        return fresh
    if not spec.llc.batch_size:
        return lambda params: mean(params, examples)

    def minibatch(params, key):
        index = jax.random.randint(key, (spec.llc.batch_size,), 0, examples.shape[1])
        return mean(params, jnp.take(examples, index, axis=1))
    return minibatch


def _with_bias(params: dict, spec: Spec) -> dict:
    """The model's parameters: a model without bias gets its b = 0 back (b is not a
    parameter of the posterior then)."""
    if spec.model.bias or "b" in params:
        return params
    return {**params, "b": jnp.zeros((spec.model.n_features,), jnp.float32)}


def free_params(params: dict, spec: Spec) -> dict:
    """The parameters the posterior is over: all of them, less b when the model has no
    bias (it is held at 0 during training)."""
    return params if spec.model.bias else {k: v for k, v in params.items() if k != "b"}


def make_llc_block(spec: Spec, root_seed: int, report: Report | None = None):
    """`block(seeds, slot, hyper, data_seeds) -> arrays` of a block of LLC runs (R a
    multiple of `llc_block_size(spec)`): `sgld.estimate` of every run and point, vmapped
    over the V runs of a group and the P points of a run, groups one after another.

    Returns {name: [R, ...]}: `llc_points`, `llc_se_points`, `llc_trusted_points` [R, P];
    `llc_trace` [R, chains, draws] and the diagnostics [R] of the final parameters.
    The SGLD steps call `report` (`toymodels.progress`), if given.
    """
    kind, llc = model_of(spec.model), spec.llc
    V = llc_block_size(spec)

    def one_run(tick, hyper: LLCHyper, key: jax.Array, dataset_key: jax.Array) -> dict:
        examples = data.training_set(dataset_key, hyper.run, spec, kind) if llc.loss == "dataset" else None
        loss = run_loss(spec, hyper.run, examples)

        def at_point(params, p):
            return sgld.estimate(loss, free_params(params, spec), jax.random.fold_in(key, p),
                                hyper.nbeta, hyper.epsilon, hyper.gamma, chains=llc.chains,
                                draws=llc.draws, burn_in=llc.burn_in, stochastic=llc.stochastic,
                                auto_step=llc.auto_step, tick=tick)

        P = jax.tree.leaves(hyper.params)[0].shape[0]
        result = jax.vmap(at_point)(hyper.params, jnp.arange(P))
        last = jax.tree.map(lambda a: a[-1], result)
        out = {"llc_points": result.llc, "llc_se_points": result.llc_se,
               "llc_trusted_points": result.trusted, "llc_trace": last.trace,
               "llc_epsilon": last.epsilon}
        if llc.spectrum:
            out["llc_spectrum"] = last.spectrum
        out.update(llc_below_init=last.below_init, llc_acceptance=last.acceptance,
                   llc_nonfinite=last.nonfinite, llc_diverged=last.diverged,
                   llc_init_loss=last.init_loss, llc_settings_ratio=last.settings_ratio,
                   llc_relaxation=last.relaxation)
        return out

    def block(seeds, slot, hyper: LLCHyper, data_seeds):
        root = jax.random.key(root_seed)
        seed_keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.fold_in(root, s), LLC_STREAM))(seeds)
        keys = seed_keys[slot]
        dataset_keys = jax.vmap(data.dataset_key, in_axes=(None, 0))(root_seed, data_seeds)
        tick = ticker(report, llc.burn_in + llc.draws, share=V / len(slot))  # once per block
        run = partial(one_run, tick)
        return blocks.as_runs(blocks.map_blocks(run)(*blocks.as_blocks((hyper, keys, dataset_keys), V)))

    return block




def llc_work(spec: Spec) -> int:
    """Values touched by one LLC run: points x chains x steps x gradients x B x (F + H)."""
    grads = 2 if spec.llc.stochastic else 1
    return _n_points(spec) * spec.llc.chains * (spec.llc.burn_in + spec.llc.draws) * grads \
        * _batch(spec) * (spec.model.n_features + spec.model.n_hidden)


def llc_memory(spec: Spec) -> int:
    """4-byte values one LLC run keeps: its points' parameters and chains, the losses and
    acceptances of every SGLD step of its chains (burn-in included), its training set."""
    F, H, llc = spec.model.n_features, spec.model.n_hidden, spec.llc
    return _n_points(spec) * ((F * H + F) * (llc.chains + 2) + 3 * llc.chains * (llc.burn_in + llc.draws)) \
        + F * spec.data.dataset_size
