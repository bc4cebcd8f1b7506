"""Dimensionality over training and its jumps, on a hand-made snapshot series."""

import numpy as np
import xarray as xr

from toymodels.analysis import (
    analyze,
    dimensionality_over_training,
    feature_dimensionality,
    jump_table,
    jumps,
    n_jumps,
)

STEPS = [0, 100, 200, 300, 400, 500]


def series() -> np.ndarray:
    """[6, 3, 3]: features 0 and 1 antipodal in dim 0 (D = 1/2), then feature 1 leaves
    for dim 1 between steps 300 and 400 (both D = 1); feature 2, in dim 2, slowly
    tilts towards dim 0 (its D changes by < 0.02 per snapshot)."""
    Ws = np.zeros((6, 3, 3), np.float32)
    for s in range(6):
        Ws[s, 0, 0] = 1.0
        Ws[s, :, 1] = [-1.0, 0.0, 0.0] if s <= 3 else [0.0, 1.0, 0.0]
        Ws[s, :, 2] = [0.02 * s, 0.0, 1.0]
    return Ws


def test_dimensionality_over_training_is_per_snapshot():
    Ws = series()
    D = np.asarray(dimensionality_over_training(Ws))
    assert D.shape == (6, 3)
    for s in range(6):
        np.testing.assert_allclose(D[s], feature_dimensionality(Ws[s]), rtol=1e-6)
    np.testing.assert_allclose(D[3, :2], 0.5, atol=0.01)
    np.testing.assert_allclose(D[4, :2], 1.0, atol=0.01)


def test_the_hand_made_jump_is_found_and_nothing_else():
    D = np.asarray(dimensionality_over_training(series()))
    flags = np.asarray(jumps(D))
    assert flags.shape == (5, 3)
    assert np.argwhere(flags).tolist() == [[3, 0], [3, 1]]
    np.testing.assert_array_equal(n_jumps(D), [1, 1, 0])
    table = jump_table(D, STEPS)
    assert [row[:3] for row in table] == [(0, 300, 400), (1, 300, 400)]
    assert abs(table[0][3] - 0.5) < 0.02 and abs(table[0][4] - 1.0) < 0.02
    assert not np.asarray(jumps(D, threshold=0.6)).any()


def test_analyze_adds_dimensionality_snapshots():
    Ws = np.stack([series(), series()[:, ::-1]])  # two runs
    ds = xr.Dataset(
        {
            "W": (("seed", "hidden", "feature"), Ws[:, -1]),
            "W_snapshots": (("seed", "snapshot", "hidden", "feature"), Ws),
        },
        coords={"seed": [0, 1], "snapshot": STEPS},
    )
    out = analyze(ds)
    D = out["dimensionality_snapshots"]
    assert D.dims == ("seed", "snapshot", "feature")
    assert D["snapshot"].values.tolist() == STEPS
    for k in range(2):
        np.testing.assert_allclose(D[k], dimensionality_over_training(Ws[k]), rtol=1e-6)
    np.testing.assert_allclose(D.isel(snapshot=-1), out["feature_dimensionality"],
                               rtol=1e-6)
    assert "dimensionality_snapshots" not in analyze(ds.drop_vars("W_snapshots"))
