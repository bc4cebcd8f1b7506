"""Every entry of the `MODELS` registry: init, forward and a brief training run give the
documented shapes (a new kind is covered by adding it to the registry)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toymodels as tm
from toymodels.hyper import make_hyper
from toymodels.spec import ModelSpec, Spec, TrainSpec

F, H, B = 6, 3, 16
DIM_SIZES = {"hidden": H, "feature": F}


@pytest.mark.parametrize("kind", list(tm.MODELS))
def test_init_and_forward_shapes(kind):
    model = tm.get_model(kind)
    params = model.init(jax.random.key(0), ModelSpec(kind, F, H))
    assert set(params) == set(model.dims)
    for name, value in params.items():
        assert value.shape == tuple(DIM_SIZES[d] for d in model.dims[name]), name
        assert value.dtype == jnp.float32
    x = jax.random.uniform(jax.random.key(1), (F, B))
    y, h = model.forward(params, x, jnp.ones((H, B)))
    assert y.shape == (F, B) and h.shape == (H, B)
    assert model.target(x).shape == (F, B)
    _, h_dropped = model.forward(params, x, jnp.zeros((H, B)))
    np.testing.assert_array_equal(h_dropped, 0.0)  # keep multiplies the hidden vector


@pytest.mark.parametrize("kind", list(tm.MODELS))
def test_every_kind_trains_briefly(kind):
    spec = Spec(ModelSpec(kind, F, H), TrainSpec(steps=40, batch_size=64, log_every=20,
                                                  eval_samples=8192))
    out = tm.make_train_one(spec)(jax.random.key(0), make_hyper(F))
    model = tm.get_model(kind)
    for name in model.dims:
        assert out.params[name].shape == tuple(DIM_SIZES[d] for d in model.dims[name])
        assert np.isfinite(out.params[name]).all()
    assert out.loss.shape == (2,) and np.isfinite(out.loss).all()
    assert out.final_loss.shape == () and np.isfinite(out.final_loss)
    assert out.loss[-1] < out.loss[0] * 1.5  # no blow-up in 40 steps


def test_unknown_kind_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: " + ", ".join(tm.MODELS)):
        tm.get_model("quadratic")
