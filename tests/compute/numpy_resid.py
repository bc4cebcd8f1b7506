"""The residual MLP and its tasks written again in float64 numpy, from the definitions of
issue 27 (not from toymodels.compute): the reference of tests/compute and
tests/trainers/test_residual.py."""

import numpy as np


def forward(params: dict, x: np.ndarray, task: str, n_layers: int, bias: bool,
            readout: str) -> np.ndarray:
    """ŷ [N, O] of inputs x [N, n]: r_0 = W_E x; r_l = r_{l-1} + W_out ReLU(W_in r + b_in)
    + b_out; identity_relu reads W_U r_L, relu/abs W_U Σ_l mlp_l, uand R a."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    r = x @ p["W_E"].T
    added, acts = np.zeros_like(r), []
    for l in range(n_layers):
        pre = r @ p[f"W_in_{l}"].T + (p[f"b_in_{l}"] if bias else 0.0)
        a = np.maximum(pre, 0.0)
        out = a @ p[f"W_out_{l}"].T + (p[f"b_out_{l}"] if bias else 0.0)
        r, added = r + out, added + out
        acts.append(a)
    if task == "uand":
        return np.concatenate(acts, axis=1) @ p["R"].T
    W_U = p["W_U"] if readout == "learned" else p["W_E"].T
    return (r if task == "identity_relu" else added) @ W_U.T


def labels(x: np.ndarray, W_E: np.ndarray, s: float, task: str) -> np.ndarray:
    """y [N, O]: x + ReLU(x), ReLU(x) or |x|, plus s (W_EᵀW_E − I) x; uand: x_i x_j, i < j."""
    n = x.shape[1]
    if task == "uand":
        return np.stack([x[:, i] * x[:, j] for i in range(n) for j in range(i + 1, n)], axis=1)
    W = np.asarray(W_E, np.float64)
    mixing = x @ (W.T @ W - np.eye(n)).T
    base = {"identity_relu": x + np.maximum(x, 0), "relu": np.maximum(x, 0), "abs": np.abs(x)}
    return base[task] + s * mixing


def inputs(rng, N: int, p: np.ndarray, task: str) -> np.ndarray:
    """[N, n]: feature i on with probability p_i; on, Uniform[-1, 1) (1 for uand)."""
    on = rng.random((N, len(p))) < p
    value = np.ones((N, len(p))) if task == "uand" else rng.uniform(-1.0, 1.0, (N, len(p)))
    return np.where(on, value, 0.0)
