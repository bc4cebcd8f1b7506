"""Analysis of trained toy models: per-feature metrics, polytope labels, neuron-basis
measures, the analytic adversarial attack, dimensionality over training, the geometry of
finite training sets' data points, `analyze(ds)`.

Every metric is a pure `jax.numpy` function of ONE model's `W: [H, F]`; `analyze` adds
them to a results dataset, vmapping over the runs in one place. Shapes: R runs,
F features, H hidden.
"""

from toymodels.analysis.adversarial import (
    ATTACK_BATCH,
    ATTACK_FRACTION,
    attack_directions,
    attack_inputs,
    attack_noise,
    loss_increases,
    reference_loss_increase,
    vulnerability,
)
from toymodels.analysis.data_points import (
    EXAMPLE_LIMIT,
    angular_gaps,
    data_dimensionality,
    hidden_points,
    training_set_of,
)
from toymodels.analysis.batching import per_run
from toymodels.analysis.variables import EXTRAS, analyze, check_extras
from toymodels.analysis.dynamics import (
    JUMP_THRESHOLD,
    dimensionality_over_training,
    jump_table,
    jumps,
    n_jumps,
)
from toymodels.analysis.geometry import (
    DIM_TOL,
    EDGE_TOL,
    POLYTOPE_KINDS,
    POLYTOPES,
    Polytope,
    polytope_counts,
    polytopes,
)
from toymodels.analysis.metrics import (
    PHASES,
    REPRESENTED_NORM,
    SUPERPOSITION_THRESHOLD,
    dims_per_feature,
    feature_dimensionality,
    feature_norms,
    n_represented,
    phase,
    superposition,
)
from toymodels.analysis.neurons import (
    ASYMMETRY_RATIO,
    GAIN_FLOOR,
    NEURON_FLOOR,
    NEURON_SHARE,
    asymmetric_inhibited,
    asymmetric_pairs,
    asymmetric_superposition,
    balance,
    features_per_neuron,
    gains,
    monosemantic,
    n_monosemantic,
    n_polysemantic,
    neuron_polysemanticity,
    neuron_shares,
)

__all__ = [
    "ASYMMETRY_RATIO", "ATTACK_BATCH", "ATTACK_FRACTION", "GAIN_FLOOR", "JUMP_THRESHOLD",
    "NEURON_FLOOR", "NEURON_SHARE", "asymmetric_inhibited", "asymmetric_pairs",
    "asymmetric_superposition", "attack_directions", "attack_inputs", "attack_noise",
    "balance", "dimensionality_over_training", "EXAMPLE_LIMIT", "angular_gaps",
    "data_dimensionality",
    "hidden_points", "training_set_of", "features_per_neuron", "gains",
    "jump_table", "jumps", "loss_increases", "monosemantic", "n_jumps", "n_monosemantic",
    "n_polysemantic",
    "neuron_polysemanticity", "neuron_shares", "reference_loss_increase",
    "vulnerability",
    "DIM_TOL", "EDGE_TOL", "EXTRAS", "PHASES", "POLYTOPES", "POLYTOPE_KINDS", "Polytope",
    "REPRESENTED_NORM", "SUPERPOSITION_THRESHOLD", "analyze", "check_extras",
    "dims_per_feature",
    "feature_dimensionality", "feature_norms", "n_represented", "per_run", "phase",
    "polytope_counts", "polytopes", "superposition",
]
