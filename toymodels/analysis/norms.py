"""Does a run's readout rely on the size of the hidden vector? (Norms and polytopes.)

If features are directions, rescaling the hidden vector changes no output unit's on/off
state; if meaning lives in polytopes (which output units are on, given the biases),
rescaling moves points across their faces. For ONE model with readout
x' = ReLU(W_out norm(h) + b) (norm the identity without a norm,
`toymodels.models.with_norm`), this module measures, for c in `RESCALES`:

- `flip_rate(c)`: the fraction of output states that flip when h is replaced by c·h
  BEFORE the norm (the question "does the model rely on the scale of h?"). The states
  are s_ij = [z_j(e_i) > 0] for the F one-hot inputs x = e_i (value 1) and the F outputs
  j: F² states, exact (no sampling) and cheap. With b = 0 and no norm,
  z(c·h) = c z(h), so no state flips for c > 0; with an rms or layer norm,
  norm(c·h) = norm(h) up to the norm's eps for ANY b, so the rate is 0 up to eps.
- `readout_flip_rate(c)`: the same with norm(h) replaced by c·norm(h), AFTER the norm
  (what the readout reads, as a LayerNorm gain would change it). Without a norm the two
  are one definition.
- `rescaled_loss(c)` and `readout_rescaled_loss(c)`: the population loss (as
  `final_loss`: exact in the strata of zero and one active feature, `RESCALE_SAMPLES`
  samples of the rest; with a norm the K = 1 integral is not exact and all strata are
  sampled) with h → c·h before the norm, and with norm(h) → c·norm(h) after it.

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


def _flips(params: Params, kind: ModelKind, norm: str, eps: float, scale: float,
           pre_scale: float) -> jax.Array:
    """[] the fraction of the F² one-hot output states [z_j(e_i) > 0] that differ between
    `kind` with `norm` and the same reading scale · norm(pre_scale · h)."""
    base = one_hot_logits(params, with_norm(kind, norm, eps))[1:] > 0
    scaled = one_hot_logits(params, with_norm(kind, norm, eps, scale, pre_scale))[1:] > 0
    return jnp.mean(base != scaled)


def flip_rate(params: Params, kind: ModelKind, norm: str, eps: float, c: float) -> jax.Array:
    """[] the fraction of the F² states [z_j(e_i) > 0] that differ between the model
    (`kind` with `norm`) and the same model with its hidden vector h replaced by c·h
    before the norm (a norm undoes that up to its eps, whatever the bias).

    Example:
      >>> p = {"W": jnp.array([[1.0, 0.0]]), "b": jnp.array([-0.6, 0.0])}
      >>> float(flip_rate(p, get_model("relu_output"), "none", 1e-5, 0.5))  # z_0(e_0): 0.4 -> -0.1
      0.25
      >>> float(flip_rate(p, get_model("relu_output"), "rms", 1e-5, 0.5))  # norm(h / 2) = norm(h)
      0.0
    """
    return _flips(params, kind, norm, eps, 1.0, c)


def readout_flip_rate(params: Params, kind: ModelKind, norm: str, eps: float,
                      c: float) -> jax.Array:
    """[] as `flip_rate`, with the readout's input norm(h) replaced by c·norm(h) (after
    the norm; without a norm the same as `flip_rate`).

    Example:
      >>> p = {"W": jnp.array([[1.0, 0.0]]), "b": jnp.array([-0.6, 0.0])}
      >>> float(readout_flip_rate(p, get_model("relu_output"), "rms", 1e-5, 0.5))  # 0.4 -> -0.1
      0.25
    """
    return _flips(params, kind, norm, eps, c, 1.0)


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
                  key: jax.Array, readout: bool = False) -> tuple[jax.Array, jax.Array]:
    """([] loss, [] its standard error): the population loss of the model (spec.model's
    kind and norm) with its hidden vector h replaced by c·h before the norm, or with
    `readout` its normalised vector norm(h) replaced by c·norm(h)
    (`evaluation.population_loss`: `spec.train.eval_samples` samples drawn from `key`, of
    the K >= 2 stratum, or of all of it where a norm makes the K = 1 integral inexact)."""
    m = spec.model
    scales = (c, 1.0) if readout else (1.0, c)
    kind = with_norm(get_model(m.kind), m.norm, m.norm_eps, *scales)
    return evaluation.population_loss(params, hyper, spec, kind, key)


def reliance_spec(spec: Spec) -> Spec:
    """`spec` with `RESCALE_SAMPLES` evaluation samples (what `rescaled_loss` reads)."""
    return dataclasses.replace(
        spec, train=dataclasses.replace(spec.train, eval_samples=RESCALE_SAMPLES))


def reliance_one(W: jax.Array, b: jax.Array, spec: Spec) -> dict:
    """The cheap norm-reliance variables of ONE run (W [H, F], b [F]; `spec` static), from
    the one-hot inputs alone: `norm_flip_rate` and `readout_flip_rate` [C]
    (C = len(RESCALES); `flip_rate`, `readout_flip_rate`) and `n_decoded` []."""
    m = spec.model
    kind = get_model(m.kind)
    params = {"W": W, "b": b}
    rates = lambda fn: jnp.stack([fn(params, kind, m.norm, m.norm_eps, c) for c in RESCALES])
    return {
        "norm_flip_rate": rates(flip_rate),
        "readout_flip_rate": rates(readout_flip_rate),
        "n_decoded": jnp.sum(decoded(W, b, with_norm(kind, m.norm, m.norm_eps)),
                             dtype=jnp.int32),
    }


def rescaled_loss_one(W: jax.Array, b: jax.Array, density: jax.Array,
                      importance: jax.Array, key: jax.Array, spec: Spec) -> dict:
    """`rescaled_loss` and `readout_rescaled_loss` [C] of ONE run (W [H, F], b [F],
    density [F], importance [F]; `key` the evaluation draws shared by every run; `spec`
    static): `RESCALE_SAMPLES` samples of the population loss per factor c and
    definition (one set without a norm, where the two are the same), so `analyze` adds
    them only on request."""
    params = {"W": W, "b": b}
    zero = jnp.zeros(())  # the training hyperparameters: unread by the evaluation
    hyper = Hyper(feature_probability=density, importance=importance, dropout=zero,
                  learning_rate=zero, weight_decay=zero, l1_hidden=zero, momentum=zero,
                  beta1=zero, beta2=zero, one_minus_beta1=zero, one_minus_beta2=zero,
                  eps=zero, l1_weights=None)
    spec = reliance_spec(spec)
    losses = lambda readout: jnp.stack([rescaled_loss(params, hyper, spec, c, key, readout)[0]
                                        for c in RESCALES])
    before = losses(False)
    after = before if spec.model.norm == "none" else losses(True)
    return {"rescaled_loss": before, "readout_rescaled_loss": after}
