"""The known-answer suite (toymodels.llc_suite) at the defaults, and independent calls
of the LLC estimator agreeing with its own standard error (issue 25, items 4 and 5).

λ of every case is a closed form (d/2, the normal crossing's min_j 1/(2 k_j), Aoyagi &
Watanabe's reduced-rank regression), never a number from the estimator.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels import llc_suite
from toymodels.sgld import llc

TOLERANCE = 0.15
KEYS = (0, 1)
HELD = [n for n in llc_suite.case_names() if llc_suite.get_case(n).held]
CHEAP = ("quadratic-d10-k1", "quadratic-d100-k10", "crossing-w2^2-flat", "rrr-M3N2H2r1")


@pytest.mark.parametrize("name", [n if n in CHEAP else pytest.param(n, marks=pytest.mark.slow)
                                  for n in HELD])
def test_case_within_15_percent_at_the_defaults(name):
    # the defaults of LLC_SCHEMA plus the case's `needs` (empty for most: see the registry)
    case = llc_suite.get_case(name)
    values = [float(llc_suite.run_case(case, jax.random.key(k), **dict(case.needs)).llc)
              for k in KEYS]
    assert abs(np.mean(values) / case.lam - 1) < TOLERANCE, (values, case.lam)


def test_registry_lambdas_are_the_closed_forms():
    # d/2; min_j 1/(2 k_j); Aoyagi & Watanabe worked by hand: (3,2,2,r=1): case 4,
    # M+N+H+r = 8 even, s = 2*3*5 - 1 - 9 = 20, lambda = 20/8; (2,2,2,r=2): H(M+N-H)/2.
    expected = {"quadratic-d100-k10": 50.0, "crossing-w1^2w2^4": 0.25,
                "crossing-w1^2w2^6": 1 / 6, "crossing-w2^2-flat": 0.5,
                "rrr-M3N2H2r1": 2.5, "rrr-M2N2H2r2": 2.0, "rrr-M2N2H2r0": 1.5,
                "rrr-M4N3H2r1": 4.0}
    for name, lam in expected.items():
        case = llc_suite.get_case(name)
        assert case.lam == pytest.approx(lam), name
        assert float(case.loss(jnp.asarray(case.w_star))) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(KeyError, match="registered"):
        llc_suite.get_case("quadratic-d3")


# --- independent calls agree with the within-call standard error -------------------
# llc_se = std(per-chain estimates, ddof 1) / sqrt(C). With C independent chains per call,
# E[llc_se²] = Var(per chain) / C, and the spread of λ̂ over independent calls is
# Var(per chain) / C. So sd(λ̂ over calls) / sqrt(mean(llc_se²)) is 1 when the chains
# are independent. Sizes: C = 8 chains, 32 calls: the ratio's
# sampling error is about 13% (sd of 32 values: 1/sqrt(62); mean of 32 se²: 9%, half
# that in the root), so [1/1.5, 1.5] is about 3 standard errors either side.
# A failure above 1.5 means the chains of one call move together (a shared batch or
# shared noise: the within-call spread then misses the common part, as devinterp's
# chains correlated through one batch did); below 1/1.5, that calls share randomness.
# The minibatch of 8 makes the batch the larger part of the motion: in the stiffest
# coordinate (a = 4) the gradient's batch noise has eps nbeta² a² s² / (4 B) = 4 times
# the Langevin noise's variance (test_sgld_stochastic.py's closed form), so chains
# sharing batches would share most of their motion and the ratio would be far above 1.5.

A = jnp.asarray([0.5, 1.0, 2.0, 4.0])
X = jax.random.normal(jax.random.key(7), (2000, 4))  # a dataset; its mean is w*
W_STAR = jnp.mean(X, axis=0)
SPREAD = dict(n=2000, nbeta=200.0, epsilon=2e-4, gamma=1.0, chains=8, draws=1000,
              burn_in=300)
CALLS = 32


def full_loss(w):
    return 0.5 * jnp.mean(jnp.sum(A[None] * (w[None] - X) ** 2, axis=1))


def batch_loss(w, key):  # the same on 8 examples drawn with replacement
    x = X[jax.random.randint(key, (8,), 0, X.shape[0])]
    return 0.5 * jnp.mean(jnp.sum(A[None] * (w[None] - x) ** 2, axis=1))


def _spread_ratio(loss, stochastic):
    runs = [llc(loss, W_STAR, key=jax.random.key(1000 + i), stochastic=stochastic, **SPREAD)
            for i in range(CALLS)]
    values = np.array([float(r.llc) for r in runs])
    se2 = np.array([float(r.llc_se) ** 2 for r in runs])
    return float(np.std(values, ddof=1) / math.sqrt(np.mean(se2)))


@pytest.mark.parametrize("stochastic", [pytest.param(False, marks=pytest.mark.slow),  # 18 s
                                        True], ids=["full_batch", "minibatch"])
def test_independent_calls_agree_with_the_chain_standard_error(stochastic):
    ratio = _spread_ratio(batch_loss if stochastic else full_loss, stochastic)
    assert 1 / 1.5 < ratio < 1.5, ratio
