"""The arrays the explore page embeds (toymodels/explore/data.py), pure Python: each run's
matrix, the loss curves through the log levels, the heatmap variables, SAE and LLC results."""

import numpy as np
import xarray as xr

import toymodels as tm
from toymodels.explore import page_data, run_view
from toymodels.explore.data import LOG_LEVELS, curve_steps, decode_log, encode_log


def _padded() -> xr.Dataset:
    """Runs of m = 2 and m = 3 in one Dataset, as a static n_hidden axis stores them
    (`toymodels.groups`): the m = 2 runs' W padded with a NaN row."""
    W = np.random.default_rng(0).normal(size=(2, 3, 3, 5)).astype(np.float32)  # [m, seed, H, F]
    W[0, :, 2] = np.nan
    loss = np.linspace(1.0, 0.1, 2 * 3 * 4).reshape(2, 3, 4)
    return xr.Dataset({"W": (("n_hidden", "seed", "hidden", "feature"), W),
                       "loss": (("n_hidden", "seed", "step"), loss)},
                      coords={"n_hidden": [2, 3], "seed": [0, 1, 2], "step": [1, 2, 3, 4]})


def _run_coords(ds, data, run):
    return dict(zip(data.axes, np.unravel_index(run, data.shape)))


def test_embedded_matrix_is_the_gram_matrix_of_each_runs_own_W():
    """Padded runs (m = 2 of a [2, 3] static axis) show their own 2 x 5 W's WᵀW."""
    static = _padded()
    data = page_data(static)
    assert data.axes == ("n_hidden", "seed") and data.matrix == "WᵀW"
    for run in range(data.n_runs):
        index = _run_coords(static, data, run)
        W = static.W.isel(index).values.astype(np.float64)
        m = int(static.n_hidden.values[index["n_hidden"]])
        assert np.isnan(W[m:]).all() and not np.isnan(W[:m]).any()
        view = run_view(data, run)
        np.testing.assert_allclose(view["matrix"], W[:m].T @ W[:m], rtol=1e-6, atol=1e-7)
        assert view["coords"]["n_hidden"] == str(m)


def test_loss_curves_round_trip_through_the_log_levels(phase):
    ds, _ = phase
    data = page_data(ds, max_curve=5)
    keep = curve_steps(ds.sizes["step"], 5)
    assert keep[0] == 0 and keep[-1] == ds.sizes["step"] - 1 and len(keep) == 5
    np.testing.assert_array_equal(data.steps, ds.step.values[keep])
    axes = list(data.axes)
    stored = ds.loss.transpose(*axes, "step").values.reshape(data.n_runs, -1)[:, keep]
    for run in (0, 7, data.n_runs - 1):
        np.testing.assert_allclose(run_view(data, run)["loss"], stored[run], rtol=2e-4)


def test_log_levels_error_is_half_a_level():
    """Over ten decades one level is 10/65534 of a decade: relative error <= 1.8e-4."""
    values = 10.0 ** np.random.default_rng(0).uniform(-6, 4, 10_000)
    codes, (lo, hi) = encode_log(np.r_[values, 1e-6, 1e4])
    bound = 10 ** ((hi - lo) / LOG_LEVELS / 2) - 1
    assert bound < 1.8e-4
    decoded = decode_log(codes, lo, hi)
    assert np.abs(decoded / np.r_[values, 1e-6, 1e4] - 1).max() <= bound + 1e-12
    codes, _ = encode_log(np.array([np.nan, -1.0, 0.0, 1.0]))
    assert codes[:3].tolist() == [LOG_LEVELS + 1] * 3
    assert np.isnan(decode_log(codes, 0.0, 1.0)[:3]).all()


def test_heatmap_variables_are_the_stored_values(phase):
    ds, _ = phase
    data = page_data(ds)
    keys = {v.key: v for v in data.variables}
    order = list(data.axes)
    phase = keys["phase"]
    labels = np.asarray(phase.labels)[data.arrays["phase"]]
    np.testing.assert_array_equal(labels, ds.phase.transpose(*order).values.ravel())
    norms = data.arrays["feature_norm"].reshape(data.n_runs, -1)
    np.testing.assert_allclose(norms, ds.feature_norm.transpose(*order, "feature").values
                               .reshape(data.n_runs, -1), rtol=1e-6)
    assert keys["feature_norm:1"].feature == 1 and keys["feature_norm:mean"].width == 2
    notes = "\n".join(data.notes)
    for left_out in ("polytope:", "polytope_counts:", "nonfinite_step: the same value"):
        assert left_out in notes
    assert "polytope" not in keys and "nonfinite_step" not in keys


def test_sae_matrix_is_the_cosine_of_latents_with_true_features():
    rng = np.random.default_rng(1)
    decoder, truth = rng.normal(size=(2, 3, 2)), rng.normal(size=(2, 2, 4))  # [seed, L, H], [seed, H, F]
    ds = xr.Dataset({"decoder": (("seed", "latent", "hidden"), decoder),
                     "truth": (("seed", "hidden", "feature"), truth),
                     "mmcs": (("seed",), [0.5, 0.7]),
                     "loss": (("seed", "step"), [[1.0, 0.5], [2.0, 0.25]])},
                    coords={"seed": [0, 1], "step": [10, 20]}, attrs={"trainer": "sae"})
    data = page_data(ds)
    for run in (0, 1):
        expected = [[decoder[run, l] @ truth[run, :, f]
                     / np.linalg.norm(decoder[run, l]) / np.linalg.norm(truth[run, :, f])
                     for f in range(4)] for l in range(3)]
        np.testing.assert_allclose(run_view(data, run)["matrix"], expected, rtol=1e-5)
    assert data.rank == "_rank" and data.arrays["_rank"].tolist() == [0.5, 0.25]
    assert [v.key for v in data.variables] == ["mmcs", "last_loss"]


def test_llc_variables_are_shown_and_the_trace_is_noted(phase):
    ds, _ = phase
    order = list(tm.explore.run_axes(ds))
    shape = tuple(ds.sizes[a] for a in order)
    llc = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    ds = ds.assign(llc=(order, llc), llc_trusted=(order, llc % 2 == 0),
                   llc_trace=((*order, "chain", "draw"), np.zeros((*shape, 2, 3))))
    data = page_data(ds)
    keys = [v.key for v in data.variables]
    assert "llc" in keys and "llc_trusted" in keys
    np.testing.assert_array_equal(data.arrays["llc"], llc.ravel())
    np.testing.assert_array_equal(data.arrays["llc_trusted"], (llc.ravel() % 2 == 0))
    assert any(n.startswith("llc_trace: has dims ('chain', 'draw')") for n in data.notes)
