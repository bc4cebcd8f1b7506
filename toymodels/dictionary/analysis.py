"""`analyze` of an SAE sweep: every SAE scored against the ground truth, in one vmap.

Each SAE of a results Dataset (`trainer = "sae"`) is scored on one batch of
`EVAL_EXAMPLES` fresh inputs of its source, drawn once from the sweep's evaluation key and
shared by every SAE (common random numbers): x: [F, B] from the source's input law and
density, h = W x. The ground truth is the source's represented features, the columns of W
with ||W_i|| > 0.5 (`toymodels.analysis.REPRESENTED_NORM`), normalised; a feature the
source does not represent is not a target (and its activations are not part of the true
codes). `score_one` does everything for ONE SAE; `analyze_sae` vmaps it over the runs
(`toymodels.analysis.batching.per_run`) and adds the one host step, the Hungarian matchings.

SynthSAEBench's metrics (`toymodels.dictionary.benchmark`: `BENCHMARK_VARIABLES`, the
per-latent firing scores, and s_n of the nth decoder projection along a `rank` dim) come
with every analysis; the hierarchy metrics (absorption gap, hedging) only when the results
carry a `parent` variable (feature,): each feature's parent feature, -1 for a root.

Pursuits (`toymodels.dictionary.pursuit`: matching, gradient and orthogonal matching) run
on the SAE's decoder (unit rows, on h − b_dec) and on the true dictionary (on h), all
non-negative, with each example's k equal to the
number of latents the SAE's encoder used on it (matched L0), at most `max_k` = min(N, d,
PURSUIT_ATOMS) atoms: more atoms than dimensions is no longer a sparse code, and a pursuit's
cost grows with its atoms (OMP's as their cube), so on a world of 128 or more dims (the
synthsaebench presets) the pursuits stop at 32 atoms. The oracles (`oracle_gp`,
`oracle_omp`) are gradient pursuit and OMP on the true dictionary at each example's TRUE
number of active features (at most min(F, d, PURSUIT_ATOMS)): what inference-time optimisation gets when
the dictionary and the sparsity are both known, whatever the SAE.

Every method's codes get a code MCC (`mcc`, the encoder's, and `mcc_<method>`): Pearson
correlations of true and found activations over the batch, matched one-to-one by the
Hungarian algorithm for the SAE's latents (encoder, pursuits on its decoder), and atom i to
feature i for the true dictionary (whose atom i is feature i: no matching to choose).
"""

from __future__ import annotations

import functools
import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from flax import struct

from toymodels import data, evaluation, results
from toymodels.analysis.batching import in_chunks, per_run
from toymodels.analysis.metrics import REPRESENTED_NORM
from toymodels.dictionary import benchmark, pursuit, scores
from toymodels.dictionary import world as worlds
from toymodels.dictionary.sae import get_sae
from toymodels.dictionary.sae_parts import Stats, decode, unit_rows
from toymodels.errors import UserError
from toymodels.trainers import stored_config

EVAL_EXAMPLES = 4096
PURSUIT_ATOMS = 32  # the most atoms any pursuit takes (module docstring)
THRESHOLDS = {"90": 0.9, "99": 0.99}
METHODS = ("encoder", "mp", "gp", "omp", "truth_mp", "truth_gp", "truth_omp",
           "oracle_gp", "oracle_omp")  # codes scored
PURSUITS = {"mp": pursuit.matching_pursuit, "gp": pursuit.gradient_pursuit,
            "omp": pursuit.orthogonal_matching_pursuit}
METHOD_TEXT = {"encoder": "the SAE's encoder", "mp": "matching pursuit on the SAE's decoder",
               "gp": "gradient pursuit on the SAE's decoder",
               "omp": "orthogonal matching pursuit on the SAE's decoder",
               "truth_mp": "matching pursuit on the true dictionary",
               "truth_gp": "gradient pursuit on the true dictionary",
               "truth_omp": "orthogonal matching pursuit on the true dictionary",
               "oracle_gp": "gradient pursuit on the true dictionary at the true number of "
                            "active features",
               "oracle_omp": "orthogonal matching pursuit on the true dictionary at the true "
                             "number of active features"}
