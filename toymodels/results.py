"""A results Dataset and its sweep: its config, its static groups, its runs.

Functions of a finished sweep's `xarray.Dataset` (what `toymodels.load` returns) that need
its config, read from ``ds.attrs["config"]`` and parsed (purely: no source is read):
`config_of`, `map_groups` (a function of one static group's Dataset applied to every
group, padding cut off) and `one_group`. (A variable's runs on one axis R:
`toymodels.grid.flat_runs`.)
"""

from __future__ import annotations

from typing import Callable

import xarray as xr

from toymodels.groups import combine, group_coordinates, split, trimmed
from toymodels.trainers import config_of


def map_groups(fn: Callable[[xr.Dataset], xr.Dataset], ds: xr.Dataset) -> xr.Dataset:
    """`fn(ds)`, or, for a sweep with static axes, `fn` of every group's Dataset (padding
    cut off, `split`) combined again (`combine`), with the attrs of `ds`."""
    config = config_of(ds)
    if config is None or not config.static_groups or not all(n in ds.dims for n, _ in config.static_axes):
        return fn(ds)
    out = combine([fn(part) for part in split(ds, config)], config)
    return out.assign_attrs(ds.attrs)


def one_group(ds: xr.Dataset) -> xr.Dataset:
    """`ds` narrowed to one static group (one value of each static axis selected, e.g.
    `ds.sel(dataset_size=100)`), with its padding cut off and its group's attrs (`split`);
    `ds` itself when the sweep has no static axes.

    Raises:
      ValueError: a static axis is still a dim.
    """
    config = config_of(ds)
    if config is None or not config.static_groups:
        return ds
    names = [n for n, _ in config.static_axes]
    if any(n in ds.dims for n in names):
        raise ValueError(f"select one value of each static axis first ({', '.join(names)})")
    combos = group_coordinates(config)
    group = config.groups[combos.index(tuple(ds[n].item() for n in names))]
    return trimmed(ds, group)
