"""Baselines of the residual MLP that computes, in closed form (numpy, float64).

Where this sits: the residual-MLP trainer (`[residual]` table) trains models whose loss
is compared with these levels; `toymodels.analysis.computation` divides a run's loss per
output by `naive_loss`; `toymodels.theory.uand` holds the U-AND constructions. Nothing
here trains. The model and tasks (one example x: [F]; G = W_Eᵀ W_E, M = G − I):

  r_0 = W_E x,  r_l = r_{l-1} + W_out_l ReLU(W_in_l r_{l-1} + b_in_l) + b_out_l,
  identity_relu: ŷ = W_Eᵀ r_L,          y = x + ReLU(x) + s M x
  relu:          ŷ = W_Eᵀ (r_L − r_0),  y = ReLU(x) + s M x
  abs:           as relu,               y = |x| + s M x
  loss = Σ_i I_i E[(ŷ_i − y_i)²] / F  (the per-output loss L_i = E[(ŷ_i − y_i)²]).

Input law: feature i is on with probability p_i, independently, with value
u ~ Uniform[-1, 1). Its moments (per feature; `moments`): E x = 0, E x² = p/3;
E ReLU(x) = p/4, E ReLU(x)² = E[x ReLU(x)] = p/6; E|x| = p/2, E|x|² = p/3, E[x |x|] = 0.

**The error decomposition.** Every model below has output error e_i = g_i(x_i) + c (M x)_i
with g_i a function of x_i alone and c a number: c = 1 − s for identity_relu (the
residual adds G x = x + M x, the labels s M x) and c = −s for relu and abs. Since the
x_k are independent with mean 0, (M x)_i = Σ_k M_ik x_k has E[(M x)_i²] = Σ_k M_ik² p_k/3
and is uncorrelated with g_i(x_i) except through its own term M_ii x_i:

  L_i = E[g_i²] + 2 c M_ii E[x_i g_i] + c² Σ_k M_ik² p_k / 3.            (1)

(M_ii = ‖W_E[:, i]‖² − 1 = 0 for unit-norm columns.) The mixing term is the same for
every output whether it is computed or not: it is what the MLP would have to cancel.

**Naive baseline** (`naive_loss`). d_mlp neurons compute d_mlp features exactly and the
rest are left at zero: g_i = 0 on a computed feature, g_i = −f(x_i) on the others
(f = ReLU or |.|), so E[g_i²] = p_i/6 (relu tasks) or p_i/3 (abs), E[x g] = −p/6 or 0.
Counting for |x| = ReLU(x) + ReLU(−x): a feature needs two neurons to be exact; with an
odd d_mlp the last neuron computes ReLU(x_j) of one more feature, g_j = −ReLU(−x_j),
E[g²] = E[x g] = p/6. (One neuron per feature, ReLU(x) for |x|, gives the same total:
both remove p/6 per neuron.) The computed features are those with the largest I_i p_i
(ties: lower index first), the choice that minimises the total.

**Naive with biases** (`naive_bias_loss`, `naive_bias_params`). A model with biases
gets the mean of every output for free from its output bias b_out (the readout W_Eᵀ
reaches any vector when W_E has full column rank): the naive construction plus the
constant b_out with W_Eᵀ b_out = −E g pays Var g_i instead of E g_i² on each output,

  L_i = E[g_i²] − (E g_i)² + 2 c M_ii E[x_i g_i] + c² Σ_k M_ik² p_k / 3,      (2)

the same neurons as the naive baseline (priority I_i p_i). Per output (E g = −E f on an
uncomputed feature): relu and identity_relu (any s) Var ReLU(x) = p/6 − p²/16, abs
Var |x| = p/3 − p²/4, the half-computed |x_j| of an odd last neuron Var ReLU(−x_j) =
p/6 − p²/16, a computed feature 0; for equal densities the ratio to naive is 1 − 3p/8
(relu, at s = 0) and 1 − 3p/4 (abs, even d_mlp). A run without biases (bias = false)
has no such constant: its naive_bias_loss is naive_loss. uand's readout R a has no
bias: a constant costs a neuron, one always on (zero input weights, b_in = 1) whose R
column holds the means p_i p_j of the uncomputed pairs, which then cost Var(x_i x_j) =
p_i p_j (1 − p_i p_j) each, beside d_mlp − 1 AND neurons; naive_bias_loss is the
lower of that and the naive loss.

**Best rank-k linear map** (`linear_loss`): ŷ = (residual) + B x + b with rank B <= k =
d_mlp (a linear MLP of k neurons: the layers compose to rank at most Σ k_l). The target
of B is t = y − residual = f(x) + a M x, a = s − 1 (identity_relu) or s. Reduced-rank
regression with weights I: with Σ_xx = diag(E x²), Σ_tx = diag(E[x f]) + a M Σ_xx and
Z = I^½ Σ_tx Σ_xx^{-½} = U S Vᵀ, the optimum is B = I^{-½} U_k U_kᵀ I^½ Σ_tx Σ_xx^{-1},
b = E t − B E x, and the per-output error is
  L_i = Var t_i − (U_k S_k² U_kᵀ)_ii / I_i,
  Var t_i = Var f_i + 2 a M_ii E[x_i f_i] + a² Σ_k M_ik² p_k / 3.
The total Σ_i I_i L_i / F = (Σ_i I_i Var t_i − Σ_{j<=k} S_j²) / F.

Example:
  >>> W_E = np.eye(3)  # orthonormal embedding: M = 0
  >>> out = naive_loss(W_E, "relu", d_mlp=2, p=np.full(3, 0.6))
  >>> out.per_output.round(3).tolist(), round(out.total, 4)
  ([0.0, 0.0, 0.1], 0.0333)
"""