TRUTH_METHODS = ("truth_mp", "truth_gp", "truth_omp", "oracle_gp", "oracle_omp")  # atom i = feature i
SCALAR_VARIABLES = {
    "mmcs": "mean over the represented features of the best signed cosine with a latent (decoder row)",
    "recovered_90": "fraction of the represented features with a latent at cosine > 0.9",
    "recovered_99": "fraction of the represented features with a latent at cosine > 0.99",
    "matched_cosine": "mean signed cosine of a one-to-one (Hungarian) matching of features to latents",
    "mcc": "mean Pearson correlation of true and latent activations under a one-to-one "
           "(Hungarian) matching (unmatched features count 0)",
    "random_mmcs": "expected MMCS of a dictionary of as many uniformly random unit latents (exact)",
    "random_recovered_90": "expected recovered_90 of a random dictionary of the same size (exact)",
    "random_recovered_99": "expected recovered_99 of a random dictionary of the same size (exact)",
    "mmcs_lift": "mmcs - random_mmcs",
    "recovered_90_lift": "recovered_90 - random_recovered_90",
    "n_truth": "number of ground-truth features (source columns with ||W_i|| > 0.5)",
    "l0": "mean number of non-zero latents per example (the encoder's)",
    "true_l0": "mean number of active represented features per example",
    "dead_fraction": "fraction of latents never non-zero on the evaluation batch",
    "fvu": "fraction of variance unexplained by the SAE's reconstruction",
    "shrinkage": "relative reconstruction bias gamma = E||x_hat||^2 / E[x_hat . x] (1: none, < 1: shrinkage)",
    **{f"fvu_{m}": f"fraction of variance unexplained by {METHOD_TEXT[m]} at matched L0"
       for m in ("mp", "gp", "omp")},
    **{f"support_{m}": f"fraction of the examples with an active feature whose active features "
       f"{METHOD_TEXT[m]} finds exactly" for m in METHODS},
    **{f"recall_{m}": f"share of the active features {METHOD_TEXT[m]} picks" for m in METHODS},
    **{f"precision_{m}": f"share of the latents {METHOD_TEXT[m]} picks whose feature is active"
       for m in METHODS},
    **{f"mcc_{m}": f"mcc of the codes of {METHOD_TEXT[m]} (Hungarian matching of latents to "
       f"features)" for m in METHODS if m != "encoder" and m not in TRUTH_METHODS},
    **{f"mcc_{m}": f"mean Pearson correlation of each represented feature's true activations "
       f"with its own atom's in the codes of {METHOD_TEXT[m]}" for m in TRUTH_METHODS},
}
FIRING_TEXT = ("of each latent's firing (code != 0) as a detector of its best-matching "
               "represented feature (by |cos|) being on, over the evaluation batch")
BENCHMARK_VARIABLES = {  # SynthSAEBench (toymodels.dictionary.benchmark)
    "decoder_mcc": "SynthSAEBench's MCC: mean |cos| of the pairs of a one-to-one (Hungarian) matching "
                   "of decoder latents to represented features, over min(features, latents) pairs "
                   "(not mcc, which correlates codes)",
    "uniqueness": "number of distinct represented features that are some latent's best |cos| match, "
                  "over the number of latents (SynthSAEBench)",
    **{f"firing_{k}": f"mean over the latents of the {k} {FIRING_TEXT} (SynthSAEBench)"
       for k in ("precision", "recall", "f1", "accuracy")},
    "explained_variance": "1 - fvu (SynthSAEBench's explained variance)",
    "norm_shrinkage": "mean over the examples of ||x_hat|| / ||x|| (SynthSAEBench's shrinkage; "
                      "shrinkage is the relative reconstruction bias)",
}
HIERARCHY_VARIABLES = {  # only where the results carry a parent (feature,) variable
    "absorption_gap_mean": "mean of absorption_gap over the parent-child pairs where it is defined",
    "hedging_mean": "mean of hedging over the parent-child pairs",
}
FEATURE_VARIABLES = {"best_cosine": "each feature's best signed cosine with a latent (NaN: not represented)"}
HIERARCHY_FEATURE_VARIABLES = {
    "absorption_gap": "per child feature: P(its parent's latent fires | parent on, child off) - "
                      "P(it fires | parent on, child on), the parent's latent its best |cos| match "
                      "(NaN: a root, a feature not represented, or a condition never seen)",
    "hedging": "per child feature: cosine of its direction with its parent's latent's decoder row "
               "(NaN: a root or a feature not represented)",
}
LATENT_VARIABLES = {"latent_feature": "the feature each latent matches at cosine >= 0.9, else -1",
                    **{f"latent_firing_{k}": f"the {k} {FIRING_TEXT}" for k in ("precision", "recall", "f1")}}
RANK_VARIABLES = {"decoder_projection": "s_n of Sparse but wrong (Chanin & Garriga-Alonso 2025) at "
                  "n = rank: the decoder projections (x - b_dec) . unit decoder rows of the batch, "
                  "pooled and sorted decreasingly, at position n * B"}
