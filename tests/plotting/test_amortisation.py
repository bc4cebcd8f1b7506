"""The amortisation figure (toymodels/plotting/amortisation.py) on analysed SAE results
made by hand: known code MCCs per kind and seed."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from toymodels import plotting  # noqa: E402
from toymodels.plotting import amortisation as a  # noqa: E402

ENCODER = np.array([[0.60, 0.62, 0.70], [0.75, 0.71, 0.73]])  # [kind, seed]


@pytest.fixture(scope="module")
def saes():
    dims = ("kind", "seed")
    scalar = lambda v: (dims, np.asarray(v, float))
    return xr.Dataset(
        {"mcc": scalar(ENCODER), "mcc_truth_gp": scalar(ENCODER + 0.1),
         "mcc_truth_omp": scalar(ENCODER + 0.2), "mcc_oracle_gp": scalar(np.full((2, 3), 0.85)),
         "mcc_oracle_omp": scalar(np.full((2, 3), 0.9))},
        coords={"kind": ["relu", "topk"], "seed": [0, 1, 2]},
        attrs={"name": "amort", "trainer": "sae", "n_features": 16, "n_hidden": 8,
               "config": '[sae]\ndictionary = "truth"\n'})


def test_points_are_the_runs_of_a_kind_and_the_bars_their_medians(saes):
    np.testing.assert_allclose(a.points(saes, "mcc", "topk"), ENCODER[1])
    assert a.points(saes, "mcc_oracle_omp").size == 6
    fig = plotting.PLOTS["amortisation"](saes)
    ax = fig.axes[0]
    bars = sorted({line.get_ydata()[0] for line in ax.lines if len(line.get_xdata()) == 2})
    expected = sorted({*np.median(ENCODER, 1), *(np.median(ENCODER, 1) + 0.1),
                       *(np.median(ENCODER, 1) + 0.2), 0.85, 0.9})
    np.testing.assert_allclose(bars, expected)
    assert "decoder fixed to the truth" in fig._suptitle.get_text()
    assert plotting.why_not("amortisation", saes) is None
    assert "mcc_oracle_gp" in plotting.why_not("amortisation", saes.drop_vars("mcc_oracle_gp"))
