"""The optimiser figure (toymodels/plotting/norms.py) asks `analyze` for the costly
`basis_kurtosis_p` only for its basis panel, and labels each point with it."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from toymodels import plotting  # noqa: E402
from toymodels.analysis import analyze  # noqa: E402
from toymodels.plotting import common  # noqa: E402
from toymodels.plotting import norms as norms_plots  # noqa: E402

from helpers import synthetic_results  # noqa: E402


@pytest.fixture
def optimizers():
    """Two optimisers x two learning rates x two importances x two densities x two seeds,
    5 -> 3, with no analysis variables but the by-hand ones."""
    return synthetic_results({"optimizer": ["adamw", "sgd"], "learning_rate": [1e-3, 1e-2],
                              "relative_importance": [0.5, 2.0],
                              "feature_probability": [0.1, 0.5], "seed": [0, 1]}, F=5, H=3)


@pytest.fixture
def asked(monkeypatch):
    """The `extras` of every `analyze` call the plots make."""
    calls = []

    def recording(ds, **options):
        calls.append(sorted(options.get("extras", ())))
        return analyze(ds, **options)

    monkeypatch.setattr(common, "analyze", recording)
    return calls


def test_the_phase_panel_asks_for_no_extra(optimizers, asked):
    plotting.PLOTS["optimizer_phase"](optimizers.drop_vars("phase"), panel="phase")
    assert asked == [[]]  # analyze for the missing phase, and nothing costly


def test_the_basis_panel_asks_for_and_shows_the_rotation_p_value(optimizers, asked):
    fig = plotting.PLOTS["optimizer_phase"](optimizers, panel="basis")
    assert asked == [["basis_kurtosis_p"]]
    full = analyze(optimizers, extras=["basis_kurtosis_p"])
    for ax, name in zip(fig.axes, ["adamw", "sgd"]):
        run = norms_plots.lr_as_seed(full.sel(optimizer=name)).isel(relative_importance=0)
        best = run.isel(seed=run.final_loss.argmin("seed"))
        expected = {f"p={p:.2f}\nlr {lr:g}" for p, lr, k in zip(
            best.basis_kurtosis_p.values, best.run_learning_rate.values,
            best.basis_kurtosis.values) if np.isfinite(k)}
        assert expected and {t.get_text() for t in ax.texts} == expected
