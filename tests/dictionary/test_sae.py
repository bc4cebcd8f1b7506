"""The sparse autoencoders' pieces (toymodels.dictionary.sae_parts, sae_penalty): the JumpReLU
straight-through gradients, TopK, BatchTopK and the k-th largest value, AuxK and the ReLU
objective. SAE sweeps end to end are tests/trainers/test_sae.py.

Expected values are written out by hand or computed here by a separate brute-force
numpy path, never taken from the code under test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels.dictionary import sae_parts
from toymodels.dictionary import sae_penalty


def hyper(**values) -> sae_parts.SAEHyper:
    """One SAE's hyperparameters (only the ones a test sets matter)."""
    defaults = dict(learning_rate=1e-3, weight_decay=0.0, momentum=0.0, beta1=0.9, beta2=0.999,
                    one_minus_beta1=0.1, one_minus_beta2=0.001, eps=1e-8, l1_coefficient=0.0,
                    k=1, k_aux=2, aux_coefficient=1 / 32, bandwidth=0.001, init_threshold=0.001,
                    dead_steps=10,
                    truth=np.zeros((4, 8)), feature_probability=np.zeros(8))
    ints = ("k", "k_aux", "dead_steps")
    return sae_parts.SAEHyper(**{k: jnp.asarray(v, jnp.int32 if k in ints else jnp.float32)
                           for k, v in {**defaults, **values}.items()})


# ---- the JumpReLU straight-through estimator (Rajamanoharan et al. 2024b, eq. 11)

# z, θ, ε; by hand: u = (z - θ)/ε, K(u) = 1[|u| < 1/2]
#   z = [0.5, 1.0, 1.04, 2.0], θ = 1, ε = 0.1: u = [-5, 0, 0.4, 10], K = [0, 1, 1, 0], ΣK = 2
#     jump_relu = [0, 0, 1.04, 2] (z = θ is not above θ); ∂z = H(z - θ) = [0, 0, 1, 1]
#     ∂θ jump_relu = -(θ/ε) ΣK = -(1/0.1)·2 = -20;  ∂θ step = -(1/ε) ΣK = -20
#   z = [0.3, 0.45, 0.5, 0.55, 0.61, 1.0], θ = 0.5, ε = 0.2: u = [-1, -0.25, 0, 0.25,
#     0.55, 2.5], K = [0, 1, 1, 1, 0, 0], ΣK = 3; ∂z = [0, 0, 0, 1, 1, 1]
#     ∂θ jump_relu = -(0.5/0.2)·3 = -7.5;  ∂θ step = -(1/0.2)·3 = -15
STE = [
    ([0.5, 1.0, 1.04, 2.0], 1.0, 0.1, [0, 0, 1.04, 2.0], [0, 0, 1, 1], -20.0, -20.0),
    ([0.3, 0.45, 0.5, 0.55, 0.61, 1.0], 0.5, 0.2, [0, 0, 0, 0.55, 0.61, 1.0],
     [0, 0, 0, 1, 1, 1], -7.5, -15.0),
]


@pytest.mark.parametrize("z, theta, eps, value, dz, dtheta_jump, dtheta_step", STE)
def test_jump_relu_and_step_straight_through_gradients_by_hand(z, theta, eps, value, dz,
                                                               dtheta_jump, dtheta_step):
    z, theta, eps = (jnp.asarray(v, jnp.float32) for v in (z, theta, eps))
    np.testing.assert_allclose(sae_penalty.jump_relu(z, theta, eps), value, rtol=1e-6)
    np.testing.assert_array_equal(sae_penalty.step(z, theta, eps), np.asarray(value) > 0)
    total = lambda f: lambda z, t, e: jnp.sum(f(z, t, e))
    grad = lambda f: jax.jit(jax.grad(total(f), argnums=(0, 1, 2)))(z, theta, eps)
    gz, gt, ge = grad(sae_penalty.jump_relu)
    np.testing.assert_array_equal(gz, dz)
    np.testing.assert_allclose(gt, dtheta_jump, rtol=1e-5)
    assert ge == 0
    gz, gt, ge = grad(sae_penalty.step)
    np.testing.assert_array_equal(gz, np.zeros(len(dz)))
    np.testing.assert_allclose(gt, dtheta_step, rtol=1e-5)
    assert ge == 0


