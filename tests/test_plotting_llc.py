"""The LLC phase figure (toymodels.plotting.llc.llc_phase) on a synthetic phase sweep."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from toymodels import plotting  # noqa: E402
from tests.test_plotting import make_dataset  # noqa: E402


@pytest.fixture
def ds():
    axes = {"relative_importance": np.geomspace(0.1, 10, 4),
            "feature_probability": np.geomspace(0.01, 1, 3), "seed": [0, 1, 2]}
    ds = make_dataset(axes, F=2, H=1, attrs={"n_features": 2, "n_hidden": 1})
    rng = np.random.default_rng(1)
    llc = rng.uniform(0.2, 2.0, ds.final_loss.shape)
    trusted = rng.uniform(size=llc.shape) > 0.3
    return ds.assign(llc=(ds.final_loss.dims, llc), llc_trusted=(ds.final_loss.dims, trusted))


def test_llc_of_the_best_seed_beside_the_phase(ds):
    fig = plotting.PLOTS["llc_phase"](ds)
    left, right = fig.axes[:2]
    best = ds.isel(seed=ds.final_loss.argmin("seed"))
    order = lambda da: da.sortby(["relative_importance", "feature_probability"]).transpose(
        "feature_probability", "relative_importance").values
    mesh = right.collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(3, 4), order(best.llc))
    crosses = [line for line in right.lines if line.get_gid() == "untrusted"][0]
    assert len(crosses.get_xdata()) == int((~order(best.llc_trusted)).sum())
    assert any(line.get_gid() == "theory-boundary" for line in right.lines)  # p*(r) on both
    assert any(line.get_gid() == "theory-boundary" for line in left.lines)


def test_needs_llc(ds):
    with pytest.raises(ValueError, match="toymodels llc"):
        plotting.PLOTS["llc_phase"](ds.drop_vars("llc"))
