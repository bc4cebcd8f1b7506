"""The bias diagnostic (toymodels.sgld_quadratic): its exact estimate of a quadratic against
a large Monte Carlo of the chain itself, its limits by hand, and the trust flag it sets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels import sgld
from toymodels import sgld_quadratic as q

H = jnp.array([0.5, 2.0, 10.0, 50.0])  # condition number 100


def quadratic(w):
    return 0.5 * jnp.sum(H * w * w)


@pytest.mark.parametrize("gamma, burn_in, draws", [
    (20.0, 20, 100), pytest.param(1.0, 400, 400, marks=pytest.mark.slow)],
    ids=["short-chain-strong-gamma", "relaxed-weak-gamma"])
def test_the_quadratic_estimate_is_the_mean_of_many_chains(gamma, burn_in, draws):
    nbeta, eps = 100.0, 6e-4  # eps a_max = 3.0: the 1 / (1 - eps a / 4) factor is 1.33
    r = sgld.llc(quadratic, jnp.zeros(4), n=1000, key=jax.random.key(3), chains=4000,
                 draws=draws, burn_in=burn_in, epsilon=eps, gamma=gamma, nbeta=nbeta)
    exact = float(q.quadratic_estimate(H, nbeta, eps, gamma, draws=draws, burn_in=burn_in))
    assert abs(float(r.llc) - exact) < 4 * float(r.llc_se), (float(r.llc), exact, float(r.llc_se))
    # and the diagnostic differs from d/2 = 2 by more than the Monte Carlo error: the test
    # would see a formula that ignored gamma, the step or the chain length
    assert abs(exact - 2.0) > 8 * float(r.llc_se)


def test_limits_by_hand():
    nbeta = 100.0
    # long chains, tiny step, no gamma: d / 2 over the curved directions
    lam = q.quadratic_estimate(H, nbeta, 1e-7, 0.0, draws=10**8, burn_in=10**8)
    assert float(lam) == pytest.approx(2.0, rel=1e-3)
    # gamma alone: sum of nbeta h / (2 (nbeta h + gamma))
    gamma = 100.0
    by_hand = sum(nbeta * h / (2 * (nbeta * h + gamma)) for h in (0.5, 2.0, 10.0, 50.0))
    lam = q.quadratic_estimate(H, nbeta, 1e-7, gamma, draws=10**8, burn_in=10**8)
    assert float(lam) == pytest.approx(by_hand, rel=1e-3)
    # a flat direction adds nothing and is not counted in d_eff
    h = jnp.array([0.0, 1.0, 1.0])
    assert float(q.effective_dimension(h)) == 2.0
    assert float(q.settings_ratio(h, nbeta, 1e-7, 0.0, draws=10**8, burn_in=10**8)) == pytest.approx(1.0, rel=1e-3)
    # the step: 1 / (1 - eps a / 4) per direction, a = nbeta h (gamma 0)
    eps = 1e-3
    lam = q.quadratic_estimate(jnp.array([20.0]), nbeta, eps, 0.0, draws=10**8, burn_in=10**8)
    assert float(lam) == pytest.approx(0.5 / (1 - eps * 2000 / 4), rel=1e-3)
    # unstable: eps a >= 4
    assert np.isinf(float(q.quadratic_estimate(jnp.array([50.0]), nbeta, 1e-3, 0.0, draws=10, burn_in=0)))
    # relaxation: burn_in eps min(a) over the curved directions; none curved: NaN
    assert float(q.relaxation(H, nbeta, 1e-3, 10.0, burn_in=100)) == pytest.approx(100 * 1e-3 * 60.0)
    h = jnp.array([0.0, 1e-9, 2.0])  # 1e-9 < CURVED * 2: flat
    assert float(q.relaxation(h, nbeta, 1e-3, 10.0, burn_in=100)) == pytest.approx(100 * 1e-3 * 210.0)
    assert np.isnan(float(q.relaxation(jnp.zeros(3), nbeta, 1e-3, 10.0, burn_in=100)))


def test_the_hessian_spectrum_of_a_rotated_quadratic():
    rot = jnp.linalg.qr(jax.random.normal(jax.random.key(0), (4, 4)))[0]
    A = rot @ jnp.diag(H) @ rot.T
    h = q.hessian_spectrum(lambda w: 0.5 * w @ A @ w, jnp.ones(4))
    np.testing.assert_allclose(np.sort(np.asarray(h)), np.asarray(H), rtol=1e-4)


def test_the_default_settings_on_a_regular_quadratic_are_flagged_with_their_bias():
    # the case: d = 4, lambda = 2; gamma 100 against nbeta = 144.8 and 100 burn-in
    # steps at eps 1e-4 give about 1.17 in expectation; the flag says so
    r = sgld.llc(lambda w: 0.5 * jnp.sum(w**2), jnp.zeros(4), n=1000, key=jax.random.key(0),
                 epsilon=1e-4, gamma=100.0, draws=200, burn_in=100)
    assert float(r.settings_ratio) == pytest.approx(1.170 / 2, abs=0.01)
    assert not bool(r.trusted)
    good = sgld.llc(lambda w: 0.5 * jnp.sum(w**2), jnp.zeros(4), n=1000, key=jax.random.key(0),
                    epsilon=2e-4, gamma=1.0, draws=2000, burn_in=500, nbeta=200.0)
    assert 0.9 <= float(good.settings_ratio) <= 1.1 and float(good.relaxation) >= q.RELAX_TIMES
    assert bool(good.trusted)
