"""SAE figures (toymodels/plotting/sae.py) on a small SAE results Dataset made by hand:
decoders and ground truth with known cosines, no training."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from toymodels import plotting  # noqa: E402

H, F = 3, 6


@pytest.fixture(scope="module")
def saes():
    """Widths 3 and 6 (latents padded to 6 with NaN), l1_coefficient 0.1 and 0.3, seed 0.
    At l1 0.3 the decoder rows are the true features (each feature's best cosine is 1);
    at l1 0.1 they are random."""
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(H, F))
    truth /= np.linalg.norm(truth, axis=0)
    decoder = np.full((2, 2, 1, F, H), np.nan)  # [width, l1_coefficient, seed, latent, hidden]
    for w, width in enumerate((3, 6)):
        decoder[w, 0, 0, :width] = rng.normal(size=(width, H))
        decoder[w, 1, 0, :width] = truth.T[:width]
    return xr.Dataset(
        {"decoder": (("width", "l1_coefficient", "seed", "latent", "hidden"), decoder),
         "truth": (("hidden", "feature"), truth)},
        coords={"width": [3, 6], "l1_coefficient": [0.1, 0.3], "seed": [0]},
        attrs={"name": "saes", "trainer": "sae", "n_features": F, "n_hidden": H})


def _images(fig):
    return [ax.images[0].get_array() for ax in fig.axes if ax.images]


def test_sae_cosines_shows_the_chosen_l1_coefficient_and_says_which(saes):
    fig = plotting.PLOTS["sae_cosines"](saes, l1_coefficient=0.3)
    assert "l1 coefficient = 0.3 of 0.1, 0.3" in fig.get_suptitle()
    wide = _images(fig)[1]  # width 6: every feature is a latent
    np.testing.assert_allclose(wide.max(axis=1), 1.0)
    first = plotting.PLOTS["sae_cosines"](saes)
    assert "l1 coefficient = 0.1 of 0.1, 0.3" in first.get_suptitle()  # the default, said
    assert _images(first)[1].max() < 0.999


def test_sae_cosines_refuses_a_value_the_sweep_lacks(saes):
    with pytest.raises(ValueError, match=r"l1_coefficient=0.5: not a value of this sweep; "
                                         r"its values: 0.1, 0.3$"):
        plotting.PLOTS["sae_cosines"](saes, l1_coefficient=0.5)
    with pytest.raises(ValueError, match="is the panels' axis"):
        plotting.PLOTS["sae_cosines"](saes, by="l1_coefficient", l1_coefficient=0.1)


def test_sae_cosines_index_axes_have_integer_ticks(saes):
    fig = plotting.PLOTS["sae_cosines"](saes, l1_coefficient=0.3)
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.images]
    labels = [t.get_text().replace("−", "-") for ax in panels
              for t in (*ax.get_xticklabels(), *ax.get_yticklabels()) if t.get_text()]
    assert labels and all(text.lstrip("-").isdigit() for text in labels), labels