SAE_TABLES = (SCALAR_VARIABLES, BENCHMARK_VARIABLES, HIERARCHY_VARIABLES, FEATURE_VARIABLES,
              HIERARCHY_FEATURE_VARIABLES, LATENT_VARIABLES, RANK_VARIABLES)  # every variable


@struct.dataclass
class Inference:
    """What the SAE kinds' `encode` reads of an SAE's hyperparameters."""

    k: jax.Array
    bandwidth: jax.Array


def ground_truth(truth: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(features [F, d] unit rows, zero where not represented; represented [F] bool) of a
    source's W: [d, F]."""
    norms = jnp.linalg.norm(truth, axis=0)
    represented = norms > REPRESENTED_NORM
    rows = jnp.where(represented[:, None], truth.T / jnp.maximum(norms, 1e-12)[:, None], 0.0)
    return rows, represented


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.sum(jnp.where(mask, values, 0.0)) / jnp.maximum(jnp.sum(mask), 1)


def pearson(a: jax.Array, b: jax.Array) -> jax.Array:
    """[n, N] Pearson correlations of the columns of a: [B, n] and b: [B, N] (0 where a
    column is constant)."""
    a, b = a - a.mean(0, keepdims=True), b - b.mean(0, keepdims=True)
    scale = jnp.sqrt(jnp.sum(a * a, 0))[:, None] * jnp.sqrt(jnp.sum(b * b, 0))[None, :]
    return jnp.where(scale > 0, (a.T @ b) / jnp.where(scale > 0, scale, 1.0), 0.0)


def paired_pearson(a: jax.Array, b: jax.Array) -> jax.Array:
    """[n] Pearson correlation of column i of a: [B, n] with column i of b: [B, n] (0 where
    either column is constant): the diagonal of `pearson(a, b)`."""
    a, b = a - a.mean(0, keepdims=True), b - b.mean(0, keepdims=True)
    scale = jnp.sqrt(jnp.sum(a * a, 0) * jnp.sum(b * b, 0))
    return jnp.where(scale > 0, jnp.sum(a * b, 0) / jnp.where(scale > 0, scale, 1.0), 0.0)


def support_scores(true_codes, codes, latent_feature) -> dict:
    """support, recall and precision of one set of codes [B, N], over the examples with at
    least one active feature (an empty example says nothing about which features a
    method picks, and a TopK encoder must pick k latents even there)."""
    counts = scores.support_counts(true_codes, codes, latent_feature)  # [B, 5]
    exact, chosen, right, true, found = counts.T
    active = true > 0
    mean = lambda v: jnp.sum(jnp.where(active, v, 0)) / jnp.maximum(jnp.sum(active), 1)
    return {"support": mean(exact),
            "recall": jnp.sum(jnp.where(active, found, 0)) / jnp.maximum(jnp.sum(true), 1),
            "precision": jnp.sum(jnp.where(active, right, 0)) / jnp.maximum(jnp.sum(jnp.where(active, chosen, 0)), 1)}


def truth_codes(features, h, k_each, true_codes, max_k: int) -> dict:
    """Codes [B, F] of the pursuits on the true dictionary (`TRUTH_METHODS`), all
    non-negative: at the SAE's per-example L0 k_each [B] (at most max_k), and the oracles
    at each example's true number of active features (at most min(F, d, PURSUIT_ATOMS)).

    Args:
      features: [F, d] the true unit directions (zero rows: not represented).
      h: [B, d] the activations; true_codes: [B, F] (zero where not represented).
    """
    limit = min(*features.shape, PURSUIT_ATOMS)  # static
    k_true = jnp.minimum(jnp.sum(true_codes != 0, axis=1), limit)
    found = {f"truth_{name}": fn(features, h, k_each, max_k=max_k, nonnegative=True)
             for name, fn in PURSUITS.items()}
    found.update({f"oracle_{name}": PURSUITS[name](features, h, k_true, max_k=limit, nonnegative=True)
                  for name in ("gp", "omp")})
    return {name: jnp.nan_to_num(c) for name, c in found.items()}


@struct.dataclass
class WorldSample:
    """A synthetic world's evaluation examples, drawn once and shared by every SAE:
    codes [F, B] and their activations h [B, d] (`toymodels.dictionary.world`)."""

    codes: jax.Array
    h: jax.Array


def source_inputs(noise, truth, density, spec) -> tuple[jax.Array, jax.Array]:
    """(x [F, B], h [B, d]): the source's inputs from the shared draws `noise` and their
    activations h = W x; a world's sample as it is."""
    if isinstance(noise, WorldSample):
        return noise.codes, noise.h
    x = data.sample_inputs(noise, density, spec.data)
    return x, (truth @ x).T


def eval_draws(config, ds: xr.Dataset):
    """The evaluation draws every SAE of `ds` shares, from the sweep's evaluation key:
    `data.Noise` of its source's law, or a world's `WorldSample` (the world read back
    from the Dataset's variables)."""
    key = evaluation.eval_key(config.seed)
    if config.spec.sae.world is None:
        return data.sample_noise(key, config.spec, EVAL_EXAMPLES)
    world = worlds.world_from_variables(lambda name: ds[name].values)
    codes = worlds.sample_codes(world, config.spec.sae.world, key, EVAL_EXAMPLES)
    return WorldSample(codes.T, worlds.hidden(world, codes))


def score_one(params: dict, threshold, k, bandwidth, truth, density, noise, parent=None, *,
              kind: str, spec, max_k: int) -> dict:
    """Every score of ONE SAE (see the module docstring and `SCALAR_VARIABLES`).

    Args:
      params: the SAE's parameters; threshold: [] BatchTopK's θ (0 otherwise);
      k, bandwidth: [] its hyperparameters that inference reads;
      truth: [d, F] the source's W; density: [F] its feature probabilities;
      noise: the shared evaluation draws (`toymodels.data.Noise`, B examples).
      parent: [F] int each feature's parent (-1 a root), or None: no hierarchy metrics.
      max_k: the most atoms a pursuit takes.
    """
    sae = get_sae(kind)
    x, h = source_inputs(noise, truth, density, spec)  # [F, B], [B, d]
    features, represented = ground_truth(truth)
    true_codes = jnp.where(represented[None, :], x.T, 0.0)  # [B, F]
    stats = Stats(jnp.zeros(params["decoder"].shape[0], jnp.int32), threshold, jnp.ones([], jnp.int32))
    steps = spec.sae.pursuit_steps if spec.sae is not None else 0  # an MP-SAE's: the largest k
    encode = functools.partial(sae.encode, max_k=steps) if steps else sae.encode
    codes = encode(params, stats, h.T, Inference(k, bandwidth)).T  # [B, N]
    x_hat = decode(params, codes.T).T
    latents = unit_rows(params["decoder"])
    cos = jnp.where(represented[:, None], scores.cosines(features, latents), -2.0)  # [F, N]
    best = jnp.max(cos, axis=1)
    latent_feature = jnp.where(jnp.max(cos, axis=0) >= 0.9, jnp.argmax(cos, axis=0), -1).astype(jnp.int32)
    out = {"mmcs": masked_mean(best, represented),
           **{f"recovered_{n}": masked_mean(best > t, represented) for n, t in THRESHOLDS.items()},
           "best_cosine": jnp.where(represented, best, jnp.nan), "latent_feature": latent_feature,
           "cosines": cos, "correlations": pearson(true_codes, codes),
           "n_truth": jnp.sum(represented), "l0": scores.l0(codes), "true_l0": scores.l0(true_codes),
           "dead_fraction": scores.dead_fraction(codes), "fvu": scores.fvu(h, x_hat),
           "shrinkage": scores.shrinkage(h, x_hat)}
    k_each = jnp.minimum(jnp.sum(codes != 0, axis=1), max_k)
    coded = {"encoder": (codes, latent_feature)}
    for name, fn in PURSUITS.items():
        found = jnp.nan_to_num(fn(latents, h - params["b_dec"][None, :], k_each, max_k=max_k,
                                  nonnegative=True))
        out[f"fvu_{name}"] = scores.fvu(h, found @ latents + params["b_dec"][None, :])
        out[f"correlations_{name}"] = pearson(true_codes, found)  # matched on the host
        coded[name] = (found, latent_feature)
    coded.update(truth_codes(features, h, k_each, true_codes, max_k))
    truth_index = jnp.where(represented, jnp.arange(truth.shape[1]), -1).astype(jnp.int32)
    for name in TRUTH_METHODS:
        out[f"mcc_{name}"] = masked_mean(paired_pearson(true_codes, coded[name]), represented)
        coded[name] = (coded[name], truth_index)
    for name, (c, assigned) in coded.items():
        out.update({f"{key}_{name}": v for key, v in support_scores(true_codes, c, assigned).items()})
    out.update(benchmark.benchmark_one(features, represented, latents, params["b_dec"], h, x_hat,
                                       codes, true_codes, parent))
    return out


def analyze_sae(ds: xr.Dataset) -> xr.Dataset:
    """Adds the ground-truth scores to an SAE results Dataset (see the module docstring),
    group by group for a sweep with static axes (width, kind)."""
    return results.map_groups(_analyze_group, ds)


def _config(ds: xr.Dataset):
    """The sweep config of SAE results (`stored_config` of attrs['config']).

    Raises:
      ValueError: there is none, or it does not read (the message says why).
    """
    try:
        return stored_config(ds.attrs["config"], "attrs['config']")
    except (KeyError, TypeError, tomllib.TOMLDecodeError):
        raise ValueError("the SAE results have no readable attrs['config'] (their sweep's "
                         "config)") from None
    except UserError as e:  # e.g. an older manifest's source gone: says what to do
        raise ValueError(str(e)) from None


def _analyze_group(ds: xr.Dataset) -> xr.Dataset:
    config = _config(ds)
    spec, sae = config.spec, config.spec.sae
    kind = get_sae(sae.kind)
    runs = ds.loss.isel(step=0, drop=True)
    flat = lambda da, *trailing: np.asarray(
        da.broadcast_like(runs).transpose(*runs.dims, *trailing).values).reshape(-1, *[ds.sizes[t] for t in trailing])
    params = {name: flat(ds[name], *kind.dims[name]).astype(np.float32) for name in kind.dims}
    threshold = flat(ds.threshold) if "threshold" in ds else np.zeros(runs.size, np.float32)
    k = flat(ds["k"]) if "k" in ds.coords else np.full(runs.size, config.table.get("k", 1))
    bandwidth = flat(ds["bandwidth"]) if "bandwidth" in ds.coords else np.full(
        runs.size, config.table.get("bandwidth", 1e-3))
    truth = flat(ds.truth, "hidden", "feature").astype(np.float32)
    density = flat(ds.density, "feature").astype(np.float32)
    noise = eval_draws(config, ds)
    N, d, F = sae.width, spec.model.n_hidden, spec.model.n_features
    one = functools.partial(score_one, kind=sae.kind, spec=spec, max_k=min(N, d, PURSUIT_ATOMS))
    parent = flat(ds.parent, "feature").astype(np.int32) if "parent" in ds else None
    if parent is not None and not ((parent >= -1) & (parent < F)).all():
        raise ValueError(f"the results' parent must be -1 (a root) or a feature index < {F}")
    fn = per_run(lambda p, *rest: one(p, *rest[:-1], noise, rest[-1]))
    names = list(params)
    call = lambda *arrays: fn(dict(zip(names, arrays[:len(names)])), *arrays[len(names):])
    arrays = (*params.values(), threshold.astype(np.float32), k.astype(np.float32),
              bandwidth.astype(np.float32), truth, density, parent)
    out = in_chunks(call, arrays, EVAL_EXAMPLES * (N + F + d) * 4)
    mask = ~np.isnan(out["best_cosine"])
    out["matched_cosine"] = np.array([scores.matched_mean(c, m) for c, m in zip(out["cosines"], mask)])
    out["mcc"] = np.array([scores.matched_mean(c, m) for c, m in zip(out.pop("correlations"), mask)])
    for name in PURSUITS:
        out[f"mcc_{name}"] = np.array([scores.matched_mean(c, m) for c, m
                                       in zip(out.pop(f"correlations_{name}"), mask)])
    out["decoder_mcc"] = np.array([benchmark.matched_pairs_mean(np.abs(c[m]))
                                   for c, m in zip(out.pop("cosines"), mask)])
    out["random_mmcs"] = np.full(runs.size, scores.random_mmcs(N, d))
    for n, t in THRESHOLDS.items():
        out[f"random_recovered_{n}"] = np.full(runs.size, scores.random_recovered(N, d, t))
    out["mmcs_lift"] = out["mmcs"] - out["random_mmcs"]
    out["recovered_90_lift"] = out["recovered_90"] - out["random_recovered_90"]
    shaped = lambda a, dims: xr.DataArray(np.asarray(a).reshape(runs.shape + np.shape(a)[1:]),
                                          dims=runs.dims + dims, coords=runs.coords)
    hierarchy = parent is not None
    variables = {(): {**SCALAR_VARIABLES, **BENCHMARK_VARIABLES,
                      **(HIERARCHY_VARIABLES if hierarchy else {})},
                 ("feature",): {**FEATURE_VARIABLES, **(HIERARCHY_FEATURE_VARIABLES if hierarchy else {})},
                 ("latent",): LATENT_VARIABLES, ("rank",): RANK_VARIABLES}
    new = {n: shaped(out[n], dims).assign_attrs(description=t)
           for dims, texts in variables.items() for n, t in texts.items()}
    return ds.assign(new).assign_coords(rank=np.arange(N))  # indexed, as latent: groups combine
