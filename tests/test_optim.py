"""Optimisers, weight decay of either sign, the L1 penalty on the weights, models without a
bias: each checked against the published update rule or a closed form."""

import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import toymodels as tm
from toymodels.hyper import complement
from toymodels.models import get_model, init_tied, init_untied
from toymodels.spec import ModelSpec, Spec, TrainSpec
from toymodels.train import INIT, OPTIMIZERS, make_optimizer, scale_by_adam, weighted_mse

from helpers import raw

F, H, B = 4, 2, 16
KIND = get_model("relu_output")


def _loss(params, x):
    """The training loss of the relu_output model on a batch x: [F, B] (no dropout)."""
    return weighted_mse(params, x, x, jnp.ones((H, B)), 0.8 ** jnp.arange(F), KIND.forward)


def _batches(n):
    return jax.random.uniform(jax.random.key(5), (n, F, B))


def _torch_rule(name, w, g, state, h, t):
    """One step of the PyTorch update rule in float64 (torch.optim docs, no amsgrad,
    no Nesterov, no dampening). t: the step number, from 1."""
    lr, wd = h["lr"], h["wd"]
    if name == "adamw":
        w, grad = w * (1 - lr * wd), g  # decoupled: the decay never enters the moments
    else:
        grad = g + wd * w  # coupled L2: the decay is part of the gradient
    if name == "sgd":
        return w - lr * grad, state
    if name == "momentum":
        buf = grad if t == 1 else h["mu"] * state + grad
        return w - lr * buf, buf
    m, v = state if t > 1 else (0.0, 0.0)
    m = h["b1"] * m + (1 - h["b1"]) * grad
    v = h["b2"] * v + (1 - h["b2"]) * grad**2
    m_hat, v_hat = m / (1 - h["b1"] ** t), v / (1 - h["b2"] ** t)
    return w - lr * m_hat / (np.sqrt(v_hat) + h["eps"]), (m, v)


SETTINGS = [  # two runs, vmapped together: every value a traced array
    {"lr": 0.05, "wd": 0.3, "mu": 0.7, "b1": 0.8, "b2": 0.95, "eps": 1e-3},
    {"lr": 0.02, "wd": -0.2, "mu": 0.5, "b1": 0.6, "b2": 0.99, "eps": 1e-6},
]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_three_steps_equal_the_published_update_rule(name):
    """Three updates of each optimizer, two runs vmapped with traced hyperparameters,
    against the rule written out in numpy, fed the same jax gradients."""
    hyper = jax.tree.map(lambda *a: np.stack(a), *[
        tm.make_hyper(F, learning_rate=s["lr"], weight_decay=s["wd"], momentum=s["mu"],
                      beta1=s["b1"], beta2=s["b2"], eps=s["eps"]) for s in SETTINGS])
    train = TrainSpec(steps=10, log_every=1, optimizer=name)
    params = jax.vmap(lambda k: init_tied(k, ModelSpec("relu_output", F, H)))(
        jax.random.split(jax.random.key(1), 2))

    @jax.jit
    def step(params, opt_state, hyper, x):
        def one(p, s, h):
            g = jax.grad(_loss)(p, x)
            updates, s = make_optimizer(train, h).update(g, s, p)
            return jax.tree.map(jnp.add, p, updates), s, g
        return jax.vmap(one)(params, opt_state, hyper)

    opt_state = jax.vmap(lambda p, h: make_optimizer(train, h).init(p))(params, hyper)
    ref = [{k: np.asarray(v[r], np.float64) for k, v in params.items()} for r in range(2)]
    states = [{k: None for k in ref[0]} for _ in range(2)]
    for t, x in enumerate(_batches(3), start=1):
        params, opt_state, grads = step(params, opt_state, hyper, x)
        for r in range(2):
            for k in ref[r]:
                g = np.asarray(grads[k][r], np.float64)
                ref[r][k], states[r][k] = _torch_rule(name, ref[r][k], g, states[r][k],
                                                      SETTINGS[r], t)
    for r in range(2):
        for k in ref[r]:
            np.testing.assert_allclose(params[k][r], ref[r][k], rtol=1e-5, atol=1e-7,
                                       err_msg=f"{name} run {r} {k}")


