"""The residual MLP of ONE model and ONE example: its init and forward pass (its labels
and loss: `toymodels.compute.tasks`).

x [n] is embedded by W_E [d_embed, n] (unit-norm columns), r_0 = W_E x; layer l adds
mlp_l(r) = W_out_l ReLU(W_in_l r + b_in_l) + b_out_l to the stream, r_l = r_{l-1} +
mlp_l(r_{l-1}); the output is W_U r_L (identity_relu), W_U Σ_l mlp_l(r_{l-1}) (relu, abs:
the residual removed) or R a (uand: a the neuron activations of every layer, R learned),
with W_U = W_Eᵀ or learned. Parameters (the layout decided in issue 27): W_E [d_embed, n],
W_in_l [k_l, d_embed], b_in_l [k_l], W_out_l [d_embed, k_l], b_out_l [d_embed] (biases
only with `bias`), W_U [n, d_embed] (readout "learned", not uand), R [n_pairs, d_mlp] (uand).

Initialisation (Braun et al. 2025's residual MLP, whose public code fills every weight
with torch's default `kaiming_uniform_`): every trained matrix U(-b, b) with b =
sqrt(6 / fan_in), the Kaiming-uniform bound for a ReLU, fan_in its input width (d_embed
for W_in and W_U, k_l for W_out, d_mlp for R); biases 0. (Where that code stores a
weight [d_in, d_out], torch's fan is its output width; we take the input width.) W_E: Gaussian columns normalised to unit norm, drawn from
key(embed_seed) alone, so runs of other seeds share it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toymodels.residual_config import ResidualSpec

Params = dict[str, jax.Array]


def embedding(key: jax.Array, n: int, d_embed: int) -> jax.Array:
    """[d_embed, n] Gaussian columns normalised to unit norm; the key is consumed."""
    g = jax.random.normal(key, (d_embed, n), jnp.float32)
    return g / jnp.linalg.norm(g, axis=0, keepdims=True)


def embed_key(embed_seed: jax.Array) -> jax.Array:
    """The key W_E is drawn from: key(embed_seed), shared by every run with that seed."""
    return jax.random.key(embed_seed)


def kaiming_uniform(key: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """[out, in] U(-b, b), b = sqrt(6 / in): torch's kaiming_uniform_ for a ReLU."""
    bound = jnp.sqrt(6.0 / shape[1])
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def fixed_names(spec: ResidualSpec) -> tuple[str, ...]:
    """The parameters that are not trained: W_E when the embedding is fixed."""
    return ("W_E",) if spec.embed == "fixed" else ()


def init(key: jax.Array, spec: ResidualSpec, embed_seed=0) -> Params:
    """One model's parameters: W_E from `embed_key(embed_seed)`, the rest from `key`
    (consumed), one split per layer and readout.

    Example:
      >>> spec = ResidualSpec(6, 10, 4, 2, (2, 2))
      >>> sorted(init(jax.random.key(0), spec))[:3]
      ['W_E', 'W_in_0', 'W_in_1']
    """
    n, d = spec.n_features, spec.d_embed
    keys = jax.random.split(key, 2 * spec.n_layers + 1)
    params = {"W_E": embedding(embed_key(embed_seed), n, d)}
    for l, k in enumerate(spec.split):
        params[f"W_in_{l}"] = kaiming_uniform(keys[2 * l], (k, d))
        params[f"W_out_{l}"] = kaiming_uniform(keys[2 * l + 1], (d, k))
        if spec.bias:
            params[f"b_in_{l}"] = jnp.zeros(k, jnp.float32)
            params[f"b_out_{l}"] = jnp.zeros(d, jnp.float32)
    if spec.task == "uand":
        params["R"] = kaiming_uniform(keys[-1], (spec.n_outputs, spec.d_mlp))
    elif spec.readout == "learned":
        params["W_U"] = kaiming_uniform(keys[-1], (n, d))
    return params


def mlp(params: Params, l: int, r: jax.Array, spec: ResidualSpec):
    """Layer l on the stream r [d_embed]: (its output [d_embed], its activations [k_l])."""
    pre = params[f"W_in_{l}"] @ r + (params[f"b_in_{l}"] if spec.bias else 0.0)
    a = jax.nn.relu(pre)
    return params[f"W_out_{l}"] @ a + (params[f"b_out_{l}"] if spec.bias else 0.0), a


