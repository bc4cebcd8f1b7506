"""`analyze` of an SPD sweep: every decomposition scored against its target's features.

Role in the data flow: an SPD results Dataset (attrs["trainer"] = "spd",
`toymodels.trainers.spd`) holds per decomposed matrix M (W_in, W_out and, with the identity
inserted, W_hidden) the subcomponents U_M [component, rows], V_M [component, columns] and
the causal-importance MLPs (gate_*_M), and each run's target (target_W_in = W [hidden,
feature], target_b [feature]). `score_one` scores ONE decomposition with the pure functions
of `toymodels.spd.metrics`; `analyze_spd` vmaps it over the runs in one place
(`toymodels.analysis.batching.per_run`, in chunks) and adds the one host step, the
Hungarian matching of the one-hot causal-importance pattern (`ci_pattern_errors_runs`).

Which inputs count (every run sees the same draws: common random numbers):
  * live subcomponents: causal importance σ_H(γ_c) above the sweep's `spd.threshold`
    (attrs["threshold"], 0.1 by default) on some input among the n one-hot inputs x = e_i
    and `EVAL_EXAMPLES` inputs drawn from the run's own input law (each feature on with
    its probability, the run's `density`, Uniform[0, 1] when on: `toymodels.spd.train.inputs`), drawn
    once from the sweep's evaluation key (`toymodels.evaluation.eval_key`);
  * the features: those the target represents, ||W_i|| > 0.5
    (`toymodels.analysis.REPRESENTED_NORM`): every feature of the zoo's and the hand-built
    targets; in a phase diagram a feature the model drops has no piece to find, and is
    neither averaged into MMCS / ML2R nor a reason to fail.
A decomposition fails when a represented feature's best flattened cosine, in W_in or in
W_out, is below `toymodels.spd.metrics.FAIL_COSINE` (0.9; `tms_scores`).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from toymodels import evaluation, results
from toymodels.analysis.batching import in_chunks, per_run
from toymodels.analysis.metrics import REPRESENTED_NORM
from toymodels.analysis.spd_residual import analyze_residual_group
from toymodels.spd import decomposition, metrics
from toymodels.spd.targets import tms_target
from toymodels.spd.train import inputs
from toymodels.spd_config import SPD_SCHEMA

EVAL_EXAMPLES = 4096  # inputs of the run's law on which a subcomponent may be live
PARTS = ("U", "V", *decomposition.GATE_PARTS)  # one matrix's stored parameters
PATTERN_MATRICES = ("W_in", "W_out")  # one subcomponent per feature: the one-hot pattern


def matrix_variables(name: str) -> dict[str, str]:
    """{variable: description} of one decomposed matrix's scalar scores."""
    pattern = {f"ci_errors_{name}": (
        f"entries of the one-hot causal-importance pattern of {name} ([feature, component], "
        "above the threshold) that disagree with the identity after a Hungarian matching of "
        "features to subcomponents (spurious + missing)")} if name in PATTERN_MATRICES else {}
    return {
        f"mmcs_{name}": f"MMCS of {name}: mean over the represented features of the best "
                        "signed cosine of a subcomponent with the feature's rank-1 piece (on "
                        "its column of W_in, its row of W_out; the SPD paper's)",
        f"ml2r_{name}": f"ML2R of {name}: mean over the represented features of ||best "
                        "subcomponent|| / ||feature's piece|| on the piece's support",
        f"n_live_{name}": f"subcomponents of {name} with causal importance above the "
                          "threshold on some one-hot input or input of the run's law "
                          f"({EVAL_EXAMPLES} shared draws)",
        **pattern,
    }


RUN_VARIABLES = {
    "failed": "some represented feature's best flattened |piece . subcomponent| cosine, in "
              f"W_in or W_out, is below {metrics.FAIL_COSINE} (FAIL_COSINE): no "
              "subcomponent matches it",
    "missed_feature": "-1 if not failed, else the feature of lowest best cosine",
    "faithfulness": "(1/N) sum_l ||W_l - U^T V||_F^2 of the final decomposition",
}
FEATURE_VARIABLES = {
    f"best_cosine_{name}": f"each feature's best cosine with a subcomponent of {name}, "
                           "flattened matrices (what `failed` reads)"
    for name in PATTERN_MATRICES
}


