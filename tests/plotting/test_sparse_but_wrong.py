"""The sparse_but_wrong figure (toymodels/plotting/sparse_but_wrong.py) on SAE results made
by hand: decoders that lean towards their partners below k = 5 and are the truth from it,
an MCC that peaks at k = 5 and an s_n that falls to k = 5 and then rises."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from toymodels import plotting  # noqa: E402
from toymodels.plotting import sparse_but_wrong as p  # noqa: E402

K = [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
LEAN = 0.3  # below k = 5 each latent leans by sin(0.3) towards its partner, signed as rho
CONFIG = '[synthetic]\ncorrelations = [[0, 1, 0.6], [2, 3, -0.6]]\n'


def decoder(lean: float) -> np.ndarray:
    """[4 latents, 4 hidden]: feature i's latent cos(lean) t_i +- sin(lean) t_partner."""
    t = np.eye(4)
    partner, sign = [1, 0, 3, 2], [1.0, 1.0, -1.0, -1.0]
    return np.stack([np.cos(lean) * t[i] + s * np.sin(lean) * t[j]
                     for i, (j, s) in enumerate(zip(partner, sign))])


@pytest.fixture(scope="module")
def saes():
    dec = np.stack([decoder(LEAN if k < 5 else 0.0) for k in K])[:, None].repeat(2, 1)
    mcc = np.array([0.7, 0.8, 0.9, 1.0, 0.95, 0.9])[:, None].repeat(2, 1)
    s_n = np.array([0.5, 0.45, 0.3, 0.01, 0.1, 0.3])[:, None, None].repeat(2, 1)
    profile = np.concatenate([np.ones((6, 2, 3)), s_n], axis=2)  # rank 3 is s_n
    dims = ("k", "seed")
    return xr.Dataset(
        {"decoder": ((*dims, "latent", "hidden"), dec),
         "truth": (("hidden", "feature"), np.eye(4)),
         "decoder_mcc": (dims, mcc), "true_l0": (dims, np.full((6, 2), 2.5)),
         "decoder_projection": ((*dims, "rank"), profile),
         "loss": ((*dims, "step"), np.ones((6, 2, 1)))},
        coords={"k": K, "seed": [0, 1], "rank": np.arange(4)},
        attrs={"name": "sbw", "trainer": "sae", "config": CONFIG})


def test_sweep_curves_read_the_mixing_with_its_sign_and_s_n_at_the_rank_above_l0(saes):
    c = p.sweep_curves(saes)
    assert c["n"] == 3 and c["true_l0"] == pytest.approx(2.5)  # floor(2.5) + 1
    low = np.array(K) < 5
    np.testing.assert_allclose(c["mixing_positive"][low], np.sin(LEAN), atol=1e-12)
    np.testing.assert_allclose(c["mixing_negative"][low], -np.sin(LEAN), atol=1e-12)
    np.testing.assert_allclose(c["mixing_positive"][~low], 0.0, atol=1e-12)
    np.testing.assert_allclose(c["s_n"][:, 0], [0.5, 0.45, 0.3, 0.01, 0.1, 0.3])
    assert p.sweep_curves(saes, n=0)["s_n"].max() == 1.0


def test_figure_marks_the_mcc_peak_and_the_elbow_at_k_5(saes):
    fig = plotting.PLOTS["sparse_but_wrong"](saes)
    assert len(fig.axes) == 3
    stars = [next(line for line in ax.lines if line.get_marker() == "*") for ax in fig.axes[:2]]
    assert [float(s.get_xdata()[0]) for s in stars] == [5.0, 5.0]
    assert plotting.why_not("sparse_but_wrong", saes) is None


def test_it_needs_a_k_axis_and_the_analysis(saes):
    assert "sweep axis k" in plotting.why_not("sparse_but_wrong", saes.isel(k=0, drop=True))
    assert "toymodels analyze" in plotting.why_not("sparse_but_wrong", saes.drop_vars("decoder_mcc"))
    with pytest.raises(ValueError, match="rank"):
        p.sweep_curves(saes, n=9)
