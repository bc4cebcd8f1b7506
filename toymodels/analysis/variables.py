"""The analysis variables of a results dataset, and `analyze(ds)`, which adds them.

Role in the data flow: `load(dir)` -> xarray.Dataset with `W` (*run_axes, hidden,
feature) -> `analyze` -> the same dataset plus metric variables -> plots. The run
axes (any names, possibly none) are flattened to one axis R; `summarise_one` is applied
through `per_run` (the single `jax.jit(jax.vmap(...))` of the analysis,
`toymodels.analysis.batching`) in fixed-size chunks, to bound memory, and the results are
reshaped back to the named axes. The tables below (`VARIABLES`, ...) name every variable,
its dims after the run axes and its attrs["description"]. An SAE sweep
(attrs["trainer"] = "sae") is scored against the truth by
`toymodels.dictionary.analysis` instead, and a residual-MLP sweep (attrs["trainer"] =
"residual") against its naive and linear baselines by `toymodels.analysis.residual`.

The same holds for the variables that need more than `W` (each its own per-model
function, batched by `per_run`): neuron measures (`toymodels.analysis.neurons`; also
`W2` for abs_computation), the vulnerability to the analytic attack
(`toymodels.analysis.adversarial`; needs `b` and `density`, linear and relu_output
only), dimensionality over training (`toymodels.analysis.dynamics`; needs
`W_snapshots`) and the dimensionality of the training examples' hidden vectors
(`toymodels.analysis.data_points`; finite datasets, from attrs["config"] and `density`).
Each is added only where its inputs exist.
"""

import functools
from collections.abc import Callable

import jax
import numpy as np
import xarray as xr

from toymodels import results
from toymodels import evaluation
from toymodels.analysis import (
    adversarial,
    basis,
    data_points,
    dynamics,
    geometry,
    metrics,
    neurons,
)
from toymodels.analysis import norms as norm_reliance
from toymodels.analysis import residual as residual_analysis
from toymodels.analysis.spd import analyze_spd
from toymodels.analysis.batching import in_chunks, per_run
from toymodels.config import SweepConfig
from toymodels.dictionary import analysis as sae_analysis
from toymodels.spec import DataSpec, ModelSpec, Spec

ATTACK_CHUNK_ELEMENTS = 2**24  # runs per chunk * F * F * B of the attack (64 MiB)
ROTATION_CHUNK_ELEMENTS = 2**24  # runs per chunk * N_ROTATIONS * H * F of basis_kurtosis_p
ATTACK_KINDS = ("linear", "relu_output")  # models the analytic attack is defined for

