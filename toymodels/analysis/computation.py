"""Analysis of ONE residual-MLP run (models that compute): pure jnp of its parameters.

Role in the data flow: the residual trainer's results hold each run's parameters in the
layout of one model (`W_E [d_embed, F]`, per layer `W_in_l [k_l, d_embed]`, `b_in_l`,
`W_out_l [d_embed, k_l]`, `b_out_l`, optional `W_U [F, d_embed]`, `R [C(F,2), d_mlp]`
for uand) with a leading run axis R; `summarise_runs(task, top)` batches `summarise_one`
over it through `toymodels.analysis.batching.per_run`, the analysis's one vmap (as
`toymodels.analysis.variables` does for toy models); `toymodels.analysis.residual`
wires them, with the baselines below, into `toymodels analyze`.

The neurons are the layers' concatenated (layer 0's first, `stack_layers`) and each is
read in feature space through the embedding alone: its input weights W_in W_E [K, F]
(what it reads of each feature from r_0) and output weights W_U W_out [F, K] (what it
writes to each output); a later layer's reading of earlier layers' outputs is left out.

- `naive_baseline`, `naive_bias_baseline`, `linear_baseline`: the naive baseline's
  (without and with the output biases' free means) and the best rank-d_mlp affine
  map's loss of one run in closed form, in jnp so that they batch with the rest
  (the float64 reference, derived in full: `toymodels.theory.computation`).
- `relative_loss`: the headline, a run's loss over the naive baseline's
  (`toymodels.theory.computation.naive_loss`); below 1 means the run beats dedicating
  its neurons, the signature of computation in superposition.
- `serve_gains`, `served`: neuron k serves feature j when |(W_in W_E)_kj (W_U W_out)_jk|
  >= `SERVE_GAIN` = 0.1, a tenth of a dedicated neuron's gain (1 · 1) from input j
  through k to output j (the sign is left out: ReLU(−x_j) serves |x_j|).
- `mixing_alignment`: the share of each neuron's input direction (a row of W_in W_E)
  in each eigenvector of M = W_Eᵀ W_E − I, eigenvalues in decreasing order, and the
  share in the `top` leading ones (a random direction has top / F).
- `truth_table`, `uand_tables` (uand): every neuron's activation on the inputs with 0,
  1 and 2 active features, which pairs it fires on (activation >= `FIRE_SHARE` = 0.5 of
  its largest on those inputs) and its AND interaction a(e_i + e_j) − a(e_i) − a(e_j)
  + a(0), which is 1 for an AND neuron of that pair and 0 for a linear one.
- `win_metrics`: the project's dimensionality and neuron metrics
  (`toymodels.analysis.metrics`, `neurons`) on W_in W_E, whose columns are the features'
  directions in neuron space.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from toymodels.analysis import metrics, neurons
from toymodels.analysis.batching import per_run

SERVE_GAIN = 0.1  # |input weight x output weight| of feature j through neuron k
FIRE_SHARE = 0.5  # activation at least this share of the neuron's largest: it fires

_HIGHEST = jax.lax.Precision.HIGHEST


def relative_loss(loss: jax.Array, naive: jax.Array,
                  importance: jax.Array | None = None) -> dict:
    """A run's loss relative to the naive baseline's, in total and per output.

    Args:
      loss: [F_out] the run's per-output loss E[(ŷ_i − y_i)²].
      naive: [F_out] the naive baseline's (`naive_loss(...).per_output`).
      importance: [F_out] (default ones).

    Returns:
      {"ratio": [] Σ I loss / Σ I naive, the headline number; "per_output": [F_out]
      loss_i / naive_i, NaN where the naive loss is 0 (an output it computes exactly)}.

    Example:
      >>> out = relative_loss(jnp.array([0.1, 0.1]), jnp.array([0.0, 0.4]))
      >>> float(out["ratio"]), out["per_output"].tolist()
      (0.5, [nan, 0.25])
    """
    importance = jnp.ones_like(loss) if importance is None else importance
    per = jnp.where(naive > 0, loss / jnp.where(naive > 0, naive, 1.0), jnp.nan)
    return {"ratio": jnp.sum(importance * loss) / jnp.sum(importance * naive),
            "per_output": per}


def _moments(task: str, p: jax.Array) -> dict:
    """E x², E f, E f², E[x f] of one signed feature (on w.p. p, Uniform[-1, 1)); f =
    ReLU (identity_relu, relu) or |.| (abs), as `toymodels.theory.computation.moments`."""
    if task == "abs":
        return {"x2": p / 3, "f": p / 2, "f2": p / 3, "xf": jnp.zeros_like(p)}
    return {"x2": p / 3, "f": p / 4, "f2": p / 6, "xf": p / 6}


def _ranks(score: jax.Array) -> jax.Array:
    """[F] each entry's place in decreasing order of `score`, ties by lower index."""
    order = jnp.argsort(-score, stable=True)
    return jnp.zeros(score.shape, jnp.int32).at[order].set(jnp.arange(score.size, dtype=jnp.int32))


