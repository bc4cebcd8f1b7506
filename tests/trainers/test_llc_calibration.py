"""`toymodels llc DIR --calibrate` (toymodels.llc_calibration): estimates read off one chain
are the estimates of chains of those lengths; the bias diagnostic through the engine is
the hand-derived one of the identity linear model (6 transverse directions of curvature
8/9, 3 flat, tests/trainers/test_llc.py); the recommendation picks what it says."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import toymodels as tm
from toymodels import sgld
from toymodels import llc_calibration as calibration
from toymodels.cli import main

H = jnp.array([0.5, 2.0, 10.0])


@pytest.mark.slow  # 8 s (the default suite took 434 s of its 420 with issues 27-28's tests)
def test_estimates_read_off_one_chain_are_those_of_shorter_chains():
    loss = lambda w: 0.5 * jnp.sum(H * w * w)
    kw = dict(nbeta=100.0, epsilon=5e-4, gamma=3.0, chains=3)
    lengths = ((20, 50), (100, 300))  # short, for the test's time; the grid's are longer
    long = sgld.estimate(loss, jnp.zeros(3), jax.random.key(7), burn_in=0, draws=400, **kw)
    est, se = calibration.read_lengths(np.asarray(long.trace)[None], np.asarray([long.init_loss]),
                                       np.asarray([100.0]), lengths)
    for i, (burn_in, draws) in enumerate(lengths):
        short = sgld.estimate(loss, jnp.zeros(3), jax.random.key(7), burn_in=burn_in,
                              draws=draws, **kw)
        assert est[0, i] == pytest.approx(float(short.llc), rel=1e-5)
        assert se[0, i] == pytest.approx(float(short.llc_se), rel=1e-4)


def test_calibration_indices_by_hand():
    assert calibration.calibration_indices(4, 2).tolist() == [0, 3]
    assert calibration.calibration_indices(3, 8).tolist() == [0, 1, 2]
    assert calibration.calibration_indices(1, 2).tolist() == [0]


def _by_hand(nbeta, epsilon, gamma, burn_in, draws):
    """The identity model's settings ratio: 6 directions of curvature 8/9 over d_eff = 6,
    each AR(1) with rho = 1 - eps a / 2 from 0, averaged over draws B+1..B+D."""
    a = nbeta * 8 / 9 + gamma
    rho2 = (1 - epsilon * a / 2) ** 2
    t = np.arange(burn_in + 1, burn_in + draws + 1)
    fill = np.mean(1 - rho2 ** t)
    return (nbeta * 8 / 9) / (a * (1 - epsilon * a / 4)) * fill


@pytest.mark.slow  # about 25 s: a calibration of one run and one ordinary pass
def test_a_calibration_of_the_identity_model(identity_runs, capsys):
    exact = ["--loss", "exact", "--n", "300"]  # the population loss: curvature 8/9 exactly
    assert main(["llc", str(identity_runs), "--calibrate", "--calibrate-runs", "1", *exact]) == 0
    line = capsys.readouterr().out
    ds = tm.load(identity_runs / "llc_calibration")
    assert ds.llc.dims == (*calibration.AXES, "length")
    assert ds.run.values.tolist() == [0]  # 1 of the 4 runs (2, the default: the first, the last)
    nbeta = ds.nbeta.values[0]
    assert nbeta == pytest.approx(300 / np.log(300))  # n / ln n
    # the bias diagnostic through the engine (Hessian at w*, the step auto chose) is the
    # hand-derived one at every setting and length
    eps = ds.llc_epsilon.broadcast_like(ds.llc)
    hand = xr.apply_ufunc(np.vectorize(_by_hand), ds.nbeta, eps, ds.gamma, ds.burn_in, ds.draws)
    np.testing.assert_allclose(ds.llc_settings_ratio.values,
                               hand.transpose(*ds.llc.dims).values, rtol=2e-3)
    # the recommendation is printed, and it is a setting the grid trusts
    best = calibration.recommend(ds)
    assert best is not None and "recommended: " in line and f"--gamma {best['gamma']:g}" in line
    # one setting read off the calibration's chain is an ordinary pass with that setting
    at = ds.isel(run=0, epsilon_scale=1, gamma=0, nbeta=0, length=0)
    assert main(["llc", str(identity_runs), *exact, "--epsilon-scale", str(float(at.epsilon_scale)),
                 "--gamma", str(float(at.gamma)), "--nbeta", repr(float(at.nbeta)),
                 "--burn-in", str(int(at.burn_in)), "--draws", str(int(at.draws))]) == 0
    single = tm.load(identity_runs).llc.values.ravel()[0]
    assert float(at.llc) == pytest.approx(float(single), rel=1e-4)


def _made(trusted, llc, ratio):
    """A calibration Dataset by hand: one run, one scale and nbeta, 2 gammas x 3 lengths."""
    shape = (1, 1, 2, 1, 3)
    var = lambda a: (calibration.AXES + ("length",), np.asarray(a).reshape(shape))
    return xr.Dataset(
        {"llc": var(llc), "llc_se": var(np.full(6, 0.01)), "llc_trusted": var(np.asarray(trusted, bool)),
         "llc_settings_ratio": var(ratio)},
        coords={"run": [0], "epsilon_scale": [0.2], "gamma": [1.0, 100.0], "nbeta": [145.0],
                "length": [0, 1, 2], "burn_in": ("length", [100, 500, 1000]),
                "draws": ("length", [200, 1000, 2000])})


def test_recommend_takes_the_cheapest_trusted_flat_setting():
    # gamma 1: trusted from length 1, flat between lengths 1 and 2 (2.00 vs 2.05);
    # gamma 100: trusted at length 0 but 1.0 -> 1.5, not flat. So: gamma 1, (500, 1000).
    ds = _made([0, 1, 1, 1, 1, 1], [1.5, 2.0, 2.05, 1.0, 1.5, 1.52], [0.9, 1.0, 1.0, 0.5, 0.5, 0.5])
    assert calibration.recommend(ds) == {"epsilon_scale": 0.2, "gamma": 1.0, "nbeta": 145.0,
                                         "burn_in": 500, "draws": 1000}
    # nothing trusted: no recommendation, and the line says so
    ds = _made([0] * 6, [1.5, 2.0, 2.05, 1.0, 1.5, 1.52], [0.9] * 6)
    assert calibration.recommend(ds) is None
    assert calibration.recommendation_text(ds).startswith("no setting")
