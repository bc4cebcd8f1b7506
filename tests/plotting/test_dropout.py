"""The dropout figures (toymodels/plotting/dropout.py): agreement counts against the
theory and the fitted lines, on synthetic datasets with known answers."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from toymodels import plotting, theory  # noqa: E402
from toymodels.plotting import dropout  # noqa: E402

from helpers import synthetic_results  # noqa: E402

R = [0.1, 0.5, 2.0, 10.0]
P = [0.01, 0.1, 0.45, 1.0]


def _dropout_ds(truth_q):
    """2 -> 1 results over dropout [0, 0.5] whose phases are the theory's at truth_q,
    except one flipped cell per panel."""
    ds = synthetic_results({"dropout": [0.0, 0.5], "relative_importance": R,
                       "feature_probability": P, "seed": [0, 1]}, F=2, H=1)
    r, p = np.meshgrid(R, P, indexing="ij")
    phase = np.empty(ds["phase"].shape, dtype=object)
    for k in range(2):
        truth = theory.phase_2_1_dropout(p, r, truth_q[k])
        truth[0, 0] = "dedicated" if truth[0, 0] != "dedicated" else "superposition"
        phase[k] = np.repeat(truth[..., None], 2, axis=-1)
    return ds.assign(phase=(ds["phase"].dims, phase.astype(str)))


def test_dropout_phase_counts_agreement_with_each_panels_theory():
    fig = plotting.PLOTS["dropout_phase"](_dropout_ds([0.0, 0.5]))
    panels = [ax for ax in fig.axes if hasattr(ax, "agreement")]
    assert [ax.agreement for ax in panels] == [(15, 16), (15, 16)]
    gids = {line.get_gid() for line in panels[1].get_lines()}
    assert {"theory-boundary", "theory-free", "theory-r1", "theory-drop-both"} <= gids
    boundary = next(ln for ln in panels[1].get_lines() if ln.get_gid() == "theory-boundary")
    r, p = boundary.get_data()
    np.testing.assert_allclose(p, theory.boundary_2_1_dropout(r, 0.5))


def test_dropout_phase_agreement_uses_the_panels_own_rate():
    # phases made by the dropout-free theory disagree with the q = 0.5 theory somewhere
    ds = _dropout_ds([0.0, 0.0])
    cells = plotting.best_runs(ds.isel(dropout=1), ["relative_importance",
                                                    "feature_probability"])
    agree, total = dropout.phase_agreement(cells, 0.5, "relative_importance",
                                           "feature_probability")
    r, p = np.meshgrid(R, P, indexing="ij")
    seen = ds["phase"].isel(dropout=1, seed=0).transpose("relative_importance",
                                                          "feature_probability").values
    expected = int(np.sum(seen == theory.phase_2_1_dropout(p, r, 0.5)))
    assert expected < 15 and total == 16  # the two theories differ on this grid
    assert agree == expected


def test_dropout_phase_needs_a_dropout_axis():
    ds = synthetic_results({"relative_importance": R, "feature_probability": P}, F=2, H=1)
    with pytest.raises(ValueError, match="dropout sweep axis"):
        plotting.PLOTS["dropout_phase"](ds)


def test_linear_fit_recovers_a_line_and_reports_residuals():
    q = np.linspace(0, 0.5, 6)
    y0, s, r2, res = dropout.linear_fit(q, 5.0 - 5.5 * q)
    assert (y0, s, r2) == pytest.approx((5.0, -5.5, 1.0), abs=1e-10)
    noisy = 5.0 - 5.5 * q + np.array([0.1, -0.1, 0.0, 0.0, 0.1, -0.1])
    y0, s, r2, res = dropout.linear_fit(q, noisy)
    assert np.sum(res) == pytest.approx(0.0, abs=1e-10)  # least squares with intercept
    ss = np.sum((noisy - noisy.mean()) ** 2)
    assert r2 == pytest.approx(1 - np.sum(res**2) / ss)
    assert 0.99 < r2 < 1.0


def test_dropout_law_draws_data_and_fits_per_density():
    ds = synthetic_results({"feature_probability": [1.0, 0.1], "dropout": [0.0, 0.25, 0.5],
                       "seed": [0, 1]}, F=4, H=2)
    fig = plotting.PLOTS["dropout_law"](ds)
    left, right = fig.axes[:2]
    labels = [t.get_text() for t in right.get_legend().get_texts()]
    assert len(labels) == 2 and all("R²" in t for t in labels)
    best = plotting.best_runs(ds, ["dropout", "feature_probability"])
    fro = (best["W"] ** 2).sum(("hidden", "feature")).transpose("feature_probability",
                                                                 "dropout").values
    dots = [ln for ln in right.get_lines() if ln.get_linestyle() == "None"]
    np.testing.assert_allclose(dots[0].get_ydata(), fro[0], rtol=1e-6)
