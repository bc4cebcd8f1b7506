"""Parameter decomposition of toy models: Stochastic Parameter Decomposition (SPD;
Bushnaq, Braun & Sharkey 2025).

`targets` holds the models decomposed (a TMS model's W_in, W_out and optional W_hidden =
I, a hand-built model of known rank-1 pieces, or a one-layer residual MLP's W_in, W_out) and their forward pass for one example;
`decomposition` one decomposition's parameters, causal importances, masks and losses;
`metrics` its scores against the target's known features (MMCS, ML2R, failures).
The sweep engine trains thousands at once through `toymodels.trainers.spd` (a sweep file
with an `[spd]` table, `toymodels.spd_config`). A decomposition's pieces are
*subcomponents*; the target's ground truth are its *features*.
"""

from toymodels.spd.decomposition import (SPDHyper, causal_importance, init, loss,
                                         lower_leaky_hard_sigmoid, masks, one_hot_importance,
                                         upper_leaky_hard_sigmoid)
from toymodels.spd.targets import (ResidualTarget, Target, forward, hand_W, residual_target,
                                   tms_target)

__all__ = ["ResidualTarget", "SPDHyper", "Target", "causal_importance", "forward", "hand_W",
           "init", "loss", "lower_leaky_hard_sigmoid", "masks", "one_hot_importance",
           "residual_target", "tms_target", "upper_leaky_hard_sigmoid"]
