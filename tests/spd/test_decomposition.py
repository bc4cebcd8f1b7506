"""SPD of one target (toymodels.spd.decomposition) against the paper's definitions.

Bushnaq, Braun & Sharkey 2025 (arXiv 2506.20790): the leaky hard sigmoids of the appendix
"Avoiding dead gradients with leaky hard sigmoids" by hand, and the four losses of the
"Method" section and the appendix's pseudocode written again in numpy below, with the
masked matrices W' = U diag(m) V formed explicitly (the code under test never forms them).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels.spd import decomposition as spd
from toymodels.spd.targets import hand_W, residual_shapes, residual_target, shapes, tms_target


class Spec:  # what init reads of toymodels.spd_config.SPDSpec
    C, d_gate = 4, 3


# ---- the leaky hard sigmoids: values and gradients worked by hand


@pytest.mark.parametrize("x, lower, d_lower, upper, d_upper", [
    (-2.0, -0.02, 0.01, 0.0, 0.0),      # below 0: only the lower one leaks
    (0.0, 0.0, 1.0, 0.0, 1.0),          # the kinks take slope 1 (a gate at 0 still learns)
    (0.3, 0.3, 1.0, 0.3, 1.0),
    (1.0, 1.0, 1.0, 1.0, 1.0),
    (1.5, 1.0, 0.0, 1.005, 0.01),       # above 1: only the upper one leaks
    (3.0, 1.0, 0.0, 1.02, 0.01),
])
def test_leaky_hard_sigmoids_have_the_papers_values_and_slopes(x, lower, d_lower, upper, d_upper):
    x = jnp.float32(x)
    assert float(spd.lower_leaky_hard_sigmoid(x)) == pytest.approx(lower, abs=1e-7)
    assert float(jax.grad(spd.lower_leaky_hard_sigmoid)(x)) == pytest.approx(d_lower, abs=1e-7)
    assert float(spd.upper_leaky_hard_sigmoid(x)) == pytest.approx(upper, abs=1e-7)
    assert float(jax.grad(spd.upper_leaky_hard_sigmoid)(x)) == pytest.approx(d_upper, abs=1e-7)


@pytest.mark.parametrize("logit, r, m, dm", [
    (-1.0, 0.25, -0.01 + 1.01 * 0.25, 0.01 * 0.75),  # g = -0.01: a mask may dip below r
    (0.5, 0.25, 0.625, 0.75),                         # dm/dg = 1 - r
    (2.0, 0.25, 1.0, 0.0),                            # g = 1: the mask is 1, no gradient
])
def test_a_mask_and_its_gradient_through_the_lower_leaky_gate(logit, r, m, dm):
    mask = lambda z: spd.masks(spd.lower_leaky_hard_sigmoid(z), jnp.float32(r))
    assert float(mask(jnp.float32(logit))) == pytest.approx(m, abs=1e-7)
    assert float(jax.grad(mask)(jnp.float32(logit))) == pytest.approx(dm, abs=1e-7)


# ---- the losses against numpy


def np_gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def np_forward(Ws: dict, b, x):
    """ReLU(W_out (W_hidden) W_in x + b) and the activation entering each matrix."""
    acts = {"W_in": x}
    h = Ws["W_in"] @ x
    if "W_hidden" in Ws:
        acts["W_hidden"] = h
        h = Ws["W_hidden"] @ h
    acts["W_out"] = h
    return np.maximum(Ws["W_out"] @ h + b, 0), acts


def np_logits(part, a):
    h = part["V"] @ a  # [C] inner activations
    hidden = np_gelu(part["gate_in_w"] * h[:, None] + part["gate_in_b"])
    return (part["gate_out_w"] * hidden).sum(-1) + part["gate_out_b"]


def np_loss(params, W_target, b, x, r, hyper):
    """The paper's L_SPD; r {name: [B, S, C]}."""
    names = sorted(params)
    lower = lambda z: np.where(z < 0, 0.01 * z, np.minimum(z, 1))
    upper = lambda z: np.where(z > 1, 1 + 0.01 * (z - 1), np.maximum(z, 0))
    N = sum(W_target[n].size for n in names)
    faith = sum(((W_target[n] - params[n]["U"].T @ params[n]["V"]) ** 2).sum() for n in names) / N
    B, S = x.shape[0], r[names[0]].shape[1]
    stoch = layer = imp = 0.0
    for i in range(B):
        y, acts = np_forward(W_target, b, x[i])
        logits = {n: np_logits(params[n], acts[n]) for n in names}
        imp += sum((np.abs(upper(logits[n])) ** hyper["p"]).sum() for n in names) / B
        for s in range(S):
            m = {n: lower(logits[n]) + (1 - lower(logits[n])) * r[n][i, s] for n in names}
            masked = {n: params[n]["U"].T @ np.diag(m[n]) @ params[n]["V"] for n in names}
            stoch += ((np_forward(masked, b, x[i])[0] - y) ** 2).mean() / (B * S)
            for n in names:
                one = {**W_target, n: masked[n]}
                layer += ((np_forward(one, b, x[i])[0] - y) ** 2).mean() / (B * S * len(names))
    total = (hyper["faithfulness_coefficient"] * faith + hyper["stochastic_coefficient"] * stoch
             + hyper["layerwise_coefficient"] * layer + hyper["beta"] * imp)
    return total, {"faithfulness": faith, "stochastic": stoch, "layerwise": layer, "importance": imp}


