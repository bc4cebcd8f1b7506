"""Analysis of trained toy models: per-feature metrics, polytope labels, `analyze(ds)`.

Every metric is a pure `jax.numpy` function of ONE model's `W: [H, F]`; `analyze` adds
them to a results dataset, vmapping over the runs in one place. Shapes: R runs,
F features, H hidden.
"""

from toymodels.analysis.dataset import analyze, per_run
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

__all__ = [
    "DIM_TOL", "EDGE_TOL", "PHASES", "POLYTOPES", "POLYTOPE_KINDS", "Polytope",
    "REPRESENTED_NORM", "SUPERPOSITION_THRESHOLD", "analyze", "dims_per_feature",
    "feature_dimensionality", "feature_norms", "n_represented", "per_run", "phase",
    "polytope_counts", "polytopes", "superposition",
]