F_DIM, KIND_DIM = ("feature",), ("polytope_kind",)
VARIABLES = (  # (name, dims after the run axes, attrs["description"])
    ("feature_norm", F_DIM, "||W_i||, representation strength of feature i"),
    ("superposition", F_DIM, "sum_{j!=i} (What_i . W_j)^2, interference of feature i"),
    (
        "feature_dimensionality",
        F_DIM,
        "D_i = ||W_i||^2 / sum_j (What_i . W_j)^2, fractional dimensionality",
    ),
    ("dims_per_feature", (), "D* = n_hidden / ||W||_F^2, dimensions per feature"),
    ("n_represented", (), "number of features with ||W_i|| > 0.5"),
    (
        "polytope",
        F_DIM,
        "uniform polytope (tegum factor) of feature i: edges |cos| > 0.1 among "
        "represented features, D within 0.03 of d/N, rank d",
    ),
    ("polytope_counts", KIND_DIM, "number of features with each polytope label"),
    (
        "phase",
        (),
        "last feature: unrepresented (norm <= 0.5), dedicated (interference with "
        "represented features <= 0.1) or superposition",
    ),
)
BASIS_VARIABLES = (  # every model (toymodels.analysis.basis)
    (
        "basis_kurtosis",
        (),
        "mean over represented features of the centred kurtosis of W_i over the hidden "
        "axis, m sum_k (W_ki - mean)^4 / (sum_k (W_ki - mean)^2)^2; NaN for m = 1",
    ),
    (
        "basis_kurtosis_null",
        (),
        "its mean under a random rotation of the hidden space: 3(m - 1)/(m + 1)",
    ),
)
BASIS_P_VARIABLES = (  # every model, on request (extras)
    (
        "basis_kurtosis_p",
        (),
        "fraction of 256 random rotations O of the hidden space (fixed key) with "
        "basis_kurtosis(O W) >= basis_kurtosis(W)",
    ),
)
RELIANCE_VARIABLES = (  # relu_output and relu_hidden, with b and density
    (
        "norm_flip_rate",
        ("rescale",),
        "fraction of the F^2 output states [z_j(e_i) > 0] on the one-hot inputs that "
        "flip when the hidden vector h is multiplied by `rescale` before the norm "
        "(0 up to the norm's eps with a norm)",
    ),
    (
        "readout_flip_rate",
        ("rescale",),
        "as norm_flip_rate, with the readout's input norm(h) multiplied by `rescale` "
        "(after the norm; the same as norm_flip_rate without a norm)",
    ),
    (
        "n_decoded",
        (),
        "features whose output on e_i exceeds its output on 0 and on every other e_j "
        "by more than 0.1",
    ),
)
RESCALED_LOSS_VARIABLES = (  # as RELIANCE_VARIABLES, on request (extras)
    (
        "rescaled_loss",
        ("rescale",),
        "population loss with the hidden vector h multiplied by `rescale` before the "
        "norm (as final_loss, with 16,384 samples)",
    ),
    (
        "readout_rescaled_loss",
        ("rescale",),
        "as rescaled_loss, with the readout's input norm(h) multiplied by `rescale` "
        "(after the norm; the same as rescaled_loss without a norm)",
    ),
)
NEURON_VARIABLES = (  # every model; meaningful for relu_hidden and abs_computation
    (
        "features_per_neuron",
        ("hidden",),
        "features loading on neuron k: W_ki^2 >= 0.1 ||W_k||^2 and |W_ki| >= 0.1 "
        "(abs_computation: W1 with each unit balanced, ||W1_k|| = ||W2_:k||); "
        "meaningful where the hidden layer has a ReLU",
    ),
    ("n_monosemantic", (), "neurons on which exactly one feature loads"),
    (
        "n_polysemantic",
        (),
        "neurons with more than one |W_ki| in [0.8, 1.2] (W1 if untied; Lecomte et al. "
        "2023's incidental polysemanticity)",
    ),
)
ABS_VARIABLES = (  # abs_computation only (W1 and W2)
    (
        "asymmetric_neurons",
        (),
        "neurons storing two features asymmetrically: both with gain W2_lk |W1_kl| "
        ">= 0.5, |W1_ki| >= 2 |W1_kj| and W2_jk >= 2 W2_ik",
    ),
    (
        "asymmetric_inhibited",
        (),
        "asymmetric neurons whose interference on the victim output is cancelled "
        "(net slope <= 0) by other neurons",
    ),
)
ATTACK_VARIABLES = (  # linear and relu_output, with b and density
    (
        "vulnerability",
        (),
        "(L' - L) / (L'_0 - L_0) under the most harmful analytic L2 attack "
        "eps (W^T W)_i / ||(W^T W)_i||, eps = 0.1 x mean norm of the non-zero "
        "inputs; reference: the orthogonal unit-norm model, L'_0 - L_0 = "
        "eps^2 max I / F",
    ),
)
POINT_VARIABLES = (  # finite datasets (data.dataset_size), with density
    (
        "data_dimensionality",
        ("example",),
        "D_t = ||h_t||^2 / sum_s (hhat_t . h_s)^2 of the hidden vectors h_t = W x_t of "
        "the training examples (W1 if untied); only up to data_points.EXAMPLE_LIMIT "
        "examples",
    ),
    ("data_dimensionality_mean", (), "mean over the training examples of D_t"),
)
SNAPSHOT_VARIABLES = (  # with W_snapshots (or W1_snapshots)
    (
        "dimensionality_snapshots",
        ("snapshot", "feature"),
        "D_i of every feature at every snapshot of training",
    ),
)
EXTRAS = {  # the variables `analyze` adds only on request, and what each costs
    "basis_kurtosis_p": "the kurtosis of 256 random rotations of every run's W",
    "rescaled_loss": "16,384 samples of the population loss per run, rescale and "
                     "definition (rescaled_loss, readout_rescaled_loss; relu_output "
                     "and relu_hidden with b and density)",
    "vulnerability": "the analytic attack: F attacks on a batch of B inputs per run, "
                     "O(F^2 B H) (linear and relu_output with b and density)",
}