def test_gelu_and_its_derivative_are_the_exact_gelus():
    """x Φ(x) and Φ(x) + x φ(x) in float64 from math.erf, over the gates' range and far out."""
    x = np.array([-12.0, -5.0, -2.5, -1.0, -0.3, 0.0, 1e-3, 0.7, 1.9, 4.0, 12.0])
    cdf = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    slope = cdf + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    xs = jnp.asarray(x, jnp.float32)
    np.testing.assert_allclose(spd.gelu(xs), x * cdf, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(jax.vmap(jax.grad(spd.gelu))(xs), slope, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(spd.gelu(xs), np_gelu(x), rtol=2e-6, atol=1e-7)


def random_case(identity, seed, S=1, B=6):
    """Random parameters (every entry N(0, 1), so that gates fall on every piece of the
    sigmoids), a random 5 -> 2 target and sparse inputs."""
    rng = np.random.default_rng(seed)
    structure = jax.eval_shape(lambda k: spd.init(k, shapes(5, 2, identity), Spec),
                               jax.random.key(seed))  # the shapes only: nothing compiled
    params = jax.tree.map(lambda a: rng.normal(size=a.shape).astype(np.float32), structure)
    W, b = rng.normal(size=(2, 5)).astype(np.float32), rng.normal(size=5).astype(np.float32) * 0.3
    x = (rng.uniform(size=(B, 5)) * (rng.uniform(size=(B, 5)) < 0.5)).astype(np.float32)
    hyper = dict(beta=0.03, p=0.7 + seed * 0.3, faithfulness_coefficient=1.3,
                 stochastic_coefficient=0.8, layerwise_coefficient=1.1, learning_rate=1e-3,
                 feature_probability=0.05)
    return params, tms_target(W, b, identity), x, hyper


@pytest.mark.parametrize("identity, seed, S", [(False, 0, 1), (True, 1, 2)])
def test_the_four_losses_equal_a_numpy_implementation_of_the_paper(identity, seed, S):
    params, target, x, hyper = random_case(identity, seed, S)
    key = jax.random.key(7)
    names = sorted(params)
    keys = jax.random.split(key, len(names))  # the documented draw of the mask uniforms
    r = {n: np.asarray(jax.random.uniform(k, (x.shape[0], S, Spec.C))) for n, k in zip(names, keys)}
    jhyper = spd.SPDHyper(**{k: jnp.float32(v) for k, v in hyper.items()})
    total, parts = jax.jit(spd.loss, static_argnums=5)(params, target, jnp.asarray(x), key, jhyper, S)
    W_target = {n: np.asarray(w, np.float64) for n, w in target.weights.items()}
    f64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    want_total, want = np_loss(f64, W_target, np.asarray(target.b, np.float64), x.astype(np.float64), r, hyper)
    for name in spd.PARTS:
        assert float(parts[name]) == pytest.approx(want[name], rel=2e-5, abs=1e-7), name
    assert float(total) == pytest.approx(want_total, rel=2e-5)
    assert want["stochastic"] > 0 and want["layerwise"] > 0  # the masks matter in this case


def test_an_exact_decomposition_with_every_gate_open_costs_only_its_importance():
    """Subcomponent i = feature i's piece of each matrix (W[:, i] e_iᵀ, e_i W[:, i]ᵀ) and
    every gate's logit 2: faithfulness 0, masks exactly 1 (no reconstruction error), and
    the importance σ_H,upper(2)^p = 1.01^p per subcomponent, L C of them per input."""
    W = hand_W(4, 2)
    target = tms_target(W, np.zeros(4), identity=False)
    eye = np.eye(4, dtype=np.float32)
    part = lambda U, V: {"U": U, "V": V, "gate_in_w": np.zeros((4, 3), np.float32),
                         "gate_in_b": np.zeros((4, 3), np.float32),
                         "gate_out_w": np.zeros((4, 3), np.float32),
                         "gate_out_b": np.full(4, 2.0, np.float32)}
    params = {"W_in": part(W.T, eye), "W_out": part(eye, W.T)}
    hyper = spd.SPDHyper(*(jnp.float32(v) for v in (0.1, 2.0, 1.0, 1.0, 1.0, 1e-3, 0.05)))
    x = jax.random.uniform(jax.random.key(0), (8, 4))
    total, parts = jax.jit(spd.loss)(params, target, x, jax.random.key(1), hyper)
    assert float(parts["faithfulness"]) < 1e-12
    assert float(parts["stochastic"]) < 1e-10 and float(parts["layerwise"]) < 1e-10
    assert float(parts["importance"]) == pytest.approx(2 * 4 * 1.01 ** 2, rel=1e-6)
    assert float(total) == pytest.approx(0.1 * 2 * 4 * 1.01 ** 2, rel=1e-6)


def test_one_hot_importances_are_the_hard_sigmoid_of_the_gates_on_each_e_i():
    params, target, _, _ = random_case(False, 3)
    ci = spd.one_hot_importance(params, target)
    for name in params:
        assert ci[name].shape == (5, Spec.C)
        for i in range(5):
            _, acts = np_forward({n: np.asarray(w) for n, w in target.weights.items()},
                                 np.asarray(target.b), np.eye(5)[i])
            want = np.clip(np_logits(jax.tree.map(np.asarray, params[name]), acts[name]), 0, 1)
            np.testing.assert_allclose(ci[name][i], want, rtol=1e-5, atol=1e-6)


def test_init_follows_the_stated_scales():
    """V ~ N(0, 1/d_out), U ~ N(0, 1/C), gate input weights N(0, 2), output N(0, 1/d_gate),
    biases 0: sample standard deviations of a large C within 5%."""
    class Big:
        C, d_gate = 4000, 16
    p = jax.jit(lambda k: spd.init(k, {"W_in": (2, 5)}, Big))(jax.random.key(0))["W_in"]
    assert np.std(p["V"]) == pytest.approx(1 / math.sqrt(2), rel=0.05)
    assert np.std(p["U"]) == pytest.approx(1 / math.sqrt(4000), rel=0.05)
    assert np.std(p["gate_in_w"]) == pytest.approx(math.sqrt(2), rel=0.05)
    assert np.std(p["gate_out_w"]) == pytest.approx(1 / 4, rel=0.05)
    assert not np.any(p["gate_in_b"]) and not np.any(p["gate_out_b"])


# ---- value_and_grad: the loss and its gradient on the nonzero inputs only


def sparse_case(identity, seed, S, B, zero_rows):
    """random_case with the rows `zero_rows` set to x = 0 (the rest nonzero)."""
    params, target, _, hyper = random_case(identity, seed, S)
    rng = np.random.default_rng(seed + 100)
    x = rng.uniform(0.1, 1, size=(B, 5)) * (rng.uniform(size=(B, 5)) < 0.5)
    x[:, seed % 5] += 0.2  # every row nonzero ...
    x[list(zero_rows)] = 0  # ... but these
    hyper = spd.SPDHyper(**{k: jnp.float32(v) for k, v in hyper.items()})
    return params, target, jnp.asarray(x, jnp.float32), hyper


def assert_same_loss_and_grads(new, old):
    (total, parts), grads = new
    (want_total, want_parts), want_grads = old
    assert float(total) == pytest.approx(float(want_total), rel=1e-6)
    for name in spd.PARTS:
        want = float(want_parts[name])
        assert float(parts[name]) == pytest.approx(want, rel=1e-6, abs=1e-12), name
    for path, g, w in zip(jax.tree_util.tree_leaves_with_path(grads), jax.tree.leaves(grads),
                          jax.tree.leaves(want_grads)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6 * float(np.max(np.abs(w))),
                                   err_msg=jax.tree_util.keystr(path[0]))


@pytest.mark.parametrize("identity, seed, S, B, T, zero_rows", [
    (False, 0, 1, 12, 4, (1, 2, 5, 6, 7, 11)),  # half the rows zero, 2 tiles of 4
    pytest.param(True, 1, 2, 12, 5, (0, 3), marks=pytest.mark.slow),  # B % T: filler rows
    pytest.param(False, 2, 1, 8, 3, (), marks=pytest.mark.slow),      # no zero row
    pytest.param(True, 3, 1, 8, 4, tuple(range(8)), marks=pytest.mark.slow),  # no tile at all
])
def test_value_and_grad_on_the_nonzero_rows_equals_the_gradient_of_the_loss(
        identity, seed, S, B, T, zero_rows):
    """The reference is `jax.value_and_grad` of `loss` (every row, the paper's definition,
    checked against numpy above), on the same batch, key and mask uniforms."""
    params, target, x, hyper = sparse_case(identity, seed, S, B, zero_rows)
    key = jax.random.key(seed + 7)
    new, old = jax.jit(lambda *a: (spd.value_and_grad(*a, S, T),
                                   jax.value_and_grad(spd.loss, has_aux=True)(*a, S)))(
        params, target, x, key, hyper)
    assert_same_loss_and_grads(new, old)
    assert (float(old[0][1]["stochastic"]) > 0) == (len(zero_rows) < B)


@pytest.mark.slow
def test_value_and_grad_under_vmap_runs_each_decomposition_its_own_tiles():
    """Two decompositions of one vmap with 1 and 3 tiles of nonzero rows: each equals the
    gradient of its own loss (the loop runs 3 tiles for both, the first's extra tiles
    weigh nothing)."""
    cases = [sparse_case(False, 0, 1, 12, range(2, 12)), sparse_case(False, 4, 1, 12, ())]
    stack = lambda i: jax.tree.map(lambda *a: jnp.stack(a), *(c[i] for c in cases))
    keys = jax.random.split(jax.random.key(0), 2)
    new, old = jax.jit(jax.vmap(lambda *a: (spd.value_and_grad(*a, 1, 4),
                                            jax.value_and_grad(spd.loss, has_aux=True)(*a))))(
        stack(0), stack(1), stack(2), keys, stack(3))
    for i in range(2):
        pick = lambda tree: jax.tree.map(lambda a: a[i], tree)
        assert_same_loss_and_grads(pick(new), pick(old))


def residual_case(seed, b_in, B=12, zero_rows=(1, 2, 5, 6, 7, 11)):
    """Random parameters of a decomposition of a random one-layer residual MLP (n 6, D 5,
    k 4, biases b_in as given and b_out random, the stream read) and signed inputs
    Uniform[-1, 1) where on, with the rows `zero_rows` x = 0."""
    rng = np.random.default_rng(seed)
    n, D, k = 6, 5, 4
    structure = jax.eval_shape(lambda key: spd.init(key, residual_shapes(D, k), Spec),
                               jax.random.key(seed))
    params = jax.tree.map(lambda a: rng.normal(size=a.shape).astype(np.float32), structure)
    arrays = {"W_E": rng.normal(size=(D, n)), "W_in": rng.normal(size=(k, D)),
              "W_out": rng.normal(size=(D, k)), "b_in": np.asarray(b_in),
              "b_out": rng.normal(size=D), "W_U": rng.normal(size=(n, D))}
    x = rng.uniform(-1, 1, size=(B, n)) * (rng.uniform(size=(B, n)) < 0.5)
    x[:, seed % n] += np.where(x[:, seed % n] < 0, -0.2, 0.2)  # every row nonzero ...
    x[list(zero_rows)] = 0  # ... but these
    hyper = spd.SPDHyper(beta=jnp.float32(0.03), p=jnp.float32(1.0),
                         faithfulness_coefficient=jnp.float32(1.3),
                         stochastic_coefficient=jnp.float32(0.8),
                         layerwise_coefficient=jnp.float32(1.1),
                         learning_rate=jnp.float32(1e-3), feature_probability=jnp.float32(0.5))
    return params, residual_target(arrays, True), jnp.asarray(x, jnp.float32), hyper


@pytest.mark.parametrize("b_in, inert", [
    ([0.3, -0.2, 0.1, -0.5], False),  # biases on, ReLU(b_in) != 0: every row is computed
    pytest.param([-0.3, -0.2, 0.0, -0.5], True, marks=pytest.mark.slow),  # ReLU(b_in) = 0
])
def test_value_and_grad_of_a_residual_target_with_biases_equals_the_gradient_of_the_loss(
        b_in, inert):
    """A residual MLP with biases on x = 0 feeds ReLU(b_in) into W_out, so its masked output
    on a zero row is not the target's; `value_and_grad` must still equal
    `jax.value_and_grad(loss)` (every row, the definition) on a batch of signed inputs with
    half its rows zero; it skips the zero rows only where ReLU(b_in) = 0."""
    params, target, x, hyper = residual_case(5, b_in)
    assert bool(spd.inert(target)) == inert
    key = jax.random.key(11)
    r = {name: jnp.full((2, 1, Spec.C), 0.5) for name in params}  # two zero rows' masks
    zero_rows = lambda params, target, x: jax.vmap(
        spd.example_losses, in_axes=(None, None, 0, 0, None))(params, target, x[1:3], r, hyper.p)
    new, old, errors = jax.jit(lambda *a: (spd.value_and_grad(*a, 1, 4),
                                           jax.value_and_grad(spd.loss, has_aux=True)(*a, 1),
                                           zero_rows(*a[:3])[0]))(params, target, x, key, hyper)
    assert_same_loss_and_grads(new, old)
    assert bool(np.all(np.asarray(errors) == 0)) == inert  # a zero row's masked output errs
