"""The loss of any residual-MLP parameters, per output: exact strata or Monte Carlo.

Where this sits: `toymodels.theory.computation` (closed-form baselines and the naive
construction) and `toymodels.theory.uand` (the U-AND constructions) build parameters in
the layout of one model (`W_E [d_embed, F]`, per layer `W_in_l [k_l, d_embed]`,
`b_in_l [k_l]`, `W_out_l [d_embed, k_l]`, `b_out_l [d_embed]`, optional `W_U [F, d_embed]`,
`R [C(F,2), d_mlp]` for uand); the functions here evaluate them. `forward` and `labels`
are written for ONE example and vmapped over examples in one place (`_batched`).

- Signed tasks (identity_relu, relu, abs), input law: each feature on with probability
  p_i, value Uniform[-1, 1). `mc_loss` is plain Monte Carlo, with the standard error of
  every per-output mean and of the total. `signed_loss` splits by the number K of
  active features as `final_loss` does: L = P(K=0) L(0) + Σ_i P(only i) E[L | only i]
  + P(K>=2) E[L | K>=2]. With one layer the K <= 1 strata are exact: on the line
  x = ±t e_i the pre-activations are affine in t, so the output is piecewise linear with
  a kink where a neuron crosses 0 (t = −b_k / (±(W_in W_E)_ki)), the labels linear on
  each side, and the squared error piecewise quadratic: 2-point Gauss-Legendre between
  the sorted kinks integrates it exactly. The K >= 2 stratum is sampled from its exact
  conditional law (`toymodels.evaluation.sample_many`). Deeper models: `mc_loss`.
- uand (boolean inputs): `uand_loss` enumerates the inputs with exactly 0, 1 and 2
  active features exactly, as `toymodels.evaluation.final_loss` does its strata,
  L = P(K=0) L(0) + Σ_i P(only i) L(e_i) + Σ_{i<j} P(only i, j) L(e_i + e_j) + E[L; K>=3],
  and samples only the last term, E[L 1{K >= 3}], from the plain law (samples with
  K <= 2 contribute 0), so its standard error is the estimate's.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from toymodels import evaluation
from toymodels.theory.computation import check_task, pairs

GAUSS_2 = 3.0**-0.5  # 2-point Gauss-Legendre nodes on [-1, 1]: ±1/√3, weights 1


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A loss, per output and in total, with standard errors (0 where exact).

    Attributes:
      per_output: [F_out] E[(ŷ_i − y_i)²]; per_output_se: [F_out] its standard error.
      total: Σ_i I_i per_output_i / F_out; total_se: its standard error.
      exact_total: the part of `total` computed exactly (uand: the K <= 2 strata).
    """

    per_output: np.ndarray
    per_output_se: np.ndarray
    total: float
    total_se: float
    exact_total: float = 0.0


def n_layers(params: dict) -> int:
    """The number of MLP layers of a parameter dict (keys W_in_0, W_in_1, ...)."""
    return sum(1 for key in params if key.startswith("W_in_"))


def forward(params: dict, x: jax.Array, task: str) -> jax.Array:
    """The output ŷ of ONE example x: [F] -> [F] ([C(F, 2)] for uand).

    The residual stream r_0 = W_E x, r_l = r_{l-1} + W_out_l ReLU(W_in_l r_{l-1} +
    b_in_l) + b_out_l; identity_relu reads W_U r_L, relu and abs W_U (r_L − r_0)
    (W_U = W_Eᵀ unless `W_U` is given), uand R times the concatenated activations.
    """
    r0 = params["W_E"] @ x
    r, acts = r0, []
    for l in range(n_layers(params)):
        h = jax.nn.relu(params[f"W_in_{l}"] @ r + params.get(f"b_in_{l}", 0.0))
        acts.append(h)
        r = r + params[f"W_out_{l}"] @ h + params.get(f"b_out_{l}", 0.0)
    if task == "uand":
        return params["R"] @ jnp.concatenate(acts)
    W_U = params.get("W_U", params["W_E"].T)
    return W_U @ (r if task == "identity_relu" else r - r0)


def labels(x: jax.Array, W_E: jax.Array, task: str, s: jax.Array) -> jax.Array:
    """The labels y of ONE example x: [F] (uand: [C(F, 2)] pairwise ANDs, row-major)."""
    if task == "uand":
        i, j = np.triu_indices(x.shape[0], k=1)
        return x[i] * x[j]
    mixed = W_E.T @ (W_E @ x) - x
    f = {"identity_relu": x + jax.nn.relu(x), "relu": jax.nn.relu(x), "abs": jnp.abs(x)}
    return f[task] + s * mixed


