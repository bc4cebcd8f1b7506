"""The SAE kinds and options of issue 26: MP-SAE (toymodels.dictionary.sae_topk), BatchTopK
with a real k, a tied encoder and a decoder fixed to the truth (toymodels.dictionary.train),
one SAE at a time. Sweeps through the command line and the config's one-line errors are
tests/trainers/test_sae.py.

Expected values are hand-built (an orthonormal dictionary, a batch of distinct values) or
computed here by a separate numpy path written from the definitions, never taken from
the code under test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toymodels as tm
from toymodels import data
from toymodels.dictionary import sae_parts, sae_topk
from toymodels.dictionary.sae import SAE_KINDS
from toymodels.kinds import SAE_READS, SAE_REAL_K, SAE_TIED
from toymodels.dictionary.train import init_one, step_on_noise
from toymodels.trainers.sae import expand_sae


def hyper(**values) -> sae_parts.SAEHyper:
    """One SAE's hyperparameters (only the ones a test sets matter)."""
    defaults = dict(learning_rate=1e-3, weight_decay=0.0, momentum=0.0, beta1=0.9, beta2=0.999,
                    one_minus_beta1=0.1, one_minus_beta2=0.001, eps=1e-8, l1_coefficient=0.0,
                    k=1.0, k_aux=2, aux_coefficient=1 / 32, bandwidth=0.001, init_threshold=0.001,
                    dead_steps=10,
                    truth=np.zeros((4, 8)), feature_probability=np.zeros(8))
    ints = ("k_aux", "dead_steps")
    return sae_parts.SAEHyper(**{k: jnp.asarray(v, jnp.int32 if k in ints else jnp.float32)
                                 for k, v in {**defaults, **values}.items()})


def numpy_mp(dictionary: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """Non-negative matching pursuit from its definition, one example x [d] at a time: k
    times, j = argmax_j <r, d_j>; stop if that is not positive; c_j += <r, d_j>,
    r -= <r, d_j> d_j. Returns the code [N]."""
    code, r = np.zeros(len(dictionary)), x.astype(np.float64)
    for _ in range(k):
        corr = dictionary @ r
        j = int(np.argmax(corr))
        if corr[j] <= 1e-5 * np.linalg.norm(x):
            break
        code[j] += corr[j]
        r = r - corr[j] * dictionary[j]
    return code


# ---- MP-SAE


def test_mp_encoder_on_an_orthonormal_decoder_recovers_a_k_sparse_code_exactly():
    """Decoder rows: a rotation Q of 5 dims (orthonormal), b_dec = b. x = b + 2 d_1 + 0.5 d_3
    (hand-built, per column), and 0.7 d_4 alone: two steps find (2, 0.5) on latents 1 and
    3 and nothing else; a third step adds nothing (the residual is 0); k = 1 keeps the
    larger one."""
    Q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))
    decoder, b = Q.T.astype(np.float32), np.array([0.1, -0.2, 0.0, 0.3, 0.05], np.float32)
    codes = np.zeros((5, 2), np.float32)
    codes[1, 0], codes[3, 0], codes[4, 1] = 2.0, 0.5, 0.7
    x = (decoder.T @ codes + b[:, None]).astype(np.float32)  # [d, B]
    params = {"decoder": jnp.asarray(decoder), "b_dec": jnp.asarray(b)}
    encode = jax.jit(sae_topk.mp_encode)
    for k, expected in ((2, codes), (3, codes), (1, np.where(codes >= 0.7, codes, 0.0))):
        got = np.asarray(encode(params, None, x, hyper(k=k)))
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert ((got != 0) == (expected != 0)).all(), (k, got)


