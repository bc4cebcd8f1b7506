"""`toymodels analyze` of a residual-MLP sweep (attrs["trainer"] = "residual").

Role in the data flow: `toymodels.analysis.analyze` hands a residual sweep's Dataset here
(as it hands an SAE sweep's to `toymodels.dictionary.analysis`); `analyze_residual` reads
each run's parameters, input law (`density`, `importance`), `label_mixing_value` and
losses, applies `analyze_one` through `per_run` (the analysis's one vmap) in chunks, and
writes the variables of `VARIABLES` back with dims (*run_axes, ...), each with a
`long_name`. A sweep with static axes (d_mlp, task, ...) is analysed group by group
(`toymodels.results.map_groups`) at each group's own sizes.

The headline, `loss_ratio` = final_loss / the naive baseline's loss (closed form from the
run's own W_E, importance, density and label_mixing: d_mlp features computed by
dedicated neurons, the rest left at zero): below 1 the run beats dedicating its neurons.
`linear_ratio` is the same for the best rank-d_mlp affine map: a trained run below 1
but not below `linear_ratio` has not shown any computation a linear map could not do.
Its standard error `loss_ratio_se` is final_loss_se / naive (the baseline is exact).
The naive baseline has no biases; a run with biases gets the mean of every output from
its output bias for free, so its fair baseline is naive-with-biases, `naive_bias_loss`
(each output costs Var instead of E[.²]), and `bias_ratio` = final_loss / naive_bias_loss
(with `bias_ratio_se`) is its headline; a run without biases gets naive_bias_loss =
naive_loss, as no bias is available to it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import xarray as xr

from toymodels import results
from toymodels.analysis import computation
from toymodels.analysis.batching import in_chunks, per_run
from toymodels.residual_config import param_dims

NEURON, FEATURE, OUTPUT = ("neuron",), ("feature",), ("output",)
VARIABLES = (  # (name, dims after the run axes, long_name); uand adds UAND_VARIABLES
    ("loss_ratio", (), "final_loss / naive_loss: below 1 beats the naive baseline (d_mlp "
     "features computed by dedicated neurons, the rest at zero)"),
    ("loss_ratio_se", (), "standard error of loss_ratio (final_loss_se / naive_loss; the "
     "baseline is exact)"),
    ("naive_bias_loss", (), "the naive baseline with biases: its neurons plus the output "
     "bias giving every output its mean, so each costs Var instead of E[.^2] (closed "
     "form); equals naive_loss for a run without biases (bias = false)"),
    ("bias_ratio", (), "final_loss / naive_bias_loss: below 1 beats the naive baseline "
     "even with the means the output biases give for free"),
    ("bias_ratio_se", (), "standard error of bias_ratio (final_loss_se / naive_bias_loss)"),
    ("linear_ratio", (), "linear_loss / naive_loss: the best affine map of rank <= d_mlp "
     "on top of the residual, relative to the naive baseline"),
    ("naive_loss", (), "the naive baseline's loss in closed form, sum_i I_i L_i / n_outputs, "
     "from the run's W_E, importance, density and label_mixing"),
    ("naive_loss_per_output", OUTPUT, "the naive baseline's E[(y_hat_i - y_i)^2] per output "
     "(unweighted)"),
    ("linear_loss", (), "the best rank-d_mlp affine map's loss (reduced-rank regression, "
     "closed form), sum_i I_i L_i / n_outputs"),
    ("linear_loss_per_output", OUTPUT, "the best rank-d_mlp affine map's E[(y_hat_i - "
     "y_i)^2] per output (unweighted)"),
    ("loss_ratio_per_output", OUTPUT, "loss_per_output / naive_loss_per_output; NaN where "
     "the naive baseline is exact"),
    ("serve_gain", NEURON + FEATURE, "(W_in W_E)_kj (W_U W_out)_jk: the gain of feature j "
     "through neuron k (a dedicated neuron: 1)"),
    ("features_served", NEURON, "features neuron k serves: |serve_gain| >= 0.1"),
    ("neurons_serving", FEATURE, "neurons serving feature j: |serve_gain| >= 0.1"),
    ("mixing_top_share", NEURON, "share of neuron k's input direction (row of W_in W_E) in "
     "the d_mlp leading eigenvectors of W_E^T W_E - I (a random direction: d_mlp / n)"),
    ("mixing_top_share_all", (), "the same for all neurons' squared input weights together"),
    ("win_feature_norm", FEATURE, "||(W_in W_E)_:j||, how strongly the neurons read feature j"),
    ("win_superposition", FEATURE, "sum_{i!=j} (What_j . W_i)^2 of W = W_in W_E, the "
     "interference of feature j in neuron space"),
    ("win_feature_dimensionality", FEATURE, "D_j of W = W_in W_E (fractional dimensionality "
     "of feature j in neuron space)"),
    ("win_dims_per_feature", (), "d_mlp / ||W_in W_E||_F^2"),
    ("win_n_represented", (), "features with ||(W_in W_E)_:j|| > 0.5"),
    ("win_features_per_neuron", NEURON, "features loading on neuron k (rows of W_in W_E)"),
    ("win_n_monosemantic", (), "neurons on which exactly one feature loads (W_in W_E)"),
    ("win_n_polysemantic", (), "neurons with more than one |(W_in W_E)_kj| in [0.8, 1.2]"),
)
UAND_VARIABLES = (
    ("uand_n_pairs", NEURON, "pairs (e_i + e_j) neuron k fires on (>= 0.5 of its largest "
     "activation on 0, 1 or 2 active features)"),
    ("uand_n_and_pairs", NEURON, "pairs neuron k fires on while firing on neither single"),
)


def analyze_one(params: dict, density, importance, s, final_loss, final_loss_se,
                loss_per_output, *, task: str, d_mlp: int, bias: bool = True) -> dict:
    """Every analysis variable of ONE run (pure jnp; `task` and `d_mlp` static).

    Args:
      params: the run's parameters (`toymodels.residual_config.param_dims`' layout).
      density, importance: [F] its input law; s: [] its label_mixing.
      final_loss, final_loss_se: []; loss_per_output: [F_out] (unweighted).
      bias: whether the run's layers have biases (static; without, naive_bias_loss =
        naive_loss).

    Returns:
      A dict of the names of `VARIABLES` (and `UAND_VARIABLES` for uand).
    """
    W_E = params["W_E"]
    naive = computation.naive_baseline(W_E, density, importance, s, task, d_mlp)
    linear = computation.linear_baseline(W_E, density, importance, s, task, d_mlp)
    with_bias = computation.naive_bias_baseline(W_E, density, importance, s, task, d_mlp, bias)
    weights = np.ones(loss_per_output.shape[0]) if task == "uand" else importance
    summary = computation.summarise_one(params, task, top=d_mlp)
    served = summary["features_served"]
    out = {
        "loss_ratio": final_loss / naive["total"],
        "loss_ratio_se": final_loss_se / naive["total"],
        "naive_bias_loss": with_bias["total"],
        "bias_ratio": final_loss / with_bias["total"],
        "bias_ratio_se": final_loss_se / with_bias["total"],
        "linear_ratio": linear["total"] / naive["total"],
        "naive_loss": naive["total"], "naive_loss_per_output": naive["per_output"],
        "linear_loss": linear["total"], "linear_loss_per_output": linear["per_output"],
        "loss_ratio_per_output": computation.relative_loss(
            loss_per_output, naive["per_output"], weights)["per_output"],
        "serve_gain": summary["serve_gain"], "features_served": served,
        "neurons_serving": summary["neurons_serving"],
        "mixing_top_share": summary["mixing_top_share"],
        "mixing_top_share_all": summary["mixing_top_share_all"],
        **{k: v for k, v in summary.items() if k.startswith("win_")},
    }
    if task == "uand":
        out["uand_n_pairs"] = summary["uand_n_pairs"]
        out["uand_n_and_pairs"] = summary["uand_and_pairs"].sum(axis=1)
    return out


@functools.lru_cache(maxsize=None)
def _runs(task: str, d_mlp: int, bias: bool, names: tuple[str, ...]) -> Callable:
    """`analyze_one` batched over runs, its parameters given positionally (`names`)."""
    one = functools.partial(analyze_one, task=task, d_mlp=d_mlp, bias=bias)
    batched = per_run(lambda params, *rest: one(params, *rest))
    return lambda *arrays: batched(dict(zip(names, arrays[: len(names)])), *arrays[len(names):])


def analyze_residual(ds: xr.Dataset) -> xr.Dataset:
    """Adds `VARIABLES` (and `UAND_VARIABLES` for uand) to a residual sweep's Dataset,
    group by group for a sweep with static axes; the input is not modified.

    Raises:
      ValueError: the Dataset has no readable attrs["config"] (its sweep's config).
    """
    return results.map_groups(_analyze_group, ds)


def _analyze_group(ds: xr.Dataset) -> xr.Dataset:
    config = results.config_of(ds)
    if config is None or config.trainer != "residual":
        raise ValueError("the residual results have no readable attrs['config'] (their "
                         "sweep's config)")
    r = config.spec.residual
    runs = ds.final_loss
    flat = lambda da, *trailing: np.asarray(  # noqa: E731
        da.broadcast_like(runs).transpose(*runs.dims, *trailing).values, np.float32
    ).reshape(-1, *[ds.sizes[t] for t in trailing])
    dims = param_dims(r)
    names = tuple(dims)
    arrays = (*(flat(ds[n], *dims[n]) for n in names), flat(ds.density, "feature"),
              flat(ds.importance, "feature"), flat(ds.label_mixing_value), flat(ds.final_loss),
              flat(ds.final_loss_se), flat(ds.loss_per_output, "output"))
    run_elements = r.d_embed * (r.n_features + 2 * r.d_mlp) + r.n_outputs * r.n_features
    out = in_chunks(_runs(r.task, r.d_mlp, r.bias, names), arrays, run_elements)
    table = (*VARIABLES, *(UAND_VARIABLES if r.task == "uand" else ()))
    new = {name: _variable(np.asarray(out[name]).reshape(runs.shape + np.shape(out[name])[1:]),
                           runs.dims, trailing, text, ds.dims)
           for name, trailing, text in table}
    return ds.assign(new)


def _variable(values: np.ndarray, run_dims: tuple, trailing: tuple, text: str,
              known) -> xr.DataArray:
    """One analysis variable; a dim new to the Dataset (neuron) gets an index coordinate,
    so that groups of different sizes (a d_mlp sweep) combine, padded with NaN."""
    shape = values.shape[len(run_dims):]
    coords = {d: np.arange(n) for d, n in zip(trailing, shape) if d not in known}
    return xr.DataArray(values, dims=run_dims + trailing, coords=coords,
                        attrs={"long_name": text, "description": text})