def test_a_threshold_broadcast_over_a_batch_gets_the_gradient_summed_over_the_batch():
    """θ [N] against z [B, N], as JumpReLU SAEs use it, with an upstream weight w per entry.
    By hand (ε = 0.1, θ = [1, 1.5, 3]): u = (z - θ)/ε = [[-0.3, 5, -0.2], [0.3, -4.9, 20]],
    K = [[1, 0, 1], [1, 0, 0]]; Σ_b w K = [1·1 + 4·1, 0, 3·1] = [5, 0, 3], so
    ∂θ jump_relu = -(θ/ε)·[5, 0, 3] = [-50, 0, -90], ∂θ step = -(1/ε)·[5, 0, 3] =
    [-50, 0, -30]; ∂z jump_relu = w·H(z - θ) = [[0, 2, 0], [4, 0, 6]]."""
    z = jnp.asarray([[0.97, 2.0, 2.98], [1.03, 1.01, 5.0]])
    theta, eps = jnp.asarray([1.0, 1.5, 3.0]), jnp.asarray(0.1)
    w = jnp.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    loss = lambda f: lambda z, t: jnp.sum(w * f(z, t, eps))
    gz, gt = jax.jit(jax.grad(loss(sae_penalty.jump_relu), argnums=(0, 1)))(z, theta)
    assert gt.shape == (3,)
    np.testing.assert_allclose(gt, [-50.0, 0.0, -90.0], rtol=1e-5)
    np.testing.assert_array_equal(gz, [[0, 2, 0], [4, 0, 6]])
    gz, gt = jax.jit(jax.grad(loss(sae_penalty.step), argnums=(0, 1)))(z, theta)
    np.testing.assert_allclose(gt, [-50.0, 0.0, -30.0], rtol=1e-5)
    np.testing.assert_array_equal(gz, np.zeros((2, 3)))



def test_jump_relu_threshold_gradient_sums_over_the_batch_columns():
    """The kinds' layout: θ [N, 1] over z [N, B]; ∂/∂θ sums each latent's row."""
    z = jnp.asarray([[0.5, 1.02, 0.98], [2.0, 0.0, 1.0]], jnp.float32)  # N = 2, B = 3
    theta = jnp.asarray([[1.0], [1.0]], jnp.float32)
    g = jax.grad(lambda t: jnp.sum(sae_penalty.jump_relu(z, t, jnp.float32(0.1))))(theta)
    # K((z - θ)/ε) = 1 for |z - θ| < 0.05: row 0 has 1.02 and 0.98 (2 hits), row 1 has 1.0
    np.testing.assert_allclose(g, [[-20.0], [-10.0]], rtol=1e-6)
    assert g.shape == (2, 1)