def squared_errors(params: dict, x: jax.Array, task: str, s: jax.Array) -> jax.Array:
    """[F_out] (ŷ_i − y_i)² of ONE example, the labels' W_E from `params`."""
    return (forward(params, x, task) - labels(x, params["W_E"], task, s)) ** 2


@functools.partial(jax.jit, static_argnames="task")
def _batched(params: dict, x: jax.Array, task: str, s: jax.Array) -> jax.Array:
    """[B, F_out] squared errors of examples x: [B, F] (the one vmap over examples)."""
    return jax.vmap(squared_errors, in_axes=(None, 0, None, None))(params, x, task, s)


def _as_jax(params: dict) -> dict:
    return {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}


def sample_signed(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """[n, F] signed inputs: on with probability p, value Uniform[-1, 1)."""
    on = rng.random((n, len(p))) < p
    return np.where(on, rng.uniform(-1.0, 1.0, (n, len(p))), 0.0)


def sample_boolean(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """[n, F] boolean inputs, on with probability p."""
    return (rng.random((n, len(p))) < p).astype(np.float64)


def _errors_in_chunks(params, x, task, s, chunk) -> np.ndarray:
    jp, s = _as_jax(params), jnp.float32(s)
    out = [np.asarray(_batched(jp, jnp.asarray(x[a : a + chunk], jnp.float32), task, s),
                      np.float64) for a in range(0, len(x), chunk)]
    return np.concatenate(out)


def mc_loss(params: dict, task: str, p, importance=None, s: float = 0.0,
            n_samples: int = 65536, seed: int = 0, chunk: int = 8192) -> Estimate:
    """Monte Carlo loss of a signed task, per output and in total, with standard errors.

    Args:
      params: one model in the layout; task: identity_relu, relu or abs.
      p: [F] or scalar feature probability; importance: [F] (default ones).
      s: label_mixing; n_samples, seed: the sample (numpy's default generator).

    Returns:
      `Estimate` (nothing exact: exact_total = 0).
    """
    check_task(task)
    F = np.asarray(params["W_E"]).shape[1]
    p = np.broadcast_to(np.asarray(p, np.float64), (F,))
    importance = np.ones(F) if importance is None else np.asarray(importance, np.float64)
    x = sample_signed(np.random.default_rng(seed), p, n_samples)
    err = _errors_in_chunks(params, x, task, s, chunk)  # [B, F]
    total = err @ importance / F
    root = np.sqrt(n_samples)
    return Estimate(err.mean(0), err.std(0, ddof=1) / root, float(total.mean()),
                    float(total.std(ddof=1) / root))


def uand_strata(p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(P(K=0), [F] P(only i on), [C(F,2)] P(only i and j on)) of boolean inputs."""
    p = np.asarray(p, np.float64)
    none = float(np.prod(1 - p))
    odds = p / (1 - p)
    P = pairs(len(p))
    return none, none * odds, none * odds[P[:, 0]] * odds[P[:, 1]]


def uand_inputs(F: int) -> np.ndarray:
    """[1 + F + C(F, 2), F] the inputs with 0, 1 and 2 active features, in that order."""
    P = pairs(F)
    two = np.zeros((len(P), F))
    two[np.arange(len(P)), P[:, 0]] = 1.0
    two[np.arange(len(P)), P[:, 1]] = 1.0
    return np.concatenate([np.zeros((1, F)), np.eye(F), two])


def uand_exact_errors(params: dict, chunk: int = 2048) -> np.ndarray:
    """[1 + F + C(F, 2), C(F, 2)] squared errors on every input with K <= 2 (`uand_inputs`)."""
    F = np.asarray(params["W_E"]).shape[1]
    return _errors_in_chunks(params, uand_inputs(F), "uand", 0.0, chunk)


def uand_loss(params: dict, p, n_samples: int = 16384, seed: int = 0,
              chunk: int = 2048) -> Estimate:
    """The uand loss: K <= 2 strata exact, E[L; K >= 3] sampled (see the module doc).

    Args:
      params: one model in the layout with `R`; p: [F] or scalar, each below 1;
      n_samples: plain samples for the K >= 3 part (0: leave it out, se 0).

    Returns:
      `Estimate`; `exact_total` is the K <= 2 part.
    """
    F = np.asarray(params["W_E"]).shape[1]
    p = np.broadcast_to(np.asarray(p, np.float64), (F,))
    none, only, two = uand_strata(p)
    err = uand_exact_errors(params, chunk)
    weights = np.concatenate([[none], only, two])
    exact = weights @ err  # [C(F, 2)]
    if n_samples == 0:
        zero = np.zeros_like(exact)
        return Estimate(exact, zero, float(exact.mean()), 0.0, float(exact.mean()))
    x = sample_boolean(np.random.default_rng(seed), p, n_samples)
    many = _errors_in_chunks(params, x, "uand", 0.0, chunk) * (x.sum(1) >= 3)[:, None]
    root = np.sqrt(n_samples)
    per = exact + many.mean(0)
    total_many = many.mean(1)
    return Estimate(per, many.std(0, ddof=1) / root, float(per.mean()),
                    float(total_many.std(ddof=1) / root), float(exact.mean()))


def line_losses(params: dict, task: str, s: jax.Array) -> jax.Array:
    """[F, F_out] E[(ŷ − y)² | only feature i on] of a one-layer model, exactly.

    Feature i's value is ±t, t ~ Uniform[0, 1), each sign with probability ½; between
    consecutive kinks of the neurons the error is quadratic in t (see the module doc).
    """
    W_E = params["W_E"]
    F = W_E.shape[1]
    slope = params["W_in_0"] @ W_E  # [K, F]
    bias = params.get("b_in_0", jnp.zeros(slope.shape[0]))

    def one(i, sign):  # ∫_0^1 err(sign t e_i) dt, [F_out]
        c = sign * slope[:, i]
        kinks = jnp.clip(-bias / jnp.where(c != 0, c, 1.0), 0.0, 1.0)
        edges = jnp.sort(jnp.concatenate([jnp.zeros(1), jnp.where(c != 0, kinks, 0.0),
                                          jnp.ones(1)]))
        mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
        t = jnp.concatenate([mid - half * GAUSS_2, mid + half * GAUSS_2])  # [2(K+1)]
        x = sign * t[:, None] * jnp.eye(F, dtype=W_E.dtype)[i][None, :]
        err = jax.vmap(squared_errors, in_axes=(None, 0, None, None))(params, x, task, s)
        return jnp.concatenate([half, half]) @ err

    both = jax.vmap(lambda i: (one(i, 1.0) + one(i, -1.0)) / 2)
    return both(jnp.arange(F))


_line_losses = jax.jit(line_losses, static_argnames="task")


def signed_loss(params: dict, task: str, p, importance=None, s: float = 0.0,
                n_samples: int = 16384, seed: int = 0, chunk: int = 8192) -> Estimate:
    """The loss of a signed task with the K <= 1 strata exact (one layer; see the
    module doc) and K >= 2 sampled from its conditional law; deeper models: `mc_loss`.

    Args: as `mc_loss`; every p_i below 1.

    Returns:
      `Estimate`; `exact_total` is the K <= 1 part.
    """
    check_task(task)
    if n_layers(params) != 1:
        return mc_loss(params, task, p, importance, s, n_samples, seed, chunk)
    F = np.asarray(params["W_E"]).shape[1]
    p = np.broadcast_to(np.asarray(p, np.float64), (F,))
    importance = np.ones(F) if importance is None else np.asarray(importance, np.float64)
    jp, js = _as_jax(params), jnp.float32(s)
    at_zero = np.asarray(_batched(jp, jnp.zeros((1, F)), task, js), np.float64)[0]
    lines = np.asarray(_line_losses(jp, task, js), np.float64)  # [F, F_out]
    none, only, _ = uand_strata(p)
    exact = none * at_zero + only @ lines
    strata = evaluation.strata(jnp.asarray(p, jnp.float32))
    u = jax.random.uniform(jax.random.key(seed), (F, n_samples))
    on, unit = evaluation.sample_many(u, jnp.asarray(p, jnp.float32), strata.tail)
    x = np.asarray(jnp.where(on, 2.0 * unit - 1.0, 0.0), np.float64).T  # [B, F]
    many = float(strata.many) * _errors_in_chunks(params, x, task, s, chunk)
    root = np.sqrt(n_samples)
    per = exact + many.mean(0)
    total_many = many @ importance / F
    return Estimate(per, many.std(0, ddof=1) / root, float(importance @ per / F),
                    float(total_many.std(ddof=1) / root), float(importance @ exact / F))
