"""The incidental-polysemanticity figure (toymodels/plotting/incidental.py) on synthetic
datasets with known answers."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from toymodels import plotting  # noqa: E402
from toymodels.plotting import incidental  # noqa: E402

from helpers import synthetic_results  # noqa: E402


def test_incidental_means_and_reference_line():
    ds = synthetic_results({"n_hidden": [4, 8, 16], "seed": [0, 1, 2]}, F=6, H=16)
    counts = np.array([[3, 2, 4], [1, 0, 2], [0, 0, 1]])
    ds = ds.assign(n_polysemantic=(("n_hidden", "seed"), counts))
    fig = plotting.PLOTS["incidental"](ds)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.means, [3.0, 1.0, 1 / 3])
    np.testing.assert_allclose(ax.reference, [36 / 16, 36 / 32, 36 / 64])
    assert incidental.reference_count(256, 4096) == 4.0
    with pytest.raises(ValueError, match="n_hidden"):
        plotting.PLOTS["incidental"](ds.isel(n_hidden=0, drop=True).drop_vars("n_hidden",
                                                                            errors="ignore"))


def test_incidental_refuses_extra_axes():
    ds = synthetic_results({"n_hidden": [4, 8], "dropout": [0.0, 0.1]}, F=3, H=8)
    ds = ds.assign(n_polysemantic=(("n_hidden", "dropout"), np.zeros((2, 2), int)))
    with pytest.raises(ValueError, match="dropout"):
        plotting.PLOTS["incidental"](ds)