def score_one(params: dict, W: jax.Array, b: jax.Array, p: jax.Array, noise: jax.Array,
              threshold: jax.Array) -> dict:
    """Every score of ONE decomposition (pure jnp; `analyze_spd` vmaps it).

    Args:
      params: {name: {"U": [C, d_out], "V": [C, d_in], "gate_*": ...}} of each matrix.
      W: [H, F] the target's weights; b: [F] its bias; p: [F] or [] its feature probability.
      noise: [2, B, F] uniforms of the evaluation batch (shared by every run).
      threshold: [] the live threshold on causal importance.

    Returns:
      {"mmcs_<M>", "ml2r_<M>", "n_live_<M>": [], "ci_one_hot_<M>": [F, C] per matrix M;
      "failed": [] bool, "missed_feature": [] int32, "faithfulness": [],
      "best_cosine_W_in", "best_cosine_W_out": [F]}.
    """
    target = tms_target(W, b, identity="W_hidden" in params)
    represented = jnp.linalg.norm(W, axis=0) > REPRESENTED_NORM
    U = {name: part["U"] for name, part in params.items()}
    V = {name: part["V"] for name, part in params.items()}
    scores = metrics.tms_scores(W, U, V, represented)
    F = W.shape[1]
    x = jnp.concatenate([jnp.eye(F, dtype=W.dtype), inputs(noise, p)])  # one-hot, then the law
    logits = jax.vmap(decomposition.causal_importance, in_axes=(None, None, 0))(params, target, x)
    out = {"failed": scores["failed"],
           "missed_feature": jnp.where(scores["failed"], scores["worst"], -1).astype(jnp.int32),
           "faithfulness": decomposition.faithfulness(params, target),
           **{f"best_cosine_{name}": scores[f"best_cosine_{name}"] for name in PATTERN_MATRICES}}
    for name in params:
        seen = decomposition.hard_sigmoid(logits[name])  # [F + B, C]
        out.update({f"mmcs_{name}": scores[f"{name}_mmcs"], f"ml2r_{name}": scores[f"{name}_ml2r"],
                    f"n_live_{name}": metrics.live(seen, threshold),
                    f"ci_one_hot_{name}": seen[:F]})
    return out


@functools.lru_cache(maxsize=None)
def _score_runs(names: tuple[str, ...]):
    """`score_one` batched over runs, taking each matrix's parts as flat positional arrays
    (`in_chunks` pads arrays, not dicts): (W, b, p, *parts in `names` order, noise,
    threshold), the last two shared."""
    def one(W, b, p, *rest):
        *flat, noise, threshold = rest
        params = {name: dict(zip(PARTS, flat[i * len(PARTS):(i + 1) * len(PARTS)]))
                  for i, name in enumerate(names)}
        return score_one(params, W, b, p, noise, threshold)
    return per_run(one, in_axes=(0,) * (3 + len(PARTS) * len(names)) + (None, None))


def analyze_spd(ds: xr.Dataset) -> xr.Dataset:
    """Adds the scores of every decomposition to an SPD results Dataset (see the module
    docstring), group by group for a sweep with static axes (C, identity, ...).

    Adds, with dims (*run_axes): per matrix M `mmcs_<M>`, `ml2r_<M>`, `n_live_<M>` and, for
    W_in and W_out, `ci_errors_<M>`; `failed` (bool), `missed_feature` (int, -1 if not
    failed), `faithfulness`; with dims (*run_axes, feature) `best_cosine_W_in` and
    `best_cosine_W_out`. Each has attrs "long_name" and "description".

    Example:
      >>> ds = analyze_spd(exact_tms_dataset())  # doctest: +SKIP
    """
    return results.map_groups(_analyze_group, ds)


def _group_of(ds: xr.Dataset) -> xr.Dataset:
    """`ds` cut to its own group's subcomponents and gate width (a sweep over C or d_gate
    pads them with NaN), without W_hidden unless its config inserts the identity."""
    config = results.config_of(ds)
    if config is None or config.spec is None:
        return ds
    spd = config.spec.spd
    ds = ds.isel({d: slice(0, n) for d, n in (("component", spd.C), ("gate", spd.d_gate))
                  if d in ds.dims})
    if not spd.identity:
        ds = ds.drop_vars([v for v in ds.data_vars if v.endswith("_W_hidden")])
    return ds


def _feature_probability(ds: xr.Dataset, runs: xr.DataArray) -> np.ndarray:
    """[R, F] or [R] each run's feature probabilities: its `density` (the run's input law),
    else (results written before `density`) its coordinate, the config's value or the
    default."""
    if "density" in ds:
        return _per_run(ds.density, runs)
    if "feature_probability" in ds.coords:
        return np.asarray(ds.feature_probability.broadcast_like(runs).transpose(*runs.dims),
                          np.float32).reshape(-1)
    config = results.config_of(ds)
    table = config.table if config is not None and config.table else {}
    value = table.get("feature_probability", SPD_SCHEMA["feature_probability"].default)
    return np.full(runs.size, value, np.float32)


