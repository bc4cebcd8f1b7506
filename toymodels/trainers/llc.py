"""The LLC trainer: a sweep file with an `[llc]` table, the LLC of every run of a sweep.

An LLC pass is a sweep like any other, run by the same engine (`toymodels.sweep`): its
runs are the trained runs of its `source` (a finished toy-model sweep), each estimated by
`toymodels.llc.make_llc_block`. It gets everything a sweep has: the lock (of the source
directory), resume after a crash with the same bits, several processes, the progress bar,
clean interrupts. Its chunk files go to ``SOURCE/llc-<settings hash>/``; once every run is
done its variables are added to ``SOURCE/results.nc`` (a second pass replaces the first's)
and that folder is removed, with those that interrupted passes of other settings left.

`toymodels llc DIR [flags]` is a sweep of ``{"llc": {"source": DIR, ...flags}}``: each
flag overrides the key of its name (``--burn-in`` is ``burn_in``). The table's keys are
`LLC_SCHEMA`; parsing (`parse_llc`, both in `toymodels.llc_config`, without JAX) is pure,
and the source is read when the pass runs (`resolve_llc`): a source that moved is one
error line there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import tomllib
from pathlib import Path

import numpy as np
import xarray as xr

from toymodels import llc_calibration as calibration
from toymodels import sgld, sgld_quadratic as quadratic
from toymodels import store
from toymodels.checks import INT32
from toymodels.config import SweepConfig, parse_toy
from toymodels.errors import UserError
from toymodels.grid import Grid, expand, flat_runs
from toymodels.groups import SNAPSHOT, split
from toymodels.llc import (FINAL_VARIABLES, POINT_VARIABLES, LLCHyper, LLCSpec,
                           llc_block_size, llc_keys, llc_memory, llc_work, make_llc_block)
from toymodels.llc_config import AUTO, LLC_SCHEMA, parse_llc  # noqa: F401 (re-exported)
from toymodels.evaluation import needs_samples
from toymodels.models import get_model, model_of
from toymodels.parsers import PARSERS
from toymodels.spec import Spec
from toymodels.trainers.base import Checkup, Place, Trainer, finish_in_store

WORK_PREFIX = "llc-"
CALIBRATION = "llc_calibration"  # SOURCE/llc_calibration: a calibration's results directory


@dataclasses.dataclass(frozen=True)
class LLCSettings:
    """What an LLC pass was asked for: the static `spec` and the traced step size
    ("auto": from each point's curvature, `sgld.auto_epsilon`), localisation and inverse
    temperature (nbeta None: n / ln n, with n the dataset size or `n`)."""

    spec: LLCSpec
    epsilon: float | str = AUTO
    gamma: float = LLC_SCHEMA["gamma"].default
    nbeta: float | None = None
    n: int | None = None
    epsilon_scale: float = LLC_SCHEMA["epsilon_scale"].default

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self.spec), "epsilon": self.epsilon, "gamma": self.gamma,
                "nbeta": self.nbeta, "n": self.n, "epsilon_scale": self.epsilon_scale}


def llc_table(source: str | Path, settings: LLCSettings | None = None) -> dict:
    """The raw sweep dict of an LLC pass over `source` with `settings` (None: defaults)."""
    table = {"source": str(source)}
    if settings is not None:
        given = {k: v for k, v in settings.as_dict().items() if k not in ("auto_step", "spectrum")}
        table.update({k: v for k, v in given.items() if v is not None})
    return {"llc": table}


def settings_of(table: dict) -> LLCSettings:
    """The LLCSettings of a parsed `[llc]` table ("auto" epsilon: `LLCSpec.auto_step`)."""
    spec = LLCSpec(loss=table["loss"], chains=table["chains"], draws=table["draws"],
                   burn_in=table["burn_in"], batch_size=table["batch_size"],
                   snapshots=table["snapshots"], auto_step=table["epsilon"] == AUTO)
    if table.get("calibrate"):  # one chain, every length read off it (llc_calibration)
        spec = dataclasses.replace(spec, auto_step=True, burn_in=0, spectrum=True,
                                   draws=calibration.CHAIN_STEPS)
    return LLCSettings(spec, table["epsilon"], table["gamma"], table["nbeta"], table["n"],
                       table.get("epsilon_scale", LLC_SCHEMA["epsilon_scale"].default))


def resolve_llc(config: SweepConfig) -> SweepConfig:
    """The pass with its source read: the source's runs and static groups, each group's
    spec with its `llc` part, the default loss and batch filled in.

    Raises:
      UserError: the source is not a finished toy-model sweep, or the settings cannot run
        on it (one line naming the setting and what is allowed).
    """
    out, where = Path(config.table["source"]), config.source
    if not out.is_dir():
        raise UserError(f"{where}: llc.source: {str(out)!r} is not a directory; give the "
                        "results directory of a finished toy-model sweep")
    manifest = store.require_finished(out)  # before the settings: they need a finished sweep
    raw = tomllib.loads(manifest["config"])
    if "sae" in raw:
        raise UserError(f"{out}: a sweep of sparse autoencoders; an LLC pass estimates the "
                        "LLC of toy models")
    toy = parse_toy(raw, f"{out}/{store.MANIFEST}")
    settings = _default_loss(settings_of(config.table), toy.spec)
    table = {**config.table, "loss": settings.spec.loss, "batch_size": settings.spec.batch_size}
    with_llc = lambda c: dataclasses.replace(  # its errors name the pass, not the manifest
        c, spec=dataclasses.replace(c.spec, llc=settings.spec), trainer="llc", table=table,
        source=where + c.source.removeprefix(toy.source))
    groups = tuple(with_llc(g) for g in toy.static_groups)
    for group in groups or (with_llc(toy),):
        check(settings, group.spec, where)
    if config.table.get("calibrate"):  # the first static group's runs, on the grid's axes
        first = groups[0] if groups else with_llc(toy)
        nbeta, _ = nbeta_of(settings, first.spec)
        axes = calibration.calibration_axes(first.n_runs, config.table["calibrate_runs"], nbeta)
        return dataclasses.replace(first, name=f"{toy.name} llc calibration", static_groups=(),
                                   axes=axes)
    return dataclasses.replace(with_llc(toy), name=f"{toy.name} llc", static_groups=groups)


def expand_llc(config: SweepConfig) -> list[Grid]:
    """The LLC runs of every static group of a resolved pass: the source's runs, each with
    its parameters (`llc_grid`), in the order of `config.groups`."""
    out, settings = Path(config.table["source"]), settings_of(config.table)
    ds = store.load(out)
    if config.table.get("calibrate"):
        return [_calibration_grid(ds, config, settings)]
    parts = split(ds, config) if config.static_groups else [ds]
    grids = []
    for part, group in zip(parts, config.groups):
        names = get_model(group.spec.model.kind).dims
        if not all(name in part for name in names):
            raise UserError(f"{out}: {store.RESULTS} has no weights ({', '.join(names)})")
        nbeta, _ = nbeta_of(settings, group.spec)
        grids.append(llc_grid(part, expand(group), group.spec, settings, nbeta))
    return grids


def _calibration_grid(ds: xr.Dataset, config: SweepConfig, settings: LLCSettings) -> Grid:
    """The calibration's runs (`llc_calibration.calibration_grid`) of the source's first
    static group (all of it without static axes)."""
    source = parse_toy(tomllib.loads(store.read_manifest(Path(config.table["source"]))["config"]),
                       config.table["source"])
    part = split(ds, source)[0] if source.static_groups else ds
    group = source.static_groups[0] if source.static_groups else source
    nbeta, _ = nbeta_of(settings, config.spec)
    grid = llc_grid(part, expand(group), config.spec, settings, nbeta)
    return calibration.calibration_grid(grid, config.table["calibrate_runs"], nbeta)


def describe_llc(config: SweepConfig) -> str:
    """E.g. 'runs/x: LLC of 48 runs, dataset loss, nbeta = ..., epsilon = auto (...), ...'."""
    settings = settings_of(config.table)
    hows = sorted({nbeta_of(settings, g.spec)[1] for g in config.groups})
    if config.table.get("calibrate"):
        return (f"{config.table['source']}: calibrating the LLC on {config.table['calibrate_runs']} "
                f"runs, {settings.spec.loss} loss, {'; '.join(hows)} (x {calibration.NBETA_FACTORS}), "
                f"epsilon scale {calibration.SCALES} x gamma {calibration.GAMMAS} x (burn-in, draws) "
                f"{calibration.LENGTHS}, {settings.spec.chains} chains")
    return (f"{config.table['source']}: LLC of {config.n_runs} runs, {settings.spec.loss} loss, "
            f"{'; '.join(hows)}, epsilon = {_step_text(settings)}, gamma = {settings.gamma:g}, "
            f"{settings.spec.chains} chains x {settings.spec.draws} draws "
            f"(+{settings.spec.burn_in} burn-in)")


def place_llc(config: SweepConfig, out) -> Place:
    """The source directory (its lock) and the pass's work folder inside it."""
    source = Path(config.table["source"])
    if config.table.get("calibrate"):
        where = source / CALIBRATION
        if out is not None and Path(out).resolve() != where.resolve():
            raise UserError(f"--out {str(out)!r}: a calibration writes {str(where)!r}; leave --out out")
        return Place(where, where, "toymodels llc --calibrate")
    if out is not None and Path(out).resolve() != source.resolve():
        raise UserError(f"--out {str(out)!r}: an LLC pass adds its variables to its source "
                        f"(llc.source = {str(source)!r}); leave --out out")
    return Place(source, work_dir(source, settings_of(config.table)), "toymodels llc")


def llc_dataset(group: SweepConfig, grid: Grid, columns: dict, manifest: dict) -> xr.Dataset:
    """The LLC variables of one static group (`llc_variables`), on its axes."""
    del manifest
    if group.table.get("calibrate"):
        return calibration.calibration_dataset(columns, grid)
    nbeta = float(grid.hyper.nbeta[0]) if grid.n_runs else math.nan
    variables = llc_variables(columns, grid, group.spec, settings_of(group.table), nbeta)
    return xr.Dataset(variables, coords=dict(zip(grid.names, grid.coords)))


def finish_llc(config: SweepConfig, place: Place, found: xr.Dataset) -> xr.Dataset:
    """Adds the pass's variables to the source's results.nc (replacing a previous pass's),
    then removes the work folders: its own and those that interrupted passes with other
    settings left (`stale_work_dirs`; their estimates would be replaced by this pass's)."""
    if config.table.get("calibrate"):
        return finish_in_store(config, place, found)
    ds = store.load(place.lock)
    previous = [v for v in ds.data_vars if v == "llc" or v.startswith("llc_")]
    new = ds.drop_vars(previous).assign(found.data_vars)
    try:
        store.write_dataset(place.lock, new)
    except OSError as e:
        raise UserError(f"{place.lock}: cannot write {store.RESULTS} ({store.why(e)}); it is "
                        f"unchanged and the estimates are kept in {place.store}") from None
    for folder in (place.store, *stale_work_dirs(place.lock)):
        shutil.rmtree(folder, ignore_errors=True)
    return new


def stale_work_dirs(source: Path) -> list[Path]:
    """The `llc-<hash>/` work folders in `source`. Called by the pass that holds the
    source's lock, so no other pass is writing any of them: every one is stale."""
    return sorted(p for p in Path(source).glob(WORK_PREFIX + "*") if p.is_dir())


def check(settings: LLCSettings, spec: Spec, where: str) -> None:
    """Raises UserError (one line naming `where`, the key and what is allowed) when
    `settings` cannot run on the sweep of `spec`: the checks across keys and the source
    (each key's own range is its schema's, `LLC_SCHEMA`)."""
    llc = settings.spec
    fail = lambda key, what: UserError(f"{where}: llc.{key}: {what}")
    if llc.loss == "dataset":
        if not spec.data.dataset_size:
            raise fail("loss", '"dataset" needs a finite training set (data.dataset_size); '
                       'use "online" or "exact"')
        if llc.batch_size > spec.data.dataset_size:
            raise fail("batch_size", f"must be at most data.dataset_size = {spec.data.dataset_size}")
    if llc.loss == "exact" and needs_samples(spec.data, model_of(spec.model).homogeneous):
        raise fail("loss", '"exact" needs inputs with an exact population loss '
                   '(data.inputs = "exactly_one" or "one_hot"); use "online" or "dataset"')
    if llc.loss == "exact" and llc.batch_size:
        raise fail("batch_size", "the exact loss reads no batches")
    if settings.nbeta is None and llc.loss != "dataset" and not settings.n:
        raise fail("n", f'needed with loss = "{llc.loss}" (the sample size of nbeta = n / ln n), '
                   "or give llc.nbeta")
    if settings.nbeta is None and not settings.n and spec.data.dataset_size < 2:
        raise fail("n", "nbeta = n / ln n needs n >= 2, and n is the source's "
                   f"data.dataset_size = {spec.data.dataset_size}: give llc.n >= 2 or llc.nbeta")
    if llc.burn_in + llc.draws >= INT32:
        raise fail("burn_in", f"burn_in + draws must be < {INT32} (SGLD counts its steps in "
                   f"int32), got {llc.burn_in} + {llc.draws}")
    if llc.snapshots and not spec.train.snapshot_every:
        raise fail("snapshots", "the sweep kept no snapshots (train.snapshot_every = 0)")
    if llc.spectrum and llc.snapshots:
        raise fail("calibrate", "calibrates the final parameters; leave llc.snapshots out")
    if llc.spectrum and _n_params(spec) > quadratic.MAX_DIM:
        raise fail("calibrate", f"needs the Hessian at w*, for at most {quadratic.MAX_DIM} "
                   f"parameters; these models have {_n_params(spec)}")


def _n_params(spec: Spec) -> int:
    """The parameters of one model of `spec`'s kind (the LLC's d)."""
    F, H = spec.model.n_features, spec.model.n_hidden
    weights = sum(math.prod({"hidden": H, "feature": F}[d] for d in dims)
                  for name, dims in get_model(spec.model.kind).dims.items() if name != "b")
    return weights + (F if spec.model.bias else 0)


def nbeta_of(settings: LLCSettings, spec: Spec) -> tuple[float, str]:
    """(nbeta, how it was chosen), e.g. (144.8, 'nbeta = n / ln n = 1000 / 6.908 = 144.8')."""
    if settings.nbeta is not None:
        return settings.nbeta, f"nbeta = {settings.nbeta:g} (given)"
    n = settings.n or spec.data.dataset_size
    nbeta = sgld.default_nbeta(n)
    return nbeta, f"nbeta = n / ln n = {n} / {math.log(n):.3f} = {nbeta:.4g}"


def _step_text(settings: LLCSettings) -> str:
    if settings.spec.auto_step:
        return f"auto ({settings.epsilon_scale:g} / (nbeta h_max + gamma))"
    return f"{settings.epsilon:g}"


def llc_grid(ds: xr.Dataset, grid: Grid, spec: Spec, settings: LLCSettings, nbeta: float) -> Grid:
    """The LLC runs of a finished sweep: `grid` (its runs, flat) with each run's params.

    Args:
      ds: the sweep's results (dims: its axes, then the parameters' own).
      grid: `toymodels.grid.expand` of its config (the same runs in the same order).
    """
    kind = model_of(spec.model)
    flat = lambda da: flat_runs(da, grid.names).astype(np.float32)
    params = {}
    for name in kind.dims:
        final = flat(ds[name])[:, None]
        if spec.llc.snapshots:
            final = np.concatenate([flat(ds[name + SNAPSHOT]), final], axis=1)
        params[name] = final
    R = grid.n_runs
    scalar = lambda v: np.full(R, v, np.float32)
    epsilon = settings.epsilon_scale if spec.llc.auto_step else settings.epsilon
    hyper = LLCHyper(grid.hyper, params, scalar(epsilon), scalar(settings.gamma), scalar(nbeta))
    return dataclasses.replace(grid, hyper=hyper)


def work_dir(out: Path, settings: LLCSettings) -> Path:
    """``out/llc-<hash of the settings>``: the chunk files of one LLC pass."""
    text = json.dumps(settings.as_dict(), sort_keys=True)
    return out / (WORK_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:12])


