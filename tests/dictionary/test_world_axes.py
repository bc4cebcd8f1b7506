"""A [synthetic] world's keys as static sweep axes (toymodels.sae_config): a world per
value, one line for a key that stays one per sweep; groups.combine stores a world's
variables once only when every group holds the same; and the hierarchical hedging sweep
(sweeps/sae_hedging_hierarchical.toml), trained small, against the closed form
(`toymodels.theory.hedging`, itself checked against a brute-force optimum in
tests/theory/test_hedging.py).
"""

import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import toymodels as tm
from toymodels import groups, theory
from toymodels.config import to_toml
from toymodels.errors import UserError

HEDGING = Path(__file__).parents[2] / "sweeps" / "sae_hedging_hierarchical.toml"
Q = (0.05, 0.2, 0.5)  # P(c | p); the parent fires with 0.3


def hierarchical(qs=Q, seeds=(0,), **train) -> dict:
    raw = tomllib.loads(HEDGING.read_text())
    raw["sweep"] = {"probabilities": [[0.3, q] for q in qs], "seed": list(seeds)}
    raw["train"].update(train)
    return raw


def test_a_world_key_axis_makes_a_group_per_value_and_reads_back():
    """sweep.probabilities (a list of lists: the key's own value per group) is a static
    axis: a group per value with its own world, the same world seed; the written TOML
    parses to the same sweep."""
    config = tm.parse_config(hierarchical(), "h.toml")
    assert config.static_axes == (("probabilities", tuple((0.3, q) for q in Q)),)
    worlds = [g.spec.sae.world for g in config.groups]
    assert [w.probabilities for w in worlds] == [(0.3, q) for q in Q]
    assert {g.spec.sae.truth_seed for g in config.groups} == {0} and worlds[0].roots == 1
    assert tm.parse_config(tomllib.loads(to_toml(config)), "again.toml") == config
    assert groups.coordinate(config.static_axes[0][1]).tolist() == [
        "[0.3, 0.05]", "[0.3, 0.2]", "[0.3, 0.5]"]
    scalar = {**hierarchical(), "synthetic": {"n_features": 3, "n_hidden": 4, "firing": "constant"},
              "sweep": {"probability": [0.1, 0.2], "bias": [0.0, 1.0], "seed": [0]}}
    config = tm.parse_config(scalar, "s.toml")
    assert [(g.spec.sae.world.probability, g.spec.sae.world.bias) for g in config.groups] == [
        (0.1, 0.0), (0.1, 1.0), (0.2, 0.0), (0.2, 1.0)]


@pytest.mark.parametrize("axis, message", [
    ({"n_hidden": [4, 8]}, "h.toml: sweep.n_hidden: one per sweep, not a sweep axis (a shape"),
    ({"preset": ["synthsaebench-1k"]}, "h.toml: sweep.preset: one per sweep, not a sweep axis"),
    ({"rank": [0, 1]}, "h.toml: sweep.rank: one per sweep, not a sweep axis (its name is SAE "
     "results' rank dim"),
    ({"probability": [0.1, 2.0]}, "h.toml: sweep.probability: must be a number in [0, 1], got 2.0"),
    ({"probabilities": [[0.3, 0.1, 0.2]]}, "h.toml [probabilities = [0.3, 0.1, 0.2]]: "
     "synthetic.probabilities: firing = \"list\" needs one probability per feature (2), got 3"),
    ({"firng": ["zipf"]}, "h.toml: sweep.firng: not a sweepable key of an SAE sweep"),
])
def test_a_world_axis_that_is_not_allowed_is_one_line(axis, message):
    with pytest.raises(UserError) as e:
        tm.parse_config({**hierarchical(), "sweep": {**axis, "seed": [0]}}, "h.toml")
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_a_world_axis_needs_a_synthetic_table():
    raw = {"sae": {"source": "synthetic", "n_features": 2, "n_hidden": 4},
           "sweep": {"probability": [0.1, 0.2]}}
    with pytest.raises(UserError, match=r"^x.toml: sweep.probability: not a sweepable key"):
        tm.parse_config(raw, "x.toml")


def test_combine_stores_differing_worlds_per_group_and_identical_ones_once():
    """With a world key swept each group's world is its own: a variable marked shared is
    stacked along the static axis where the groups' values differ (density) and kept once
    where they agree (truth), per variable; a group's scalar coords left by `split` do
    not count as a difference."""
    config = tm.parse_config(hierarchical(qs=(0.1, 0.4)), "h.toml")
    truth = np.arange(8.0).reshape(4, 2)
    shared = {groups.SHARED: "world"}
    parts = [xr.Dataset({"loss": (("seed", "step"), [[q, 2 * q]]),
                         "truth": (("hidden", "feature"), truth, shared),
                         "density": (("feature",), [0.3, q], shared)},
                        coords={"seed": [0], "step": [1, 2], "probabilities": label})
             for q, label in ((0.1, "[0.3, 0.1]"), (0.4, "[0.3, 0.4]"))]
    ds = groups.combine(parts, config)
    assert ds.truth.dims == ("hidden", "feature") and ds.density.dims == ("probabilities", "feature")
    np.testing.assert_array_equal(ds.truth, truth)
    np.testing.assert_array_equal(ds.density.sel(probabilities="[0.3, 0.4]"), [0.3, 0.4])
    back = groups.split(ds, config)
    np.testing.assert_array_equal(back[0].density, [0.3, 0.1])
    np.testing.assert_array_equal(back[1].truth, truth)


@pytest.mark.slow
def test_the_hierarchical_hedging_sweep_trains_to_the_closed_form(tmp_path):
    """One-latent TopK SAEs on the 2-feature hierarchical world (the sweep file's, at
    q = 0.1 and 0.5, batch 256, 1,000 steps): the least-loss run of 2 seeds per q has the
    closed form's child share within 0.03, and no run's loss is below the closed form's
    least by more than batch noise. The closed form is the MSE's global minimum; one init
    (seed 0 here) lands in a local one at q = 0.5, where the latent fires only with the
    child (share about 0.77, loss twice the least): hence the least-loss run. 0.03: at this
    batch and length 4 seeds gave shares 0.107 to 0.126 at q = 0.1 (closed form 0.114,
    seed-to-seed std 0.008) and 0.561 to 0.567 at q = 0.5 (0.563); about 4 std, far
    from the local minimum's 0.2 off."""
    qs = (0.1, 0.5)
    config = tm.parse_config(hierarchical(qs, seeds=(0, 1), steps=1000, batch_size=256), "h.toml")
    ds = tm.load(tm.run_sweep(config, tmp_path / "h", quiet=True))
    loss = ds.loss.isel(step=slice(-3, None)).mean("step").values  # [probabilities, seed]
    F = ds.truth.values  # [hidden, feature], one world's directions for every q
    for i, q in enumerate(qs):
        least = float(theory.optimal_mse(theory.amplitude_cov(0.3, q, "hierarchical")))
        assert loss[i].min() > 0.9 * least, (q, loss[i], least)
        c = np.linalg.lstsq(F, ds.decoder.values[i, loss[i].argmin(), 0], rcond=None)[0]
        share = np.sign(c[0]) * c[1] / np.linalg.norm(c)  # the parent's coefficient >= 0
        assert abs(share - theory.child_share(0.3, q, "hierarchical")) < 0.03, (q, share)
