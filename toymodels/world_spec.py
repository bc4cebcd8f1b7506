"""The static description of a synthetic feature world (`WorldSpec`), without JAX.

A world is SynthSAEBench's generative model of activations (Chanin & Garriga-Alonso 2026;
the definitions follow SAELens 6.54's `sae_lens.synthetic`): F features, each a unit
direction in d dims, firing with its own probability (a Zipf law, a constant, a list or
exactly K per example), possibly correlated (a Gaussian copula with a low-rank factor and
explicit pairs), in a forest of parents and children (a child fires only with its parent;
the children of an exclusive parent keep one at random), with a magnitude drawn from its
own mean and std. `toymodels.dictionary.world` builds and samples it; the `[synthetic]`
table of an SAE sweep (`toymodels.synthetic_config`) parses into it.

Per-feature values (`mean`, `std`) are a law and its numbers (`VALUE_LAWS`):
  "constant" (v,); "linear" (start, end), linearly spaced over the features;
  "list" (v_1, ..., v_F); "folded_normal" (m, s): each feature's value |N(m, s^2)|,
  drawn once from the world's seed.
"""

from __future__ import annotations

import dataclasses

FIRING_LAWS = ("zipf", "constant", "list", "exactly_k")
VALUE_LAWS = ("constant", "linear", "list", "folded_normal")
MAGNITUDES = ("rectified_normal", "folded_normal", "half_normal", "uniform")


@dataclasses.dataclass(frozen=True)
class WorldSpec:
    """A world's static description (hashable: it is part of a compiled program's spec).

    Attributes:
      n_features: F, the ground-truth features.
      n_hidden: d, the dims of the activations.
      firing: the firing law (`FIRING_LAWS`): "zipf" p_i = p_min + (p_max - p_min)
        (i^-a - F^-a) / (1 - F^-a) for rank i = 1..F (SAELens's zipfian, a = zipf_exponent);
        "constant" p_i = probability; "list" p_i = probabilities[i]; "exactly_k": every
        example has exactly `active` features, chosen uniformly (p_i = active / F).
      probability, probabilities, zipf_exponent, zipf_max, zipf_min, active: their numbers.
      mean_law, mean: the per-feature mean magnitude (a `VALUE_LAWS` law and its numbers).
      std_law, std: the per-feature magnitude std, likewise.
      magnitude: how a firing feature's value is drawn from its mean m and std s
        (`MAGNITUDES`): "rectified_normal" max(0, m + s z) (SAELens's); "folded_normal"
        |m + s z|; "half_normal" |s z| (m unused); "uniform" on [m - s sqrt 3, m + s sqrt 3]
        (mean m, std s), clipped at 0.
      roots: root nodes of the hierarchy (0: none); features 0..roots-1, their children
        next, breadth first (SAELens's order: the most frequent features are the roots).
      branching: (lo, hi) children per parent, drawn uniformly in lo..hi per parent.
      depth: the levels of children below the roots (1: roots with leaves).
      exclusive: the fraction of the parents (at depths exclusive_min_depth ..
        exclusive_max_depth, -1: any) whose children are mutually exclusive.
      compensate: scale each child's probability up (by 1 / p_parent, and for exclusive
        siblings by 1 + sum of the others' p / p_parent; at most 1) so that its rate of
        firing is about its law's p.
      scale_children: a firing child's value is multiplied by its parent's value / the
        parent's mean (instead of kept as it is).
      rank, correlation_scale: a low-rank Gaussian copula of the firing: a factor [F, rank]
        of N(0, scale^2) entries (rows capped to squared norm 0.99); 0: none.
      correlations: explicit latent correlations ((i, j, rho), ...) of the copula, each a
        factor of its own (so each feature's sum of |rho| plus its low-rank row's squared
        norm must stay below 1).
      orthogonal: exactly orthonormal directions (needs F <= d).
      ortho_steps, ortho_lr: Adam steps on sum_{i != j} (t_i . t_j)^2 + F sum_i
        (|t_i|^2 - 1)^2 from random unit directions (SAELens's orthogonalisation); 0: none.
      bias: the norm of the world's bias b (a random direction); 0: none.
    """

    n_features: int
    n_hidden: int
    firing: str = "zipf"
    probability: float = 0.01
    probabilities: tuple[float, ...] = ()
    zipf_exponent: float = 1.0
    zipf_max: float = 0.3
    zipf_min: float = 0.01
    active: int = 1
    mean_law: str = "constant"
    mean: tuple[float, ...] = (1.0,)
    std_law: str = "constant"
    std: tuple[float, ...] = (0.0,)
    magnitude: str = "rectified_normal"
    roots: int = 0
    branching: tuple[int, int] = (2, 2)
    depth: int = 1
    exclusive: float = 0.0
    exclusive_min_depth: int = 0
    exclusive_max_depth: int = -1
    compensate: bool = False
    scale_children: bool = False
    rank: int = 0
    correlation_scale: float = 0.0
    correlations: tuple[tuple[int, int, float], ...] = ()
    orthogonal: bool = False
    ortho_steps: int = 0
    ortho_lr: float = 0.01
    bias: float = 0.0

    @property
    def n_factors(self) -> int:
        """r, the columns of the copula's factor: the low rank plus one per pair."""
        return self.rank + len(self.correlations)

    @property
    def correlated(self) -> bool:
        """Whether the firing is drawn through the Gaussian copula."""
        return self.n_factors > 0

    @property
    def hierarchical(self) -> bool:
        return self.roots > 0
