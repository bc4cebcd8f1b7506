"""Static groups in one Dataset: ragged shapes padded, and split back into groups.

A sweep axis of a static key (n_features, n_hidden, kind, optimizer, batch_size, steps,
dataset_size: see `toymodels.config.STATIC`) splits the grid into static groups, each
compiled and trained as a sweep of its own (`SweepConfig.groups`). Their results are one
Dataset: the static axes are dims like any other, in config order, and where the groups'
shapes differ (W for n_hidden 2 and 30, loss curves of 1,000 and 10,000 steps) the smaller
ones are padded, with NaN (floats and integers, which then become floats) or "" (labels).
Each padded variable says so in `attrs["padding"]`.

Padding is not data: `toymodels.results.map_groups(fn, ds)` applies a function of one group's Dataset to
every group with the padding cut off (`split`), then `combine`s the results, so that the
analysis sees each model at its own size. A padded feature is absent, not "unrepresented".
"""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr

from toymodels.checks import toml_value
from toymodels.config import SweepConfig, parse_toy, to_toml
from toymodels.dictionary.sae import SAE_KINDS
from toymodels.models import MODELS, get_model
from toymodels.residual_config import param_dims

PADDED_DIMS = ("hidden", "feature", "step", "snapshot", "example", "latent", "rank", "factor")
SHARED = "shared"  # attrs key of a variable every group holds the same (an SAE source's world)
SNAPSHOT = "_snapshots"  # dataset variables of the parameters over training: W_snapshots


def coordinate(values) -> np.ndarray:
    """The Dataset coordinate of a static axis: its values, as text if they mix types
    (batch_size = [256, "full"] -> ["256", "full"]) or are lists (a world's
    probabilities = [[0.3, 0.05], ...] -> ["[0.3, 0.05]", ...], as TOML writes them)."""
    if any(isinstance(v, (list, tuple)) for v in values):
        return np.asarray([toml_value(v) for v in values])
    kinds = {isinstance(v, str) for v in values}
    return np.asarray([str(v) for v in values] if len(kinds) > 1 else list(values))


def group_coordinates(config: SweepConfig) -> list[tuple]:
    """Each group's values of the static axes as Dataset coordinates (`coordinate`), in
    the order of `config.groups`.

    Example:
      >>> group_coordinates(parse_toy({"sweep": {"n_hidden": [2, 3], "seed": [0]}}))
      [(2,), (3,)]
    """
    return list(itertools.product(*(coordinate(v).tolist() for _, v in config.static_axes)))


def combine(parts: list[xr.Dataset], config: SweepConfig) -> xr.Dataset:
    """One Dataset of every group's, with the static axes as dims in config order.

    Args:
      parts: one Dataset per group of `config.groups`, in that order, with the group's
        traced axes as dims.
      config: the sweep with static axes.

    Returns:
      Dims (*config axes, then the rest); variables padded where shapes differ, each with
      `attrs["padding"]`; a variable some groups lack (W of abs_computation) is filled in
      those groups and says so in `attrs["absent"]`. A variable with `attrs["shared"]`
      (a synthetic world's truth, density, ...) is stored once, without the static axes,
      when every group holds the same values (dims, shape and bits); otherwise (a world
      key swept: each group's own world) it is stacked along the static axes like any
      other, so that `split` gives each group its own. The rule is per variable: with
      synthetic.probabilities swept the density is per group and the truth once. No attrs
      on the Dataset itself.
    """
    static = config.static_axes
    names = [n for n, _ in static]
    combos = group_coordinates(config)
    shared = {n: parts[0][n].drop_vars(names, errors="ignore") for n in parts[0].data_vars
              if SHARED in parts[0][n].attrs and all(_same(parts[0][n], p.get(n), names) for p in parts)}
    parts = [p.drop_vars([n for n in shared if n in p]) for p in parts]
    absent = _missing(parts, names, combos)
    parts = _filled([p.expand_dims({n: [v] for n, v in zip(names, combo)})
                     for p, combo in zip(parts, combos)])
    fills = {name: _fill(parts[0][name]) for name in parts[0].data_vars}
    nested = _nest(parts, [len(v) for _, v in static])
    ds = xr.combine_nested(nested, concat_dim=names, join="outer", fill_value=fills,
                           combine_attrs="drop_conflicts")
    ds = ds.assign(shared).transpose(*(n for n, _ in config.axes), ...)
    ds.attrs = {}
    for name in ds.data_vars:
        padded = [d for d in PADDED_DIMS if d in ds[name].dims
                  and any(p.sizes.get(d, 0) < ds.sizes[d] for p in parts if name in p)]
        if padded:
            ds[name].attrs["padding"] = (
                f"{_fill_text(fills[name])} beyond each run's own size along "
                f"{', '.join(padded)} (static axes {', '.join(names)} give runs of "
                "different shapes)")
        if name in absent:
            ds[name].attrs["absent"] = (f"{_fill_text(fills[name])} in the groups "
                                        f"{'; '.join(absent[name])}, which have no such variable")
    return ds


def _same(a: xr.DataArray, b: xr.DataArray | None, names: list[str]) -> bool:
    """Whether two variables hold the same dims, coords and values (NaN equal to NaN),
    apart from the static axes' scalar coords that `split` leaves on each group's."""
    drop = lambda v: v.drop_vars(names, errors="ignore")
    return b is not None and drop(a).equals(drop(b))


def _missing(parts: list[xr.Dataset], names: list[str], combos: list[tuple]) -> dict[str, list[str]]:
    """For each variable some parts lack, the static coordinates of those parts."""
    variables = dict.fromkeys(n for p in parts for n in p.data_vars)
    where = lambda combo: ", ".join(f"{n} = {v}" for n, v in zip(names, combo))
    return {v: [where(c) for p, c in zip(parts, combos) if v not in p] for v in variables
            if any(v not in p for p in parts)}


