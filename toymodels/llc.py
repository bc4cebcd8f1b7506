"""`toymodels llc DIR`: the local learning coefficient of every run of a finished sweep.

The estimator is `toymodels.slt.estimate` (localised SGLD, Lau et al. 2023), written for
one model. Here it becomes a third kind of run of the sweep engine (`toymodels.sweep`):
each LLC "run" is one trained run of DIR, its `LLCHyper` holds that run's parameters
(and, with snapshots, its parameters along training), and `make_llc_block` estimates the
LLC of each, V runs at a time (`llc_group_size`). Chunks, devices, resume and the atomic
store are the engine's: the chunk files go to ``DIR/llc-<settings hash>/`` and, once
every run is done, the variables are added to ``DIR/results.nc`` and that folder is
removed. An interrupted `toymodels llc` resumes with the same settings.

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
import hashlib
import json
import math
import shutil
import sys
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from flax import struct
from tqdm.auto import tqdm

from toymodels import data, evaluation, slt, store
from toymodels.config import parse_config, to_toml
from toymodels.errors import UserError
from toymodels.grid import Grid, expand
from toymodels.groups import SNAPSHOT, combine, split
from toymodels.hyper import Hyper
from toymodels.lock import held
from toymodels.models import get_model, model_of
from toymodels.spec import Spec

LLC_STREAM = 2**32 - 4  # fold_in tag of a seed's key for its LLC chains
LOSSES = ("dataset", "online", "exact")
WORK_PREFIX = "llc-"
POINT_VARIABLES = (  # (name, attrs["description"]), per run and point
    ("llc", "local learning coefficient: nbeta (mean loss over the SGLD draws - L(w*))"),
    ("llc_se", "standard error of llc: std over chains / sqrt(chains)"),
    ("llc_trusted", "the estimate passes every check of toymodels.slt.LLCResult (its "
                    "docstring states the rule)"),
)
FINAL_VARIABLES = (  # final parameters only
    ("llc_below_init", "fraction of the draws with a loss below L(w*)"),
    ("llc_acceptance", "mean MALA acceptance probability of the SGLD proposals"),
    ("llc_nonfinite", "a draw's loss was not finite"),
    ("llc_diverged", "a draw's loss was not finite or above 1000 (|L(w*)| + 1)"),
    ("llc_init_loss", "L(w*), the loss the draws are compared with"),
    ("llc_epsilon", "the SGLD step used (given, or chosen from the curvature at w*)"),
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
      auto_step: choose each point's step from its curvature (`slt.auto_epsilon`; the
        traced epsilon is then its scale, `slt.AUTO_SCALE`).
    """

    loss: str = "dataset"
    chains: int = 4
    draws: int = 200
    burn_in: int = 100
    batch_size: int = 0
    snapshots: bool = False
    auto_step: bool = False

    @property
    def stochastic(self) -> bool:
        return self.loss == "online" or self.batch_size > 0


@dataclasses.dataclass(frozen=True)
class LLCSettings:
    """What `toymodels llc` was asked for: the static `spec` and the traced step size
    ("auto": from each point's curvature, `slt.auto_epsilon`), localisation and inverse
    temperature (nbeta None: n / ln n, with n the dataset size or `n`)."""

    spec: LLCSpec
    epsilon: float | str = 1e-4
    gamma: float = 100.0
    nbeta: float | None = None
    n: int | None = None

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self.spec), "epsilon": self.epsilon, "gamma": self.gamma,
                "nbeta": self.nbeta, "n": self.n}


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


def llc_group_size(spec: Spec) -> int:
    """V, the runs one compiled LLC step updates at once: a power of two in 2..64 with
    about 2^15 values of [V, P, chains, B, F + H] (as `toymodels.train.group_size`;
    smaller, as one LLC run is already thousands of SGLD steps of `chains` models)."""
    points = _n_points(spec)
    per_run = points * spec.llc.chains * _batch(spec) * (spec.model.n_features + spec.model.n_hidden)
    target = max((1 << 15) // per_run, 1)
    return int(min(64, max(2, 1 << target.bit_length() - 1)))


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
            *(name for name, _ in FINAL_VARIABLES)]


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


