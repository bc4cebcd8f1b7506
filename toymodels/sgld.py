"""Local learning coefficient (LLC) by localised SGLD (Lau et al. 2023; devinterp).

One chain is written as a ``lax.scan`` over SGLD steps on the flattened parameter
vector; ``jax.vmap`` over chains happens in exactly one place (:func:`llc`).

Localised, tempered posterior around ``w*``::

    p(w) ~ exp(-U(w)),   U(w) = nbeta L(w) + (gamma / 2) ||w - w*||^2

SGLD step (unadjusted Langevin)::

    w' = w - (eps / 2) grad U(w) + sqrt(eps) xi,   xi ~ N(0, I)

Estimate per chain: ``lambda_hat = nbeta (mean_{draws after burn-in} L(w) - L(w*))``.
``nbeta`` defaults to ``n / ln n`` (Lau et al.'s beta* = 1 / ln n, n = dataset size).

The step noise of chain ``c`` at step ``t`` is drawn from
``fold_in(split(key, chains)[c], t)``.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial, reduce
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from toymodels import sgld_quadratic as quadratic
from toymodels.llc_config import LLC_SCHEMA

__all__ = ["LLCResult", "llc", "estimate", "default_nbeta", "DIVERGE_FACTOR"]

BATCH = 1  # fold_in tag of a step key for its batch (stochastic losses)
WINDOWS = 20  # stochastic losses: below_init is judged on the means of draws // 20 draws
CURVATURE = 2**31 - 1  # fold_in tag of an estimate's key for its curvature probe (auto step)
AUTO_SCALE = 0.2  # epsilon = "auto": eps (nbeta h_max + gamma) = 0.2

#: a trace value above ``DIVERGE_FACTOR * (|L(w*)| + 1)`` counts as divergence.
DIVERGE_FACTOR = 1e3
#: trust thresholds (see :class:`LLCResult`).
MAX_BELOW_INIT = 0.05
ACCEPTANCE_RANGE = (0.5, 0.9999)
SE_REL, SE_ABS = 0.2, 0.05


def default_nbeta(n: int) -> float:
    """``n / ln n`` (Lau et al.'s beta* = 1/ln n times the dataset size n)."""
    if n < 2:
        raise ValueError(f"n must be >= 2 for n / ln n, got {n}")
    return n / math.log(n)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LLCResult:
    """Result of :func:`llc`.

    Fields: ``llc`` (mean over chains), ``llc_se`` (sample std over chains, ddof 1, /
    sqrt(chains)),
    ``llc_per_chain`` [C], ``trace`` [C, draws] (L of each draw, burn-in excluded),
    ``init_loss`` L(w*), ``below_init`` (fraction of post-burn-in draws with
    L(w) < L(w*), all chains), ``acceptance`` (mean over all steps and chains of
    min(1, MH ratio) of the Langevin proposal under exp(-U)), ``nonfinite``,
    ``diverged``, ``nbeta``, ``epsilon`` (the step used: given, or chosen by
    ``epsilon="auto"``), ``spectrum`` [d] (the Hessian eigenvalues at w* the settings
    check reads; NaN above 1024 parameters), ``settings_ratio``, ``relaxation`` and
    ``trusted``.

    Trust rule (``trusted`` is True iff ALL hold):

    * the trace is finite (``not nonfinite``) and ``not diverged`` (no draw above
      ``DIVERGE_FACTOR * (|L(w*)| + 1)``);
    * ``below_init <= 0.05`` (Chen et al. drop chains with > 5% of draws below
      L(w*): w* is then not a local minimum at this scale);
    * ``0.5 <= acceptance <= 0.9999``: below 0.5 the step is too large and the SGLD
      discretisation bias is large; above 0.9999 the step is so small that the chain
      barely moves (devinterp aims near 0.9; the accurate reduced-rank regression
      chains of tests/test_slt.py run at 0.9994, so 0.999 was too strict);
    * ``llc > 0`` (a negative estimate means lower loss was found) and the chains
      agree: ``llc_se <= 0.2 |llc| + 0.05``;
    * the settings alone do not bias a regular estimate: ``settings_ratio``, the exact
      estimate of the local quadratic model (the Hessian at w*) under the same nbeta,
      epsilon, gamma and chain length over its d_eff / 2, is in [0.9, 1.1]; and the
      burn-in spans ``relaxation`` >= 3 relaxation times of the slowest direction
      (`toymodels.sgld_quadratic`; both NaN, and not checked, above 1024 parameters).
      A w* with no curved direction (a zero Hessian: ``settings_ratio`` NaN) is not
      trusted: its estimate is set by the loss's higher-order terms against gamma, which
      no single estimate can check (at gamma 100 the normal crossings and a rank-0
      reduced-rank regression give about 0, tests/test_llc_suite.py); the calibration
      (`toymodels.llc_calibration`) shows how it moves with gamma.
    """

    llc: jax.Array
    llc_se: jax.Array
    llc_per_chain: jax.Array
    trace: jax.Array
    init_loss: jax.Array
    below_init: jax.Array
    acceptance: jax.Array
    nonfinite: jax.Array
    diverged: jax.Array
    nbeta: jax.Array
    epsilon: jax.Array
    spectrum: jax.Array
    settings_ratio: jax.Array
    relaxation: jax.Array
    trusted: jax.Array


def _chain(loss_flat, w0, nbeta, epsilon, gamma, chain_key, *, draws, burn_in, tick):
    """One localised SGLD chain on a deterministic loss.

    Returns (L(w_t) [draws] after burn-in, the matching L(w*) [draws] (all L(w*)),
    mean acceptance over all steps). One gradient per step: the gradient at the proposal
    serves both its MALA ratio and the next step.
    """

    def potential(w):
        loss = loss_flat(w)
        dw = w - w0
        return nbeta * loss + 0.5 * gamma * jnp.sum(dw * dw), loss

    vg = jax.value_and_grad(potential, has_aux=True)

    def step(carry, t):
        w, u, g = carry
        tick(t)
        xi = jax.random.normal(jax.random.fold_in(chain_key, t), w.shape, w.dtype)
        w_new = w - 0.5 * epsilon * g + jnp.sqrt(epsilon) * xi
        (u_new, loss_new), g_new = vg(w_new)
        acc = _acceptance(w, w_new, u, u_new, g, g_new, epsilon)
        return (w_new, u_new, g_new), (loss_new, acc)

    (u0, init), g0 = vg(w0)
    _, (losses, acc) = lax.scan(step, (w0, u0, g0), jnp.arange(burn_in + draws))
    return losses[burn_in:], jnp.full((draws,), init), jnp.mean(acc)


def _stochastic_chain(loss_flat, w0, nbeta, epsilon, gamma, chain_key, *, draws, burn_in, tick):
    """One localised SGLD chain on a stochastic loss ``loss_flat(w, batch_key)`` (a
    minibatch of a dataset, or fresh samples).

    Step t draws batch key ``fold_in(fold_in(chain_key, t), BATCH)``; the step's
    gradient, the draw's loss L_t(w_t) and the reference L_t(w*) all use that batch
    (common random numbers: ``L_t(w_t) - L_t(w*)`` is unbiased for ``L(w_t) - L(w*)``
    with far less variance than either term). The MALA ratio of the step uses U and its
    gradient on the same batch at both ends (one more gradient per step).
    Returns (L_t(w_t) [draws], L_t(w*) [draws], mean acceptance).
    """

    def potential(w, k):
        loss = loss_flat(w, k)
        dw = w - w0
        return nbeta * loss + 0.5 * gamma * jnp.sum(dw * dw), loss

    vg = jax.value_and_grad(potential, has_aux=True)

    def step(w, t):
        tick(t)
        step_key = jax.random.fold_in(chain_key, t)
        batch = jax.random.fold_in(step_key, BATCH)
        (u, loss), g = vg(w, batch)
        xi = jax.random.normal(step_key, w.shape, w.dtype)
        w_new = w - 0.5 * epsilon * g + jnp.sqrt(epsilon) * xi
        (u_new, _), g_new = vg(w_new, batch)
        acc = _acceptance(w, w_new, u, u_new, g, g_new, epsilon)
        return w_new, (loss, loss_flat(w0, batch), acc)

    _, (losses, at_star, acc) = lax.scan(step, w0, jnp.arange(burn_in + draws))
    return losses[burn_in:], at_star[burn_in:], jnp.mean(acc)


def _acceptance(w, w_new, u, u_new, g, g_new, epsilon):
    """min(1, MH ratio) of the Langevin proposal w -> w_new under exp(-U):
    log p(w') q(w | w') - log p(w) q(w' | w); 0 where it is not finite."""
    fwd = w_new - w + 0.5 * epsilon * g
    bwd = w - w_new + 0.5 * epsilon * g_new
    log_q = (jnp.sum(fwd * fwd) - jnp.sum(bwd * bwd)) / (2.0 * epsilon)
    log_r = (u - u_new) + log_q
    return jnp.where(jnp.isfinite(log_r), jnp.exp(jnp.minimum(log_r, 0.0)), 0.0)


def stiffest_curvature(loss_fn, w_star, key, iterations: int = 30) -> jax.Array:
    """|h_max|, the largest absolute eigenvalue of the Hessian of ``loss_fn`` at
    ``w_star``, by power iteration on Hessian-vector products (forward over reverse),
    from a random start drawn from ``key``. ``loss_fn(w)`` deterministic."""
    flat, unravel = ravel_pytree(w_star)
    grad = jax.grad(lambda w: loss_fn(unravel(w)))
    unit = lambda v: v / jnp.maximum(jnp.sqrt(jnp.sum(v * v)), 1e-30)

    def power(v, _):
        hv = jax.jvp(grad, (flat,), (v,))[1]
        return unit(hv), jnp.sqrt(jnp.sum(hv * hv))

    start = unit(jax.random.normal(key, flat.shape, flat.dtype))
    _, norms = lax.scan(power, start, None, length=iterations)
    return norms[-1]


def auto_epsilon(curvature, nbeta, gamma, scale=AUTO_SCALE):
    """The step of ``epsilon="auto"``: ``scale / (nbeta h_max + gamma)``. The stiffest
    direction of the localised posterior has precision p = nbeta h_max + gamma; at
    ``eps p = 0.2`` its Langevin discretisation inflates its variance by
    ``1 / (1 - eps p / 4) = 1.053`` (5%), and every softer direction by less."""
    return scale / (nbeta * curvature + gamma)


def estimate(loss_fn, w_star, key, nbeta, epsilon, gamma, *, chains: int, draws: int,
             burn_in: int, stochastic: bool = False, auto_step: bool = False,
             tick: Callable[[jax.Array], None] = lambda t: None) -> LLCResult:
    """The LLC of ONE model: `chains` localised SGLD chains from ``w_star``, vmapped.

    The pure function behind :func:`llc`, for callers that vmap it themselves (the
    sweep path, `toymodels.llc`, vmaps it over runs and snapshots). ``loss_fn(w)``, or
    ``loss_fn(w, batch_key)`` when ``stochastic``; ``nbeta``, ``epsilon`` and ``gamma``
    may be traced. Chain c uses ``split(key, chains)[c]``. ``auto_step``: ``epsilon``
    is the ``scale`` of :func:`auto_epsilon` and the step is chosen from the curvature at
    w* (:func:`stiffest_curvature`; a stochastic loss's on one batch), from
    ``fold_in(key, CURVATURE)``. ``tick(t)`` is called at each SGLD step t (traced; the
    sweep engine's progress, `toymodels.progress.ticker`).

    With a stochastic loss, ``trace`` holds the draws' batch losses, ``init_loss`` the
    mean of L_t(w*) over the same batches, and ``below_init`` is the fraction of windows
    of ``draws // WINDOWS`` consecutive draws of a chain whose mean L_t(w_t) - L_t(w*)
    is negative: one draw's difference is below 0 often by the batch's noise alone
    (a third of the draws for the quadratic of tests/test_slt_stochastic.py), a
    window's mean only if the chain found lower loss. The minibatch gradient's noise
    adds to the Langevin noise, which raises the estimate by about
    ``sum_k eps nbeta² a_k² Var(g_k) / 8`` for curvatures a_k (the test's closed form).
    """
    flat, unravel = ravel_pytree(w_star)
    if auto_step:
        probe = jax.random.fold_in(key, CURVATURE)
        fixed = (lambda w: loss_fn(w, jax.random.fold_in(probe, 1))) if stochastic else loss_fn
        epsilon = auto_epsilon(stiffest_curvature(fixed, w_star, probe), nbeta, gamma, epsilon)
    if stochastic:
        loss_flat, chain = (lambda w, k: loss_fn(unravel(w), k)), _stochastic_chain
    else:
        loss_flat, chain = (lambda w: loss_fn(unravel(w))), _chain
    keys = jax.random.split(key, chains)
    run = partial(chain, loss_flat, flat, nbeta, epsilon, gamma, draws=draws, burn_in=burn_in,
                  tick=tick)
    trace, at_star, acc_c = jax.vmap(run)(keys)  # the one vmap over chains

    per_chain = nbeta * jnp.mean(trace - at_star, axis=1)
    init_loss = jnp.mean(at_star)
    est = jnp.mean(per_chain)
    se = jnp.std(per_chain, ddof=1) / jnp.sqrt(float(chains))
    below = _below_init(trace - at_star, window=max(1, draws // WINDOWS) if stochastic else 1)
    acceptance = jnp.mean(acc_c)
    nonfinite = jnp.logical_not(jnp.all(jnp.isfinite(trace)))
    limit = DIVERGE_FACTOR * (jnp.abs(init_loss) + 1.0)
    diverged = jnp.logical_or(nonfinite, jnp.any(trace > limit))
    h, ratio, relax = _settings_check(loss_fn, stochastic, flat, unravel, key, nbeta, epsilon,
                                      gamma, draws, burn_in)
    checks = trust_checks(est, se, below, acceptance, diverged, ratio, relax,
                          flat.shape[0] <= quadratic.MAX_DIM, jnp)
    trusted = reduce(jnp.logical_and, checks.values())
    return LLCResult(
        llc=est, llc_se=se, llc_per_chain=per_chain, trace=trace, init_loss=init_loss,
        below_init=below, acceptance=acceptance, nonfinite=nonfinite, diverged=diverged,
        nbeta=jnp.asarray(nbeta, jnp.float32), epsilon=jnp.asarray(epsilon, jnp.float32),
        spectrum=h, settings_ratio=ratio, relaxation=relax, trusted=trusted,
    )


def spectrum(loss_fn, w_star, key, stochastic: bool = False) -> jax.Array:
    """[d] the Hessian eigenvalues at ``w_star`` of the loss an `estimate` with ``key``
    samples (a stochastic loss on its curvature probe's batch), d its parameter count."""
    flat, unravel = ravel_pytree(w_star)
    if stochastic:
        batch = jax.random.fold_in(jax.random.fold_in(key, CURVATURE), 1)
        return quadratic.hessian_spectrum(lambda w: loss_fn(unravel(w), batch), flat)
    return quadratic.hessian_spectrum(lambda w: loss_fn(unravel(w)), flat)


def trust_checks(est, se, below, acceptance, diverged, ratio, relax, checked: bool,
                 xp=np) -> dict:
    """{why an estimate is not trusted: whether it passes that check} (arrays of one
    shape), the rule of `LLCResult`, for jax (`xp=jnp`, in `estimate`) or numpy arrays
    (`untrusted_reasons`). `checked`: the settings check ran (at most
    `sgld_quadratic.MAX_DIM` parameters); a NaN ratio then means no curved direction."""
    lo, hi = ACCEPTANCE_RANGE
    low, high = quadratic.RATIO_RANGE
    return {
        "diverged": xp.logical_not(diverged) & xp.isfinite(est),
        "below L(w*)": below <= MAX_BELOW_INIT,
        "acceptance": (acceptance >= lo) & (acceptance <= hi),
        "not positive": est > 0,
        "chains disagree": se <= SE_REL * xp.abs(est) + SE_ABS,
        "settings bias": ((ratio >= low) & (ratio <= high)) if checked else xp.ones_like(est, bool),
        "not relaxed": xp.isnan(relax) | (relax >= quadratic.RELAX_TIMES),
    }


def untrusted_reasons(est, se, below, acceptance, diverged, ratio, relax,
                      checked: bool) -> np.ndarray:
    """[...] for numpy arrays of estimates: "" where trusted, else the checks failed,
    e.g. "not relaxed" or "settings bias, not relaxed" (`trust_checks`).

    Example:
      >>> untrusted_reasons(*map(np.array, ([2.0], [0.1], [0.0], [0.9], [False], [0.5],
      ...                                    [5.0])), checked=True).tolist()
      ['settings bias']
    """
    checks = trust_checks(est, se, below, acceptance, diverged, ratio, relax, checked, np)
    failed = [np.where(ok, "", name) for name, ok in checks.items()]
    joined = [", ".join(n for n in names if n) for names in zip(*(f.ravel() for f in failed))]
    return np.array(joined, dtype=object).reshape(np.shape(est)).astype(str)


def _settings_check(loss_fn, stochastic, flat, unravel, key, nbeta, epsilon, gamma, draws,
                    burn_in):
    """(the Hessian eigenvalues [d], settings_ratio, relaxation) of
    `toymodels.sgld_quadratic` at w* (a stochastic loss's Hessian on the curvature probe's
    batch); NaN for more than `MAX_DIM` parameters."""
    if flat.shape[0] > quadratic.MAX_DIM:
        return jnp.full(flat.shape, jnp.nan), jnp.float32(jnp.nan), jnp.float32(jnp.nan)
    h = spectrum(loss_fn, unravel(flat), key, stochastic)
    ratio = quadratic.settings_ratio(h, nbeta, epsilon, gamma, draws=draws, burn_in=burn_in)
    return h, ratio, quadratic.relaxation(h, nbeta, epsilon, gamma, burn_in=burn_in)


_llc_jit = jax.jit(estimate, static_argnames=("loss_fn", "chains", "draws", "burn_in",
                                              "stochastic", "auto_step"))


def _below_init(difference: jax.Array, window: int) -> jax.Array:
    """The fraction of windows of `window` consecutive draws (per chain) whose mean
    L(w) - L(w*) is negative; difference: [C, draws] (a partial last window is dropped)."""
    C, D = difference.shape
    usable = (D // window) * window
    means = jnp.mean(difference[:, :usable].reshape(C, -1, window), axis=2)
    return jnp.mean((means < 0).astype(jnp.float32))


def check_settings(chains: int, draws: int, burn_in: int, epsilon: float, gamma: float,
                   nbeta: float) -> None:
    """Raises ValueError naming the first setting out of range."""
    if chains < 2:
        raise ValueError(f"chains must be >= 2 (for the standard error), got {chains}")
    if draws < 1 or burn_in < 0:
        raise ValueError(f"need draws >= 1 and burn_in >= 0, got {draws}, {burn_in}")
    if not (epsilon > 0) or not math.isfinite(epsilon):
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    if not (gamma >= 0) or not math.isfinite(gamma):
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if not (nbeta > 0) or not math.isfinite(nbeta):
        raise ValueError(f"nbeta must be > 0, got {nbeta}")


def llc(
    loss_fn: Callable[[Any], jax.Array],
    w_star: Any,
    *,
    n: int,
    key: jax.Array,
    chains: int = LLC_SCHEMA["chains"].default,
    draws: int = LLC_SCHEMA["draws"].default,
    burn_in: int = LLC_SCHEMA["burn_in"].default,
    epsilon: float | str = LLC_SCHEMA["epsilon"].default,
    gamma: float = LLC_SCHEMA["gamma"].default,
    nbeta: float | None = None,
    epsilon_scale: float = LLC_SCHEMA["epsilon_scale"].default,
    stochastic: bool = False,
) -> LLCResult:
    """Estimate the local learning coefficient of ``loss_fn`` at ``w_star``.

    ``loss_fn(w)`` is the scalar (full-batch / exact) loss of a parameter pytree
    shaped like ``w_star``; it must be hashable (a plain function is) since it is a
    static argument of the jitted core. ``n`` is the dataset size, used only for
    the default ``nbeta = n / ln n``; the ``nbeta`` used is recorded in the result.
    ``chains``, ``draws`` and ``burn_in`` are static. All chains start at ``w*``. The
    defaults are those of sweep files and ``toymodels llc`` (`toymodels.llc_config.LLC_SCHEMA`).

    ``stochastic=True``: ``loss_fn(w, batch_key)`` is an unbiased minibatch (or
    fresh-sample) estimate of the loss; each step draws its own batch, whose gradient
    drives the step (SGLD proper), and the estimate averages ``L_t(w_t) - L_t(w*)`` on
    the step's batch (see :func:`estimate`).

    ``epsilon="auto"`` chooses the step from the curvature at w*:
    ``epsilon_scale / (nbeta h_max + gamma)`` (:func:`auto_epsilon`), recorded in
    ``.epsilon``.

    Example:
      >>> import jax.numpy as jnp
      >>> r = llc(lambda w: 0.5 * jnp.sum(w * w), jnp.zeros(4), n=1000,
      ...         key=jax.random.key(0), nbeta=200.0, epsilon=2e-4, gamma=1.0,
      ...         draws=2000, burn_in=500)
      >>> bool(1.6 < float(r.llc) < 2.4)  # d / 2 = 2
      True
    """
    nb = default_nbeta(n) if nbeta is None else float(nbeta)
    auto = isinstance(epsilon, str)
    if auto and epsilon != "auto":
        raise ValueError(f'epsilon must be a number > 0 or "auto", got {epsilon!r}')
    step = epsilon_scale if auto else epsilon
    check_settings(chains, draws, burn_in, step, gamma, nb)
    return _llc_jit(loss_fn, w_star, key, nb, float(step), float(gamma), chains=chains,
                    draws=draws, burn_in=burn_in, stochastic=stochastic, auto_step=auto)
