"""Is the geometry Adam's doing? The training loss depends on W only through WᵀW, so
SGD, momentum and L2 weight decay are rotation-equivariant: the project's trainer, run
from O W₀ with the same batches, ends at O W. Adam is equivariant only under signed
permutations. Also the basis-alignment measure's null under a random rotation."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels import models
from toymodels.analysis import basis
from toymodels.hyper import make_hyper
from toymodels.spec import ModelSpec, Spec, TrainSpec
from toymodels.train import make_train_one

F, H = 6, 3
LR = {"sgd": 0.1, "momentum": 0.02, "adamw": 3e-3}


def _haar(rng, m):
    """A Haar-random orthogonal [m, m] (QR of a Gaussian with the signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(m, m)))
    return q * np.sign(np.diag(r))


def _signed_permutation(rng, m):
    return np.eye(m)[rng.permutation(m)] * rng.choice([-1.0, 1.0], size=m)[:, None]


def _train(monkeypatch, optimizer, O=None):
    """W after 1,000 steps of the project's trainer (make_train_one), from W₀ (the
    relu_output init of the key) or from O W₀: the same key, so the same batches."""
    kind = models.get_model("relu_output")
    if O is not None:
        O32 = jnp.asarray(O, jnp.float32)
        init = lambda key, spec: {**kind.init(key, spec), "W": O32 @ kind.init(key, spec)["W"]}
        monkeypatch.setitem(models.MODELS, "rotated", dataclasses.replace(kind, init=init))
    spec = Spec(ModelSpec("relu_output" if O is None else "rotated", F, H),
                TrainSpec(steps=1000, batch_size=32, log_every=1000, eval_samples=4096,
                          optimizer=optimizer))
    hyper = make_hyper(F, feature_probability=0.3, importance=0.9 ** np.arange(F),
                       learning_rate=LR[optimizer], weight_decay=0.01)
    out = make_train_one(spec)(jax.random.key(3), hyper)
    return np.asarray(out.params["W"], np.float64), np.asarray(out.params["b"], np.float64)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_sgd_and_momentum_are_rotation_equivariant(monkeypatch, optimizer):
    O = _haar(np.random.default_rng(0), H)
    (Wa, ba), (Wb, bb) = _train(monkeypatch, optimizer), _train(monkeypatch, optimizer, O)
    assert np.abs(Wa).max() > 0.3  # it trained
    np.testing.assert_allclose(O @ Wa, Wb, atol=2e-4)
    np.testing.assert_allclose(Wa.T @ Wa, Wb.T @ Wb, atol=2e-4)
    np.testing.assert_allclose(ba, bb, atol=2e-4)


@pytest.mark.slow
def test_adam_is_equivariant_under_signed_permutations_only(monkeypatch):
    rng = np.random.default_rng(1)
    O, P = _haar(rng, H), _signed_permutation(rng, H)
    Wa, _ = _train(monkeypatch, "adamw")
    Wp, _ = _train(monkeypatch, "adamw", P)
    np.testing.assert_allclose(P @ Wa, Wp, atol=2e-4)
    Wo, _ = _train(monkeypatch, "adamw", O)
    assert np.abs(O @ Wa - Wo).max() > 0.05
    assert np.abs(Wa.T @ Wa - Wo.T @ Wo).max() > 0.05  # not the same model, rotated


@pytest.mark.parametrize("m", [2, 3, 5, 8])
def test_kurtosis_null_against_monte_carlo(m):
    """E κ of m i.i.d. normals: the closed form 3(m - 1)/(m + 1) within 4 standard errors
    of 200,000 draws (κ ≡ 1 at m = 2)."""
    z = np.random.default_rng(m).normal(size=(m, 200_000))
    k = np.asarray(basis.centred_kurtosis(jnp.asarray(z, jnp.float32)), np.float64)
    if m == 2:
        np.testing.assert_allclose(k, 1.0, rtol=1e-4)  # float32 rounding
    assert abs(k.mean() - basis.kurtosis_null(m)) < 4 * k.std() / np.sqrt(k.size) + 1e-6


def test_basis_kurtosis_of_rotated_trained_weights_has_the_null_mean():
    """A trained 20 -> 5 model (the zoo's basic_p0.001) under 4,000 Haar rotations of its
    hidden space: the mean measure is the closed-form null 2.0 within 4 standard errors,
    while axis-aligned columns give the maximum m - 2 + 1/(m - 1) = 3.25."""
    from toymodels import zoo
    W = np.asarray(zoo.load("basic_p0.001").W, np.float64)
    rng = np.random.default_rng(4)
    rotations = np.stack([_haar(rng, 5) for _ in range(4000)])
    rotated = jnp.asarray(rotations @ W, jnp.float32)
    k = np.asarray(jax.vmap(basis.basis_kurtosis)(rotated), np.float64)
    assert abs(k.mean() - 2.0) < 4 * k.std() / np.sqrt(k.size)
    aligned = np.zeros((5, 20))
    aligned[np.arange(20) % 5, np.arange(20)] = rng.uniform(0.6, 1.2, size=20)
    assert float(basis.basis_kurtosis(jnp.asarray(aligned, jnp.float32))) == pytest.approx(3.25, rel=1e-5)
    assert np.isnan(float(basis.basis_kurtosis(jnp.zeros((5, 20)))))


def test_rotation_pvalue_is_uniform_for_rotated_weights_and_small_for_aligned_ones():
    """For W = O W₀ with O Haar-random the p-value is uniform: its mean over 200 draws is
    1/2 within 4 standard errors (1/sqrt(12 · 200)); axis-aligned columns give p ~ 0."""
    from toymodels import zoo
    W = np.asarray(zoo.load("basic_p0.1").W, np.float64)
    rng = np.random.default_rng(5)
    rotated = jnp.asarray(np.stack([_haar(rng, 5) @ W for _ in range(200)]), jnp.float32)
    p = np.asarray(jax.vmap(lambda w: basis.rotation_pvalue(w, jax.random.key(0)))(rotated))
    assert abs(p.mean() - 0.5) < 4 / np.sqrt(12 * 200)
    aligned = np.zeros((5, 20), np.float32)
    aligned[np.arange(20) % 5, np.arange(20)] = 1.0
    assert float(basis.rotation_pvalue(jnp.asarray(aligned), jax.random.key(0))) < 0.01