def _filled(parts: list[xr.Dataset]) -> list[xr.Dataset]:
    """Every part with every variable: the missing ones all fill values, with the dims of
    the first part that has them (sizes of this part where it has the dim)."""
    names = list(dict.fromkeys(n for p in parts for n in p.data_vars))
    template = {n: next(p[n] for p in parts if n in p) for n in names}
    out = []
    for p in parts:
        extra = {}
        for n in names:
            if n in p:
                continue
            t = template[n]
            coords = {d: (p[d] if d in p.dims else t[d]) for d in t.dims if d in t.coords}
            shape = [p.sizes.get(d, t.sizes[d]) for d in t.dims]
            fill = _fill(t)
            dtype = t.dtype if fill == "" else np.result_type(t.dtype, np.float32)
            extra[n] = xr.DataArray(np.full(shape, fill, dtype), dims=t.dims, coords=coords,
                                    attrs=t.attrs)
        out.append(p.assign(extra)[names])
    return out


def _fill(da: xr.DataArray):
    return "" if da.dtype.kind in "OUS" else np.nan


def _fill_text(fill) -> str:
    return '""' if fill == "" else "NaN"


def _nest(items: list, shape: list[int]):
    """A flat list (last index fastest) as nested lists of `shape`."""
    if len(shape) <= 1:
        return list(items)
    step = len(items) // shape[0]
    return [_nest(items[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def split(ds: xr.Dataset, config: SweepConfig) -> list[xr.Dataset]:
    """Each group's Dataset, in the order of `config.groups`, with the padding cut off.

    A group's Dataset has only its traced axes as dims, its own sizes along hidden,
    feature, step, snapshot and example, only its model kind's parameters, and the attrs
    of a sweep without static axes (its own config, model_kind, n_features, n_hidden).
    """
    names = [n for n, _ in config.static_axes]
    return [trimmed(ds.sel(dict(zip(names, combo))), group)
            for combo, group in zip(group_coordinates(config), config.groups)]


def trimmed(ds: xr.Dataset, group: SweepConfig) -> xr.Dataset:
    if group.trainer == "sae":
        return _trimmed_sae(ds, group)
    if group.trainer == "residual":
        return _trimmed_residual(ds, group)
    model, train = group.spec.model, group.spec.train
    kind = get_model(model.kind)
    others = {n for k in MODELS.values() for n in k.dims} - set(kind.dims)
    ds = ds.drop_vars([v for v in ds.data_vars if v in others or v.removesuffix(SNAPSHOT) in others])
    sizes = {"hidden": model.n_hidden, "feature": model.n_features,
             "step": train.n_logs, "snapshot": train.n_snapshots + 1 if train.snapshot_every else 0,
             "example": group.spec.data.dataset_size}  # 0: online, no examples
    ds = ds.isel({d: slice(0, n) for d, n in sizes.items() if d in ds.dims})
    return _as_group(ds, group, model_kind=model.kind, n_features=model.n_features,
                     n_hidden=model.n_hidden)


def _trimmed_sae(ds: xr.Dataset, group: SweepConfig) -> xr.Dataset:
    """`_trimmed` for a group of SAEs: its kind's parameters, its own width."""
    sae, train = group.spec.sae, group.spec.train
    own = set(SAE_KINDS[sae.kind].dims) | ({"threshold"} if SAE_KINDS[sae.kind].threshold else set())
    others = ({n for k in SAE_KINDS.values() for n in k.dims} | {"threshold"}) - own
    ds = ds.drop_vars([v for v in ds.data_vars if v in others])
    own_size = {"latent": sae.width, "rank": sae.width, "step": train.n_logs,  # rank: s_n of analyze
                "factor": sae.world.n_factors if sae.world is not None else 0}  # a world's copula
    ds = ds.isel({d: slice(0, n) for d, n in own_size.items() if d in ds.dims})
    return _as_group(ds, group, sae_kind=sae.kind, width=sae.width)


def _trimmed_residual(ds: xr.Dataset, group: SweepConfig) -> xr.Dataset:
    """`trimmed` for a group of residual MLPs: its own parameters (layers, biases,
    readout) at its own sizes (embed, feature, neurons, outputs, steps)."""
    r, train = group.spec.residual, group.spec.train
    everything = {n for n in ds.data_vars if n.startswith(("W_in_", "W_out_", "b_in_", "b_out_"))
                  } | {"R", "W_U"}
    ds = ds.drop_vars([v for v in ds.data_vars if v in everything - set(param_dims(r))])
    sizes = {"embed": r.d_embed, "feature": r.n_features, "neuron": r.d_mlp,
             "output": r.n_outputs, "step": train.n_logs,
             **{f"neuron_{l}": k for l, k in enumerate(r.split)}}
    ds = ds.isel({d: slice(0, n) for d, n in sizes.items() if d in ds.dims})
    return _as_group(ds, group, task=r.task, n_features=r.n_features, d_embed=r.d_embed,
                     d_mlp=r.d_mlp, n_layers=r.n_layers, split=list(r.split),
                     bias=int(r.bias), embed=r.embed, readout=r.readout)


def _as_group(ds: xr.Dataset, group: SweepConfig, **attrs) -> xr.Dataset:
    """A copy of a trimmed group's Dataset without the padding notes, with the attrs of a
    sweep without static axes: its own config and `attrs`."""
    for name in ds.data_vars:
        ds[name].attrs.pop("padding", None)
        ds[name].attrs.pop("absent", None)
    kept = {k: v for k, v in ds.attrs.items() if k != "static_axes"}
    ds = ds.copy()
    ds.attrs = {**kept, "config": to_toml(group), **attrs}
    return ds