def test_jumprelu_at_a_given_initial_threshold_forward_and_threshold_gradient_by_hand():
    """sae.init_threshold = 0.5 (SynthSAEBench's θ₀), ε = 2 (its bandwidth), λ = 0.4 past
    the warm-up, one SAE of N = 2 latents on d = 2 with W_e = W_d = I and zero biases, so
    z = x, on the batch x_a = (1.0, 0.3), x_b = (2.0, -0.2) (columns).

    Forward: f = z·H(z − θ) = [[1.0, 2.0], [0, 0]]; x̂ = f, r = x − x̂ = [[0, 0], [0.3, -0.2]].
    The threshold's straight-through gradient ("Jumping Ahead", eq. 11 and 12, the
    rectangle kernel K(u) = 1[|u| < 1/2], so K = 1 where |z − θ| < ε/2 = 1):
      reconstruction, mean_b ||r||²: ∂/∂f_jb = −2 r_jb / B: latent 1 gets 0, latent 2
        [−0.3, 0.2]; K of latent 2 at z = 0.3, −0.2: [1, 1]; ∂/∂θ_2 = −(θ/ε) Σ_b K ∂/∂f =
        −0.25·(−0.3 + 0.2) = 0.025; ∂/∂θ_1 = 0.
      L0, λ mean_b Σ_j H(z_jb − θ_j): ∂/∂θ_j = −(λ/(ε B)) Σ_b K: latent 1 (z = 1.0, 2.0:
        K = [1, 0]) −0.4/4·1 = −0.1; latent 2 (K = [1, 1]) −0.4/4·2 = −0.2.
    So ∂/∂θ = [−0.1, −0.175] and, the parameter being log θ, ∂/∂log θ = θ ∂/∂θ =
    [−0.05, −0.0875]. The loss: mean ||r||² = (0.09 + 0.04)/2 = 0.065, plus λ·L0 = 0.4·1."""
    params = sae_penalty.jumprelu_init(jax.random.key(0), 2, 2, threshold=jnp.float32(0.5))
    np.testing.assert_allclose(np.exp(params["log_threshold"]), [0.5, 0.5], rtol=1e-6)
    params = {**params, "encoder": jnp.eye(2), "decoder": jnp.eye(2),
              "b_enc": jnp.zeros(2), "b_dec": jnp.zeros(2)}
    x = jnp.asarray([[1.0, 2.0], [0.3, -0.2]])  # [d, B]
    h = hyper(l1_coefficient=0.4, bandwidth=2.0, init_threshold=0.5)
    codes = sae_penalty.jumprelu_encode(params, None, x, h)
    np.testing.assert_allclose(codes, [[1.0, 2.0], [0.0, 0.0]], rtol=1e-6)
    (loss, _), grads = jax.value_and_grad(sae_penalty.jumprelu_loss, has_aux=True)(
        params, None, x, h, jnp.float32(1.0))
    np.testing.assert_allclose(loss, 0.065 + 0.4, rtol=1e-5)
    np.testing.assert_allclose(grads["log_threshold"], [-0.05, -0.0875], rtol=1e-5)


# ---- TopK, BatchTopK, the k-th largest value


def test_kth_largest_agrees_with_numpy_sort_for_a_traced_k():
    values = np.random.default_rng(0).normal(size=(3, 7)).astype(np.float32)
    kth = jax.jit(sae_parts.kth_largest)
    for k in range(1, 8):
        np.testing.assert_array_equal(kth(values, jnp.int32(k)), np.sort(values, axis=-1)[:, 7 - k])


def test_top_k_keeps_exactly_k_per_row_for_a_traced_k():
    """Positive inputs: exactly k non-zero codes per row; signed inputs: the brute-force
    ReLU(TopK) (argsort each row, keep the k largest, zero the negatives)."""
    rng = np.random.default_rng(1)
    positive = rng.uniform(0.1, 1.0, size=(16, 9)).astype(np.float32)
    signed = rng.normal(size=(16, 9)).astype(np.float32)
    top_k = jax.jit(sae_parts.top_k)
    for k in range(1, 10):
        codes = np.asarray(top_k(positive.T, jnp.int32(k))).T  # the kinds' layout: [N, B]
        assert ((codes != 0).sum(axis=1) == k).all(), k
        expected = np.zeros_like(signed)
        for row, pre in enumerate(signed):
            keep = np.argsort(-pre)[:k]
            expected[row, keep] = np.maximum(pre[keep], 0)
        np.testing.assert_array_equal(np.asarray(top_k(signed.T, jnp.int32(k))).T, expected)


def test_batch_top_k_keeps_exactly_b_times_k_over_the_batch():
    """B·k codes in all (not k per row): brute force over the flattened batch."""
    pre = np.random.default_rng(2).uniform(0.0, 1.0, size=(8, 6)).astype(np.float32)
    batch_top_k = jax.jit(sae_parts.batch_top_k)
    for k in (1, 2, 5):
        codes = np.asarray(batch_top_k(pre.T, jnp.int32(k))).T  # the kinds' layout: [N, B]
        assert (codes != 0).sum() == 8 * k
        keep = np.argsort(-pre.ravel())[:8 * k]
        expected = np.zeros(pre.size, np.float32)
        expected[keep] = pre.ravel()[keep]
        np.testing.assert_array_equal(codes, expected.reshape(pre.shape))
        assert ((codes != 0).sum(axis=1) != k).any()  # per row it varies