from __future__ import annotations

import dataclasses

import numpy as np

TASKS = ("identity_relu", "relu", "abs", "uand")
SIGNED_TASKS = ("identity_relu", "relu", "abs")


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A baseline's loss.

    Attributes:
      per_output: [F_out] E[(ŷ_i − y_i)²], not weighted by importance.
      total: Σ_i I_i per_output_i / F_out, the trainer's loss.
      computed: [F_out] bool, the outputs the construction computes (naive baselines).
    """

    per_output: np.ndarray
    total: float
    computed: np.ndarray | None = None


def check_task(task: str) -> None:
    """A ValueError naming the valid tasks for an unknown one."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")


def moments(task: str, p: np.ndarray) -> dict[str, np.ndarray]:
    """Moments of one feature on with probability p, value Uniform[-1, 1) (signed tasks).

    Returns a dict of [F] arrays: `x2` E x², `f` E f, `f2` E f², `xf` E[x f] of the
    task's function f (ReLU or |.|; identity_relu's nonlinear part is ReLU).

    Example:
      >>> moments("abs", np.array([0.3]))["f2"].round(6).tolist()
      [0.1]
    """
    p = np.asarray(p, np.float64)
    if task in ("identity_relu", "relu"):
        return {"x2": p / 3, "f": p / 4, "f2": p / 6, "xf": p / 6}
    if task == "abs":
        return {"x2": p / 3, "f": p / 2, "f2": p / 3, "xf": np.zeros_like(p)}
    raise ValueError(f"task {task!r} has no signed-input moments; valid: {SIGNED_TASKS}")


def mixing(W_E: np.ndarray) -> np.ndarray:
    """M = W_Eᵀ W_E − I, [F, F], the embedding's own mixing (float64)."""
    W_E = np.asarray(W_E, np.float64)
    return W_E.T @ W_E - np.eye(W_E.shape[1])


def mixing_coefficient(task: str, s: float) -> float:
    """c of the error decomposition: 1 − s for identity_relu, −s for relu and abs."""
    return 1.0 - s if task == "identity_relu" else -s


def mixing_variance(M: np.ndarray, p: np.ndarray) -> np.ndarray:
    """[F] E[(M x)_i²] = Σ_k M_ik² p_k / 3 of signed uniform features."""
    return (M**2) @ (np.asarray(p, np.float64) / 3)


def naive_priority(score: np.ndarray) -> np.ndarray:
    """Indices by decreasing score, ties by lower index (a stable order)."""
    return np.argsort(-np.asarray(score, np.float64), kind="stable")


