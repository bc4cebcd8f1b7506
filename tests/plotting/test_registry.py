"""The plot registry of toymodels.plotting (its __init__): every kind draws a figure that
saves, an unknown kind lists the valid ones, and the package never imports pyplot."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from toymodels import plotting  # noqa: E402


@pytest.mark.parametrize(
    "kind", ["features", "phase", "dimensionality", "geometry", "loss", "heatmap"]
)
def test_every_kind_makes_a_figure_that_saves(kind, ds, tmp_path):
    fig = plotting.PLOTS[kind](ds)
    assert isinstance(fig, Figure)
    assert fig.axes and any(ax.has_data() for ax in fig.axes)
    path = tmp_path / f"{kind}.png"
    fig.savefig(path, dpi=50)
    assert path.stat().st_size > 1000


def test_unknown_kind_lists_the_valid_ones(ds):
    with pytest.raises(ValueError, match="valid: features, dimensionality, geometry, loss, phase, heatmap"):
        plotting.PLOTS["violin"]
    with pytest.raises(ValueError, match="heatmap"):
        plotting.make_figure("violin", ds)


def test_plotting_never_imports_pyplot():
    code = (
        "import sys; from toymodels import plotting; "
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