def forward(params: Params, x: jax.Array, spec: ResidualSpec) -> jax.Array:
    """ŷ [n_outputs] of ONE example x [n] (see the module docstring).

    Example:
      >>> spec = ResidualSpec(6, 10, 4, 1, (4,))
      >>> forward(init(jax.random.key(0), spec), jnp.ones(6), spec).shape
      (6,)
    """
    r = params["W_E"] @ x
    added, acts = jnp.zeros_like(r), []
    for l in range(spec.n_layers):  # the layers (static), not steps or models
        out, a = mlp(params, l, r, spec)
        r, added = r + out, added + out
        acts.append(a)
    if spec.task == "uand":
        return params["R"] @ jnp.concatenate(acts)
    W_U = params["W_U"] if spec.readout == "learned" else params["W_E"].T
    return W_U @ (r if spec.task == "identity_relu" else added)


def fold(params: Params, spec: ResidualSpec, gram: jax.Array | None = None) -> dict:
    """The model's maps between its sources, once per batch: `forward` without d_embed.

    The stream is r = W_E x + Σ_{l<m} (W_out_l a_l + b_out_l) before layer m, so layer m
    reads W_in_m r + b_in_m = (W_in_m W_E) x + Σ_{l<m} (W_in_m W_out_l) a_l + (b_in_m +
    W_in_m Σ_{l<m} b_out_l), and the readout W_U r likewise (only the MLPs' terms for relu
    and abs; R a for uand). Each example then costs O(d_mlp (n + d_mlp) + n (n + d_mlp))
    instead of O(d_embed (n + d_mlp)): the same function as `forward` up to rounding.
    `gram` [n, n], if given, is W_EᵀW_E (of a fixed W_E, computed once per run), the
    readout's W_U W_E when W_U = W_Eᵀ.

    Returns:
      {"into": per layer m, [W_in_m W_E [k_m, n], W_in_m W_out_l [k_m, k_l] for l < m],
       "bias": per layer m [k_m], "read": [W_U W_E [n, n] or None, W_U W_out_l [n, k_l]
       per layer] (absent for uand), "read_bias": [n] (absent for uand)}.
    """
    b_out = [params[f"b_out_{l}"] if spec.bias else None for l in range(spec.n_layers)]
    W_E, into, bias = params["W_E"], [], []
    for m in range(spec.n_layers):
        W_in = params[f"W_in_{m}"]
        into.append([W_in @ W_E] + [W_in @ params[f"W_out_{l}"] for l in range(m)])
        stream_bias = sum(b_out[:m]) if spec.bias and m else jnp.zeros(W_E.shape[0])
        bias.append((params[f"b_in_{m}"] if spec.bias else 0.0) + W_in @ stream_bias)
    out = {"into": into, "bias": bias}
    if spec.task != "uand":
        W_U = params["W_U"] if spec.readout == "learned" else W_E.T
        direct = gram if gram is not None and spec.readout == "transpose" else W_U @ W_E
        out["read"] = [direct if spec.task == "identity_relu" else None] + [
            W_U @ params[f"W_out_{l}"] for l in range(spec.n_layers)]
        out["read_bias"] = W_U @ sum(b_out) if spec.bias else jnp.zeros(W_U.shape[0])
    return out


def forward_folded(folded: dict, R: jax.Array | None, x: jax.Array,
                   spec: ResidualSpec) -> jax.Array:
    """ŷ [..., n_outputs] of x [..., n] from `fold(params, spec)` (and params["R"] for
    uand, else None): `forward`'s value, without the d_embed-wide stream.

    Written as right products (v @ Mᵀ), so that it takes ONE example x [n] or a batch
    [B, n] as it is: a batch then costs one [B, n] @ [n, k] matmul per map, which XLA
    on CPU runs ~1.3x faster than the vmap of the per-example matvecs (no transposed
    [k, B] intermediates)."""
    sources = [x]
    for into, bias in zip(folded["into"], folded["bias"]):
        pre = sum(v @ M.T for M, v in zip(into, sources))
        sources.append(jax.nn.relu(pre + jnp.broadcast_to(bias, pre.shape)))
    if spec.task == "uand":
        return jnp.concatenate(sources[1:], axis=-1) @ R.T
    read = [(M, v) for M, v in zip(folded["read"], sources) if M is not None]
    out = sum(v @ M.T for M, v in read)
    return out + jnp.broadcast_to(folded["read_bias"], out.shape)


def activations(params: Params, x: jax.Array, spec: ResidualSpec) -> jax.Array:
    """[d_mlp] the neuron activations of ONE example x [n], layer 0's first."""
    r, acts = params["W_E"] @ x, []
    for l in range(spec.n_layers):
        out, a = mlp(params, l, r, spec)
        r = r + out
        acts.append(a)
    return jnp.concatenate(acts)
