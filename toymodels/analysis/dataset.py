"""`analyze(ds)`: add per-run metrics to a results dataset (the one vmap over runs).

Role in the data flow: `load(dir)` -> xarray.Dataset with `W` (*run_axes, hidden,
feature) -> `analyze` -> the same dataset plus metric variables -> plots. The run
axes (any names, possibly none) are flattened to one axis R; `summarise_one` is applied
through `per_run` (the single `jax.jit(jax.vmap(...))` of the analysis) in fixed-size
chunks, to bound memory, and the results are reshaped back to the named axes.
"""

from collections.abc import Callable

import jax
import numpy as np
import xarray as xr

from toymodels.analysis import geometry, metrics

CHUNK_ELEMENTS = 2**20  # runs per chunk * F * F: keeps [chunk, F, F] arrays in cache

F_DIM, KIND_DIM = ("feature",), ("polytope_kind",)
VARIABLES = (  # (name, dims after the run axes, attrs["description"])
    ("feature_norm", F_DIM, "||W_i||, representation strength of feature i"),
    ("superposition", F_DIM, "sum_{j!=i} (What_i . W_j)^2, interference of feature i"),
    (
        "feature_dimensionality",
        F_DIM,
        "D_i = ||W_i||^2 / sum_j (What_i . W_j)^2, fractional dimensionality",
    ),
    ("dims_per_feature", (), "D* = n_hidden / ||W||_F^2, dimensions per feature"),
    ("n_represented", (), "number of features with ||W_i|| > 0.5"),
    (
        "polytope",
        F_DIM,
        "uniform polytope (tegum factor) of feature i: edges |cos| > 0.1 among "
        "represented features, D within 0.03 of d/N, rank d",
    ),
    ("polytope_counts", KIND_DIM, "number of features with each polytope label"),
    (
        "phase",
        (),
        "last feature: unrepresented (norm <= 0.5), dedicated (interference with "
        "represented features <= 0.1) or superposition",
    ),
)


def per_run(fn: Callable) -> Callable:
    """Batch a one-model function over a leading run axis R (the one vmap).

    Example:
      >>> per_run(metrics.feature_norms)(np.ones((2, 1, 3), np.float32)).shape
      (2, 3)
    """
    return jax.jit(jax.vmap(fn))


def summarise_one(W: jax.Array) -> dict:
    """Every per-run quantity of one model `W: [H, F]` (pure jnp; see `analyze`)."""
    return {
        "feature_norm": metrics.feature_norms(W),
        "superposition": metrics.superposition(W),
        "feature_dimensionality": metrics.feature_dimensionality(W),
        "dims_per_feature": metrics.dims_per_feature(W),
        "n_represented": metrics.n_represented(W),
        "phase": metrics.phase(W),
        "geometry": geometry.components(W),
    }


summarise_runs = per_run(summarise_one)


def _in_chunks(fn: Callable, W: np.ndarray) -> dict:
    """Apply `fn` to W [R, H, F] in equal zero-padded chunks; concatenate [R, ...]."""
    n_runs, _, n_features = W.shape
    chunk = max(1, min(n_runs, CHUNK_ELEMENTS // n_features**2))
    n_chunks = max(1, -(-n_runs // chunk))
    padded = np.zeros((n_chunks * chunk, *W.shape[1:]), np.float32)
    padded[:n_runs] = W
    outs = [fn(padded[i * chunk : (i + 1) * chunk]) for i in range(n_chunks)]
    return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs)[:n_runs], *outs)


def _variables(flat: dict, W: np.ndarray) -> dict[str, np.ndarray]:
    """Host-side finish: polytope labels and counts, phase names; all [R, ...]."""
    codes = geometry.label_runs(W, flat["geometry"])
    return {
        **{k: v for k, v in flat.items() if k not in ("geometry", "phase")},
        "polytope": geometry.kind_names(codes),
        "polytope_counts": geometry.counts_from_codes(codes),
        "phase": np.asarray(metrics.PHASES)[flat["phase"]],
    }


def _weights(ds: xr.Dataset) -> xr.DataArray:
    """`W` as (*run_axes, hidden, feature), or a ValueError saying what is wrong.

    Untied models (abs_computation) have no `W`; their feature directions in the hidden
    space are the columns of the first layer, `W1`.
    """
    name = "W" if "W" in ds else "W1"
    if name not in ds or not {"hidden", "feature"} <= set(ds[name].dims):
        found = {name: ds[name].dims for name in ds.data_vars}
        raise ValueError(
            "analyze needs a variable W with dims (..., 'hidden', 'feature'); "
            f"got {found}"
        )
    return ds[name].transpose(..., "hidden", "feature")


def analyze(ds: xr.Dataset) -> xr.Dataset:
    """Add per-run metrics of `W` to a results dataset; the input is not modified.

    Adds `feature_norm`, `superposition`, `feature_dimensionality`, `polytope` (strings)
    with dims (*run_axes, feature); `dims_per_feature`, `n_represented`, `phase`
    (strings, the last feature) with dims (*run_axes); `polytope_counts` with dims
    (*run_axes, polytope_kind). Other variables and coordinates are kept. `b` is not
    needed by any of these metrics.

    Args:
      ds: dataset with `W` of dims (*run_axes, "hidden", "feature").

    Returns:
      A new dataset with the variables above, each with attrs["description"].

    Example:
      >>> W = xr.DataArray(np.eye(2, 3, dtype=np.float32), dims=("hidden", "feature"))
      >>> analyze(xr.Dataset({"W": W}))["polytope"].values.tolist()
      ['dedicated', 'dedicated', 'unrepresented']
    """
    W = _weights(ds)
    run_axes = W.dims[:-2]
    run_shape = W.shape[:-2]
    flat_W = np.asarray(W.values, np.float32).reshape(-1, *W.shape[-2:])
    flat = _variables(_in_chunks(summarise_runs, flat_W), flat_W)
    new = {
        name: xr.DataArray(
            flat[name].reshape(run_shape + flat[name].shape[1:]),
            dims=run_axes + dims,
            attrs={"description": description},
        )
        for name, dims, description in VARIABLES
    }
    return ds.assign(new).assign_coords(polytope_kind=list(geometry.POLYTOPE_KINDS))