def test_adam_step_has_the_bits_of_optax_with_python_float_betas():
    """Traced betas give optax's bits with the default Python floats (what adamw was
    before betas were swept): 1 − β is rounded on the host, since a float32 1 − 0.999
    on the device is another number."""
    assert complement(0.999) != np.float32(1) - np.float32(0.999)

    def run(tx, params):
        def step(carry, x):
            params, state = carry
            updates, state = tx.update(jax.grad(_loss)(params, x), state, params)
            return (jax.tree.map(jnp.add, params, updates), state), None
        return jax.lax.scan(step, (params, tx.init(params)), _batches(5))[0][0]

    params = init_tied(jax.random.key(1), ModelSpec("relu_output", F, H))
    ours = jax.jit(lambda h, p: run(scale_by_adam(h), p))(tm.make_hyper(F), params)
    theirs = jax.jit(lambda p: run(optax.scale_by_adam(0.9, 0.999, 1e-8), p))(params)
    for k in ours:
        np.testing.assert_array_equal(ours[k], theirs[k], err_msg=k)


def _train(model: ModelSpec, steps=20, log_every=10, **kw):
    """Trains one model; `optimizer` goes to TrainSpec, the rest to make_hyper."""
    train = TrainSpec(steps=steps, batch_size=32, log_every=log_every, eval_samples=8192,
                      optimizer=kw.pop("optimizer", "adamw"))
    hyper = tm.make_hyper(model.n_features, **kw)
    return jax.jit(tm.make_train_one(Spec(model, train)))(jax.random.key(0), hyper)


def _init(model: ModelSpec):
    init = init_untied if model.kind == "abs_computation" else init_tied
    return init(jax.random.fold_in(jax.random.key(0), INIT), model)


def _optimizer_trajectory(name, steps=20, **kw):
    """The params after `steps` updates of optimizer `name` on the tiny model's loss."""
    train, hyper = TrainSpec(steps=steps, log_every=1, optimizer=name), tm.make_hyper(F, **kw)
    tx = make_optimizer(train, hyper)

    def step(carry, x):
        params, state = carry
        updates, state = tx.update(jax.grad(_loss)(params, x), state, params)
        return (jax.tree.map(jnp.add, params, updates), state), None

    params = init_tied(jax.random.key(1), ModelSpec("relu_output", F, H))
    (params, _), _ = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), _batches(steps)))(
        params)
    return params


def test_momentum_zero_is_sgd():
    kw = dict(learning_rate=0.1, weight_decay=0.01)
    plain = _optimizer_trajectory("sgd", **kw)
    heavy = _optimizer_trajectory("momentum", momentum=0.0, **kw)
    moving = _optimizer_trajectory("momentum", momentum=0.9, **kw)
    for k in plain:
        np.testing.assert_allclose(heavy[k], plain[k], rtol=1e-6, atol=1e-7, err_msg=k)
    assert np.abs(moving["W"] - plain["W"]).max() > 1e-2


def test_negative_weight_decay_grows_weights_geometrically_with_sgd():
    """No gradient (zero importance): w ← w − lr·wd·w = (1 + lr|wd|) w per step."""
    model = ModelSpec("linear", 3, 3)
    out = _train(model, steps=10, importance=0.0, optimizer="sgd", learning_rate=0.1,
                 weight_decay=-0.5)
    np.testing.assert_allclose(out.params["W"], _init(model)["W"] * 1.05**10, rtol=1e-5)
    np.testing.assert_array_equal(out.params["b"], 0.0)


@pytest.mark.parametrize("kind", ["relu_output", "abs_computation"])
def test_l1_on_weights_is_its_subgradient_step(kind):
    """No gradient of the error (zero importance), sgd: every weight moves lr·λ towards 0
    per step (a subgradient step), the bias does not, and small weights end at 0 to
    within lr·λ. The loss curve is the objective λ Σ|W|; final_loss has no penalty."""
    model, lr, lam, steps = ModelSpec(kind, 6, 3), 0.01, 2.0, 40
    out = _train(model, steps=steps, log_every=1, importance=0.0, optimizer="sgd",
                 learning_rate=lr, weight_decay=0.0, l1_weights=lam)
    start = _init(model)
    for name in get_model(kind).weights:
        w0, w = np.asarray(start[name], np.float64), np.asarray(out.params[name])
        far = np.abs(w0) > steps * lr * lam
        assert far.any() and (~far).any()
        np.testing.assert_allclose(w[far], (w0 - steps * lr * lam * np.sign(w0))[far],
                                   atol=1e-5)
        assert np.abs(w[~far]).max() <= lr * lam + 1e-6
    np.testing.assert_array_equal(out.params["b"], 0.0)
    l1 = sum(np.abs(start[name]).sum() for name in get_model(kind).weights)
    assert out.loss[0] == pytest.approx(lam * l1, rel=1e-5)
    assert float(out.final_loss) == 0.0


