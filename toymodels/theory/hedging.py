"""Feature hedging in a one-latent SAE, closed form (numpy, float64).

Where this sits: re-exported by ``toymodels.theory``; ``docs/hedging.md`` derives it and
``sweeps/sae_hedging.toml`` trains the SAEs it predicts.

Source: Chanin, Dulka, Garriga-Alonso (2025), "Feature hedging: correlated features break
narrow sparse autoencoders", arXiv 2505.11756 (the setting: one parent and one child
feature, a single-latent SAE); the derivation is ours (``docs/hedging.md``).

The world: two orthonormal features ``f_p`` (parent) and ``f_c`` (child) in ``d >= 2``
dims, ``x = a_p f_p + a_c f_c``. Each feature fires with a probability and, when it fires,
has an independent magnitude ``m >= 0`` of mean ``μ`` and variance ``σ²`` (``μ = 1,
σ = 0``: magnitude one; the synthetic source's Uniform[0, 1): ``μ = 1/2, σ² = 1/12``).

- ``"independent"``: p fires with ``p_parent``, c with ``p_child``, independently.
- ``"hierarchical"``: p fires with ``p_parent``; c fires only when p fires, then with
  ``p_child`` (``p_child = P(c | p)``).

The SAE: one latent, ``x̂ = b + z(x) v`` with a decoder bias ``b``, decoder row ``v``
(direction ``w = v/|v|``) and any code ``z(x) >= 0`` (ReLU ``z = ReLU(e·x + β)``, or
TopK with ``k = 1``, which is the same for one latent), trained on ``E|x - x̂|²`` alone
(no sparsity penalty). Every such reconstruction lies on a line, so its loss is at least
that of the best line, the principal axis of ``Cov(x)``; the ReLU code ``z = w·x -
min w·x`` reaches it. So the optimal ``w`` is the top eigenvector of the amplitudes'
2 x 2 covariance ``Σ``, at angle ``θ = ½ atan2(2 Σ_pc, Σ_pp - Σ_cc)`` from ``f_p``
towards ``f_c``; ``sin θ = w·f_c`` is the child's share of the latent. Independent
features have ``Σ_pc = 0``: no hedging (``θ = 0`` while the parent's variance is the
larger). Hierarchical ones have ``Σ_pc = π_p q (1 - π_p) μ_p μ_c > 0``: the latent
hedges, ``θ ≈ q`` for a rare child of magnitude-one features.

Without a decoder bias the line must pass through 0 and the axis is the top eigenvector
of the raw second moment ``E[a aᵀ]`` (``raw_moment``), whose off-diagonal
``E[a_p a_c] = π_p π_c μ_p μ_c`` is positive even for independent features.

Example:
  >>> cov = amplitude_cov(0.3, 0.2, "hierarchical")
  >>> round(float(np.degrees(hedging_angle(cov))), 3), round(child_share(0.3, 0.2), 4)
  (14.337, 0.2476)
  >>> child_share(0.3, 0.2, "independent")
  0.0
"""

from __future__ import annotations

import numpy as np

WORLDS = ("independent", "hierarchical")


def _check_world(world):
    if world not in WORLDS:
        raise ValueError(f"world: {world!r}; one of {', '.join(WORLDS)}")


def _firing(p_parent, p_child, world):
    """[...] ``(P(p fires), P(c fires))``, broadcast."""
    _check_world(world)
    pp, pc = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (p_parent, p_child)))
    return pp, pp * pc if world == "hierarchical" else pc


def amplitude_mean(p_parent, p_child, world="hierarchical", mean=(1.0, 1.0)):
    """[..., 2] ``E[(a_p, a_c)]``: ``(π_p μ_p, π_c μ_c)``, or ``(π_p μ_p, π_p q μ_c)`` in
    the hierarchical world (``q = p_child``). Probabilities broadcast.

    Example:
      >>> amplitude_mean(0.5, 0.5).tolist(), amplitude_mean(0.5, 0.5, "independent").tolist()
      ([0.5, 0.25], [0.5, 0.5])
    """
    fp, fc = _firing(p_parent, p_child, world)
    return np.stack([fp * mean[0], fc * mean[1]], axis=-1)


