"""The hedging figure (toymodels/plotting/hedging.py) on one-latent SAE results made by
hand: decoder rows at known angles to orthonormal parent and child directions."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from toymodels import plotting, theory  # noqa: E402
from toymodels.plotting import hedging as h  # noqa: E402

Q = [0.05, 0.2, 0.5]  # P(c | p); the parent fires with 0.3
PHI = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])  # [q, seed] decoder angles


@pytest.fixture(scope="module")
def saes():
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    truth = basis[:, :2]  # [hidden, feature]
    decoder = np.cos(PHI)[..., None] * truth[:, 0] + np.sin(PHI)[..., None] * truth[:, 1]
    density = np.array([[0.3, 0.3 * q] for q in Q])[:, None, :].repeat(2, 1)
    dims = ("feature_probability", "seed")
    return xr.Dataset(
        {"decoder": ((*dims, "latent", "hidden"), 2.0 * decoder[:, :, None, :]),
         "truth": (("hidden", "feature"), truth),
         "density": ((*dims, "feature"), density)},
        coords={"feature_probability": Q, "seed": [0, 1]},
        attrs={"name": "hedge", "trainer": "sae", "n_features": 2, "n_hidden": 3,
               "config": '[data]\nmagnitude = "constant"\n'})


def test_shares_read_the_decoder_angle_and_the_closed_form(saes):
    rows = h.shares(saes, "hierarchical")
    np.testing.assert_allclose(rows[:, 0], 0.3 * np.repeat(Q, 2))
    np.testing.assert_allclose(rows[:, 1], np.sin(PHI).ravel(), atol=1e-12)
    np.testing.assert_allclose(rows[:, 2], theory.child_share(0.3, np.repeat(Q, 2)), atol=1e-12)
    independent = h.shares(saes, "independent")
    np.testing.assert_allclose(independent[:, 2], 0.0, atol=1e-12)


def test_hedging_figure_draws_the_curve_and_every_run(saes):
    fig = plotting.PLOTS["hedging"](saes, world="hierarchical")
    curve, points = fig.axes[0].lines[:2]
    assert len(curve.get_xdata()) == len(points.get_xdata()) == 6
    assert plotting.why_not("hedging", saes) is None


def test_hedging_needs_one_latent_on_two_features(saes):
    wide = saes.drop_vars("decoder").assign(decoder=saes.decoder.isel(latent=[0, 0]))
    assert "one-latent SAEs on 2 features" in plotting.why_not("hedging", wide)


def test_a_synthetic_worlds_density_is_the_childs_given_its_parent(saes):
    """A world (a `parent` variable) stores a child's density given its parent: q is the
    child's density itself, P(c) = 0.3 q; its magnitudes are the world's own means (std 0);
    a run whose loss is far above the closed form's least is drawn apart (a local minimum)."""
    density = np.array([[0.3, q] for q in Q])  # per static group, as the sweep stores it
    least = theory.optimal_mse(theory.amplitude_cov(0.3, np.array(Q), "hierarchical"))
    loss = np.stack([least, 3 * least], 1)[..., None]  # seed 1 stuck: 3x the least
    world = saes.assign(density=(("feature_probability", "feature"), density),
                        parent=(("feature",), [-1, 0]), world_mean=(("feature",), [1.0, 1.0]),
                        world_std=(("feature",), [0.0, 0.0]),
                        loss=(("feature_probability", "seed", "step"), loss))
    world.attrs["config"] = ""  # no [data]: the magnitudes are the world's
    rows = h.shares(world, "hierarchical")
    np.testing.assert_allclose(rows[:, 3], np.repeat(Q, 2))
    np.testing.assert_allclose(rows[:, 0], 0.3 * np.repeat(Q, 2))
    np.testing.assert_allclose(rows[:, 2], theory.child_share(0.3, np.repeat(Q, 2)), atol=1e-12)
    np.testing.assert_allclose(rows[:, 4], np.tile([1.0, 3.0], 3), rtol=1e-9)
    fig = plotting.PLOTS["hedging"](world, world="hierarchical")
    assert [len(line.get_xdata()) for line in fig.axes[0].lines[:3]] == [6, 3, 3]
    with pytest.raises(ValueError, match="use -o world=hierarchical"):
        h.shares(world, "independent")
    with pytest.raises(ValueError, match="constant magnitudes"):
        h.shares(world.assign(world_std=(("feature",), [0.1, 0.0])), "hierarchical")