def make_llc_block(spec: Spec, root_seed: int):
    """`block(seeds, slot, hyper, data_seeds) -> arrays` of a block of LLC runs (R a
    multiple of `llc_group_size(spec)`): `slt.estimate` of every run and point, vmapped
    over the V runs of a group and the P points of a run, groups one after another.

    Returns {name: [R, ...]}: `llc_points`, `llc_se_points`, `llc_trusted_points` [R, P];
    `llc_trace` [R, chains, draws] and the diagnostics [R] of the final parameters.
    """
    kind, llc = model_of(spec.model), spec.llc
    V = llc_group_size(spec)

    def one_run(hyper: LLCHyper, key: jax.Array, dataset_key: jax.Array) -> dict:
        examples = data.training_set(dataset_key, hyper.run, spec, kind) if llc.loss == "dataset" else None
        loss = run_loss(spec, hyper.run, examples)

        def at_point(params, p):
            return slt.estimate(loss, free_params(params, spec), jax.random.fold_in(key, p),
                                hyper.nbeta, hyper.epsilon, hyper.gamma, chains=llc.chains,
                                draws=llc.draws, burn_in=llc.burn_in, stochastic=llc.stochastic,
                                auto_step=llc.auto_step)

        P = jax.tree.leaves(hyper.params)[0].shape[0]
        result = jax.vmap(at_point)(hyper.params, jnp.arange(P))
        last = jax.tree.map(lambda a: a[-1], result)
        out = {"llc_points": result.llc, "llc_se_points": result.llc_se,
               "llc_trusted_points": result.trusted, "llc_trace": last.trace,
               "llc_epsilon": last.epsilon}
        out.update(llc_below_init=last.below_init, llc_acceptance=last.acceptance,
                   llc_nonfinite=last.nonfinite, llc_diverged=last.diverged,
                   llc_init_loss=last.init_loss)
        return out

    def block(seeds, slot, hyper: LLCHyper, data_seeds):
        root = jax.random.key(root_seed)
        seed_keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.fold_in(root, s), LLC_STREAM))(seeds)
        keys = seed_keys[slot]
        dataset_keys = jax.vmap(data.dataset_key, in_axes=(None, 0))(root_seed, data_seeds)
        as_groups = lambda a: a.reshape(-1, V, *a.shape[1:])
        grouped = jax.tree.map(as_groups, (hyper, keys, dataset_keys))
        out = jax.lax.map(lambda args: jax.vmap(one_run)(*args), grouped)
        return jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), out)

    return block


def _llc_work(spec: Spec) -> int:
    """Work per run and training step (the engine multiplies by `spec.train.steps`)."""
    points = _n_points(spec)
    grads = 2 if spec.llc.stochastic else 1
    total = points * spec.llc.chains * (spec.llc.burn_in + spec.llc.draws) * grads * _batch(spec) \
        * (spec.model.n_features + spec.model.n_hidden)
    return max(1, math.ceil(total / spec.train.steps))


def _llc_memory(spec: Spec) -> int:
    F, H = spec.model.n_features, spec.model.n_hidden
    points = _n_points(spec)
    return points * (F * H + F) * (spec.llc.chains + 2) + spec.llc.chains * spec.llc.draws \
        + F * spec.data.dataset_size


def llc_trainer():
    """The sweep engine's `Trainer` of LLC runs (`toymodels.sweep.trainer_of`). Its grid
    is made from a finished sweep by `llc_grid`, not from a config (`expand` is None)."""
    from toymodels.sweep import Trainer

    return Trainer(None, llc_group_size, make_llc_block, llc_keys, None, _llc_work, _llc_memory)


# ---- the pass over a results directory