def summarise_one(W: jax.Array, W2: jax.Array | None = None) -> dict:
    """Every per-run quantity of one model `W: [H, F]` (pure jnp; see `analyze`).

    With `W2: [F, H]` (abs_computation, `W` is then W1) the neuron counts use the
    balanced units (`neurons.balance`), and the asymmetric-superposition counts are
    added.
    """
    rows = W if W2 is None else neurons.balance(W, W2)[0]
    out = {
        "feature_norm": metrics.feature_norms(W),
        "superposition": metrics.superposition(W),
        "feature_dimensionality": metrics.feature_dimensionality(W),
        "dims_per_feature": metrics.dims_per_feature(W),
        "n_represented": metrics.n_represented(W),
        "phase": metrics.phase(W),
        "geometry": geometry.components(W),
        "features_per_neuron": neurons.features_per_neuron(rows),
        "n_monosemantic": neurons.n_monosemantic(rows),
        "n_polysemantic": neurons.n_polysemantic(W),
        **basis.basis_one(W),
    }
    if W2 is not None:
        count = lambda flags: jax.numpy.sum(flags, dtype=jax.numpy.int32)  # noqa: E731
        out["asymmetric_neurons"] = count(neurons.asymmetric_superposition(W, W2))
        out["asymmetric_inhibited"] = count(neurons.asymmetric_inhibited(W, W2))
    return out


summarise_runs = per_run(summarise_one)
basis_p_runs = per_run(basis.basis_p_one)


def attack_one(W, b, density, importance, noise, relu: bool, spec: DataSpec) -> dict:
    """Vulnerability of one model (`adversarial.vulnerability`) on its own inputs.

    Args: W [H, F], b [F], density [F], importance [F]; `noise` the attack batch's
    uniforms shared by every run; `relu` and `spec` static (model kind, data spec).
    """
    x = adversarial.attack_inputs(noise, density, spec)
    return {"vulnerability": adversarial.vulnerability(W, b, x, importance, relu)}


@functools.lru_cache(maxsize=None)
def _attack_runs(relu: bool, spec: DataSpec) -> Callable:
    one = functools.partial(attack_one, relu=relu, spec=spec)
    return per_run(one, in_axes=(0, 0, 0, 0, None))


@functools.lru_cache(maxsize=None)
def _reliance_runs(spec: Spec) -> Callable:
    return per_run(functools.partial(norm_reliance.reliance_one, spec=spec))


@functools.lru_cache(maxsize=None)
def _rescaled_loss_runs(spec: Spec) -> Callable:
    one = functools.partial(norm_reliance.rescaled_loss_one, spec=spec)
    return per_run(one, in_axes=(0, 0, 0, 0, None))


def _reliance_variables(ds: xr.Dataset, W: xr.DataArray, flat_W: np.ndarray,
                        config: SweepConfig | None, with_loss: bool) -> dict:
    """`norm_flip_rate`, `readout_flip_rate` [R, C] and `n_decoded` [R], and with
    `with_loss` `rescaled_loss` and `readout_rescaled_loss` [R, C], of a relu_output or relu_hidden dataset with b and density
    (`toymodels.analysis.norms`); the norm and data law from `config` (default: no norm,
    independent uniform features)."""
    kind = ds.attrs.get("model_kind", "relu_output")
    if kind not in norm_reliance.RELIANCE_KINDS or "b" not in ds or "density" not in ds:
        return {}
    H, F = flat_W.shape[-2:]
    spec = config.spec if config is not None else Spec(ModelSpec(kind, F, H))
    b = _per_run(ds["b"], W, ("feature",))
    out = in_chunks(_reliance_runs(spec), (flat_W, b), F * F)
    if not with_loss:
        return out
    density = _per_run(ds["density"], W, ("feature",))
    importance = (_per_run(ds["importance"], W, ("feature",)) if "importance" in ds
                  else np.ones_like(density))
    key = evaluation.eval_key(config.seed if config is not None else 0)
    run_elements = F * norm_reliance.RESCALE_SAMPLES // 4
    arrays = (flat_W, b, density, importance)
    return out | in_chunks(_rescaled_loss_runs(spec), arrays, run_elements, (key,))