def _default_loss(settings: LLCSettings, spec: Spec) -> LLCSettings:
    """`settings` with the default loss (the run's own data, else the exact loss, else
    fresh samples) and, for fresh samples, the training batch size filled in."""
    if settings.spec.loss is None:
        exact = not needs_samples(spec.data, model_of(spec.model).homogeneous)
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
    reasons = sgld.untrusted_reasons(
        columns["llc_points"][:, -1], columns["llc_se_points"][:, -1], columns["llc_below_init"],
        columns["llc_acceptance"], columns["llc_diverged"], columns["llc_settings_ratio"],
        columns["llc_relaxation"], _n_params(spec) <= quadratic.MAX_DIM)
    new["llc_untrusted"] = var(reasons, (), "why llc is not trusted: the checks it fails "
                               "(toymodels.sgld.trust_checks), '' where it is trusted")
    if spec.llc.snapshots:
        for name, text in POINT_VARIABLES:
            at = columns[name + "_points"][:, :-1]
            new[f"{name}{SNAPSHOT}" if name == "llc" else f"llc_snapshots{name[3:]}"] = var(
                at, ("snapshot",), text + ", at each snapshot")
    return new


CHECKUP = Checkup("llc", "LLC estimates failed", {
    "nonfinite": "the SGLD chains diverged (llc_nonfinite, llc_diverged): lower llc.epsilon "
                 '(--epsilon), or leave it "auto"'})

TRAINER = Trainer(
    parser=PARSERS["llc"], resolve=resolve_llc, expand=expand_llc,
    block_size=llc_block_size, make_block=make_llc_block, keys=llc_keys, dataset=llc_dataset,
    work=llc_work, memory=llc_memory, place=place_llc, finish=finish_llc,
    describe=describe_llc, checkup=CHECKUP,
    cpu_devices=1)  # the bias diagnostic's eigvalsh (LAPACK) in two CPU devices' blocks at
# once hung a kgon_trajectories pass at its second chunk, every thread waiting in XLA,
# reproducibly (jaxlib 0.10.2); one CPU device ran it, and faster (56 runs in 75 s against
# 32 in 60 s on two devices before the diagnostic, 2 cores)