@pytest.mark.slow  # two compilations (8 s)
def test_without_l1_term_and_with_zero_l1_give_the_same_training():
    """l1_weights = 0 (term in the objective, times 0) and None (no term) agree to rounding."""
    model = ModelSpec("relu_output", 5, 2)
    none = _train(model, feature_probability=0.3)
    zero = _train(model, feature_probability=0.3, l1_weights=0.0)
    np.testing.assert_allclose(zero.params["W"], none.params["W"], atol=1e-6)


def test_bias_false_keeps_b_exactly_zero_and_still_trains():
    """Without the clamp b would move (by 0.02 in these 200 steps with bias = true)."""
    out = _train(ModelSpec("relu_output", 5, 2, bias=False), steps=200, log_every=10,
                 feature_probability=0.2, learning_rate=0.01)
    np.testing.assert_array_equal(out.params["b"], 0.0)
    assert out.loss[-1] < 0.7 * out.loss[0] and out.final_loss < 0.7 * out.loss[0]


SWEEP = """
name = "momentum"
[model]
kind = "relu_output"
n_features = 5
n_hidden = 2
bias = false
[data]
sparsity = 0.5
[train]
optimizer = "momentum"
learning_rate = 0.05
steps = 40
batch_size = 32
log_every = 20
eval_samples = 8192
[sweep]
momentum = [0.0, 0.9]
"""


def test_momentum_axis_runs_through_a_sweep(tmp_path):
    path = tmp_path / "momentum.toml"
    path.write_text(SWEEP)
    config = tm.load_config(path)
    assert config.spec.train.optimizer == "momentum" and not config.spec.model.bias
    ds = tm.load(tm.run_sweep(config, tmp_path / "out", quiet=True))
    np.testing.assert_allclose(ds.momentum.values, [0.0, 0.9])
    W = ds.W.values
    assert np.abs(W[0] - W[1]).max() > 1e-3
    np.testing.assert_array_equal(ds.b.values, 0.0)


def _error(**tables) -> str:
    with pytest.raises(tm.UserError) as info:
        tm.parse_config(raw(**tables), "f.toml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("f.toml: "), message
    return message


@pytest.mark.parametrize("tables,fragment", [
    ({"train": {"optimizer": "adamx"}},
     "train.optimizer: must be one of adamw, adam, sgd, momentum, got 'adamx'"),
    ({"train": {"optimizer": "momentum", "momentum": 1.5}},
     "train.momentum: must be a number in [0, 1), got 1.5"),
    ({"sweep": {"beta2": [0.9, 1.0]}}, "sweep.beta2: must be a number in [0, 1), got 1.0"),
    ({"train": {"eps": 0.0}}, "train.eps: must be a number in (0, inf], got 0.0"),
    ({"train": {"l1_weights": -0.1}}, "train.l1_weights: must be a number in [0, inf]"),
    ({"train": {"weight_decay": float("inf")}}, "train.weight_decay: must be a finite number"),
    ({"model": {"bias": "no"}}, "model.bias: must be true or false, got 'no'"),
    ({"train": {"optimizer": "sgd", "beta1": 0.5}},
     'train.beta1: not used by train.optimizer = "sgd" (used by adam, adamw)'),
    ({"train": {"optimizer": "adam"}, "sweep": {"momentum": [0.0, 0.9]}},
     'sweep.momentum: not used by train.optimizer = "adam" (used by momentum)'),
], ids=["optimizer", "momentum", "beta2 axis", "eps", "l1_weights", "weight_decay", "bias",
        "beta1 with sgd", "momentum axis with adam"])
def test_bad_optimizer_keys_are_one_line_errors(tables, fragment):
    assert fragment in _error(**tables)


def test_defaults_of_unused_keys_are_no_error_and_round_trip():
    """Only keys given in the file are checked; the resolved TOML leaves the others out."""
    c = tm.parse_config(raw(model={"bias": False}, train={"optimizer": "sgd",
                                                          "weight_decay": -0.01}))
    assert c.spec.train.optimizer == "sgd" and c.train["beta1"] == 0.9
    text = tm.to_toml(c)
    assert "beta1" not in text and "momentum" not in text and "bias = false" in text
    assert tm.parse_config(tomllib.loads(text)) == c