def _pairs_moments(p: jax.Array) -> tuple[jax.Array, jax.Array]:
    """([C(F,2)] p_i p_j, [C(F,2), F] Cov(x_i x_j, x_k)) of boolean features (i < j)."""
    F = p.shape[0]
    i, j = np.triu_indices(F, k=1)
    pp = p[i] * p[j]
    rows = np.arange(len(i))
    cov = jnp.zeros((len(i), F)).at[rows, i].set(pp * (1 - p[i])).at[rows, j].set(pp * (1 - p[j]))
    return pp, cov


def naive_baseline(W_E: jax.Array, p: jax.Array, importance: jax.Array, s: jax.Array,
                   task: str, d_mlp: int) -> dict:
    """The naive baseline's loss of ONE run in closed form (jnp, batchable), as
    `toymodels.theory.computation.naive_loss` derives it: the d_mlp features with the
    largest I_i p_i computed by dedicated neurons (abs: two neurons a feature, an odd
    last one computing ReLU(x_j)), the others left at zero, every output carrying the
    mixing term c (M x)_i, c = 1 − s (identity_relu) or −s (relu, abs).

    Args:
      W_E: [d_embed, F]; p, importance: [F]; s: [] label_mixing; task, d_mlp static.

    Returns:
      {"per_output": [F_out] E[(ŷ_i − y_i)²]; "total": [] Σ I_i per_output_i / F_out}
      (uand: over the C(F, 2) pairs, importance 1, no mixing term).

    Example:
      >>> out = naive_baseline(jnp.eye(3), jnp.full(3, 0.6), jnp.ones(3), 0.0, "relu", 2)
      >>> [round(float(v), 3) for v in out["per_output"]]
      [0.0, 0.0, 0.1]
    """
    if task == "uand":
        pp, _ = _pairs_moments(p)
        per = jnp.where(_ranks(pp) < d_mlp, 0.0, pp)
        return {"per_output": per, "total": jnp.mean(per)}
    per, _ = _naive_signed(W_E, p, importance, s, task, d_mlp)
    return {"per_output": per, "total": jnp.sum(importance * per) / per.shape[0]}


def _naive_signed(W_E, p, importance, s, task: str, d_mlp: int):
    """([F] the naive baseline's per-output loss, [F] E g_i its own-feature error's mean)
    of a signed task (`naive_baseline`)."""
    M = mixing_matrix(W_E)
    rank = _ranks(importance * p)
    if task == "abs":  # neurons each feature gets: 2 (exact), 1 (ReLU(x_j) only) or 0
        got = jnp.clip(d_mlp - 2 * rank, 0, 2)
        g2 = jnp.where(got == 2, 0.0, jnp.where(got == 1, p / 6, p / 3))
        xg = jnp.where(got == 1, p / 6, 0.0)
        mean = jnp.where(got == 2, 0.0, jnp.where(got == 1, -p / 4, -p / 2))
    else:
        computed = rank < d_mlp
        g2 = jnp.where(computed, 0.0, p / 6)
        xg = jnp.where(computed, 0.0, -p / 6)
        mean = jnp.where(computed, 0.0, -p / 4)
    c = 1.0 - s if task == "identity_relu" else -s
    mix = jnp.matmul(jnp.square(M), p / 3, precision=_HIGHEST)
    return g2 + 2 * c * jnp.diag(M) * xg + c**2 * mix, mean


