"""The residual MLP's baselines against independent numerics (issue 27, item 3).

Every expected value comes from outside the code under test: a numpy forward pass written
here from the model's definition and run on large Monte Carlo samples, numpy least
squares, or enumeration. Tolerances are 4 standard errors.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from toymodels.compute import tasks
from toymodels.residual_config import ResidualSpec
from toymodels.theory import computation as C
from toymodels.theory import computation_loss as CL
from toymodels.theory import uand as U

F, D_EMBED = 12, 24
P = np.linspace(0.15, 0.45, F)
IMPORTANCE = 0.9 ** np.arange(F)


def embedding(F=F, d=D_EMBED, seed=0):
    W = np.random.default_rng(seed).normal(size=(d, F))
    return W / np.linalg.norm(W, axis=0)


def np_forward(params, x, task):
    """ŷ for a batch x: [B, F], from the definition (residual stream, ReLU MLPs)."""
    L = sum(k.startswith("W_in_") for k in params)
    r0 = x @ params["W_E"].T
    r, acts = r0, []
    for l in range(L):
        h = np.maximum(r @ params[f"W_in_{l}"].T + params.get(f"b_in_{l}", 0.0), 0.0)
        acts.append(h)
        r = r + h @ params[f"W_out_{l}"].T + params.get(f"b_out_{l}", 0.0)
    if task == "uand":
        return np.concatenate(acts, axis=1) @ params["R"].T
    return (r if task == "identity_relu" else r - r0) @ params["W_E"]


def np_labels(x, W_E, task, s):
    if task == "uand":
        i, j = np.triu_indices(x.shape[1], k=1)
        return x[:, i] * x[:, j]
    f = {"identity_relu": x + np.maximum(x, 0), "relu": np.maximum(x, 0), "abs": np.abs(x)}
    return f[task] + s * (x @ (W_E.T @ W_E - np.eye(x.shape[1])))


def signed(rng, n, p=P):
    return np.where(rng.random((n, len(p))) < p, rng.uniform(-1, 1, (n, len(p))), 0.0)


def mc_total(params, task, s, x, importance):
    """(mean, standard error) of Σ_i I_i (ŷ_i − y_i)² / F_out over the samples x."""
    err = (np_forward(params, x, task) - np_labels(x, params["W_E"], task, s)) ** 2
    per = err @ importance / err.shape[1]
    return per.mean(), per.std(ddof=1) / np.sqrt(len(per)), err


@pytest.mark.parametrize("task", ["identity_relu", "relu", "abs"])
@pytest.mark.parametrize("s", [0.0, 1.0, -0.6])
def test_naive_closed_form_matches_monte_carlo(task, s):
    W_E = embedding()
    params = C.naive_params(W_E, task, [5], P, IMPORTANCE)
    x = signed(np.random.default_rng(1), 150_000)
    mean, se, err = mc_total(params, task, s, x, IMPORTANCE)
    base = C.naive_loss(W_E, task, 5, P, IMPORTANCE, s=s)
    assert abs(mean - base.total) < 4 * se, (mean, base.total, se)
    per_se = err.std(0, ddof=1) / np.sqrt(len(x))
    assert np.all(np.abs(err.mean(0) - base.per_output) < 4 * per_se + 1e-12)


def test_naive_over_three_layers_matches_monte_carlo():
    """The private directions cancel what later layers would read of earlier ones."""
    W_E = embedding(d=F + 6)
    params = C.naive_params(W_E, "relu", [2, 4, 3], P, IMPORTANCE)
    x = signed(np.random.default_rng(2), 200_000)
    mean, se, _ = mc_total(params, "relu", 0.5, x, IMPORTANCE)
    assert abs(mean - C.naive_loss(W_E, "relu", 9, P, IMPORTANCE, s=0.5).total) < 4 * se


def test_naive_abs_counts_two_neurons_per_feature():
    """|x| needs ReLU(x) + ReLU(−x): 4 neurons compute 2 features; one neuron halves."""
    W_E = np.eye(4)
    p = np.full(4, 0.3)
    four, five = (C.naive_loss(W_E, "abs", k, p).per_output for k in (4, 5))
    assert np.allclose(four, [0, 0, 0.1, 0.1]) and np.allclose(five, [0, 0, 0.05, 0.1])


def test_module_monte_carlo_agrees_with_closed_form():
    W_E = embedding()
    params = C.naive_params(W_E, "identity_relu", [5], P, IMPORTANCE)
    est = CL.mc_loss(params, "identity_relu", P, IMPORTANCE, s=0.3, n_samples=200_000)
    base = C.naive_loss(W_E, "identity_relu", 5, P, IMPORTANCE, s=0.3)
    assert abs(est.total - base.total) < 4 * est.total_se


def test_naive_uand_matches_monte_carlo():
    m = 7
    p = np.linspace(0.2, 0.5, m)
    params = C.naive_params(np.eye(m), "uand", [6], p)
    rng = np.random.default_rng(3)
    x = (rng.random((300_000, m)) < p).astype(float)
    mean, se, _ = mc_total(params, "uand", 0.0, x, np.ones(m * (m - 1) // 2))
    assert abs(mean - C.naive_loss(np.eye(m), "uand", 6, p).total) < 4 * se


def fit_rank_k(x, t, k, importance, sweeps=200):
    """min over A [F_out, k], C [k, F], b of the samples' Σ_i I_i (t_i − (A C x)_i − b_i)²
    by alternating least squares (t scaled by √I, so the weighted fit is a plain one),
    each step the normal equations in the samples' covariances S_xx, S_tx."""
    root = np.sqrt(importance)
    xc, tc = x - x.mean(0), t * root - (t * root).mean(0)
    S_xx, S_tx = xc.T @ xc / len(x), tc.T @ xc / len(x)
    Cm = np.random.default_rng(0).normal(size=(k, x.shape[1]))
    for _ in range(sweeps):
        A = S_tx @ Cm.T @ np.linalg.inv(Cm @ S_xx @ Cm.T)  # given C
        Cm = np.linalg.solve(A.T @ A, A.T @ S_tx @ np.linalg.inv(S_xx))  # given A
    B = (A @ Cm) / root[:, None]
    return B, t.mean(0) - x.mean(0) @ B.T