# ---- AuxK and the ReLU objective, against numpy


def test_aux_k_loss_is_zero_without_dead_latents_and_the_dead_latents_residual_fit_with():
    """Gao et al.'s AuxK, brute force: e = x - x̂, the k_aux largest pre-activations of the
    dead latents (ReLU'd) decoded without bias, mean over the batch of ||e - ê||²."""
    rng = np.random.default_rng(3)
    B, N, d = 5, 6, 4
    decoder = rng.normal(size=(N, d)).astype(np.float32)
    x, x_hat = (rng.normal(size=(B, d)).astype(np.float32) for _ in range(2))
    pre = rng.normal(size=(B, N)).astype(np.float32)
    params, h = {"decoder": jnp.asarray(decoder)}, hyper(k_aux=2, dead_steps=10)
    stats = lambda since: sae_parts.Stats(jnp.asarray(since, jnp.int32), jnp.float32(0), jnp.int32(50))
    alive = stats([0, 3, 9, 0, 1, 0])  # all below dead_steps = 10
    aux_k = jax.jit(sae_parts.aux_k_loss)
    x, x_hat, pre = x.T, x_hat.T, pre.T  # the kinds' layout: one example per column
    assert aux_k(params, alive, x, x_hat, pre, h) == 0.0
    dead = stats([20, 0, 10, 0, 0, 50])  # latents 0, 2 and 5 are dead (>= 10 steps silent)
    aux = np.zeros((B, N), np.float32)
    for row in range(B):
        top = [j for j in sorted([0, 2, 5], key=lambda j: -pre[j, row])][:2]
        aux[row, top] = np.maximum(pre[top, row], 0)
    expected = np.mean(np.sum((x.T - x_hat.T - aux @ decoder) ** 2, axis=1))
    got = aux_k(params, dead, x, x_hat, pre, h)
    assert got > 0
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # e is under stop-gradient: AuxK trains the dead latents, not the reconstruction
    of_x_hat = lambda xh: sae_parts.aux_k_loss(params, dead, x, xh, pre, h)
    g = jax.jit(jax.grad(of_x_hat))(jnp.asarray(x_hat))
    np.testing.assert_array_equal(g, np.zeros((d, B)))


def test_relu_objective_is_the_reconstruction_error_at_zero_l1_and_adds_the_weighted_l1():
    """relu_loss against numpy: f = ReLU(x Eᵀ + b_e), x̂ = f D + b_d; at λ = 0 the mean
    ||x - x̂||², else plus λ Σ_j f_j ||d_j|| (mean over the batch), λ ramped up over the
    first 5% of training (half of it at 2.5%)."""
    rng = np.random.default_rng(4)
    B, N, d = 7, 6, 4
    p = {"encoder": rng.normal(size=(N, d)), "b_enc": rng.normal(size=N) * 0.1,
         "decoder": rng.normal(size=(N, d)), "b_dec": rng.normal(size=d) * 0.1}
    p = {k: v.astype(np.float32) for k, v in p.items()}
    x = rng.normal(size=(B, d)).astype(np.float32)
    f = np.maximum(x @ p["encoder"].T + p["b_enc"], 0)
    assert 0 < (f > 0).mean() < 1
    error = np.mean(np.sum((x - (f @ p["decoder"] + p["b_dec"])) ** 2, axis=1))
    penalty = np.mean(f @ np.linalg.norm(p["decoder"], axis=1))
    params, stats = {k: jnp.asarray(v) for k, v in p.items()}, sae_parts.init_stats(N)
    relu_loss = jax.jit(sae_penalty.relu_loss)
    loss, codes = relu_loss(params, stats, x.T, hyper(l1_coefficient=0.0), jnp.float32(0.5))
    np.testing.assert_allclose(loss, error, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(codes).T, f, rtol=1e-5, atol=1e-6)
    for progress, ramp in ((0.5, 1.0), (0.025, 0.5)):
        loss, _ = relu_loss(params, stats, x.T, hyper(l1_coefficient=0.2), jnp.float32(progress))
        np.testing.assert_allclose(loss, error + 0.2 * ramp * penalty, rtol=1e-5)