def test_mp_loss_is_the_pursuits_reconstruction_error_and_trains_the_decoder():
    """A random unit decoder of 6 latents in 4 dims (not orthogonal): the codes are numpy's
    pursuit (`numpy_mp`, k = 2) of x − b_dec, the loss the mean ||x − (codesᵀ D + b_dec)||²;
    its gradient reaches the decoder and b_dec (finite, non-zero) through the pursuit."""
    rng = np.random.default_rng(1)
    decoder = rng.normal(size=(6, 4))
    decoder = (decoder / np.linalg.norm(decoder, axis=1, keepdims=True)).astype(np.float32)
    b = (0.1 * rng.normal(size=4)).astype(np.float32)
    x = rng.normal(size=(4, 9)).astype(np.float32)  # [d, B]
    expected = np.stack([numpy_mp(decoder.astype(np.float64), x[:, i] - b, 2)
                         for i in range(9)], axis=1)
    error = np.mean(np.sum((x - (decoder.T @ expected + b[:, None])) ** 2, axis=0))
    params = {"decoder": jnp.asarray(decoder), "b_dec": jnp.asarray(b)}
    of_params = lambda p: sae_topk.mp_loss(p, None, x, hyper(k=2), jnp.float32(0.5))
    (loss, codes), grads = jax.jit(jax.value_and_grad(of_params, has_aux=True))(params)
    np.testing.assert_allclose(np.asarray(codes), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, error, rtol=1e-5)
    for name in ("decoder", "b_dec"):
        assert np.isfinite(grads[name]).all() and np.abs(grads[name]).max() > 1e-3, name


def test_mp_pursuit_steps_are_the_sweeps_largest_k():
    """An mp sweep's static pursuit (`SAESpec.pursuit_steps`, what its trainer and analysis
    run) is its largest k: 4 of the k axis [2, 4]; 0 for another kind."""
    raw = lambda kind: {"sae": {"source": "synthetic", "n_features": 12, "n_hidden": 5,
                                "kind": kind, "width": 12},
                        "train": {"steps": 10, "batch_size": 8, "log_every": 10},
                        "sweep": {"k": [2, 4]}}
    assert tm.parse_config(raw("mp"), "mp.toml").spec.sae.pursuit_steps == 4
    assert tm.parse_config(raw("topk"), "topk.toml").spec.sae.pursuit_steps == 0


@pytest.mark.slow
def test_mp_pursuit_cut_to_the_largest_k_changes_no_bit():
    """On a random unit decoder of 12 latents the pursuit cut to 4 iterations gives the
    codes, loss and gradients of the full 12, bit for bit, for k = 2 and 4 (the
    iterations past k add exactly 0). Slow: two compiled gradients through the pursuit."""
    rng = np.random.default_rng(3)
    decoder = rng.normal(size=(12, 5))
    params = {"decoder": jnp.asarray(decoder / np.linalg.norm(decoder, axis=1, keepdims=True),
                                     jnp.float32), "b_dec": jnp.asarray(0.1 * rng.normal(size=5), jnp.float32)}
    x = jnp.asarray(rng.normal(size=(5, 16)), jnp.float32)
    loss_of = lambda max_k: jax.jit(jax.value_and_grad(  # one program per max_k, k traced
        lambda p, h: sae_topk.mp_loss(p, None, x, h, jnp.float32(0.5), max_k), has_aux=True))
    cut, full = loss_of(4), loss_of(None)
    for k in (2, 4):
        (loss_4, codes_4), grads_4 = cut(params, hyper(k=k))
        (loss_n, codes_n), grads_n = full(params, hyper(k=k))
        np.testing.assert_array_equal(codes_4, codes_n)
        np.testing.assert_array_equal(loss_4, loss_n)
        for name in grads_n:
            np.testing.assert_array_equal(grads_4[name], grads_n[name])


# ---- BatchTopK with a real k


def test_batch_top_k_with_k_1_8_keeps_18_codes_of_a_batch_of_10():
    """5 latents x 10 examples of distinct positive values (a permutation of 1..50, over 50):
    round(1.8 · 10) = 18 codes kept, the 18 largest (values 33..50), for BatchTopK and
    Matryoshka alike (the same batch top-k)."""
    values = np.random.default_rng(2).permutation(50).reshape(5, 10) + 1
    pre = (values / 50).astype(np.float32)
    expected = np.where(values > 32, pre, 0.0)
    codes = np.asarray(jax.jit(sae_parts.batch_top_k)(pre, jnp.float32(1.8)))
    assert (codes != 0).sum() == 18
    np.testing.assert_array_equal(codes, expected)