def amplitude_cov(p_parent, p_child, world="hierarchical", mean=(1.0, 1.0), var=(0.0, 0.0)):
    """[..., 2, 2] ``Σ = Cov((a_p, a_c))`` of the world's amplitudes (module docstring).

    With ``s = μ² + σ²``: ``Σ_pp = π_p s_p - π_p² μ_p²``; a feature that fires with
    probability ``π`` has variance ``π s - π² μ²``, the child's ``π = π_c`` (independent)
    or ``π_p q`` (hierarchical); ``Σ_pc = 0`` (independent) or ``π_p q (1 - π_p) μ_p μ_c``
    (hierarchical: ``E[a_p a_c] = π_p q μ_p μ_c``).

    Args:
      p_parent, p_child: firing probabilities (``p_child`` is ``P(c | p)`` when
        hierarchical); arrays broadcast.
      world: "independent" or "hierarchical".
      mean, var: ``(μ_p, μ_c)`` and ``(σ_p², σ_c²)`` of the magnitudes.

    Example:
      >>> amplitude_cov(0.5, 0.5).tolist()
      [[0.25, 0.125], [0.125, 0.1875]]
    """
    fp, fc = _firing(p_parent, p_child, world)
    mp, mc = fp * mean[0], fc * mean[1]
    vp = fp * (mean[0] ** 2 + var[0]) - mp**2
    vc = fc * (mean[1] ** 2 + var[1]) - mc**2
    cpc = mc * mean[0] * (1.0 - fp) if world == "hierarchical" else 0.0 * vp
    return np.stack([np.stack([vp, cpc], -1), np.stack([cpc, vc], -1)], -2)


def raw_moment(p_parent, p_child, world="hierarchical", mean=(1.0, 1.0), var=(0.0, 0.0)):
    """[..., 2, 2] ``E[a aᵀ] = Σ + E[a] E[a]ᵀ``, the matrix an SAE without a decoder bias
    diagonalises.

    Example:
      >>> raw_moment(0.5, 0.5, "independent").tolist()
      [[0.5, 0.25], [0.25, 0.5]]
    """
    m = amplitude_mean(p_parent, p_child, world, mean)
    return amplitude_cov(p_parent, p_child, world, mean, var) + m[..., :, None] * m[..., None, :]


def hedging_angle(moment):
    """The optimal decoder direction's angle ``θ`` (radians) from ``f_p`` towards ``f_c``:
    ``w = cos θ f_p + sin θ f_c`` is the top eigenvector of the 2 x 2 ``moment``.

    ``θ = ½ atan2(2 M_pc, M_pp - M_cc)`` in ``(-π/2, π/2]``: ``0`` for a diagonal moment
    whose parent entry is the larger, ``π/2`` (the latent tracks the child) when the child's
    is, ``π/4`` for equal entries with ``M_pc > 0``.

    Args:
      moment: [..., 2, 2] symmetric (``amplitude_cov`` with a decoder bias, ``raw_moment``
        without).

    Returns:
      [...] angles.

    Example:
      >>> float(hedging_angle(np.array([[1.0, 0.5], [0.5, 1.0]]))) / np.pi
      0.25
    """
    M = np.asarray(moment, np.float64)
    return 0.5 * np.arctan2(2.0 * M[..., 0, 1], M[..., 0, 0] - M[..., 1, 1])


def child_share(p_parent, p_child, world="hierarchical", mean=(1.0, 1.0), var=(0.0, 0.0),
                bias=True):
    """``sin θ = w·f_c``, the child's component of the MSE-optimal unit decoder row of a
    one-latent SAE (with a decoder bias unless ``bias=False``).

    In the hierarchical world with magnitude one, ``tan 2θ = 2q(1 - π_p) / ((1 - π_p) -
    q(1 - π_p q))``, so ``θ ≈ q`` for small ``q = p_child`` and ``θ = π/4`` at ``q = 1``.

    Returns:
      [...] floats (a float for scalar probabilities).

    Example:
      >>> round(child_share(0.3, 1.0), 6), round(0.5**0.5, 6)  # c always with p
      (0.707107, 0.707107)
    """
    moment = raw_moment if not bias else amplitude_cov
    share = np.sin(hedging_angle(moment(p_parent, p_child, world, mean, var)))
    return float(share) if share.ndim == 0 else share


def optimal_mse(moment):
    """[...] the one-latent SAE's least ``E|x - x̂|²``: ``tr M - λ_max(M)``, the variance off
    the principal axis (``M = amplitude_cov``; ``raw_moment`` for no decoder bias).

    Example:
      >>> round(float(optimal_mse(np.diag([0.25, 0.09]))), 12)
      0.09
    """
    M = np.asarray(moment, np.float64)
    tr = M[..., 0, 0] + M[..., 1, 1]
    half_gap = np.hypot(0.5 * (M[..., 0, 0] - M[..., 1, 1]), M[..., 0, 1])
    return 0.5 * tr - half_gap


def decoder_direction(moment, features):
    """[d] the optimal unit decoder row when the two feature directions are not orthogonal
    (the synthetic source's random ones): the top eigenvector of ``F M Fᵀ``, signed to have
    a non-negative component along ``f_p``.

    Args:
      moment: [2, 2] (``amplitude_cov`` or ``raw_moment``).
      features: [d, 2] unit columns ``(f_p, f_c)``.

    Example:
      >>> decoder_direction(np.diag([2.0, 1.0]), np.eye(3)[:, :2]).tolist()
      [1.0, 0.0, 0.0]
    """
    F = np.asarray(features, np.float64)
    vals, vecs = np.linalg.eigh(F @ np.asarray(moment, np.float64) @ F.T)
    w = vecs[:, -1]
    return w if w @ F[:, 0] >= 0 else -w
