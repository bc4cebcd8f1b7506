"""`analyze` of an SPD sweep of a residual MLP: does W_in split into one subcomponent per
feature, and is W_out one dense component?

Role in the data flow: an SPD results Dataset whose target is a one-layer residual MLP
(attrs["target"] = "residual", `toymodels.trainers.spd`) holds the decompositions of W_in
and W_out (U_M, V_M, the gates) and each run's target (target_W_E, target_W_in,
target_W_out, target_b_in, target_b_out, target_W_U). `score_one` scores ONE
decomposition with `toymodels.spd.metrics`; `analyze_residual_group` vmaps it over the
runs in one place and adds the host step (the Hungarian matching of W_in's one-hot
causal-importance pattern).

Inputs seen (shared by every run: the sweep's evaluation key): the n one-hot inputs
x = e_i (value +1) and `EVAL_EXAMPLES` inputs of the run's own law (each feature on with
its probability, Uniform[-1, 1) when on: `toymodels.spd.train.inputs`, signed).

W_in is scored against the features folded through the embedding
(`toymodels.spd.metrics.residual_scores`: feature i's piece is the part of W_in its input
direction W_E[:, i] goes through). W_out has no per-feature answer: the paper's question
is whether it stays one (or a few) dense components, so it is described by its live
subcomponents, how many fire per input (`l0_W_out`), how many fire on most inputs
(`n_dense_W_out`), and how many of its neurons' column pieces W_out[:, j] e_jᵀ a
subcomponent matches, both read through the readout W_U (`n_neurons_W_out`: one
subcomponent per neuron, the other answer; W_out's part outside the span of W_U's rows
never reaches the output, as W_in's outside the span of W_E never sees an input).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from toymodels import evaluation, results
from toymodels.analysis.batching import in_chunks, per_run
from toymodels.spd import decomposition, metrics
from toymodels.spd.targets import RESIDUAL_ARRAYS, residual_target
from toymodels.spd.train import inputs

EVAL_EXAMPLES = 4096  # inputs of the run's law on which a subcomponent may be live
PARTS = ("U", "V", *decomposition.GATE_PARTS)  # one matrix's stored parameters
NAMES = ("W_in", "W_out")
DENSE_SHARE = 0.5  # a W_out subcomponent is dense when it fires on this share of inputs

VARIABLES = {
    "mmcs_W_in": "MMCS of W_in folded onto the features (W_in W_E): mean over the read "
                 "features of the best signed cosine of a subcomponent with the feature's "
                 "column (the SPD paper's formula)",
    "ml2r_W_in": "ML2R of W_in folded onto the features: mean over the read features of "
                 "||best subcomponent|| / ||feature's piece|| on its column",
    "n_live_W_in": "subcomponents of W_in with causal importance above the threshold on some "
                   f"one-hot input or input of the run's law ({EVAL_EXAMPLES} shared draws)",
    "n_live_W_out": "subcomponents of W_out with causal importance above the threshold on "
                    "some one-hot input or input of the run's law",
    "l0_W_in": "mean over the law's inputs of the W_in subcomponents above the threshold",
    "l0_W_out": "mean over the law's inputs of the W_out subcomponents above the threshold",
    "n_dense_W_out": f"W_out subcomponents above the threshold on at least {DENSE_SHARE:g} of "
                     "the law's inputs with an active feature",
    "ci_errors_W_in": "entries of W_in's one-hot causal-importance pattern [feature, "
                      "component] (above the threshold) that disagree with the identity after "
                      "a Hungarian matching of features to subcomponents",
    "n_neurons_W_out": "neurons j whose column piece of W_out read out, (W_U W_out)[:, j] "
                       "e_jᵀ, has a subcomponent (read out) at a flattened cosine >= "
                       f"{metrics.FAIL_COSINE}",
    "n_read_features": "features the MLP reads: ||W_in W_E e_i|| above "
                       f"{metrics.READ_FRACTION} x the largest",
    "failed": "some read feature's best flattened cosine with a subcomponent of W_in "
              f"(folded) is below {metrics.FAIL_COSINE} (FAIL_COSINE)",
    "missed_feature": "-1 if not failed, else the read feature of lowest best cosine",
    "faithfulness": "(1/N) sum_l ||W_l - U^T V||_F^2 of the final decomposition",
}
FEATURE_VARIABLES = {
    "best_cosine_W_in": "each feature's best flattened cosine with a subcomponent of W_in "
                        "folded onto the features (what `failed` reads)",
    "read_feature": "whether the MLP reads the feature (counted by MMCS, ML2R and failed)",
}
NEURON_VARIABLES = {
    "best_cosine_W_out_neuron": "each neuron's best flattened cosine of a W_out subcomponent "
                                "read out (W_U U_c V_cᵀ) with its column piece (W_U "
                                "W_out)[:, j] e_jᵀ",
}


def score_one(params: dict, arrays: dict, p: jax.Array, noise: jax.Array, threshold: jax.Array,
              stream: bool) -> dict:
    """Every score of ONE decomposition of a residual MLP (pure jnp; vmapped).

    Args:
      params: {"W_in", "W_out": {"U", "V", "gate_*"}}.
      arrays: the target's `RESIDUAL_ARRAYS` (W_E [D, n], W_in [k, D], ...).
      p: [] or [n] the inputs' feature probability; noise: [2, B, n] shared uniforms.
      threshold: [] the live threshold; stream: the output reads r (static).
    """
    target = residual_target(arrays, stream)
    scores = metrics.residual_scores(arrays["W_E"], arrays["W_in"], params["W_in"]["U"],
                                     params["W_in"]["V"])
    F = arrays["W_E"].shape[1]
    law = inputs(noise, p, signed=True)
    x = jnp.concatenate([jnp.eye(F, dtype=law.dtype), law])
    logits = jax.vmap(decomposition.causal_importance, in_axes=(None, None, 0))(params, target, x)
    active = jnp.any(law != 0, axis=1)  # [B] law inputs with an active feature
    # W_out read through the readout (what the output sees): B = W_U W_out [n, k]
    neuron_pieces = metrics.whole(metrics.column_pieces(arrays["W_U"] @ arrays["W_out"]))
    U_read = params["W_out"]["U"] @ arrays["W_U"].T  # [C, n]
    by_neuron = metrics.matched(neuron_pieces, U_read, params["W_out"]["V"]).cosine
    out = {"mmcs_W_in": scores["mmcs"], "ml2r_W_in": scores["ml2r"],
           "best_cosine_W_in": scores["best_cosine"], "read_feature": scores["read"],
           "n_read_features": jnp.sum(scores["read"], dtype=jnp.int32),
           "failed": scores["failed"],
           "missed_feature": jnp.where(scores["failed"], scores["worst"], -1).astype(jnp.int32),
           "faithfulness": decomposition.faithfulness(params, target),
           "best_cosine_W_out_neuron": by_neuron,
           "n_neurons_W_out": jnp.sum(by_neuron >= metrics.FAIL_COSINE, dtype=jnp.int32)}
    for name in NAMES:
        seen = decomposition.hard_sigmoid(logits[name])  # [F + B, C]
        fires = seen[F:] > threshold
        out[f"n_live_{name}"] = metrics.live(seen, threshold)
        out[f"l0_{name}"] = jnp.mean(jnp.sum(fires, axis=1))
        out[f"ci_one_hot_{name}"] = seen[:F]
        if name == "W_out":
            share = jnp.sum(fires & active[:, None], axis=0) / jnp.maximum(jnp.sum(active), 1)
            out["n_dense_W_out"] = jnp.sum(share >= DENSE_SHARE, dtype=jnp.int32)
    return out


@functools.lru_cache(maxsize=None)
def _score_runs(stream: bool):
    """`score_one` batched over runs on flat positional arrays (`in_chunks` pads arrays):
    (*RESIDUAL_ARRAYS, p, *parts of W_in then W_out, noise, threshold), the last two shared."""
    def one(*args):
        *flat, noise, threshold = args
        arrays = dict(zip(RESIDUAL_ARRAYS, flat[:len(RESIDUAL_ARRAYS)]))
        p, parts = flat[len(RESIDUAL_ARRAYS)], flat[len(RESIDUAL_ARRAYS) + 1:]
        params = {name: dict(zip(PARTS, parts[i * len(PARTS):(i + 1) * len(PARTS)]))
                  for i, name in enumerate(NAMES)}
        return score_one(params, arrays, p, noise, threshold, stream)
    n_args = len(RESIDUAL_ARRAYS) + 1 + len(PARTS) * len(NAMES)
    return per_run(one, in_axes=(0,) * n_args + (None, None))


def analyze_residual_group(ds: xr.Dataset, feature_probability, per_run_values) -> xr.Dataset:
    """The scores of one static group of residual-MLP decompositions (`VARIABLES`, dims
    the run axes; `FEATURE_VARIABLES`, dims (*run axes, feature)).

    Args:
      ds: the group's Dataset (cut to its own C and d_gate).
      feature_probability: `(ds, runs) -> [R]` or `[R, n]` each run's feature probability
        (its `density`).
      per_run_values: `(da, runs) -> [R, ...]` float32 values over the run axes.
    """
    runs = ds.target_W_E.isel(embed=0, feature=0, drop=True)
    flat = functools.partial(per_run_values, runs=runs)
    arrays = [flat(ds[f"target_{k}"]) for k in RESIDUAL_ARRAYS]
    parts = [flat(ds[f"{part}_{name}"]) for name in NAMES for part in PARTS]
    config = results.config_of(ds)
    key = evaluation.eval_key(config.seed if config is not None else 0)
    F = ds.sizes["feature"]
    noise = jax.random.uniform(key, (2, EVAL_EXAMPLES, F))
    threshold = jnp.float32(ds.attrs.get("threshold", metrics.CI_THRESHOLD))
    C, G, D = ds.sizes["component"], ds.sizes["gate"], ds.sizes["embed"]
    stream = ds.attrs.get("task", "identity_relu") == "identity_relu"
    out = in_chunks(_score_runs(stream), (*arrays, feature_probability(ds, runs), *parts),
                    (EVAL_EXAMPLES + F) * len(NAMES) * C * (G + 2 + D), (noise, threshold))
    out["ci_errors_W_in"] = metrics.ci_pattern_errors_runs(out.pop("ci_one_hot_W_in"),
                                                           float(threshold))["errors"]
    out.pop("ci_one_hot_W_out")
    shaped = lambda a, dims: xr.DataArray(np.asarray(a).reshape(runs.shape + np.shape(a)[1:]),
                                          dims=runs.dims + dims, coords=runs.coords)
    new = {n: shaped(out[n], ()).assign_attrs(long_name=t, description=t)
           for n, t in VARIABLES.items()}
    new.update({n: shaped(out[n], ("feature",)).assign_attrs(long_name=t, description=t)
                for n, t in FEATURE_VARIABLES.items()})
    new.update({n: shaped(out[n], ("neuron",)).assign_attrs(long_name=t, description=t)
                for n, t in NEURON_VARIABLES.items()})
    return ds.assign(new)


__all__ = ["DENSE_SHARE", "EVAL_EXAMPLES", "FEATURE_VARIABLES", "NEURON_VARIABLES", "VARIABLES",
           "analyze_residual_group", "score_one"]