# ---- a tied encoder, a decoder fixed to the truth: a few steps of one SAE


def test_the_config_lists_of_kinds_agree_with_the_registry():
    """`tied` is for exactly the kinds with an encoder (mp has none); a real k for kinds
    that read k."""
    assert set(SAE_TIED) == {n for n, kind in SAE_KINDS.items() if "encoder" in kind.dims}
    assert SAE_KINDS["mp"].dims == {"decoder": ("latent", "hidden"), "b_dec": ("hidden",)}
    assert all("k" in SAE_READS[n] for n in SAE_REAL_K)


def one_sae(sae: dict, steps: int, **train):
    """One SAE of a tiny synthetic source (8 features in 4 dims, p = 0.1) trained `steps`
    steps of batch 64 by `step_on_noise` (as the trainer, unbatched, in one compiled scan): (its initial params, its
    final params, the losses [steps], the source's truth [d, F])."""
    raw = {"sae": {"source": "synthetic", "n_features": 8, "n_hidden": 4, **sae},
           "data": {"feature_probability": 0.1},
           "train": {"steps": steps, "batch_size": 64, "log_every": steps, **train}}
    config = tm.parse_config(raw, "one.toml")
    spec = config.spec
    h = jax.tree.map(lambda a: jnp.asarray(a[0]), expand_sae(config).hyper)

    def train(key):  # one program: init, then a scan over the steps
        first = init_one(spec, key, h)
        step = lambda state, t: step_on_noise(
            spec, state, h, data.sample_noise(jax.random.fold_in(key, t), spec), t)
        end, losses = jax.lax.scan(step, first, jnp.arange(steps))
        return first.params, end.params, losses

    first, end, losses = jax.jit(train)(jax.random.key(0))
    return first, end, np.asarray(losses), np.asarray(h.truth)


def test_a_tied_encoder_is_the_decoder_after_training():
    """tied = true (a ReLU SAE): after 20 steps the stored encoder equals the decoder
    (W_e = W_dᵀ) to the bit, and both moved from their start (the decoder gets the
    encoder's gradient)."""
    start, tied, _, _ = one_sae({"kind": "relu", "tied": True}, 20, learning_rate=0.01)
    np.testing.assert_array_equal(tied["encoder"], tied["decoder"])
    assert np.abs(tied["decoder"] - start["decoder"]).max() > 1e-3


def test_a_decoder_fixed_to_the_truth_stays_the_truth_while_the_encoder_learns():
    """dictionary = "truth" (a ReLU SAE, width = F = 8, weight decay 0.01 that would move it):
    after 40 steps the decoder rows are still the source's unit columns (numpy's, to float32's
    rounding of the normalisation), the same bits as at the start, and b_dec is 0; the
    encoder moved and the loss fell."""
    start, end, losses, truth = one_sae({"kind": "relu", "dictionary": "truth",
                                         "l1_coefficient": 0.003},
                                        40, learning_rate=0.03, optimizer="adamw",
                                        weight_decay=0.01)
    unit = truth / np.linalg.norm(truth.astype(np.float64), axis=0)
    np.testing.assert_allclose(end["decoder"], unit.T, rtol=0, atol=3e-7)  # float32: a few ulp
    np.testing.assert_array_equal(end["decoder"], start["decoder"])
    np.testing.assert_array_equal(end["b_dec"], np.zeros(4))
    assert np.abs(end["encoder"] - start["encoder"]).max() > 1e-2
    assert losses[-10:].mean() < 0.8 * losses[:10].mean(), losses


def test_a_jumprelu_sae_starts_at_the_sweeps_init_threshold():
    """sae.init_threshold reaches the trainer's init (`init_one`): every θ_j = 0.5 at the
    start, not the default (Gemma Scope's 0.001)."""
    first, _, _, _ = one_sae({"kind": "jumprelu", "init_threshold": 0.5, "bandwidth": 2.0}, 1)
    np.testing.assert_allclose(np.exp(first["log_threshold"]), np.full(8, 0.5), rtol=1e-6)