def snapshots_one(W_snapshots: jax.Array) -> dict:
    """D_i over training of one run, `W_snapshots: [S, H, F]` -> [S, F]."""
    return {
        "dimensionality_snapshots": dynamics.dimensionality_over_training(W_snapshots)
    }


snapshot_runs = per_run(snapshots_one)


@functools.lru_cache(maxsize=None)
def _points_runs(spec: Spec, kind: str, root_seed: int, per_example: bool) -> Callable:
    one = functools.partial(data_points.points_one, spec=spec, kind=kind,
                            root_seed=root_seed, per_example=per_example)
    return per_run(one)


def _variables(flat: dict, W: np.ndarray) -> dict[str, np.ndarray]:
    """Host-side finish: polytope labels and counts, phase names; all [R, ...]."""
    codes = geometry.label_runs(W, flat["geometry"])
    return {
        **{k: v for k, v in flat.items() if k not in ("geometry", "phase")},
        "polytope": geometry.kind_names(codes),
        "polytope_counts": geometry.counts_from_codes(codes),
        "phase": np.asarray(metrics.PHASES)[flat["phase"]],
    }


def _weights(ds: xr.Dataset) -> xr.DataArray:
    """`W` as (*run_axes, hidden, feature), or a ValueError saying what is wrong.

    Untied models (abs_computation) have no `W`; their feature directions in the hidden
    space are the columns of the first layer, `W1`.
    """
    name = "W" if "W" in ds else "W1"
    if name not in ds or not {"hidden", "feature"} <= set(ds[name].dims):
        found = {name: ds[name].dims for name in ds.data_vars}
        raise ValueError(
            "analyze needs a variable W with dims (..., 'hidden', 'feature'); "
            f"got {found}"
        )
    return ds[name].transpose(..., "hidden", "feature")


def _per_run(
    da: xr.DataArray, W: xr.DataArray, trailing: tuple, dtype=np.float32
) -> np.ndarray:
    """`da` as [R, *trailing] (float32 by default) over the run axes of `W` (broadcast
    if absent)."""
    runs = W.isel(hidden=0, feature=0, drop=True)
    da = da.broadcast_like(runs).transpose(*runs.dims, *trailing)
    return np.asarray(da.values, dtype).reshape(-1, *da.shape[runs.ndim :])


def _attack_variables(ds: xr.Dataset, W: xr.DataArray, flat_W: np.ndarray,
                      config: SweepConfig | None) -> dict:
    """`vulnerability` [R] of a linear or relu_output dataset with b and density (not
    for "exactly_one" inputs: the attack's shared uniforms have no feature choice); the
    data structure from `config` (`attrs["config"]`; default independent, uniform)."""
    kind = ds.attrs.get("model_kind", "relu_output")
    if kind not in ATTACK_KINDS or "b" not in ds or "density" not in ds:
        return {}
    spec = config.spec.data if config is not None else DataSpec()
    if spec.inputs == "exactly_one":
        return {}
    density = _per_run(ds["density"], W, ("feature",))
    importance = (
        _per_run(ds["importance"], W, ("feature",))
        if "importance" in ds
        else np.ones_like(density)
    )
    noise = adversarial.attack_noise(flat_W.shape[-1], spec)
    run_elements = flat_W.shape[-1] ** 2 * adversarial.ATTACK_BATCH
    arrays = (flat_W, _per_run(ds["b"], W, ("feature",)), density, importance)
    fn = _attack_runs(kind != "linear", spec)
    return in_chunks(fn, arrays, run_elements, (noise,), ATTACK_CHUNK_ELEMENTS)