def _per_run(da: xr.DataArray, runs: xr.DataArray) -> np.ndarray:
    """`da` as float32 [R, *its other dims] over the run axes of `runs` (broadcast)."""
    da = da.broadcast_like(runs).transpose(*runs.dims, ...)
    return np.asarray(da.values, np.float32).reshape(runs.size, *da.shape[runs.ndim:])


def _analyze_group(ds: xr.Dataset) -> xr.Dataset:
    """`analyze_spd` of one static group's Dataset (a residual MLP's:
    `toymodels.analysis.spd_residual`)."""
    ds = _group_of(ds)
    if ds.attrs.get("target") == "residual":
        return analyze_residual_group(ds, _feature_probability, _per_run)
    runs = ds.target_b.isel(feature=0, drop=True)
    flat = functools.partial(_per_run, runs=runs)
    names = tuple(n for n in ("W_in", "W_hidden", "W_out") if f"U_{n}" in ds)
    parts = [flat(ds[f"{part}_{name}"]) for name in names for part in PARTS]
    W, b = flat(ds.target_W_in), flat(ds.target_b)
    config = results.config_of(ds)
    key = evaluation.eval_key(config.seed if config is not None else 0)
    F = W.shape[-1]
    noise = jax.random.uniform(key, (2, EVAL_EXAMPLES, F))
    threshold = jnp.float32(ds.attrs.get("threshold", metrics.CI_THRESHOLD))
    C, G = ds.sizes["component"], ds.sizes["gate"]
    out = in_chunks(_score_runs(names), (W, b, _feature_probability(ds, runs), *parts),
                    (EVAL_EXAMPLES + F) * len(names) * C * (G + 2), (noise, threshold))
    for name in names:
        ci = out.pop(f"ci_one_hot_{name}")
        if name in PATTERN_MATRICES:
            out[f"ci_errors_{name}"] = metrics.ci_pattern_errors_runs(ci, float(threshold))["errors"]
    texts = {**{k: v for name in names for k, v in matrix_variables(name).items()},
             **RUN_VARIABLES}
    shaped = lambda a, dims: xr.DataArray(np.asarray(a).reshape(runs.shape + np.shape(a)[1:]),
                                          dims=runs.dims + dims, coords=runs.coords)
    new = {n: shaped(out[n], ()).assign_attrs(long_name=t, description=t) for n, t in texts.items()}
    new.update({n: shaped(out[n], ("feature",)).assign_attrs(long_name=t, description=t)
                for n, t in FEATURE_VARIABLES.items()})
    return ds.assign(new)


def lowest_loss_failure_rate(failed: np.ndarray, loss: np.ndarray, k: int) -> float:
    """The chance that the lowest-loss of k decompositions, drawn without replacement from
    the n given, failed: how often "run k seeds, keep the lowest final loss" would fail,
    from one pool of n runs of the same target.

    Exact over all C(n, k) subsets: run i (of loss rank r_i, 0 the lowest) is a subset's
    lowest when it is in the subset and the other k − 1 come from the n − 1 − r_i runs of
    higher loss, with probability C(n − 1 − r_i, k − 1) / C(n, k). Ties are broken by
    position (a stable sort).

    Args:
      failed: [n] bool, each run's `failed`.
      loss: [n] each run's final loss (NaN never lowest).
      k: 1 ≤ k ≤ n seeds kept.

    Example:
      >>> lowest_loss_failure_rate(np.array([False, True, True]), np.array([1., 2., 3.]), 2)
      0.3333333333333333
    """
    failed = np.asarray(failed, bool).ravel()
    loss = np.asarray(loss, float).ravel()
    loss = np.where(np.isnan(loss), np.inf, loss)
    n = failed.size
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    rank = np.empty(n, int)
    rank[np.argsort(loss, kind="stable")] = np.arange(n)
    total = math.comb(n, k)
    return float(sum(math.comb(n - 1 - int(r), k - 1) for r in rank[failed]) / total)


__all__ = ["EVAL_EXAMPLES", "FEATURE_VARIABLES", "RUN_VARIABLES", "analyze_spd",
           "lowest_loss_failure_rate", "matrix_variables", "score_one"]