def check(settings: LLCSettings, spec: Spec, where: str) -> None:
    """Raises UserError (one line naming `where`, the setting and what is allowed) when
    `settings` cannot be run on the sweep of `spec`."""
    llc = settings.spec
    fail = lambda what: UserError(f"{where}: {what}")
    if llc.loss not in LOSSES:
        raise fail(f"--loss must be one of {', '.join(LOSSES)}, got {llc.loss!r}")
    for name, value, low in (("chains", llc.chains, 2), ("draws", llc.draws, 1),
                             ("burn-in", llc.burn_in, 0), ("batch-size", llc.batch_size, 0)):
        if value < low:
            raise fail(f"--{name} must be at least {low}, got {value}")
    if settings.epsilon == "auto" and not llc.auto_step:
        raise fail('--epsilon "auto" needs LLCSpec.auto_step')
    epsilon = slt.AUTO_SCALE if llc.auto_step else settings.epsilon
    if isinstance(epsilon, str):
        raise fail(f'--epsilon must be a number > 0 or "auto", got {epsilon!r}')
    for name, value, low in (("epsilon", epsilon, 0.0), ("gamma", settings.gamma, None),
                             ("nbeta", settings.nbeta, 0.0)):
        if value is None:
            continue
        if not math.isfinite(value) or (value <= low if low is not None else value < 0):
            allowed = "a number > 0" if low is not None else "a number >= 0"
            raise fail(f"--{name} must be {allowed}, got {value}")
    if llc.loss == "dataset":
        if not spec.data.dataset_size:
            raise fail('--loss dataset needs a finite training set (data.dataset_size); '
                       'use --loss online or exact')
        if llc.batch_size > spec.data.dataset_size:
            raise fail(f"--batch-size must be at most data.dataset_size = {spec.data.dataset_size}")
    if llc.loss == "exact" and evaluation.needs_samples(spec.data, model_of(spec.model).homogeneous):
        raise fail('--loss exact needs inputs with an exact population loss '
                   '(data.inputs = "exactly_one" or "one_hot"); use --loss online or dataset')
    if llc.loss == "exact" and llc.batch_size:
        raise fail("--batch-size: the exact loss reads no batches")
    if settings.nbeta is None and llc.loss != "dataset" and not settings.n:
        raise fail(f"--loss {llc.loss} needs --n (the sample size of nbeta = n / ln n) or --nbeta")
    if settings.n is not None and settings.n < 2:
        raise fail(f"--n must be at least 2, got {settings.n}")
    if llc.snapshots and not spec.train.snapshot_every:
        raise fail("--snapshots: the sweep kept no snapshots (train.snapshot_every = 0)")


def nbeta_of(settings: LLCSettings, spec: Spec) -> tuple[float, str]:
    """(nbeta, how it was chosen), e.g. (144.8, 'nbeta = n / ln n = 1000 / 6.908 = 144.8')."""
    if settings.nbeta is not None:
        return settings.nbeta, f"nbeta = {settings.nbeta:g} (given)"
    n = settings.n or spec.data.dataset_size
    nbeta = slt.default_nbeta(n)
    return nbeta, f"nbeta = n / ln n = {n} / {math.log(n):.3f} = {nbeta:.4g}"


def _step_text(settings: LLCSettings) -> str:
    if settings.spec.auto_step:
        return f"auto ({slt.AUTO_SCALE:g} / (nbeta h_max + gamma))"
    return f"{settings.epsilon:g}"


def resolve_step(settings: LLCSettings) -> LLCSettings:
    """`epsilon="auto"` as the static `auto_step` flag (its scale is `slt.AUTO_SCALE`)."""
    if settings.epsilon == "auto" and not settings.spec.auto_step:
        return dataclasses.replace(settings, spec=dataclasses.replace(settings.spec, auto_step=True))
    return settings


