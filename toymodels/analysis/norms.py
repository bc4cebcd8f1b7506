"""Does a run's readout rely on the size of the hidden vector? (Norms and polytopes.)

If features are directions, rescaling the vector the readout reads changes no output
unit's on/off state; if meaning lives in polytopes (which output units are on, given the
biases), rescaling moves points across their faces. For ONE model with readout
x' = ReLU(W_out r + b), r = norm(h) the vector it reads (r = h without a norm,
`toymodels.models.with_norm`), this module measures, for c in `RESCALES`:

- `flip_rate(c)`: the fraction of output states that flip when r is replaced by c·r.
  The states are s_ij = [z_j(e_i) > 0] for the F one-hot inputs x = e_i (value 1) and
  the F outputs j: F² states, exact (no sampling) and cheap. With b = 0 and no norm,
  z(c·r) = c z(r), so no state flips for c > 0.
- `rescaled_loss(c)`: the population loss (as `final_loss`: exact in the strata of zero
  and one active feature, `RESCALE_SAMPLES` samples of the rest; with a norm the K = 1
  integral is not exact and all strata are sampled) with r replaced by c·r.

For a model with a norm the rescaling is applied after the norm (to what the readout
reads, as a LayerNorm gain would change it); rescaling h before the norm would change
nothing but the ε's share, by construction.

`decoded(W, b, kind)` counts the features the readout tells apart: feature i is decoded
when its output on its own one-hot input e_i exceeds its output on x = 0 and on every
other e_j by more than `DECODE_MARGIN`. With LayerNorm on m = 2 at most 2 features can
be decoded, whatever W, b and ε (see `decoded`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from toymodels import evaluation
from toymodels.hyper import Hyper
from toymodels.models import ModelKind, Params, get_model, with_norm
from toymodels.spec import EVAL_BATCH, Spec

RESCALES = (0.5, 2.0)  # the factors c of the readout's input
RESCALE_SAMPLES = 4 * EVAL_BATCH  # evaluation samples of `rescaled_loss`
DECODE_MARGIN = 0.1  # how much more feature i's output must be on e_i than elsewhere
RELIANCE_KINDS = ("relu_output", "relu_hidden")  # ReLU readouts with a tied W and b


def one_hot_logits(params: Params, kind: ModelKind) -> jax.Array:
    """[F + 1, F] the output pre-activations z_j on x = 0 (row 0) and on each one-hot
    input e_i (row 1 + i)."""
    F = params["b"].shape[0]
    x = jnp.concatenate([jnp.zeros((F, 1)), jnp.eye(F)], axis=1)  # [F, 1 + F]
    z, _ = kind.logits(params, x, jnp.ones(()))
    return z.T


def flip_rate(params: Params, kind: ModelKind, norm: str, eps: float, c: float) -> jax.Array:
    """[] the fraction of the F² states [z_j(e_i) > 0] that differ between the model
    (`kind` with `norm`) and the same model reading c times its normalised hidden vector.

    Example:
      >>> p = {"W": jnp.array([[1.0, 0.0]]), "b": jnp.array([-0.6, 0.0])}
      >>> float(flip_rate(p, get_model("relu_output"), "none", 1e-5, 0.5))  # z_0(e_0): 0.4 -> -0.1
      0.25
    """
    base = one_hot_logits(params, with_norm(kind, norm, eps))[1:] > 0
    scaled = one_hot_logits(params, with_norm(kind, norm, eps, c))[1:] > 0
    return jnp.mean(base != scaled)


def decoded(W: jax.Array, b: jax.Array, kind: ModelKind) -> jax.Array:
    """[F] bool: feature i's output on e_i exceeds its output on x = 0 and on every other
    one-hot input e_j by more than `DECODE_MARGIN` (`kind` with its norm applied).

    With LayerNorm on m = 2 every normalised hidden vector is s·(1, −1) with
    s = d / sqrt(d² + ε), d = (h_0 − h_1) / 2, so e_i reads s_i = s(c_i / 2) with
    c_i = W_0i − W_1i, and output j on e_i is ReLU(c_j s_i + b_j): s is increasing in d,
    so of two features with c of one sign, the one with the smaller |s| gives its own
    output at least as large on the other's input, and a feature with c = 0 outputs the
    same on every input. So at most one feature per sign is decoded: at most 2 in all,
    an antipodal pair (no pentagon).
    """
    y = kind.readout(one_hot_logits({"W": W, "b": b}, kind))  # [1 + F, F]
    own = jnp.diagonal(y[1:])
    others = jnp.where(jnp.eye(W.shape[1], dtype=bool), -jnp.inf, y[1:])
    rival = jnp.maximum(y[0], jnp.max(others, axis=0))
    return own - rival > DECODE_MARGIN


def rescaled_loss(params: Params, hyper: Hyper, spec: Spec, c: float,
                  key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """([] loss, [] its standard error): the population loss of the model (spec.model's
    kind and norm) reading c times its normalised hidden vector
    (`evaluation.population_loss`: `spec.train.eval_samples` samples drawn from `key`, of
    the K >= 2 stratum, or of all of it where a norm makes the K = 1 integral inexact)."""
    m = spec.model
    kind = with_norm(get_model(m.kind), m.norm, m.norm_eps, c)
    return evaluation.population_loss(params, hyper, spec, kind, key)


def reliance_spec(spec: Spec) -> Spec:
    """`spec` with `RESCALE_SAMPLES` evaluation samples (what `rescaled_loss` reads)."""
    return dataclasses.replace(
        spec, train=dataclasses.replace(spec.train, eval_samples=RESCALE_SAMPLES))


def reliance_one(W: jax.Array, b: jax.Array, spec: Spec) -> dict:
    """The cheap norm-reliance variables of ONE run (W [H, F], b [F]; `spec` static), from
    the one-hot inputs alone: `norm_flip_rate` [C] (C = len(RESCALES)) and `n_decoded` []."""
    m = spec.model
    kind = get_model(m.kind)
    return {
        "norm_flip_rate": jnp.stack([flip_rate({"W": W, "b": b}, kind, m.norm, m.norm_eps, c)
                                     for c in RESCALES]),
        "n_decoded": jnp.sum(decoded(W, b, with_norm(kind, m.norm, m.norm_eps)),
                             dtype=jnp.int32),
    }


def rescaled_loss_one(W: jax.Array, b: jax.Array, density: jax.Array,
                      importance: jax.Array, key: jax.Array, spec: Spec) -> dict:
    """`rescaled_loss` [C] of ONE run (W [H, F], b [F], density [F], importance [F]; `key`
    the evaluation draws shared by every run; `spec` static): `RESCALE_SAMPLES` samples
    of the population loss per factor c, so `analyze` adds it only on request."""
    params = {"W": W, "b": b}
    zero = jnp.zeros(())  # the training hyperparameters: unread by the evaluation
    hyper = Hyper(feature_probability=density, importance=importance, dropout=zero,
                  learning_rate=zero, weight_decay=zero, l1_hidden=zero, momentum=zero,
                  beta1=zero, beta2=zero, one_minus_beta1=zero, one_minus_beta2=zero,
                  eps=zero, l1_weights=None)
    spec = reliance_spec(spec)
    return {"rescaled_loss": jnp.stack([rescaled_loss(params, hyper, spec, c, key)[0]
                                        for c in RESCALES])}
