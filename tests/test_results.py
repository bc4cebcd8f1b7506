"""toymodels.results: functions of a results Dataset that need its sweep's config
(`config_of`, `map_groups`, `one_group`), on made-up Datasets (no training;
tests/helpers.py `group_parts`). The analysis of padded groups through `map_groups` on
trained sweeps is checked in tests/test_groups.py."""


import numpy as np
import pytest
import xarray as xr

import toymodels as tm
from toymodels.groups import combine
from toymodels.results import config_of, map_groups, one_group

from helpers import config, group_parts, static_config


@pytest.fixture(scope="module")
def static():
    """n_hidden 2 and 3 as a static axis: the combined Dataset with its config attrs."""
    c = static_config(n_hidden=[2, 3])
    ds = combine(group_parts(c), c).assign_attrs(config=tm.to_toml(c), static_axes="n_hidden")
    return c, ds


def test_config_of_reads_the_config_in_the_attrs(static):
    c, ds = static
    assert config_of(ds) == c
    plain = config(sweep={"seed": [0, 1]})
    assert config_of(xr.Dataset(attrs={"config": tm.to_toml(plain)})) == plain
    assert config_of(xr.Dataset()) is None  # no config
    assert config_of(xr.Dataset(attrs={"config": "name = \n"})) is None  # not TOML
    assert config_of(xr.Dataset(attrs={"config": "[model]\nn_hidden = 0\n"})) is None  # invalid


def test_map_groups_applies_a_function_to_each_group_at_its_own_size(static):
    """`fn` sees each group with its padding cut off and its own config, in the order
    of the groups; the results are combined and keep the attrs of the whole."""
    c, ds = static
    seen = []

    def fn(part):
        seen.append((part.sizes["hidden"], part.attrs["config"]))
        assert not np.isnan(part.W).any()
        return xr.Dataset({"norm": np.sqrt((part.W ** 2).sum("hidden"))})

    out = map_groups(fn, ds)
    assert seen == [(2, tm.to_toml(c.groups[0])), (3, tm.to_toml(c.groups[1]))]
    assert out.norm.dims == ("n_hidden", "sparsity", "seed", "feature")
    assert out.attrs == ds.attrs
    for H in (2, 3):
        expected = np.sqrt((ds.W.sel(n_hidden=H).isel(hidden=slice(0, H)) ** 2).sum("hidden"))
        np.testing.assert_array_equal(out.norm.sel(n_hidden=H), expected)


def test_map_groups_calls_the_function_once_without_static_groups(static):
    """A sweep without static axes, or a selection of one static group: `fn(ds)`."""
    c, ds = static
    plain_config = config(sweep={"seed": [0, 1]})
    plain = group_parts(plain_config)[0].assign_attrs(config=tm.to_toml(plain_config))
    calls = []
    for whole in (plain, ds.sel(n_hidden=3), xr.Dataset({"x": 1.0})):
        assert map_groups(lambda d: calls.append(d) or d, whole) is whole
    assert len(calls) == 3 and calls[0] is plain


def test_one_group_is_a_selected_group_at_its_own_size(static):
    c, ds = static
    for H, group in zip((2, 3), c.groups):
        got = one_group(ds.sel(n_hidden=H))
        assert got.sizes["hidden"] == H and not np.isnan(got.W).any()
        assert got.attrs["config"] == tm.to_toml(group) and "static_axes" not in got.attrs
        np.testing.assert_array_equal(got.W, ds.W.sel(n_hidden=H).isel(hidden=slice(0, H)))
    with pytest.raises(ValueError, match=r"select one value of each static axis first \(n_hidden\)"):
        one_group(ds)
    plain_config = config(sweep={"seed": [0, 1]})
    plain = group_parts(plain_config)[0].assign_attrs(config=tm.to_toml(plain_config))
    assert one_group(plain) is plain