def llc_grid(ds: xr.Dataset, grid: Grid, spec: Spec, settings: LLCSettings, nbeta: float) -> Grid:
    """The LLC runs of a finished sweep: `grid` (its runs, flat) with each run's params.

    Args:
      ds: the sweep's results (dims: its axes, then the parameters' own).
      grid: `toymodels.grid.expand` of its config (the same runs in the same order).
    """
    kind = model_of(spec.model)
    flat = lambda da: np.asarray(da.transpose(*grid.names, ...).values, np.float32).reshape(
        grid.n_runs, *da.shape[len(grid.names):])
    params = {}
    for name in kind.dims:
        final = flat(ds[name])[:, None]
        if spec.llc.snapshots:
            final = np.concatenate([flat(ds[name + SNAPSHOT]), final], axis=1)
        params[name] = final
    R = grid.n_runs
    scalar = lambda v: np.full(R, v, np.float32)
    epsilon = slt.AUTO_SCALE if spec.llc.auto_step else settings.epsilon
    hyper = LLCHyper(grid.hyper, params, scalar(epsilon), scalar(settings.gamma), scalar(nbeta))
    return dataclasses.replace(grid, hyper=hyper)


def work_dir(out: Path, settings: LLCSettings) -> Path:
    """``out/llc-<hash of the settings>``: the chunk files of one LLC pass."""
    text = json.dumps(settings.as_dict(), sort_keys=True)
    return out / (WORK_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:12])


def run_llc(out: str | Path, settings: LLCSettings, *, chunk_size: int | None = None,
            quiet: bool = False) -> xr.Dataset:
    """Adds the LLC of every run (and, with snapshots, along training) to `out/results.nc`.

    Adds, with dims (*run_axes): `llc`, `llc_se`, `llc_trusted` and the diagnostics of
    the final parameters `llc_below_init`, `llc_acceptance`, `llc_nonfinite`,
    `llc_diverged`, `llc_init_loss`; `llc_trace` (*run_axes, chain, draw), each chain's
    losses; with `settings.spec.snapshots`, `llc_snapshots`, `llc_snapshots_se` and
    `llc_snapshots_trusted` (*run_axes, snapshot). `llc`'s attrs hold the settings.
    Holds the directory's lock meanwhile; an interrupted pass resumes.

    Raises:
      UserError: not a finished toy-model sweep, or settings it cannot run (one line).
      Interrupted: Ctrl-C (or SIGTERM under the CLI); finished chunks are kept.
    """
    from toymodels.sweep import (_interrupted, _ready_to_resume, _train_group, describe_devices,
                                 group_offsets)

    out = Path(out)
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))
    settings = resolve_step(settings)
    manifest = store.read_manifest(out)
    config = parse_config(tomllib.loads(manifest["config"]), f"{out}/{store.MANIFEST}")
    if config.sae is not None:
        raise UserError(f"{out}: a sweep of sparse autoencoders; toymodels llc estimates "
                        "the LLC of toy models")
    settings = _default_loss(settings, config.spec)
    groups = [dataclasses.replace(g, spec=dataclasses.replace(g.spec, llc=settings.spec))
              for g in config.groups]
    for group in groups:
        check(settings, group.spec, "toymodels llc")
    ds = store.load(out)
    parts = split(ds, config) if config.static_groups else [ds]
    for part, group in zip(parts, groups):
        names = get_model(group.spec.model.kind).dims
        if not all(name in part for name in names):
            raise UserError(f"{out}: {store.RESULTS} has no weights ({', '.join(names)})")
    nbetas = [nbeta_of(settings, group.spec) for group in groups]
    hows = sorted({how for _, how in nbetas})
    say(f"{out}: LLC of {config.n_runs} runs, {settings.spec.loss} loss, {'; '.join(hows)}, "
        f"epsilon = {_step_text(settings)}, gamma = {settings.gamma:g}, "
        f"{settings.spec.chains} chains x {settings.spec.draws} draws "
        f"(+{settings.spec.burn_in} burn-in)")
    grids = [llc_grid(part, expand(group), group.spec, settings, nbeta)
             for part, group, (nbeta, _) in zip(parts, groups, nbetas)]
    offsets = group_offsets(config)
    with held(out, "toymodels llc", say):
        work = work_dir(out, settings)
        devices = describe_devices(jax.devices()[:1])
        try:
            store.open_store(work, to_toml(config), config.n_runs, devices)
            _ready_to_resume(work, config.n_runs, llc_keys(groups[0].spec), say)
            done = store.done_mask(work, config.n_runs)
            with tqdm(total=config.n_runs, initial=int(done.sum()), unit="run",
                      desc=f"{config.name} llc", disable=quiet, dynamic_ncols=True) as bar:
                for group, grid, first in zip(groups, grids, offsets):
                    group_done = done[first:first + grid.n_runs]
                    if not group_done.all():
                        _train_group(group, grid, group_done, first, work, config.n_runs,
                                     chunk_size, bar)
        except KeyboardInterrupt as e:
            raise _interrupted(e, work, config.n_runs) from None
        pieces = [xr.Dataset(llc_variables(store.read_chunks(work, grid.n_runs, int(first)),
                                           grid, group.spec, settings, nbeta),
                             coords={n: part[n] for n in grid.names if n in part.coords})
                  for part, group, grid, first, (nbeta, _)
                  in zip(parts, groups, grids, offsets, nbetas)]
        found = pieces[0] if not config.static_groups else combine(pieces, config)
        previous = [v for v in ds.data_vars if v == "llc" or v.startswith("llc_")]
        new = ds.drop_vars(previous).assign(found.data_vars)
        try:
            store.write_dataset(out, new)
        except OSError as e:
            raise UserError(f"{out}: cannot write {store.RESULTS} ({store._why(e)}); it is "
                            f"unchanged and the estimates are kept in {work}") from None
        shutil.rmtree(work, ignore_errors=True)
    return new