@pytest.mark.parametrize("task,s,k", [("identity_relu", 0.0, 4), ("relu", 0.5, 3),
                                      ("abs", -1.0, 12), ("identity_relu", 1.0, 12)])
def test_linear_closed_form_matches_least_squares(task, s, k):
    W_E = embedding()
    rng = np.random.default_rng(4)
    x_fit, x_test = signed(rng, 100_000), signed(rng, 100_000)
    residual = (lambda x: x @ (W_E.T @ W_E)) if task == "identity_relu" else (lambda x: 0)
    target = lambda x: np_labels(x, W_E, task, s) - residual(x)  # noqa: E731
    if k == F:
        X = np.concatenate([x_fit, np.ones((len(x_fit), 1))], 1)
        coef = np.linalg.lstsq(X, target(x_fit), rcond=None)[0]
        B, b = coef[:-1].T, coef[-1]
    else:
        B, b = fit_rank_k(x_fit, target(x_fit), k, IMPORTANCE)
    err = (target(x_test) - x_test @ B.T - b) ** 2
    per = err @ IMPORTANCE / F
    closed = C.linear_loss(W_E, task, k, P, IMPORTANCE, s=s)
    se = per.std(ddof=1) / np.sqrt(len(per))
    assert abs(per.mean() - closed.total) < 4 * se + 2e-3 * closed.total
    assert np.allclose(err.mean(0), closed.per_output, rtol=0.05, atol=1e-4)


