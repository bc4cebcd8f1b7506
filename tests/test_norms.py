"""Norms on the hidden vector ([model] norm, norm_eps) and the norm-reliance analysis:
each checked against an independent formula, a hand computation or Monte Carlo."""

import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toymodels as tm
from toymodels.analysis import norms
from toymodels.config import to_toml
from toymodels.errors import UserError
from toymodels.hyper import make_hyper
from toymodels.models import get_model, layer_norm, rms_norm, with_norm
from toymodels.spec import DataSpec, ModelSpec, Spec, TrainSpec
from toymodels.train import make_train_one

from helpers import raw

RELU = get_model("relu_output")


def _numpy_layer_norm(h, eps):
    """torch.nn.LayerNorm's formula without affine part, per column, in float64."""
    mu, var = h.mean(axis=0), h.var(axis=0)  # biased variance
    return (h - mu) / np.sqrt(var + eps)


def _pentagon(radius=1.2, bias=-0.3):
    angles = 2 * np.pi * np.arange(5) / 5
    W = radius * np.stack([np.cos(angles), np.sin(angles)])
    return jnp.asarray(W, jnp.float32), jnp.full(5, bias, jnp.float32)


@pytest.mark.parametrize("eps", [1e-5, 0.3])
def test_layer_norm_is_rms_norm_of_the_mean_removed_vector(eps):
    h = np.random.default_rng(0).normal(size=(6, 50)) * np.geomspace(0.01, 10, 50)
    rms = h / np.sqrt((h**2).mean(axis=0) + eps)
    np.testing.assert_allclose(rms_norm(jnp.asarray(h, jnp.float32), eps), rms, rtol=2e-5, atol=1e-6)
    expected = _numpy_layer_norm(h, eps)
    np.testing.assert_allclose(layer_norm(jnp.asarray(h, jnp.float32), eps), expected, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(expected, rms_norm(jnp.asarray(h - h.mean(0), jnp.float32), eps),
                               rtol=2e-5, atol=1e-6)


def test_layer_norm_on_two_dimensions_is_a_multiple_of_one_minus_one():
    """m = 2: (h - mean) = d (1, -1), d = (h0 - h1)/2, var = d^2, so LN(h) = s (1, -1),
    s = d / sqrt(d^2 + eps), |s| < 1."""
    eps = 1e-3
    h = np.random.default_rng(1).normal(size=(2, 200)) * np.geomspace(1e-3, 10, 200)
    d = (h[0] - h[1]) / 2
    s = d / np.sqrt(d**2 + eps)
    out = np.asarray(layer_norm(jnp.asarray(h, jnp.float32), eps))
    np.testing.assert_allclose(out, np.stack([s, -s]), rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(out) < 1)


def test_layer_norm_on_two_dimensions_decodes_at_most_one_antipodal_pair():
    """Whatever W, b and eps, at most 2 features of 5 -> 2 are decoded with LayerNorm;
    the pentagon decodes all 5 without a norm, and an antipodal pair reaches the bound."""
    pentagon = _pentagon()
    assert int(jnp.sum(norms.decoded(*pentagon, RELU))) == 5
    layer = lambda eps: with_norm(RELU, "layer", eps)
    assert int(jnp.sum(norms.decoded(*pentagon, layer(1e-5)))) <= 2
    pair = (jnp.array([[1.0, -1.0, 0, 0, 0], [-1.0, 1.0, 0, 0, 0]]), jnp.array([0.0, 0, 0, 0, 0]))
    assert int(jnp.sum(norms.decoded(*pair, layer(1e-5)))) == 2
    rng = np.random.default_rng(2)
    counts = []
    for eps in (1e-5, 1e-2, 1.0):
        W = rng.normal(size=(400, 2, 5)) * rng.choice([0.03, 0.3, 3.0], size=(400, 1, 1))
        b = rng.normal(size=(400, 5)) * rng.choice([0.0, 0.3], size=(400, 1))
        decoded = jax.vmap(lambda w, c: norms.decoded(w, c, layer(eps)))(
            jnp.asarray(W, jnp.float32), jnp.asarray(b, jnp.float32))
        counts.append(np.asarray(decoded).sum(axis=1))
    counts = np.concatenate(counts)
    assert counts.max() == 2 and (counts == 2).mean() > 0.05  # the bound, and attained
    no_norm = jax.vmap(lambda w, c: norms.decoded(w, c, RELU))(jnp.asarray(W, jnp.float32),
                                                              jnp.asarray(b, jnp.float32))
    assert np.asarray(no_norm).sum(axis=1).max() >= 3  # the same draws without the norm


def test_flip_rate_is_zero_without_bias_and_norm():
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = {"W": jnp.asarray(rng.normal(size=(3, 7)), jnp.float32), "b": jnp.zeros(7)}
        for c in norms.RESCALES:
            assert float(norms.flip_rate(p, RELU, "none", 1e-5, c)) == 0.0
            assert float(norms.readout_flip_rate(p, RELU, "none", 1e-5, c)) == 0.0


def test_flip_rate_by_hand_with_a_bias():
    """W = [[1, 0.5, 0]], b = (-0.6, -0.1, 0.2). One-hot inputs: W e = (1, 0.5, 0), so
    z(e_i) = W_j W_i + b_j:
      e_0: (0.4, 0.4, 0.2)    e_1: (-0.1, 0.15, 0.2)    e_2: (-0.6, -0.1, 0.2)
    c = 0.5 halves W_j W_i: e_0: (-0.1, 0.15, 0.2), e_1: (-0.35, 0.025, 0.2): one flip
    (z_0(e_0)) of 9. c = 2: e_0: (1.4, 0.9, 0.2), e_1: (0.4, 0.4, 0.2): two flips
    (z_0(e_1), and nothing else; z_1(e_1) stays on). Without a norm, h -> c h and the
    readout's input -> c times it are one rescaling."""
    p = {"W": jnp.array([[1.0, 0.5, 0.0]]), "b": jnp.array([-0.6, -0.1, 0.2])}
    for rate in (norms.flip_rate, norms.readout_flip_rate):
        assert float(rate(p, RELU, "none", 1e-5, 0.5)) == pytest.approx(1 / 9)
        assert float(rate(p, RELU, "none", 1e-5, 2.0)) == pytest.approx(1 / 9)


def test_flip_rates_with_a_norm_by_hand():
    """RMS norm on H = 1: r = h / sqrt(h^2 + eps). W = [[1, 2]], b = (-0.7, -1.5), so
    h(e_0) = 1, h(e_1) = 2 and z(e_i) = (r_i - 0.7, 2 r_i - 1.5).
    eps = 1e-5: r_i = 1 - O(eps) for h in {0.5, 1, 2, 4}, so z = (0.3, 0.5) on both
    inputs, whatever c multiplies h before the norm: no flip. After the norm c = 0.5 reads
    (-0.2, -0.5) on both inputs: 4 flips of 4; c = 2 none.
    eps = 3, b = (-0.6, -1.2): r(1) = 1/2, r(2) = 2/sqrt(7) = 0.756, r(0.5) =
    0.5/sqrt(3.25) = 0.277, r(4) = 4/sqrt(19) = 0.918. z(e_0) = (-0.1, -0.2) off,
    z(e_1) = (0.156, 0.312) on. Before the norm, c = 2: e_0 reads r(2), both on (2 flips),
    e_1 reads r(4), on: 2 of 4; c = 0.5: e_0 reads r(0.5), off, e_1 reads r(1), both off
    (2 flips): 2 of 4. After the norm c = 0.5: e_0 (-0.35, -0.7), e_1 (-0.22, -0.44):
    2 flips; c = 2: e_0 (0.4, 0.8): 2 flips."""
    p = {"W": jnp.array([[1.0, 2.0]]), "b": jnp.array([-0.7, -1.5])}
    assert float(norms.flip_rate(p, RELU, "rms", 1e-5, 0.5)) == 0.0
    assert float(norms.flip_rate(p, RELU, "rms", 1e-5, 2.0)) == 0.0
    assert float(norms.readout_flip_rate(p, RELU, "rms", 1e-5, 0.5)) == 1.0
    assert float(norms.readout_flip_rate(p, RELU, "rms", 1e-5, 2.0)) == 0.0
    p = {"W": jnp.array([[1.0, 2.0]]), "b": jnp.array([-0.6, -1.2])}
    for c in (0.5, 2.0):
        assert float(norms.flip_rate(p, RELU, "rms", 3.0, c)) == 0.5
        assert float(norms.readout_flip_rate(p, RELU, "rms", 3.0, c)) == 0.5


@pytest.mark.parametrize("kind", ["relu_output", "relu_hidden"])
def test_a_norm_makes_the_flip_rate_exactly_zero_as_eps_goes_to_zero(kind):
    """norm(c h) = norm(h) for c > 0 when eps = 0: with rms or layer norm and eps -> 0
    the flip rate (h -> c h before the norm) is exactly 0 for random W and b of any
    sign, while the readout's rate is not; without a norm the two are the same."""
    rng = np.random.default_rng(4)
    model = get_model(kind)
    W = jnp.asarray(rng.normal(size=(200, 3, 6)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(200, 6)), jnp.float32)
    rates = lambda fn, norm, eps, c: np.asarray(jax.vmap(
        lambda w, bias: fn({"W": w, "b": bias}, model, norm, eps, c))(W, b))
    for c in norms.RESCALES:
        for norm in ("rms", "layer"):
            assert np.all(rates(norms.flip_rate, norm, 1e-12, c) == 0.0), (norm, c)
            assert rates(norms.readout_flip_rate, norm, 1e-12, c).mean() > 0.05
        plain = rates(norms.flip_rate, "none", 1e-5, c)
        np.testing.assert_array_equal(plain, rates(norms.readout_flip_rate, "none", 1e-5, c))
        assert plain.mean() > 0.05


def _monte_carlo_loss(W, b, p, importance, c, norm, eps, n=400_000, seed=7, readout=True):
    """Plain Monte Carlo in float64 of the loss with the readout reading c · norm(W x)
    (`readout`), or norm(c · W x)."""
    rng = np.random.default_rng(seed)
    F = W.shape[1]
    x = np.where(rng.uniform(size=(F, n)) < p, rng.uniform(size=(F, n)), 0.0)
    h = W @ x if readout else c * (W @ x)
    if norm == "layer":
        h = _numpy_layer_norm(h, eps)
    elif norm == "rms":
        h = h / np.sqrt((h**2).mean(axis=0) + eps)
    y = np.maximum(W.T @ (c * h if readout else h) + b[:, None], 0)
    losses = (importance[:, None] * (x - y) ** 2).sum(axis=0)
    return losses.mean(), losses.std() / np.sqrt(n)


@pytest.mark.parametrize("readout", [True, False])
@pytest.mark.parametrize("norm,c", [("none", 0.5), ("none", 2.0), ("layer", 2.0), ("rms", 0.5)])
def test_rescaled_loss_against_monte_carlo(norm, c, readout):
    W, b = _pentagon(0.9, -0.2)
    W = W.at[:, 0].multiply(1.3)
    p, importance = 0.2, 0.8 ** np.arange(5)
    spec = norms.reliance_spec(Spec(ModelSpec("relu_output", 5, 2, norm=norm)))
    hyper = make_hyper(5, feature_probability=p, importance=importance)
    got, got_se = norms.rescaled_loss({"W": W, "b": b}, hyper, spec, c, jax.random.key(0),
                                      readout)
    mean, se = _monte_carlo_loss(np.asarray(W, np.float64), np.asarray(b, np.float64), p,
                                 importance, c, norm, 1e-5, readout=readout)
    assert (float(got_se) == 0) == (norm == "none") or float(got_se) > 0
    assert abs(float(got) - mean) < 4 * np.hypot(se, float(got_se)), (got, got_se, mean, se)


@pytest.mark.slow  # 6 s (the default suite took 434 s of its 420 with issues 27-28's tests)
def test_rescaled_loss_with_a_norm_is_the_unscaled_loss_as_eps_goes_to_zero():
    """h -> c h before a norm changes nothing at eps -> 0: the same evaluation draws give
    the same loss at c = 0.5, 1 and 2; after the norm (readout) they differ."""
    W, b = _pentagon(0.9, -0.2)
    hyper = make_hyper(5, feature_probability=0.2)
    spec = norms.reliance_spec(Spec(ModelSpec("relu_output", 5, 2, norm="rms", norm_eps=1e-12)))
    loss = lambda c, readout: float(norms.rescaled_loss({"W": W, "b": b}, hyper, spec, c,
                                                        jax.random.key(0), readout)[0])
    for c in norms.RESCALES:
        assert loss(c, False) == pytest.approx(loss(1.0, False), rel=1e-6)
        assert abs(loss(c, True) - loss(1.0, False)) > 0.01


def test_training_with_a_norm_reads_the_normalised_vector():
    """A short training with LayerNorm: its final_loss (sampled, as the norm is not
    homogeneous) agrees with a numpy Monte Carlo of the trained weights with LayerNorm,
    and not with the same weights read without the norm."""
    spec = Spec(ModelSpec("relu_output", 5, 2, norm="layer"),
                TrainSpec(steps=100, batch_size=32, log_every=50, eval_samples=16_384))
    hyper = make_hyper(5, feature_probability=0.3)
    out = make_train_one(spec)(jax.random.key(0), hyper)
    W, b = np.asarray(out.params["W"], np.float64), np.asarray(out.params["b"], np.float64)
    mean, se = _monte_carlo_loss(W, b, 0.3, np.ones(5), 1.0, "layer", 1e-5)
    assert abs(float(out.final_loss) - mean) < 4 * np.hypot(se, float(out.final_loss_se))
    plain, _ = _monte_carlo_loss(W, b, 0.3, np.ones(5), 1.0, "none", 1e-5)
    assert abs(plain - mean) > 10 * np.hypot(se, float(out.final_loss_se))


def test_norm_config_keys_and_errors():
    c = tm.parse_config(raw(sweep={"norm": ["none", "rms", "layer"], "seed": [0]},
                            model={"norm_eps": 1e-3}))
    assert [(g.spec.model.norm, g.spec.model.norm_eps) for g in c.groups] == [
        ("none", 1e-3), ("rms", 1e-3), ("layer", 1e-3)]
    plain = tm.parse_config(raw())
    assert "norm" not in to_toml(plain)  # a sweep without norms reads as before
    assert "norm" not in plain.to_dict()["model"]
    again = tm.parse_config(tomllib.loads(to_toml(c)))
    assert [g.spec for g in again.groups] == [g.spec for g in c.groups]
    for model, message in [
        ({"norm": "batch"}, "model.norm: must be one of none, rms, layer, got 'batch'"),
        ({"norm_eps": 1e-3}, 'model.norm_eps: needs model.norm = "rms" or "layer"'),
        ({"norm": "rms", "norm_eps": 0.0}, "model.norm_eps: must be a number in (0, 1]"),
    ]:
        with pytest.raises(UserError) as e:
            tm.parse_config(raw(model=model))
        assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.slow
def test_analyze_adds_the_reliance_variables_per_norm_group(tmp_path):
    """On a tiny sweep with a norm axis: n_decoded and norm_flip_rate recomputed from the
    stored W and b with the group's own norm."""
    from toymodels.analysis import analyze
    c = raw(train={"steps": 40, "batch_size": 32, "log_every": 20, "eval_samples": 8192},
            data={"sparsity": 0.9})
    c["sweep"] = {"norm": ["none", "layer"], "seed": [0]}
    c = tm.parse_config(c)
    ds = analyze(tm.load(tm.run_sweep(c, tmp_path / "n", quiet=True)))
    assert ds.norm_flip_rate.dims[-1] == "rescale"
    assert list(ds.rescale.values) == [0.5, 2.0]
    for norm in ("none", "layer"):
        run = ds.sel(norm=norm).isel(seed=0)
        kind = with_norm(RELU, norm, 1e-5)
        expect = int(jnp.sum(norms.decoded(jnp.asarray(run.W.values), jnp.asarray(run.b.values), kind)))
        assert int(run.n_decoded) == expect
        p = {"W": jnp.asarray(run.W.values), "b": jnp.asarray(run.b.values)}
        assert float(run.norm_flip_rate.sel(rescale=2.0)) == float(
            norms.flip_rate(p, RELU, norm, 1e-5, 2.0))
        assert float(run.readout_flip_rate.sel(rescale=0.5)) == float(
            norms.readout_flip_rate(p, RELU, norm, 1e-5, 0.5))


@pytest.mark.slow
def test_trained_five_to_two_with_layer_norm_keeps_at_most_a_pair():
    """5 -> 2 at density 0.05 (a pentagon without a norm): with LayerNorm at most 2
    features are decoded; without it all 5."""
    hyper = make_hyper(5, feature_probability=0.05)
    counts = {}
    for norm in ("none", "layer"):
        spec = Spec(ModelSpec("relu_output", 5, 2, norm=norm),
                    TrainSpec(steps=4000, batch_size=1024, log_every=1000, eval_samples=8192),
                    DataSpec())
        out = make_train_one(spec)(jax.random.key(0), hyper)
        kind = with_norm(RELU, norm, 1e-5)
        counts[norm] = int(jnp.sum(norms.decoded(out.params["W"], out.params["b"], kind)))
    assert counts["none"] == 5 and counts["layer"] <= 2, counts
