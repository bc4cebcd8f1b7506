"""The geometry of the training examples in the hidden space (finite datasets).

Henighan et al. 2023 ("Superposition, memorization and double descent"): trained on few
examples, a model memorises them, and the hidden vectors h_t = W x_t of its T training
examples, not its features, take the polytope shapes that features take at large T (a
regular T-gon in two hidden dimensions). The dimensionality of a data point is the
feature formula applied to points:

  D_t = ||h_t||^2 / sum_s (ĥ_t · h_s)^2,

exactly `toymodels.analysis.metrics.feature_dimensionality` of the matrix whose columns
are the h_t: 1 for a point orthogonal to the others, 1/2 for an antipodal pair, 2/T for a
regular T-gon.

Nothing is stored: the training examples are regenerated from the root seed, the run's
`data_seed` and its density with the function training used (`toymodels.data.
training_set`). For untied models the hidden vectors are W1 x_t (before any hidden ReLU).
`analyze` adds the per-example values for datasets of up to `EXAMPLE_LIMIT` examples;
`hidden_points(run)` gives one run's points for figures.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from toymodels import data, results
from toymodels.analysis import metrics
from toymodels.spec import Spec

EXAMPLE_LIMIT = 4096  # analyze stores D_t per example up to this dataset size (else the mean)
_HIGHEST = jax.lax.Precision.HIGHEST


class Density(NamedTuple):
    """The part of a run's `Hyper` that `data.training_set` uses."""

    feature_probability: jax.Array


def data_dimensionality(h: jax.Array) -> jax.Array:
    """Dimensionality of each data point, D_t = ||h_t||^2 / sum_s (ĥ_t · h_s)^2.

    Args:
      h: [H, T] the hidden vectors of ONE run's T training examples (one per column).

    Returns:
      [T] in [0, 1]; exactly 0 for a zero vector.

    Example:
      >>> data_dimensionality(jnp.array([[1.0, -1.0, 0.0], [0.0, 0.0, 2.0]]))
      Array([0.5, 0.5, 1. ], dtype=float32)
    """
    return metrics.feature_dimensionality(h)


def angular_gaps(h: jax.Array) -> jax.Array:
    """The angles between angularly consecutive points of a 2-D point set, in degrees.

    For the T training points of a run with two hidden dimensions: sorted by their angle
    θ_t = atan2(h_1t, h_0t), the gaps θ_(k+1) − θ_k and the wrap-around gap, which sum
    to 360°. A regular T-gon has every gap 360°/T (and every D_t = 2/T); the spread of
    the gaps says how far a memorised set is from one, point by point, where the mean
    of `data_dimensionality` does not.

    Args:
      h: [2, T] the hidden vectors of ONE run's T training examples (one per column).

    Returns:
      [T] the gaps in counter-clockwise order, starting at the smallest angle in
      (−180°, 180°].

    Example:
      >>> angular_gaps(jnp.array([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]]))
      Array([ 90.,  90., 180.], dtype=float32)
    """
    if h.shape[0] != 2:
        raise ValueError(f"angular_gaps needs points in 2 dimensions, got {h.shape[0]}")
    theta = jnp.sort(jnp.degrees(jnp.arctan2(h[1], h[0])))
    return jnp.diff(theta, append=theta[:1] + 360.0)


def hidden_vectors(W: jax.Array, x: jax.Array) -> jax.Array:
    """h = W x: [H, T] from W: [H, F] and examples x: [F, T]."""
    return jnp.dot(W, x, precision=_HIGHEST)


def points_one(W: jax.Array, density: jax.Array, data_seed: jax.Array, *, spec: Spec,
               kind: str, root_seed: int, per_example: bool) -> dict:
    """`data_dimensionality` [T] (if `per_example`) and its mean [] of ONE run.

    Args:
      W: [H, F] (W1 for untied models); density: [F] the run's feature probabilities;
      data_seed: [] int. `spec`, `kind`, `root_seed` (the sweep's) are static.
    """
    key = data.dataset_key(root_seed, data_seed)
    x = data.training_set(key, Density(density), spec, kind)
    D = data_dimensionality(hidden_vectors(W, x))
    out = {"data_dimensionality_mean": jnp.mean(D)}
    return {**out, "data_dimensionality": D} if per_example else out


def _data_seed(run: xr.Dataset, config) -> int:
    if "data_seed" in run.coords:
        return int(run["data_seed"])
    return int(config.data.get("data_seed", 0))


def training_set_of(run: xr.Dataset) -> xr.DataArray:
    """The training examples of ONE run of a loaded results dataset, regenerated.

    Args:
      run: the dataset narrowed to one run (`ds.sel(sparsity=0.99, seed=0)`): its
        attrs["config"] (root seed, shapes, data law), `density` and, if it was an axis,
        its `data_seed` coordinate.

    Returns:
      x with dims (feature, example): [F, T], the examples the run trained on.

    Raises:
      ValueError: not a finite-dataset result or not one run.
    """
    run = results.one_group(run)  # a run of a sweep with static axes: its group's config
    config = results.config_of(run)
    if config is None or not config.spec.data.dataset_size:
        raise ValueError("training_set_of needs a results dataset with data.dataset_size")
    if run["density"].dims != ("feature",):
        raise ValueError(f"training_set_of needs one run; density has dims {run['density'].dims}")
    key = data.dataset_key(config.seed, _data_seed(run, config))
    density = Density(jnp.asarray(run["density"].values, jnp.float32))
    x = data.training_set(key, density, config.spec, config.spec.model.kind)
    return xr.DataArray(np.asarray(x), dims=("feature", "example"),
                        coords={"example": np.arange(x.shape[1])})


def hidden_points(run: xr.Dataset) -> xr.DataArray:
    """The hidden vectors h_t = W x_t of ONE run's training examples (W1 if untied).

    Example (for a figure of the points of one run):
      h = hidden_points(ds.sel(seed=0))      # dims (hidden, example)
      ax.scatter(h.isel(hidden=0), h.isel(hidden=1))

    Returns:
      h with dims (hidden, example): [H, T].
    """
    run = results.one_group(run)  # without the padding of a sweep with static axes
    W = run["W" if "W" in run else "W1"].transpose("hidden", "feature")
    x = training_set_of(run)
    h = hidden_vectors(jnp.asarray(W.values, jnp.float32), jnp.asarray(x.values))
    return xr.DataArray(np.asarray(h), dims=("hidden", "example"),
                        coords={"example": x["example"].values})