def _default_loss(settings: LLCSettings, spec: Spec) -> LLCSettings:
    """`settings` with the default loss (the run's own data, else the exact loss, else
    fresh samples) and, for fresh samples, the training batch size filled in."""
    if settings.spec.loss is None:
        exact = not evaluation.needs_samples(spec.data, model_of(spec.model).homogeneous)
        loss = "dataset" if spec.data.dataset_size else "exact" if exact else "online"
        settings = dataclasses.replace(settings, spec=dataclasses.replace(settings.spec, loss=loss))
    if settings.spec.loss == "online" and not settings.spec.batch_size:
        batch = dataclasses.replace(settings.spec, batch_size=spec.train.batch_size)
        settings = dataclasses.replace(settings, spec=batch)
    return settings


def llc_variables(columns: dict, grid: Grid, spec: Spec, settings: LLCSettings,
                  nbeta: float) -> dict[str, xr.DataArray]:
    """The Dataset variables of an LLC pass from its chunk arrays ([R, ...] each); a
    second pass replaces the first's."""
    axes, shape = grid.names, grid.shape
    as_grid = lambda a: np.asarray(a).reshape(shape + np.shape(a)[1:])
    attrs = {k: ("" if v is None else v) for k, v in settings.as_dict().items()}
    attrs = {k: (int(v) if isinstance(v, bool) else v) for k, v in attrs.items()}
    attrs["nbeta_used"] = nbeta
    var = lambda values, dims, text, **extra: xr.DataArray(
        as_grid(values), dims=axes + dims, attrs={"description": text, **extra})
    table = dict(POINT_VARIABLES)
    new = {
        "llc": var(columns["llc_points"][:, -1], (), table["llc"], **attrs),
        "llc_se": var(columns["llc_se_points"][:, -1], (), table["llc_se"]),
        "llc_trusted": var(columns["llc_trusted_points"][:, -1], (), table["llc_trusted"]),
        "llc_trace": var(columns["llc_trace"], ("chain", "draw"),
                         "the loss of each SGLD draw after burn-in, per chain"),
    }
    new.update({name: var(columns[name], (), text) for name, text in FINAL_VARIABLES})
    if spec.llc.snapshots:
        for name, text in POINT_VARIABLES:
            at = columns[name + "_points"][:, :-1]
            new[f"{name}{SNAPSHOT}" if name == "llc" else f"llc_snapshots{name[3:]}"] = var(
                at, ("snapshot",), text + ", at each snapshot")
    return new