def naive_bias_baseline(W_E: jax.Array, p: jax.Array, importance: jax.Array, s: jax.Array,
                        task: str, d_mlp: int, bias: bool) -> dict:
    """The naive baseline with biases of ONE run (jnp, batchable), as
    `toymodels.theory.computation.naive_bias_loss` derives it: the naive construction
    plus the output bias that gives every output its mean, so each output pays Var g_i
    = E g_i² − (E g_i)² instead of E g_i² (relu: p/6 − p²/16 per uncomputed feature;
    abs: p/3 − p²/4, a half-computed one p/6 − p²/16). Without biases (`bias` False,
    static) it is `naive_baseline`. uand (no output bias): the lower of the naive loss
    and d_mlp − 1 AND neurons with one constant neuron, the other pairs then costing
    p_i p_j (1 − p_i p_j).

    Args: as `naive_baseline`; bias: whether the run's layers have biases (static).

    Example:
      >>> out = naive_bias_baseline(jnp.eye(3), jnp.full(3, 0.4), jnp.ones(3), 0.0,
      ...                           "relu", 1, True)
      >>> [round(float(v), 4) for v in out["per_output"]]  # p/6 − p²/16
      [0.0, 0.0567, 0.0567]
    """
    if not bias:
        return naive_baseline(W_E, p, importance, s, task, d_mlp)
    if task == "uand":
        pp, _ = _pairs_moments(p)
        naive = jnp.where(_ranks(pp) < d_mlp, 0.0, pp)
        constant = jnp.where(_ranks(pp) < d_mlp - 1, 0.0, pp * (1 - pp))
        per = constant if d_mlp >= 1 else naive
        per = jnp.where(jnp.mean(per) < jnp.mean(naive), per, naive)
        return {"per_output": per, "total": jnp.mean(per)}
    per, mean = _naive_signed(W_E, p, importance, s, task, d_mlp)
    per = per - jnp.square(mean)
    return {"per_output": per, "total": jnp.sum(importance * per) / per.shape[0]}


def linear_baseline(W_E: jax.Array, p: jax.Array, importance: jax.Array, s: jax.Array,
                    task: str, d_mlp: int) -> dict:
    """The loss of the best affine map of rank <= d_mlp on top of the residual, ONE run
    (jnp, batchable; reduced-rank regression as `toymodels.theory.computation.linear_loss`
    derives it). Arguments and returns as `naive_baseline`; importances must be > 0.

    Example:
      >>> out = linear_baseline(jnp.eye(2), jnp.full(2, 0.3), jnp.ones(2), 0.0, "relu", 2)
      >>> round(float(out["per_output"][0]), 4)  # Var ReLU(x) − Cov(x, ReLU)² / Var x
      0.0194
    """
    if task == "uand":
        pp, cov = _pairs_moments(p)
        var_t, var_x, weight = pp * (1 - pp), p * (1 - p), jnp.ones_like(pp)
    else:
        m, M = _moments(task, p), mixing_matrix(W_E)
        a = s - 1.0 if task == "identity_relu" else s
        cov = jnp.diag(m["xf"]) + a * M * m["x2"][None, :]
        var_t = (m["f2"] - m["f"] ** 2 + 2 * a * jnp.diag(M) * m["xf"]
                 + a**2 * jnp.matmul(jnp.square(M), p / 3, precision=_HIGHEST))
        var_x, weight = m["x2"], importance
    inv_sd = jnp.where(var_x > 0, jax.lax.rsqrt(jnp.where(var_x > 0, var_x, 1.0)), 0.0)
    Z = jnp.sqrt(weight)[:, None] * cov * inv_sd[None, :]
    U, S, _ = jnp.linalg.svd(Z, full_matrices=False)
    explained = jnp.matmul(jnp.square(U[:, :d_mlp]), jnp.square(S[:d_mlp]), precision=_HIGHEST)
    per = var_t - explained / weight
    return {"per_output": per, "total": jnp.sum(weight * per) / per.shape[0]}


def layer_count(params: dict) -> int:
    """The number of MLP layers (keys W_in_0, W_in_1, ...)."""
    return sum(1 for key in params if key.startswith("W_in_"))


def stack_layers(params: dict) -> tuple[jax.Array, jax.Array]:
    """(W_in [K, d_embed], W_out [d_embed, K]) of all layers, layer 0's neurons first."""
    L = layer_count(params)
    W_in = jnp.concatenate([params[f"W_in_{l}"] for l in range(L)], axis=0)
    W_out = jnp.concatenate([params[f"W_out_{l}"] for l in range(L)], axis=1)
    return W_in, W_out