def _point_variables(ds: xr.Dataset, W: xr.DataArray, flat_W: np.ndarray,
                     config: SweepConfig | None) -> dict:
    """`data_dimensionality` [R, T] (T <= EXAMPLE_LIMIT) and its mean [R] of a result
    with a finite dataset (`config`, from `attrs["config"]`); {} otherwise. The examples
    are regenerated, not stored."""
    if config is None or not config.spec.data.dataset_size or "density" not in ds:
        return {}
    n_examples = config.spec.data.dataset_size
    density = _per_run(ds["density"], W, ("feature",))
    seeds = (_per_run(ds["data_seed"], W, (), np.int64) if "data_seed" in ds.coords
             else np.full(len(flat_W), config.data.get("data_seed", 0), np.int64))
    per_example = n_examples <= data_points.EXAMPLE_LIMIT
    fn = _points_runs(config.spec, config.spec.model.kind, config.seed, per_example)
    H, F = flat_W.shape[-2:]
    return in_chunks(fn, (flat_W, density, seeds), (F + H + 1) * n_examples)


def check_extras(extras, adversarial: bool = False) -> frozenset[str]:
    """The names of `extras` (and "vulnerability" with `adversarial`) as a set, or a
    ValueError naming the unknown one and listing `EXTRAS`.

    Example:
      >>> sorted(check_extras(["rescaled_loss"], adversarial=True))
      ['rescaled_loss', 'vulnerability']
    """
    extras = (extras,) if isinstance(extras, str) else tuple(extras)
    for name in extras:
        if name not in EXTRAS:
            raise ValueError(f"unknown analysis extra {name!r}; valid: {', '.join(EXTRAS)}")
    return frozenset(extras) | ({"vulnerability"} if adversarial else set())


def analyze(ds: xr.Dataset, *, adversarial: bool = False,
            extras: tuple[str, ...] = ()) -> xr.Dataset:
    """Add per-run metrics of `W` to a results dataset; the input is not modified.

    Adds `feature_norm`, `superposition`, `feature_dimensionality`, `polytope` (strings)
    with dims (*run_axes, feature); `dims_per_feature`, `n_represented`, `phase`
    (strings, the last feature) with dims (*run_axes); `polytope_counts` with dims
    (*run_axes, polytope_kind); the neuron measures `features_per_neuron`
    (*run_axes, hidden) and `n_monosemantic` (*run_axes), computed for every model but
    meaningful only where the hidden layer has a ReLU (relu_hidden, abs_computation);
    `n_polysemantic` (*run_axes), meaningful where L1 has made the basis privileged;
    `basis_kurtosis` and `basis_kurtosis_null` (*run_axes).
    Where their inputs exist, also: `asymmetric_neurons` and `asymmetric_inhibited`
    (*run_axes; abs_computation, from W1 and W2), `norm_flip_rate` and
    `readout_flip_rate` (*run_axes, rescale; h rescaled before the norm, and the
    readout's input after it) and `n_decoded` (*run_axes; relu_output and relu_hidden models with `b` and
    `density`, the model kind from attrs["model_kind"], relu_output if absent),
    `dimensionality_snapshots` (*run_axes, snapshot, feature; with `W_snapshots` or
    `W1_snapshots`), and for a
    finite dataset (attrs["config"] with data.dataset_size = T, and `density`)
    `data_dimensionality` (*run_axes, example; only if T <= `data_points.EXAMPLE_LIMIT`)
    and `data_dimensionality_mean` (*run_axes), from each run's training examples
    regenerated with `toymodels.data.training_set` (root seed from the config, the
    run's `data_seed` coordinate or the config's). Other variables and coordinates are
    kept.

    The costly variables `EXTRAS` are added only when asked for, where they apply:
    `basis_kurtosis_p` (*run_axes; 256 random rotations of each run's W),
    `rescaled_loss` and `readout_rescaled_loss` (*run_axes, rescale; as
    `norm_flip_rate` and `readout_flip_rate`, 16,384 samples of the loss per run and
    rescale) and `vulnerability` (*run_axes; O(F² B H) per run: F attacks
    on a batch of B inputs; linear and relu_output models with `b` and `density`, not
    for "exactly_one" inputs).

    A sweep with static axes (n_hidden, kind, ...: `toymodels.groups`) is analysed group
    by group at each group's own size, so the NaN padding of smaller models is never
    analysed as features: their padded entries are NaN ("" for labels) in the results.

    Args:
      ds: dataset with `W` (or `W1`) of dims (*run_axes, "hidden", "feature").
      adversarial: also compute `vulnerability` (seconds for thousands of small models,
        minutes for 10,000 runs of 400 -> 30); the same as "vulnerability" in `extras`.
      extras: names of `EXTRAS` to add too; an unknown name raises ValueError listing
        the valid ones. An SAE sweep (attrs["trainer"] = "sae") and a residual-MLP
        sweep ("residual") have none.

    Returns:
      A new dataset with the variables above, each with attrs["description"].

    Example:
      >>> W = xr.DataArray(np.eye(2, 3, dtype=np.float32), dims=("hidden", "feature"))
      >>> analyze(xr.Dataset({"W": W}))["polytope"].values.tolist()
      ['dedicated', 'dedicated', 'unrepresented']
    """
    extras = check_extras(extras, adversarial)
    if ds.attrs.get("trainer") == "sae":  # sparse autoencoders: scored against the truth
        return sae_analysis.analyze_sae(ds)
    if ds.attrs.get("trainer") == "residual":  # residual MLPs: against their baselines
        return residual_analysis.analyze_residual(ds)
    if ds.attrs.get("trainer") == "spd":  # decompositions: scored against the features
        return analyze_spd(ds)
    one = functools.partial(_analyze_group, extras=extras)
    return results.map_groups(one, ds)


