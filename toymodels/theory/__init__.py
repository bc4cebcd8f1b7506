"""Closed forms of toy models of superposition, by topic; this package re-exports them.

Nothing here trains or reads results: plots overlay these curves and levels on sweeps,
``toymodels.models`` starts runs at k-gons, and tests compare measurements against them.

- ``theory.phases``: the fixed candidate solutions of the paper's n=2, m=1 and n=3, m=2
  phase diagrams, their expected losses, phases and boundaries (Elhage et al. 2022).
- ``theory.dropout``: the same 2 -> 1 diagram under inverted dropout on one hidden unit.
- ``theory.exactly_one``: the exact loss when exactly one feature is active (Chen et al.
  2023).
- ``theory.kgons``: the k-gon critical points of that loss (Chen et al. 2023).
- ``theory.hedging``: a one-latent SAE's MSE-optimal decoder direction for a parent and a
  child feature, independent or hierarchical: feature hedging (Chanin et al. 2025).
- ``theory.computation``: the residual MLP that computes (issue 27): the naive baseline
  and the best rank-k linear map in closed form, the naive construction's parameters;
  ``theory.uand``: Hänni et al.'s random U-AND construction with its expected error, and
  the block construction for one active circuit; ``theory.computation_loss``: the loss
  of any parameters of that layout (exact strata where they apply, else Monte Carlo).
  These three are imported by name, not re-exported here.
- ``theory.slt``: singular learning theory's closed forms, reduced-rank regression's
  learning coefficient (Aoyagi & Watanabe 2005) and the free-energy crossing.

The differentiable exactly-one loss is the trainer's own evaluation,
``toymodels.evaluation.exactly_one_loss_jnp`` (it needs the model code, which starts
runs from ``theory.kgons``).

Example:
  >>> from toymodels import theory
  >>> str(theory.phase_2_1(0.1, 0.5)), theory.rrr_learning_coefficient(2, 2, 2)
  ('superposition', 1.5)
"""

from toymodels.theory.dropout import (
    CANDIDATES_2_1_DROPOUT,
    antipodal_dropout,
    antipodal_pair_loss,
    boundary_2_1_biased,
    boundary_2_1_dropout,
    candidate_loss_dropout,
    candidate_losses_2_1_biased,
    candidate_losses_2_1_dropout,
    candidates_2_1_biased,
    candidates_2_1_dropout,
    dedicated_dropout,
    dedicated_range_2_1_dropout,
    dropout_loss,
    phase_2_1_biased,
    phase_2_1_dropout,
)
from toymodels.theory.exactly_one import exactly_one_loss
from toymodels.theory import hedging
from toymodels.theory.hedging import (
    amplitude_cov,
    amplitude_mean,
    child_share,
    decoder_direction,
    hedging_angle,
    optimal_mse,
    raw_moment,
)
from toymodels.theory.kgons import KGon, kgon
from toymodels.theory.phases import (
    BOUNDARIES,
    CANDIDATES_2_1,
    CANDIDATES_3_2,
    PHASE_FUNCTIONS,
    PHASES,
    TRIPLE_POINT,
    Candidate,
    antipodal_loss,
    boundary_2_1,
    boundary_3_2,
    candidate_loss,
    candidate_losses_2_1,
    candidate_losses_3_2,
    dedicated_boundary_density,
    dropped_loss,
    optimal_loss_2_1,
    optimal_loss_3_2,
    phase_2_1,
    phase_3_2,
)
from toymodels.theory.slt import (
    free_energy_crossing,
    free_energy_roots,
    rrr_learning_coefficient,
    rrr_multiplicity,
)

__all__ = [
    # phases
    "BOUNDARIES",
    "CANDIDATES_2_1",
    "CANDIDATES_3_2",
    "PHASE_FUNCTIONS",
    "PHASES",
    "TRIPLE_POINT",
    "Candidate",
    "antipodal_loss",
    "boundary_2_1",
    "boundary_3_2",
    "candidate_loss",
    "candidate_losses_2_1",
    "candidate_losses_3_2",
    "dedicated_boundary_density",
    "dropped_loss",
    "optimal_loss_2_1",
    "optimal_loss_3_2",
    "phase_2_1",
    "phase_3_2",
    # dropout
    "CANDIDATES_2_1_DROPOUT",
    "antipodal_dropout",
    "antipodal_pair_loss",
    "boundary_2_1_biased",
    "boundary_2_1_dropout",
    "candidate_loss_dropout",
    "candidate_losses_2_1_biased",
    "candidate_losses_2_1_dropout",
    "candidates_2_1_biased",
    "candidates_2_1_dropout",
    "dedicated_dropout",
    "dedicated_range_2_1_dropout",
    "dropout_loss",
    "phase_2_1_biased",
    "phase_2_1_dropout",
    # exactly_one, kgons
    "exactly_one_loss",
    "KGon",
    "kgon",
    # hedging
    "amplitude_cov",
    "amplitude_mean",
    "child_share",
    "decoder_direction",
    "hedging_angle",
    "optimal_mse",
    "raw_moment",
    # slt
    "free_energy_crossing",
    "free_energy_roots",
    "rrr_learning_coefficient",
    "rrr_multiplicity",
]