def feature_weights(params: dict) -> tuple[jax.Array, jax.Array]:
    """(input weights W_in W_E [K, F], output weights W_U W_out [F, K]), W_U = W_Eᵀ
    unless the run learned `W_U`."""
    W_in, W_out = stack_layers(params)
    W_E = params["W_E"]
    W_U = params.get("W_U", W_E.T)
    return (jnp.matmul(W_in, W_E, precision=_HIGHEST),
            jnp.matmul(W_U, W_out, precision=_HIGHEST))


def serve_gains(params: dict) -> jax.Array:
    """[K, F] the gain (W_in W_E)_kj (W_U W_out)_jk of feature j through neuron k.

    Example:
      >>> P = {"W_E": jnp.eye(2), "W_in_0": jnp.array([[2.0, 0.0]]),
      ...      "W_out_0": jnp.array([[0.5], [1.0]])}
      >>> serve_gains(P).tolist()
      [[1.0, 0.0]]
    """
    read, write = feature_weights(params)
    return read * write.T


def served(params: dict, gain: float = SERVE_GAIN) -> jax.Array:
    """[K, F] bool: neuron k serves feature j, |gain_kj| >= `gain` (default 0.1)."""
    return jnp.abs(serve_gains(params)) >= gain


def mixing_matrix(W_E: jax.Array) -> jax.Array:
    """M = W_Eᵀ W_E − I, [F, F]."""
    return jnp.matmul(W_E.T, W_E, precision=_HIGHEST) - jnp.eye(W_E.shape[1])


def mixing_alignment(params: dict, top: int) -> dict:
    """How the neurons' input directions align with the eigenvectors of M = G − I.

    Args:
      params: one run; top: how many leading eigenvectors (largest eigenvalues) count.

    Returns:
      {"eigenvalues": [F] decreasing; "share": [K, F] (v_j · w_k)² / ‖w_k‖², w_k the
      row k of W_in W_E (0 for a dead neuron); "top_share": [K] Σ_{j < top} share;
      "top_share_all": [] the same for all neurons' squared weights together; a random
      direction has top / F}.

    Example:
      >>> W_E = jnp.array([[1.0, 0.6], [0.0, 0.8]])  # M = [[0, .6], [.6, 0]]
      >>> P = {"W_E": W_E, "W_in_0": jnp.array([[1.0, 0.5]]) @ jnp.linalg.inv(W_E),
      ...      "W_out_0": jnp.zeros((2, 1))}
      >>> round(float(mixing_alignment(P, 1)["top_share"][0]), 4)  # (1.5/√2)² / 1.25
      0.9
    """
    values, vectors = jnp.linalg.eigh(mixing_matrix(params["W_E"]))
    values, vectors = values[::-1], vectors[:, ::-1]
    read, _ = feature_weights(params)
    proj = jnp.square(jnp.matmul(read, vectors, precision=_HIGHEST))  # [K, F]
    norm = jnp.sum(jnp.square(read), axis=1, keepdims=True)
    share = jnp.where(norm > 0, proj / jnp.where(norm > 0, norm, 1.0), 0.0)
    total = jnp.sum(norm)
    top_all = jnp.sum(proj[:, :top]) / jnp.where(total > 0, total, 1.0)
    return {"eigenvalues": values, "share": share,
            "top_share": jnp.sum(share[:, :top], axis=1), "top_share_all": top_all}


def activations(params: dict, x: jax.Array) -> jax.Array:
    """[K] the concatenated ReLU activations of every layer on ONE input x: [F]."""
    r, acts = params["W_E"] @ x, []
    for l in range(layer_count(params)):
        h = jax.nn.relu(params[f"W_in_{l}"] @ r + params.get(f"b_in_{l}", 0.0))
        acts.append(h)
        r = r + params[f"W_out_{l}"] @ h + params.get(f"b_out_{l}", 0.0)
    return jnp.concatenate(acts)


def truth_table(params: dict) -> dict:
    """Every neuron's activation on the boolean inputs with 0, 1, 2 active features.

    Returns:
      {"zero": [K] a(0); "single": [K, F] a(e_i); "pair": [K, C(F,2)] a(e_i + e_j),
      pairs row-major i < j}.
    """
    F = params["W_E"].shape[1]
    i, j = np.triu_indices(F, k=1)
    eye = np.eye(F, dtype=np.float32)
    x = np.concatenate([np.zeros((1, F), np.float32), eye, eye[i] + eye[j]])
    a = jax.vmap(activations, in_axes=(None, 0))(params, jnp.asarray(x))  # [B, K]
    return {"zero": a[0], "single": a[1 : F + 1].T, "pair": a[F + 1 :].T}