def test_linear_uand_matches_least_squares():
    m, k = 6, 4
    p = np.linspace(0.2, 0.5, m)
    rng = np.random.default_rng(5)
    x_fit, x_test = ((rng.random((100_000, m)) < p).astype(float) for _ in range(2))
    y = lambda x: np_labels(x, None, "uand", 0)  # noqa: E731
    B, b = fit_rank_k(x_fit, y(x_fit), k, np.ones(m * (m - 1) // 2))
    err = ((y(x_test) - x_test @ B.T - b) ** 2).mean(1)
    closed = C.linear_loss(np.eye(m), "uand", k, p).total
    assert abs(err.mean() - closed) < 4 * err.std(ddof=1) / np.sqrt(len(err)) + 2e-3 * closed


def test_a_linear_map_beats_naive_only_through_the_mixing():
    """Braun et al.'s setting (F = 100, d_embed = 1000, d_mlp = 50, p = 0.01): with the
    published labels (s = 0) the best rank-50 *linear* map already beats the naive
    baseline, by cancelling the embedding's mixing; with clean labels (s = 1) it loses
    (Bhagat et al. 2025's point, from the two closed forms, each checked above)."""
    W_E = embedding(F=100, d=1000)
    ratio = {s: C.linear_loss(W_E, "identity_relu", 50, 0.01, s=s).total
             / C.naive_loss(W_E, "identity_relu", 50, 0.01, s=s).total for s in (0, 1)}
    assert ratio[0] < 0.9 and ratio[1] > 1.3, ratio


def test_block_construction_is_exact_on_one_active_circuit():
    m, d, block = 8, 12, 3
    W_E = embedding(F=m, d=10)
    params = U.block_uand_params(W_E, d, np.full(m, 0.1), block=block)
    x = CL.uand_inputs(m)[1 + m :]  # every input with exactly one pair on
    err = (np_forward(params, x, "uand") - np_labels(x, W_E, "uand", 0)) ** 2
    covered = params["R"].sum(1) > 0
    assert covered.sum() == d // block
    assert np.max(err[covered]) < 1e-20  # the active circuit covered: no error anywhere
    assert np.allclose(err[~covered].sum(1), 1.0)  # not covered: only its own output
    assert np.allclose(CL.uand_exact_errors(params)[1 + m :], err, atol=1e-6)


def test_uand_strata_loss_matches_plain_monte_carlo():
    m = 8
    p = np.full(m, 0.25)
    params = U.random_uand_params(np.eye(m), 40, 0.4, seed=1)
    est = CL.uand_loss(params, p, n_samples=100_000, seed=2)
    x = (np.random.default_rng(6).random((200_000, m)) < p).astype(float)
    mean, se, _ = mc_total(params, "uand", 0.0, x, np.ones(m * (m - 1) // 2))
    assert abs(est.total - mean) < 4 * np.hypot(se, est.total_se), (est.total, mean)
    assert est.exact_total < est.total


def k2_error(m, d, connection, seeds):
    """Per-construction mean over outputs of the error on exactly-one-pair inputs
    (numpy forward on every such input; the K <= 1 inputs have none)."""
    x = CL.uand_inputs(m)[1 + m :]
    out = []
    for seed in seeds:
        params = U.random_uand_params(np.eye(m), d, connection, seed=seed)
        out.append(((np_forward(params, x, "uand") - np_labels(x, None, "uand", 0)) ** 2)
                   .sum(1).mean())
    return np.array(out)


@pytest.mark.parametrize("m,d,c", [(10, 64, 0.3), (12, 200, 0.15), (8, 30, 0.6)])
def test_random_uand_closed_form_matches_constructions(m, d, c):
    errs = k2_error(m, d, c, range(40))
    expected = U.random_uand_error(m, d, c)
    assert abs(errs.mean() - expected) < 4 * errs.std(ddof=1) / np.sqrt(len(errs))


def test_random_uand_zero_error_below_two_active():
    params = U.random_uand_params(embedding(F=9, d=15), 50, 0.5, seed=0)
    assert np.max(CL.uand_exact_errors(params)[: 1 + 9]) < 1e-10


def test_random_uand_error_falls_with_d_as_theory_says():
    """Paper's p_c = log² m / √d: the measured slope of log K=2 error against log d
    equals the closed form's; both lie between −1 (the paper's ε ∝ d^{-1/2}, squared
    error ∝ 1/d) and −2 (the disjoint pairs' p_c⁴ at small d)."""
    m, ds = 20, np.array([128, 256, 512, 1024, 2048])
    measured = np.array([k2_error(m, d, U.paper_connection(m, d), range(6)).mean()
                         for d in ds])
    theory = np.array([U.random_uand_error(m, d, U.paper_connection(m, d)) for d in ds])
    slope_measured = np.polyfit(np.log(ds), np.log(measured), 1)[0]
    slope_theory = np.polyfit(np.log(ds), np.log(theory), 1)[0]
    print(f"\nK=2 error per input: d={ds.tolist()} measured={measured.round(4).tolist()} "
          f"theory={theory.round(4).tolist()} slopes {slope_measured:.3f} "
          f"{slope_theory:.3f}")
    assert abs(slope_measured - slope_theory) < 0.1
    assert -2.0 < slope_theory < -1.0
    assert np.allclose(measured, theory, rtol=0.15)


def random_params(seed=0, F=F, d=D_EMBED, k=7):
    rng = np.random.default_rng(seed)
    params = C.empty_params(embedding(F, d), [k], bias=True)
    params.update(W_in_0=rng.normal(size=(k, d)), b_in_0=0.3 * rng.normal(size=k),
                  W_out_0=0.3 * rng.normal(size=(d, k)), b_out_0=0.1 * rng.normal(size=d))
    return params


@pytest.mark.parametrize("task", ["identity_relu", "relu", "abs"])
def test_one_feature_stratum_matches_quadrature(task):
    """E[error | only i on] of a one-layer model with biases, against the midpoint rule
    on a fine grid of both signs (numpy forward)."""
    params = random_params(1)
    t = (np.arange(8_000) + 0.5) / 8_000
    expected = []
    for i in range(F):
        x = np.concatenate([t, -t])[:, None] * np.eye(F)[i][None, :]
        err = (np_forward(params, x, task) - np_labels(x, params["W_E"], task, 0.4)) ** 2
        expected.append(err.mean(0))
    got = np.asarray(CL._line_losses(CL._as_jax(params), task, np.float32(0.4)))
    assert np.allclose(got, expected, rtol=2e-4, atol=1e-6)


def test_signed_strata_loss_matches_plain_monte_carlo():
    params, p = random_params(2), np.linspace(0.02, 0.1, F)
    est = CL.signed_loss(params, "identity_relu", p, IMPORTANCE, s=0.3, n_samples=20_000)
    x = signed(np.random.default_rng(7), 100_000, p)
    mean, se, _ = mc_total(params, "identity_relu", 0.3, x, IMPORTANCE)
    assert abs(est.total - mean) < 4 * np.hypot(se, est.total_se), (est.total, mean)


def test_signed_strata_loss_of_naive_matches_closed_form():
    W_E, p = embedding(), np.linspace(0.01, 0.05, F)
    params = C.naive_params(W_E, "abs", [5], p, IMPORTANCE)
    est = CL.signed_loss(params, "abs", p, IMPORTANCE, s=0.5, n_samples=20_000)
    base = C.naive_loss(W_E, "abs", 5, p, IMPORTANCE, s=0.5)
    assert abs(est.total - base.total) < 4 * est.total_se + 1e-6 * base.total
    assert est.total_se < 0.01 * base.total  # most of it exact at this density


def test_random_uand_inputs_in_superposition_read_through_the_embedding():
    """Reading through W_E itself (d_embed < m): each neuron's input is Σ_{i in S_k} (G x)_i
    − 1, checked against the numpy forward on every input with exactly two features on."""
    m, d_embed = 10, 6
    W_E = embedding(F=m, d=d_embed)
    params = U.random_uand_params(W_E, 30, 0.3, seed=2, read="embedding")
    x = CL.uand_inputs(m)
    err = (np_forward(params, x, "uand") - np_labels(x, W_E, "uand", 0)) ** 2
    assert np.allclose(CL.uand_exact_errors(params), err, atol=1e-5)
    assert np.max(err[: 1 + m]) > 0  # interference: unlike the exact reading


# Naive with biases: the naive construction plus the output bias that gives every output
# its mean. Checked against the trainer's own loss (toymodels.compute.tasks) on samples,
# and against the closed forms written here from the moments of x ~ p·Uniform[-1, 1):
# E ReLU(x) = p/4, E ReLU(x)² = p/6, E|x| = p/2, E|x|² = p/3.


def trainer_mc(params, task, p, importance, s, n, seed, split):
    """(mean, SE, [F_out] per-output means, [F_out] their SEs) of the trainer's loss
    (`toymodels.compute.tasks.squared_errors`, float32) on n sampled inputs."""
    W_E = params["W_E"]
    spec = ResidualSpec(n_features=W_E.shape[1], d_embed=W_E.shape[0], d_mlp=sum(split),
                        n_layers=len(split), split=tuple(split), bias=True, task=task)
    rng = np.random.default_rng(seed)
    x = (CL.sample_boolean(rng, p, n) if task == "uand" else CL.sample_signed(rng, p, n))
    jp = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    err = np.asarray(tasks.squared_errors(jp, jnp.asarray(x, jnp.float32), jnp.float32(s),
                                          spec), np.float64)
    weights = np.ones(err.shape[1]) if task == "uand" else importance
    per = err @ weights / err.shape[1]
    root = np.sqrt(n)
    return per.mean(), per.std(ddof=1) / root, err.mean(0), err.std(0, ddof=1) / root


@pytest.mark.parametrize("task,s,split", [("relu", 0.0, [5]), ("abs", 0.0, [5]),
                                          ("identity_relu", 0.4, [5]), ("abs", -0.5, [2, 3])])
def test_naive_with_biases_matches_the_trainers_loss(task, s, split):
    """The constructed naive-with-biases model, evaluated by the trainer's loss on
    200,000 samples, is within 4 SE of `naive_bias_loss` in total and per output
    (abs with 5 neurons: two full features and an odd neuron's half; two layers: the
    private directions of `naive_params`)."""
    W_E = embedding(d=F + 4)
    params = C.naive_bias_params(W_E, task, split, P, IMPORTANCE)
    mean, se, per, per_se = trainer_mc(params, task, P, IMPORTANCE, s, 200_000, 11, split)
    closed = C.naive_bias_loss(W_E, task, sum(split), P, IMPORTANCE, s=s)
    assert abs(mean - closed.total) < 4 * se, (mean, closed.total, se)
    assert np.all(np.abs(per - closed.per_output) < 4 * per_se + 1e-6)
    assert closed.total < C.naive_loss(W_E, task, sum(split), P, IMPORTANCE, s=s).total


def test_naive_with_biases_for_uand_spends_a_neuron_on_the_means():
    """uand's readout has no bias: one always-on neuron (b_in = 1) carries the means of
    the uncomputed pairs, which then cost p_i p_j (1 − p_i p_j) each, beside d_mlp − 1
    AND neurons; here that beats the naive baseline and matches the trainer's loss."""
    m, k = 7, 4
    p = np.linspace(0.3, 0.6, m)
    params = C.naive_bias_params(np.eye(m), "uand", [k], p)
    closed = C.naive_bias_loss(np.eye(m), "uand", k, p)
    i, j = np.triu_indices(m, 1)
    pp = np.sort(p[i] * p[j])[::-1]
    expected = np.sum(pp[k - 1 :] * (1 - pp[k - 1 :])) / len(pp)  # the k − 1 largest computed
    assert closed.total == pytest.approx(expected, rel=1e-12)
    assert closed.total < C.naive_loss(np.eye(m), "uand", k, p).total
    mean, se, _, _ = trainer_mc(params, "uand", p, None, 0.0, 200_000, 12, [k])
    assert abs(mean - closed.total) < 4 * se, (mean, closed.total, se)
    sparse = np.full(m, 0.05)  # rare pairs: a neuron is worth more as an AND
    assert C.naive_bias_loss(np.eye(m), "uand", k, sparse).total == pytest.approx(
        C.naive_loss(np.eye(m), "uand", k, sparse).total)


@pytest.mark.parametrize("p", [0.01, 0.1, 0.3])
def test_naive_with_biases_closed_forms_of_the_docs(p):
    """Equal densities, s = 0: relu pays Var ReLU(x) = p/6 − p²/16 for E ReLU(x)² = p/6
    on each uncomputed output, ratio 1 − 3p/8; abs with an even d_mlp 1 − 3p/4; abs with
    d_mlp = 3 of 24 features: one full feature, one half (Var ReLU(−x) over E ReLU(−x)²)
    and 22 left: (22 (p/3 − p²/4) + p/6 − p²/16) / (22 p/3 + p/6) (0.7775 at p = 0.3);
    identity_relu at s = 1 has relu's target; a run without biases gets naive_loss."""
    W_E = embedding(F=24, d=240, seed=3)
    ratio = lambda task, k, s=0.0: (C.naive_bias_loss(W_E, task, k, p, s=s).total  # noqa: E731
                                    / C.naive_loss(W_E, task, k, p, s=s).total)
    assert ratio("relu", 6) == pytest.approx(1 - 3 * p / 8, rel=1e-12)
    assert ratio("abs", 12) == pytest.approx(1 - 3 * p / 4, rel=1e-12)
    odd = (22 * (p / 3 - p**2 / 4) + p / 6 - p**2 / 16) / (22 * p / 3 + p / 6)
    assert ratio("abs", 3) == pytest.approx(odd, rel=1e-12)
    assert C.naive_bias_loss(W_E, "identity_relu", 6, p, s=1.0).total == pytest.approx(
        C.naive_bias_loss(W_E, "relu", 6, p).total, rel=1e-12)
    # any s: the mixing term is the same with and without the bias, the gain (E g)²
    gain = 18 * (p / 4) ** 2 / 24
    assert (C.naive_loss(W_E, "identity_relu", 6, p, s=0.3).total
            - C.naive_bias_loss(W_E, "identity_relu", 6, p, s=0.3).total) == pytest.approx(gain)
    assert C.naive_bias_loss(W_E, "abs", 5, p, bias=False).total == C.naive_loss(
        W_E, "abs", 5, p).total