def naive_jobs(task: str, d_mlp: int, p: np.ndarray, importance: np.ndarray
               ) -> list[tuple[int, float]]:
    """The naive baseline's neurons, in order: (feature, sign) each, sign +1 reading
    x_j (ReLU(x_j)) and −1 reading −x_j (ReLU(−x_j), the other half of |x_j|).

    Example:
      >>> naive_jobs("abs", 3, np.full(4, 0.1), np.ones(4))
      [(0, 1.0), (0, -1.0), (1, 1.0)]
    """
    order = naive_priority(np.asarray(importance) * np.asarray(p))
    per = 2 if task == "abs" else 1
    jobs = [(int(j), sign) for j in order for sign in ((1.0, -1.0) if per == 2 else (1.0,))]
    return jobs[:d_mlp]


def _error_moments(task: str, jobs, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([F] E[g_i²], [F] E[x_i g_i]) of the naive construction's own-feature error g_i."""
    m = moments(task, p)
    g2, xg = m["f2"].copy(), -m["xf"].copy()
    signs: dict[int, set] = {}
    for j, sign in jobs:
        signs.setdefault(j, set()).add(sign)
    for j, got in signs.items():
        full = task != "abs" or got == {1.0, -1.0}
        g2[j] = 0.0 if full else p[j] / 6  # abs with ReLU(x_j) only: g = −ReLU(−x_j)
        xg[j] = 0.0 if full else p[j] / 6
    return g2, xg


def _error_means(task: str, jobs, p: np.ndarray) -> np.ndarray:
    """[F] E g_i of the naive construction's own-feature error: −E f(x_i) uncomputed,
    −E ReLU(−x_j) = −p/4 for a half-computed |x_j|, 0 computed."""
    mean = -moments(task, p)["f"].copy()
    signs: dict[int, set] = {}
    for j, sign in jobs:
        signs.setdefault(j, set()).add(sign)
    for j, got in signs.items():
        full = task != "abs" or got == {1.0, -1.0}
        mean[j] = 0.0 if full else -p[j] / 4
    return mean


def naive_loss(W_E: np.ndarray, task: str, d_mlp: int, p, importance=None,
               s: float = 0.0) -> Baseline:
    """The naive baseline's loss in closed form, per output and in total (eq. (1)).

    It is the loss of `naive_params` when W_E has full column rank (d_embed >= F); with
    d_embed < F no neuron reads a feature exactly and it is the loss of an ideal naive
    model (the computed outputs exact, the rest zero, the residual's mixing as is).

    Args:
      W_E: [d_embed, F] the embedding (its mixing M enters; unused for uand).
      task: one of `TASKS`.
      d_mlp: neurons (all layers together).
      p: [F] (or scalar) feature probabilities.
      importance: [F] (default ones; uand: ones over the pairs).
      s: label_mixing (must be 0 for uand, whose labels have no mixing term).

    Returns:
      `Baseline`; for uand per-output over the C(F, 2) pairs (row-major i < j): 0 on
      the d_mlp pairs with the largest p_i p_j, p_i p_j on the others (ReLU(x_i + x_j − 1)
      is x_i x_j on boolean inputs).

    Example:
      >>> out = naive_loss(np.eye(3), "uand", d_mlp=1, p=np.full(3, 0.5))
      >>> out.per_output.tolist(), out.total
      ([0.0, 0.25, 0.25], 0.16666666666666666)
    """
    check_task(task)
    F = np.asarray(W_E).shape[1]
    p = np.broadcast_to(np.asarray(p, np.float64), (F,))
    if task == "uand":
        return _naive_uand(p, d_mlp, s)
    importance = np.ones(F) if importance is None else np.asarray(importance, np.float64)
    jobs = naive_jobs(task, d_mlp, p, importance)
    M = mixing(W_E)
    c = mixing_coefficient(task, s)
    g2, xg = _error_moments(task, jobs, p)
    per = g2 + 2 * c * np.diag(M) * xg + c**2 * mixing_variance(M, p)
    computed = np.zeros(F, bool)
    computed[[j for j, _ in jobs]] = True
    return Baseline(per, float(importance @ per / F), computed)


def naive_bias_loss(W_E: np.ndarray, task: str, d_mlp: int, p, importance=None,
                    s: float = 0.0, bias: bool = True) -> Baseline:
    """The naive baseline with biases, in closed form (eq. (2)): the loss of
    `naive_bias_params` when d_embed >= F; without biases (bias = False) `naive_loss`.

    Args: as `naive_loss`; bias: whether the model has biases.

    Returns:
      `Baseline`, `computed` the naive baseline's (uand: without the pair whose neuron
      becomes the constant one, when that is the lower loss).

    Example:
      >>> p = np.full(4, 0.2)
      >>> ratio = naive_bias_loss(np.eye(4), "abs", 2, p).total / naive_loss(np.eye(4), "abs", 2, p).total
      >>> round(ratio, 12)  # 1 − 3p/4
      0.85
    """
    check_task(task)
    naive = naive_loss(W_E, task, d_mlp, p, importance, s)
    if not bias:
        return naive
    F = np.asarray(W_E).shape[1]
    p = np.broadcast_to(np.asarray(p, np.float64), (F,))
    if task == "uand":
        constant = _uand_constant(p, d_mlp)
        return constant if constant.total < naive.total else naive
    importance = np.ones(F) if importance is None else np.asarray(importance, np.float64)
    mean = _error_means(task, naive_jobs(task, d_mlp, p, importance), p)
    per = naive.per_output - mean**2
    return Baseline(per, float(importance @ per / F), naive.computed)


def _uand_constant(p: np.ndarray, d_mlp: int) -> Baseline:
    """d_mlp − 1 AND neurons and one constant neuron giving the others their means."""
    P = pairs(len(p))
    pp = p[P[:, 0]] * p[P[:, 1]]
    computed = np.zeros(len(P), bool)
    computed[naive_priority(pp)[: max(d_mlp - 1, 0)]] = True
    per = np.where(computed, 0.0, pp * (1 - pp) if d_mlp >= 1 else pp)
    return Baseline(per, float(per.mean()), computed)


def naive_bias_params(W_E: np.ndarray, task: str, split, p, importance=None
                      ) -> dict[str, np.ndarray]:
    """The naive-with-biases construction as parameters (biases on; see the module
    docstring): `naive_params` and the last layer's b_out = D β, β_i = −E g_i the mean
    of output i's uncomputed part (W_Eᵀ D = I, and no later layer reads it). uand, when
    the constant neuron is the lower loss (`naive_bias_loss`): the last neuron gets
    zero input weights, b_in = 1 and R column p_i p_j on the uncomputed pairs.

    Args: as `naive_params` (bias always on).
    """
    check_task(task)
    split = [int(k) for k in split]
    W_E = np.asarray(W_E, np.float64)
    F = W_E.shape[1]
    p = np.broadcast_to(np.asarray(p, np.float64), (F,))
    params = naive_params(W_E, task, split, p, importance, bias=True)
    last, q = len(split) - 1, split[-1] - 1
    d_mlp = sum(split)
    if task == "uand":
        constant = _uand_constant(p, d_mlp)
        if constant.total < naive_loss(W_E, task, d_mlp, p).total:
            P = pairs(F)
            params["R"][:, d_mlp - 1] = np.where(constant.computed, 0.0,
                                                 p[P[:, 0]] * p[P[:, 1]])
            params[f"W_in_{last}"][q] = 0.0
            params[f"b_in_{last}"][q] = 1.0
        return params
    importance = np.ones(F) if importance is None else np.asarray(importance, np.float64)
    mean = _error_means(task, naive_jobs(task, d_mlp, p, importance), p)
    params[f"b_out_{last}"] = dual_basis(W_E) @ -mean
    return params


def pairs(F: int) -> np.ndarray:
    """[C(F, 2), 2] the pairs (i, j), i < j, in row-major order (the uand outputs)."""
    i, j = np.triu_indices(F, k=1)
    return np.stack([i, j], axis=1)


def _naive_uand(p: np.ndarray, d_mlp: int, s: float) -> Baseline:
    if s != 0:
        raise ValueError(f"label_mixing must be 0 for task 'uand'; got {s}")
    P = pairs(len(p))
    y2 = p[P[:, 0]] * p[P[:, 1]]  # E[(x_i x_j)²]
    computed = np.zeros(len(P), bool)
    computed[naive_priority(y2)[:d_mlp]] = True
    per = np.where(computed, 0.0, y2)
    return Baseline(per, float(per.mean()), computed)


def _rank_k(var_t: np.ndarray, cov_tx: np.ndarray, var_x: np.ndarray,
            importance: np.ndarray, k: int) -> Baseline:
    """Reduced-rank regression of t on x (see the module docstring), per output."""
    root = np.sqrt(importance)
    inv_sd = np.where(var_x > 0, 1 / np.sqrt(np.where(var_x > 0, var_x, 1)), 0.0)
    Z = root[:, None] * cov_tx * inv_sd[None, :]
    U, S, _ = np.linalg.svd(Z, full_matrices=False)
    explained = (U[:, :k] ** 2) @ (S[:k] ** 2)  # diag(U_k S_k² U_kᵀ)
    per = var_t - explained / importance
    return Baseline(per, float(importance @ per / len(per)))


def linear_loss(W_E: np.ndarray, task: str, d_mlp: int, p, importance=None,
                s: float = 0.0) -> Baseline:
    """The loss of the best affine map whose learned part has rank <= d_mlp (closed form).

    Signed tasks: on top of the fixed residual (identity_relu) the map B x + b, rank B
    <= d_mlp, as the module docstring derives. uand: ŷ = B x + b of the boolean inputs,
    Σ_xx = diag(p(1 − p)), Cov(x_i x_j, x_k) = p_i p_j (1 − p_k) for k in {i, j} (else
    0), Var(x_i x_j) = p_i p_j (1 − p_i p_j).

    Args: as `naive_loss`. Importances must be positive.

    Example:
      >>> out = linear_loss(np.eye(2), "relu", d_mlp=2, p=np.full(2, 0.3))
      >>> round(float(out.per_output[0]), 6)  # Var ReLU(x) − Cov(x, ReLU)² / Var x
      0.019375
    """
    check_task(task)
    F = np.asarray(W_E).shape[1]
    p = np.broadcast_to(np.asarray(p, np.float64), (F,))
    if task == "uand":
        if s != 0:
            raise ValueError(f"label_mixing must be 0 for task 'uand'; got {s}")
        P = pairs(F)
        pp = p[P[:, 0]] * p[P[:, 1]]
        cov = np.zeros((len(P), F))
        rows = np.arange(len(P))
        cov[rows, P[:, 0]] = pp * (1 - p[P[:, 0]])
        cov[rows, P[:, 1]] = pp * (1 - p[P[:, 1]])
        return _rank_k(pp * (1 - pp), cov, p * (1 - p), np.ones(len(P)), d_mlp)
    importance = np.ones(F) if importance is None else np.asarray(importance, np.float64)
    if np.any(importance <= 0):
        raise ValueError("linear_loss needs positive importances")
    m, M = moments(task, p), mixing(W_E)
    a = s - 1.0 if task == "identity_relu" else s
    cov = np.diag(m["xf"]) + a * M * m["x2"][None, :]
    var_t = (m["f2"] - m["f"] ** 2 + 2 * a * np.diag(M) * m["xf"]
             + a**2 * mixing_variance(M, p))
    return _rank_k(var_t, cov, m["x2"], importance, d_mlp)


def dual_basis(W_E: np.ndarray) -> np.ndarray:
    """D = W_E (W_Eᵀ W_E)^{-1}: [d_embed, F] with Dᵀ W_E = I, so D[:, j] · r_0 = x_j.

    Reading the residual stream through D computes each feature exactly; it needs W_E of
    full column rank (d_embed >= F), else a ValueError: with features in superposition
    in the stream no neuron reads one exactly and the naive closed form is then the loss
    of an ideal naive model, not of a construction.
    """
    W_E = np.asarray(W_E, np.float64)
    G = W_E.T @ W_E
    if np.linalg.matrix_rank(G) < G.shape[0]:
        raise ValueError(f"W_E {W_E.shape} has rank < {G.shape[0]} features: no "
                         "construction reads every feature exactly (needs d_embed >= F)")
    return W_E @ np.linalg.inv(G)


def _complement(W_E: np.ndarray, count: int) -> np.ndarray:
    """[d_embed, count] orthonormal directions orthogonal to the columns of W_E."""
    d, F = W_E.shape
    if count > d - F:
        raise ValueError(f"the naive construction over several layers needs d_embed >= "
                         f"F + neurons before the last layer = {F + count}; got {d}")
    U = np.linalg.svd(W_E, full_matrices=True)[0]
    return U[:, F : F + count]


def layer_slices(split) -> list[slice]:
    """The neurons of each layer in the concatenated order (layer 0's first)."""
    edges = np.concatenate([[0], np.cumsum(split)]).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def empty_params(W_E: np.ndarray, split, bias: bool) -> dict[str, np.ndarray]:
    """Zero parameters in the layout (W_E kept; W_in_l, b_in_l, W_out_l, b_out_l)."""
    d = W_E.shape[0]
    params = {"W_E": np.asarray(W_E, np.float64)}
    for l, k in enumerate(split):
        params[f"W_in_{l}"] = np.zeros((k, d))
        params[f"W_out_{l}"] = np.zeros((d, k))
        if bias:
            params[f"b_in_{l}"] = np.zeros(k)
            params[f"b_out_{l}"] = np.zeros(d)
    return params


def naive_params(W_E: np.ndarray, task: str, split, p, importance=None,
                 bias: bool = True) -> dict[str, np.ndarray]:
    """The naive construction as parameters in the layout (readout "transpose").

    Neuron q serves job (j, σ) of `naive_jobs`: it reads v_q · r = σ x_j and writes
    w_q with W_Eᵀ w_q = e_j. In one layer v_q = σ D[:, j], w_q = D[:, j] (`dual_basis`).
    Over several layers the earlier layers' outputs are in the stream the later ones
    read, so each earlier neuron also writes a private direction u_q orthogonal to the
    columns of W_E (invisible to the readout), and a later reader adds
    −σ Σ_q (D[:, j] · D[:, j_q]) u_q, which cancels what it would read of them. uand:
    neuron q reads D[:, i] + D[:, j] with bias −1 (ReLU(x_i + x_j − 1) = x_i x_j on
    booleans), writes nothing, and `R` reads it off with weight 1.

    Args:
      W_E: [d_embed, F]; split: neurons per layer; p, importance: as `naive_loss`;
      bias: include the (zero, or −1 for uand) biases; uand needs them.

    Returns:
      A dict of float64 arrays in the layout.
    """
    check_task(task)
    split = [int(k) for k in split]
    W_E = np.asarray(W_E, np.float64)
    F = W_E.shape[1]
    p = np.broadcast_to(np.asarray(p, np.float64), (F,))
    D = dual_basis(W_E)
    params = empty_params(W_E, split, bias)
    if task == "uand":
        return _naive_uand_params(params, D, p, split, bias)
    importance = np.ones(F) if importance is None else np.asarray(importance, np.float64)
    jobs = naive_jobs(task, sum(split), p, importance)
    slices = layer_slices(split)
    U = _complement(W_E, min(len(jobs), sum(split[:-1])))
    for l, sl in enumerate(slices):
        for q in range(sl.start, min(sl.stop, len(jobs))):
            j, sign = jobs[q]
            earlier = range(min(sl.start, U.shape[1]))
            read = D[:, j] - sum((D[:, j] @ D[:, jobs[e][0]]) * U[:, e] for e in earlier)
            params[f"W_in_{l}"][q - sl.start] = sign * read
            private = U[:, q] if q < U.shape[1] else 0.0
            params[f"W_out_{l}"][:, q - sl.start] = D[:, j] + private
    return params


def _naive_uand_params(params, D, p, split, bias):
    if not bias:
        raise ValueError("the naive uand construction needs biases (bias = true)")
    d_mlp = sum(split)
    P = pairs(D.shape[1])
    chosen = naive_priority(p[P[:, 0]] * p[P[:, 1]])[:d_mlp]
    params["R"] = np.zeros((len(P), d_mlp))
    for l, sl in enumerate(layer_slices(split)):
        for q in range(sl.start, min(sl.stop, len(chosen))):
            i, j = P[chosen[q]]
            params[f"W_in_{l}"][q - sl.start] = D[:, i] + D[:, j]
            params[f"b_in_{l}"][q - sl.start] = -1.0
            params["R"][chosen[q], q] = 1.0
    return params
