"""What the SGLD settings alone do to an LLC estimate: the exact estimate of the local
quadratic model, under the same nbeta, epsilon, gamma and chain length.

At a minimum w* with Hessian eigenvalues h_k, the loss is L* + ½ Σ h_k x_k² to second
order. The chain of `toymodels.sgld` (unadjusted Langevin on U = nβ L + ½ γ |w − w*|²,
started at w*) is then, in each eigendirection, the AR(1) process
x_{t+1} = ρ_k x_t + √ε ξ_t with a_k = nβ h_k + γ and ρ_k = 1 − ε a_k / 2: its variance
after t steps is v_k (1 − ρ_k^{2t}), v_k = 1 / (a_k (1 − ε a_k / 4)). The estimate
nβ (mean L(w_t) − L*) over draws t = B + 1 .. B + D has the expectation

    λ_q = Σ_k ½ nβ h_k v_k (1 − ρ_k^{2(B+1)} (1 − ρ_k^{2D}) / (D (1 − ρ_k²))),

exact for a quadratic loss (tests/test_sgld_quadratic.py checks it against a large Monte
Carlo of the chain itself). A regular model's learning coefficient is d_eff / 2, d_eff
the number of curved directions; `settings_ratio` = λ_q / (d_eff / 2) says how far the
settings alone move a regular estimate: γ pulls direction k to nβ h_k / (nβ h_k + γ) of
its ½, a short chain stops short of v_k, a large step raises v_k by 1 / (1 − ε a_k / 4).
It is 1 only in the limit ε → 0, γ → 0 and long chains.

The chain has relaxed when its burn-in B spans `RELAX_TIMES` relaxation times
1 / (ε a_k) of its slowest curved direction (`relaxation`; flat directions are the
loss's higher-order terms' to hold, not the quadratic's).

For a stochastic (minibatch) loss the gradient noise adds to this (see
`toymodels.sgld.estimate`); the diagnostic is the deterministic chain's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

RATIO_RANGE = (0.9, 1.1)  # settings_ratio outside: the settings alone bias the estimate
RELAX_TIMES = 3.0  # burn-in needed, in relaxation times of the slowest direction
CURVED = 1e-4  # a direction is curved when h_k > CURVED h_max (else flat: singular)
MAX_DIM = 1024  # larger parameter vectors: no Hessian (the diagnostic is NaN, not used)


def hessian_spectrum(loss_flat, w: jax.Array) -> jax.Array:
    """[d] the eigenvalues of the Hessian of `loss_flat` at the flat parameters w [d]."""
    H = jax.hessian(loss_flat)(w)
    return jnp.linalg.eigvalsh(0.5 * (H + H.T))


def quadratic_estimate(h: jax.Array, nbeta, epsilon, gamma, *, draws: int,
                       burn_in: int) -> jax.Array:
    """[] λ_q, the expected estimate of the chain on the quadratic with Hessian
    eigenvalues h [d] (negative ones taken as 0); inf where a direction's step is
    unstable (ε a_k ≥ 4).

    Example:
      >>> h = jnp.ones(4)  # d = 4, λ = 2: gamma 100 against nbeta 100 halves it, the step adds 0.5%
      >>> round(float(quadratic_estimate(h, 100.0, 1e-4, 100.0, draws=10**6, burn_in=10**6)), 3)
      1.005
    """
    h = jnp.maximum(h, 0.0)
    a = nbeta * h + gamma
    stable = epsilon * a < 4.0
    var = 1.0 / jnp.where(a > 0, a * (1.0 - epsilon * a / 4.0), 1.0)
    rho2 = (1.0 - epsilon * a / 2.0) ** 2
    # the mean over draws of rho2^t, t = B + 1 .. B + D, as a geometric sum
    still = jnp.where(rho2 < 1.0, rho2 ** (burn_in + 1) * (1.0 - rho2 ** draws)
                      / (draws * jnp.where(rho2 < 1.0, 1.0 - rho2, 1.0)), 1.0)
    terms = jnp.where(h > 0, 0.5 * nbeta * h * var * (1.0 - still), 0.0)
    return jnp.where(jnp.all(stable | (h == 0) & (gamma == 0)), jnp.sum(terms), jnp.inf)


def effective_dimension(h: jax.Array) -> jax.Array:
    """[] d_eff, the number of curved directions: eigenvalues above `CURVED` h_max."""
    return jnp.sum(h > CURVED * jnp.maximum(jnp.max(h), 0.0)).astype(jnp.float32)


def settings_ratio(h: jax.Array, nbeta, epsilon, gamma, *, draws: int, burn_in: int) -> jax.Array:
    """[] λ_q / (d_eff / 2): 1 where the settings do not bias a regular estimate; NaN
    where no direction is curved."""
    d_eff = effective_dimension(h)
    lam = quadratic_estimate(h, nbeta, epsilon, gamma, draws=draws, burn_in=burn_in)
    return jnp.where(d_eff > 0, lam / jnp.maximum(d_eff, 1.0) * 2.0, jnp.nan)


def relaxation(h: jax.Array, nbeta, epsilon, gamma, *, burn_in: int) -> jax.Array:
    """[] the burn-in in relaxation times of the slowest curved direction: B ε min a_k
    over the directions `effective_dimension` counts (NaN where none is curved).
    Relaxed: at least `RELAX_TIMES`.

    The flat directions are left out: at a singular w* they are held by the loss's
    higher-order terms, which the quadratic does not see (w₁²w₂⁴ at 0 with nβ = 10⁴,
    γ = 1: γ alone gives a relaxation time of 2000 steps at ε = 5e-4, yet 1000 burn-in
    steps give λ̂ within 3% of 1/4, tests/test_sgld.py)."""
    curved = h > CURVED * jnp.maximum(jnp.max(h), 0.0)
    a = jnp.where(curved, nbeta * h + gamma, jnp.inf)
    return jnp.where(jnp.any(curved), burn_in * epsilon * jnp.min(a), jnp.nan)
