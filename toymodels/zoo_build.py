"""Building the zoo: each entry trained by the sweep engine, its run picked and written.

`build` trains every entry's preset sweep (`toymodels.zoo.config`), picks the entry's run
and writes it, with its metrics, to the package's `zoo_data` folder (or another); the
same command rebuilds every entry bit-identical on the same machine.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from toymodels import analysis
from toymodels.config import SweepConfig, to_toml
from toymodels.models import get_model
from toymodels.outputs import output_dir
from toymodels.store import load as load_results
from toymodels.sweep import run_sweep
from toymodels.zoo import DATA_PACKAGE, REGISTRY, config, entry

def pick_run(ds, at: Iterable[tuple[str, float]]) -> dict[str, int]:
    """Indices of the kept run: `at` on the other axes, the lowest final_loss over seeds.

    Args:
      ds: a results dataset (`toymodels.load`) with a `seed` axis.
      at: ((axis, value), ...) for every non-seed axis with more than one value.

    Returns:
      {axis: index} of the kept run, the seed included (non-finite losses never win).

    Raises:
      ValueError: a value not on its axis, or an axis left ambiguous.
    """
    index = {}
    for axis, value in at:
        hits = np.flatnonzero(np.isclose(ds[axis].values, value, rtol=1e-9, atol=0.0))
        if len(hits) != 1:
            raise ValueError(f"{axis} = {value} is not a value of {ds[axis].values.tolist()}")
        index[axis] = int(hits[0])
    for axis in ds.final_loss.dims:
        if axis not in index and axis != "seed":
            if ds.sizes[axis] != 1:
                raise ValueError(f"axis {axis!r} has {ds.sizes[axis]} values; pick one in `at`")
            index[axis] = 0
    losses = ds.final_loss.isel(index).values  # [S]
    return {**index, "seed": int(np.argmin(np.where(np.isfinite(losses), losses, np.inf)))}


def model_metrics(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-feature metrics of the encoder `W` (W1 for abs) with `toymodels.analysis`.

    Args:
      params: {"W": [H, F], ...} or {"W1": [H, F], ...}.

    Returns:
      feature_norm, feature_dimensionality, superposition ([F] float32), polytope ([F]
      str), n_represented (0-d int).
    """
    W = jnp.asarray(params["W1"] if "W1" in params else params["W"])
    return {
        "feature_norm": np.asarray(analysis.feature_norms(W), np.float32),
        "feature_dimensionality": np.asarray(analysis.feature_dimensionality(W), np.float32),
        "superposition": np.asarray(analysis.superposition(W), np.float32),
        "n_represented": np.asarray(analysis.n_represented(W)),
        "polytope": np.asarray(analysis.polytopes(W)).astype(str),
    }


def run_arrays(ds, cfg: SweepConfig, at: Iterable[tuple[str, float]]) -> dict[str, np.ndarray]:
    """What a zoo file holds for the kept run of a finished sweep.

    Args:
      ds: the sweep's results (`toymodels.load`).
      cfg: its config.
      at: the entry's coordinate (see `pick_run`).

    Returns:
      Flat {key: array}: "config" (TOML text), "param/<name>" (float32), "metric/<name>",
      "at/<axis>" (the kept coordinate, seed value included).
    """
    index = pick_run(ds, at)
    run = ds.isel(index)
    kind = get_model(cfg.spec.model.kind)
    params = {k: np.asarray(run[k].values, np.float32) for k in kind.dims}
    at_seed = {k: v for k, v in index.items() if k != "seed"}
    seed_losses = ds.final_loss.isel(at_seed).values.astype(np.float32)
    arrays = {"config": np.asarray(to_toml(cfg))}
    arrays.update({f"param/{k}": v for k, v in params.items()})
    arrays.update({f"metric/{k}": v for k, v in model_metrics(params).items()})
    arrays["metric/final_loss"] = np.asarray(run.final_loss.values, np.float32)
    arrays["metric/seed_losses"] = seed_losses
    arrays.update({f"at/{axis}": np.asarray(ds[axis].values[i]) for axis, i in index.items()})
    return arrays


def build(names: Iterable[str] | None = None, out_dir: str | Path | None = None,
          quiet: bool = False) -> list[Path]:
    """Trains zoo entries from their configs and writes `<out_dir>/<name>.npz`.

    Entries with the same sweep config are trained once. Sweeps run in a temporary
    directory that is removed afterwards.

    Args:
      names: which entries (default all).
      out_dir: where to write; default the package's `zoo_data` folder.
      quiet: no progress messages (on stderr).

    Returns:
      The written files, in the order of `names`.

    Raises:
      UserError: an unknown name, or an `out_dir` that is a file or cannot be written
        (before anything is trained).
    """
    wanted = list(REGISTRY) if names is None else list(dict.fromkeys(names))
    for name in wanted:
        entry(name)
    out = output_dir(out_dir if out_dir is not None else Path(__file__).parent / DATA_PACKAGE,
                     "--out")
    out.mkdir(parents=True, exist_ok=True)
    say = ((lambda msg: None) if quiet
           else (lambda msg: print(msg, file=sys.stderr, flush=True)))
    groups: dict[str, list[str]] = {}
    for name in wanted:
        groups.setdefault(to_toml(config(name)), []).append(name)
    written = {}
    with tempfile.TemporaryDirectory(prefix="toymodels-zoo-") as tmp:
        for i, members in enumerate(groups.values()):
            cfg, start = config(members[0]), time.perf_counter()
            ds = load_results(run_sweep(cfg, Path(tmp) / str(i), quiet=True))
            for name in members:
                arrays = run_arrays(ds, cfg, entry(name).at)
                written[name] = _write(out / f"{name}.npz", arrays)
            say(f"zoo: {', '.join(members)}: {cfg.n_runs} runs in "
                f"{time.perf_counter() - start:.1f} s")
    return [written[name] for name in wanted]


def _write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Writes the arrays as a compressed .npz (atomically: a temp file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    tmp.replace(path)
    return path