def uand_tables(params: dict, share: float = FIRE_SHARE) -> dict:
    """Per-neuron U-AND truth tables, summarised (see the module docstring).

    Returns:
      `truth_table`'s arrays and "interaction" [K, C(F,2)] a(e_i+e_j) − a(e_i) − a(e_j)
      + a(0); "fires_pair" [K, C(F,2)], "fires_single" [K, F], "fires_zero" [K] bool
      (activation >= share × the neuron's largest on these inputs, and > 0);
      "n_pairs" [K] int32, the pairs each neuron fires on; "and_pairs" [K, C(F,2)]
      bool, pairs it fires on while firing on neither of their singles.

    Example:
      >>> P = {"W_E": jnp.eye(3), "W_in_0": jnp.array([[1.0, 1.0, 0.0]]),
      ...      "b_in_0": jnp.array([-1.0]), "W_out_0": jnp.zeros((3, 1))}
      >>> t = uand_tables(P)
      >>> t["and_pairs"].tolist(), t["interaction"].tolist()
      ([[True, False, False]], [[1.0, 0.0, 0.0]])
    """
    t = truth_table(params)
    F = t["single"].shape[1]
    i, j = np.triu_indices(F, k=1)
    top = jnp.maximum(jnp.max(t["pair"], axis=1), jnp.max(t["single"], axis=1))
    top = jnp.maximum(top, t["zero"])[:, None]
    fires = lambda a: (a >= share * top) & (a > 0)  # noqa: E731
    pair, single = fires(t["pair"]), fires(t["single"])
    interaction = (t["pair"] - t["single"][:, i] - t["single"][:, j]
                   + t["zero"][:, None])
    return {**t, "interaction": interaction, "fires_pair": pair, "fires_single": single,
            "fires_zero": fires(t["zero"][:, None])[:, 0],
            "n_pairs": jnp.sum(pair, axis=1, dtype=jnp.int32),
            "and_pairs": pair & ~single[:, i] & ~single[:, j]}


def win_metrics(params: dict) -> dict:
    """The project's metrics on W_in W_E: [K, F] (rows neurons, columns features)."""
    W, _ = feature_weights(params)
    return {
        "feature_norm": metrics.feature_norms(W),
        "superposition": metrics.superposition(W),
        "feature_dimensionality": metrics.feature_dimensionality(W),
        "dims_per_feature": metrics.dims_per_feature(W),
        "n_represented": metrics.n_represented(W),
        "features_per_neuron": neurons.features_per_neuron(W),
        "n_monosemantic": neurons.n_monosemantic(W),
        "n_polysemantic": neurons.n_polysemantic(W),
    }


def summarise_one(params: dict, task: str, top: int) -> dict:
    """Every per-run quantity of one run's parameters (task and top static)."""
    gains = serve_gains(params)
    out = {
        "serve_gain": gains,
        "features_served": jnp.sum(jnp.abs(gains) >= SERVE_GAIN, axis=1, dtype=jnp.int32),
        "neurons_serving": jnp.sum(jnp.abs(gains) >= SERVE_GAIN, axis=0, dtype=jnp.int32),
        **{f"mixing_{k}": v for k, v in mixing_alignment(params, top).items()},
        **{f"win_{k}": v for k, v in win_metrics(params).items()},
    }
    if task == "uand":
        t = uand_tables(params)
        out.update({f"uand_{k}": t[k] for k in ("interaction", "fires_pair", "n_pairs",
                                                 "and_pairs", "fires_single")})
    return out


@functools.lru_cache(maxsize=None)
def summarise_runs(task: str, top: int) -> Callable:
    """`summarise_one` batched over a leading run axis R of every parameter (the one vmap).

    Example:
      >>> P = {"W_E": jnp.eye(2)[None], "W_in_0": jnp.eye(2)[None],
      ...      "W_out_0": jnp.eye(2)[None]}
      >>> summarise_runs("relu", 1)(P)["features_served"].tolist()
      [[1, 1]]
    """
    return per_run(functools.partial(summarise_one, task=task, top=top))