def _analyze_group(ds: xr.Dataset, *, extras: frozenset[str]) -> xr.Dataset:
    """`analyze` of a Dataset with no padding (one static group)."""
    W, config = _weights(ds), results.config_of(ds)
    run_axes = W.dims[:-2]
    run_shape = W.shape[:-2]
    flat_W = np.asarray(W.values, np.float32).reshape(-1, *W.shape[-2:])
    H, F = flat_W.shape[-2:]
    untied = "W2" in ds and W.name == "W1"
    W2 = _per_run(ds["W2"], W, ("feature", "hidden")) if untied else None
    run_elements = F * F * (H if untied else 1)
    flat = in_chunks(summarise_runs, (flat_W, W2), run_elements)
    flat = _variables(flat, flat_W)
    table = [*VARIABLES, *BASIS_VARIABLES, *NEURON_VARIABLES,
             *(ABS_VARIABLES if untied else ())]
    if "basis_kurtosis_p" in extras:
        flat.update(in_chunks(basis_p_runs, (flat_W,), basis.N_ROTATIONS * H * F, (),
                              ROTATION_CHUNK_ELEMENTS))
        table += BASIS_P_VARIABLES
    reliance = _reliance_variables(ds, W, flat_W, config, "rescaled_loss" in extras)
    flat.update(reliance)
    table += RELIANCE_VARIABLES if reliance else []
    table += RESCALED_LOSS_VARIABLES if "rescaled_loss" in reliance else []
    attack = _attack_variables(ds, W, flat_W, config) if "vulnerability" in extras else {}
    if attack:
        flat.update(attack)
        table += ATTACK_VARIABLES
    snapshots = f"{W.name}_snapshots"
    if snapshots in ds:
        Ws = _per_run(ds[snapshots], W, ("snapshot", "hidden", "feature"))
        flat.update(in_chunks(snapshot_runs, (Ws,), Ws.shape[1] * H * F))
        table += SNAPSHOT_VARIABLES
    points = _point_variables(ds, W, flat_W, config)
    flat.update(points)
    table += [v for v in POINT_VARIABLES if v[0] in points]
    new = {
        name: xr.DataArray(
            flat[name].reshape(run_shape + flat[name].shape[1:]),
            dims=run_axes + dims,
            attrs={"description": description},
        )
        for name, dims, description in table
    }
    coords = {"polytope_kind": list(geometry.POLYTOPE_KINDS)}
    if reliance:
        coords["rescale"] = list(norm_reliance.RESCALES)
    if "data_dimensionality" in new:
        coords["example"] = np.arange(new["data_dimensionality"].sizes["example"])
    return ds.assign(new).assign_coords(coords)
