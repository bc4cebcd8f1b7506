"""The issue-5 figures (toymodels/plotting/mechanisms.py): neurons, dynamics, vulnerability,
computation.

Axes functions on hand-built weights (values checked), and `toymodels plot KIND DIR`
on two tiny real sweeps (a ReLU-output sweep with snapshots, an abs_computation one).
"""

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

import toymodels as tm
from toymodels import plotting
from toymodels.cli import main


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    root = tmp_path_factory.mktemp("worlds")
    train = {"steps": 200, "batch_size": 256, "log_every": 20}
    snap = tm.parse_config({
        "name": "snap", "model": {"n_features": 5, "n_hidden": 2},
        "data": {"importance_decay": 0.9},
        "train": {**train, "snapshot_every": 20},
        "sweep": {"sparsity": [0.0, 0.9], "seed": [0, 1]},
    })
    abs_ = tm.parse_config({
        "name": "abs",
        "model": {"kind": "abs_computation", "n_features": 3, "n_hidden": 6},
        "train": train, "sweep": {"feature_probability": [1.0, 0.3]},
    })
    return {c.name: tm.run_sweep(c, root / c.name, quiet=True) for c in (snap, abs_)}


def _ax():
    return Figure().add_subplot()


def test_neurons_stacks_positive_up_and_negative_down():
    W = np.array([[1.0, 0.5, -0.25], [-1.0, 0.0, 0.75]])
    ax = _ax()
    drawn = plotting.neurons(ax, W)
    assert len(drawn) == 3 + 1  # a BarContainer per feature, then the zero line
    tops = [[(r.get_y(), r.get_height()) for r in bars] for bars in drawn[:3]]
    # neuron 0: +1.0 from 0, +0.5 on top of it, -0.25 downward from 0
    assert tops[0][0] == (0.0, 1.0) and tops[1][0] == (1.0, 0.5)
    assert tops[2][0] == (0.0, -0.25)
    # neuron 1: -1.0 downward from 0, 0.75 upward from 0
    assert tops[0][1] == (0.0, -1.0) and tops[2][1] == (0.0, 0.75)
    colours = {tuple(bars[0].get_facecolor()) for bars in drawn[:3]}
    assert len(colours) == 3


def test_dynamics_marks_the_jumps_and_the_fractions():
    Ws = np.zeros((4, 1, 2), np.float32)
    Ws[:, 0, 0] = 1.0
    Ws[:, 0, 1] = [0.0, 0.0, -1.0, -1.0]  # a partner appears at step 20: D_0 1 -> 1/2
    run = xr.Dataset(
        {"W_snapshots": (("snapshot", "hidden", "feature"), Ws),
         "loss": (("step",), [1.0, 0.5, 0.2])},
        coords={"snapshot": [0, 10, 20, 30], "step": [10, 20, 30]},
    )
    ax = _ax()
    drawn = plotting.dynamics(ax, run)
    lines, marks = drawn[:2], drawn[2]
    assert [list(line.get_xdata()) for line in lines] == [[10, 20, 30]] * 2
    np.testing.assert_allclose(marks.get_offsets(), [[20, 0.5], [20, 0.5]])
    assert ax.get_xscale() == "log"
    labels = {t.get_text() for t in ax.texts}
    assert {"1", "3/4", "2/3", "1/2", "2/5", "3/8"} <= labels
    assert len(ax.figure.axes) == 2  # the loss on a twin axis


def test_computation_rescales_units_and_outlines_the_motif():
    W1 = np.array([[4.0, -1.0], [0.0, 0.5]], np.float32)
    W2 = np.array([[0.25, 0.0], [1.0, 2.0]], np.float32)
    fig = Figure()
    axes = fig.subplots(1, 2)
    drawn = plotting.computation(axes, W1, W2, flags=[True, False])
    w1, w2 = drawn[0].get_array(), drawn[1].get_array()
    np.testing.assert_allclose(w1, [[1.0, -0.25], [0.0, 1.0]])
    np.testing.assert_allclose(w2, [[1.0, 4.0], [0.0, 1.0]])  # W2ᵀ times the scale
    rects = [a for a in drawn[2:] if a.get_gid() == "asymmetric"]
    assert len(rects) == 2 and rects[0].get_y() == -0.5  # unit 0, in both panels


@pytest.mark.slow  # moved behind slow (issue 22's test budget); CI runs it
def test_vulnerability_plots_every_run(sweeps):
    ds = tm.load(sweeps["snap"])
    ax = _ax()
    scatter, line, colorbar = plotting.vulnerability(ax, ds)
    analysed = tm.analyze(ds, adversarial=True)
    expected = np.stack([1 / analysed["dims_per_feature"].values.ravel(),
                         analysed["vulnerability"].values.ravel()], axis=1)
    np.testing.assert_allclose(scatter.get_offsets(), expected, rtol=1e-5)
    assert line.get_label() == "y = x"
    with pytest.raises(ValueError, match="linear and relu_output"):
        plotting.vulnerability(_ax(), tm.load(sweeps["abs"]))


@pytest.mark.parametrize(
    "kind,sweep",
    [("neurons", "snap"), ("dynamics", "snap"), ("vulnerability", "snap"),
     ("computation", "abs"), ("neurons", "abs")],
)
def test_cli_writes_each_new_plot(kind, sweep, sweeps, tmp_path):
    out = tmp_path / f"{kind}_{sweep}.png"
    assert main(["plot", kind, str(sweeps[sweep]), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 5000


@pytest.mark.parametrize(
    "kind,sweep,message",
    [("dynamics", "abs", "snapshot_every"), ("computation", "snap", "abs_computation"),
     ("vulnerability", "abs", "relu_output")],
)
def test_cli_says_when_a_plot_does_not_apply(kind, sweep, message, sweeps, tmp_path,
                                             capsys):
    out = tmp_path / "x.png"
    assert main(["plot", kind, str(sweeps[sweep]), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
