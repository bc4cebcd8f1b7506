"""`toymodels explore`: the arrays the page embeds (pure Python), its one-line errors, and
the page itself in headless Chromium (opened, clicked, screenshotted)."""

from pathlib import Path

import re

import numpy as np
import pytest
import xarray as xr

import toymodels as tm
from toymodels.cli import main
from toymodels.explore import load_results, page_data, run_view
from toymodels.explore.data import LOG_LEVELS, curve_steps, decode_log, encode_log

import browser
from helpers import raw

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"
SMALL = ("train.steps=60", "train.batch_size=64", "train.log_every=5")
REDUCED = {  # the three sweeps on small grids
    "intro": ("sweep.sparsity=[0.0, 0.7, 0.9]", "sweep.seed=[0, 1]"),
    "phase_2_1": ("sweep.relative_importance={geomspace=[0.1, 10.0, 3]}",
                  "sweep.feature_probability={geomspace=[0.01, 1.0, 4]}", "sweep.seed=[0, 1, 2]"),
    "dropout_phase": ("sweep.dropout=[0.0, 0.5]",
                      "sweep.relative_importance={geomspace=[0.1, 10.0, 3]}",
                      "sweep.feature_probability={geomspace=[0.01, 1.0, 3]}", "sweep.seed=[0, 1]"),
}


def _trained(name: str, root: Path) -> tuple[xr.Dataset, Path]:
    """One of the issue's sweeps, reduced, trained and analysed: (Dataset, directory)."""
    config = tm.load_config(SWEEPS / f"{name}.toml", SMALL + REDUCED[name])
    return tm.analyze_store(tm.run_sweep(config, root / name, quiet=True)), root / name


@pytest.fixture(scope="module")
def phase(tmp_path_factory):
    return _trained("phase_2_1", tmp_path_factory.mktemp("explore"))


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


def test_cli_errors_are_one_line(phase, tmp_path, capsys):
    _, intro = phase
    for args, needle in (([str(tmp_path / "nothing")], "not a directory"),
                         ([str(tmp_path)], "not a results directory"),
                         ([str(intro), "--var", "nope"], "--var 'nope': not a variable"),
                         ([str(intro), "--x", "dropout"], "--x 'dropout': not a sweep axis")):
        assert main(["explore", *args, "--out", str(tmp_path / "x.html")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "x.html").exists()


def test_page_is_self_contained(phase, tmp_path, capsys):
    """No <script src> or <link href>: BokehJS and the data are inline (the browser test
    checks that the page loads no resource at all)."""
    _, results = phase
    out = tmp_path / "phase.html"
    assert main(["explore", str(results), "--out", str(out)]) == 0
    html = out.read_text()
    assert "wrote" in capsys.readouterr().out
    assert not re.search(r"<script[^>]*\bsrc=|<link[^>]*\bhref=", html)
    assert html.count("<script") >= 3 and "Bokeh.embed.embed_items" in html
    assert 5e5 < len(html) < 4e6


# ---- in a real browser


@pytest.fixture(scope="module")
def driver():
    why = browser.missing()
    if why:
        pytest.skip(f"no headless browser for the explore page: {why}")
    with browser.chromium() as d:
        yield d


def _best_seed_index(ds, at: dict) -> int:
    return int(ds.final_loss.isel(at).fillna(np.inf).argmin("seed"))


def test_phase_2_1_page_in_chromium_shows_the_clicked_run(phase, driver, tmp_path):
    _check_clicked_run(phase, driver, tmp_path / "phase_2_1.html", (2, 1))


@pytest.mark.slow
@pytest.mark.parametrize("name, cell", [("dropout_phase", (1, 2)), ("intro", (2, 1))])
def test_intro_and_dropout_pages_in_chromium_show_the_clicked_run(
        driver, tmp_path, name, cell):
    _check_clicked_run(_trained(name, tmp_path), driver, tmp_path / f"{name}.html", cell)


@pytest.mark.slow
def test_static_axes_page_in_chromium_shows_each_runs_own_size(driver, tmp_path):
    """A trained sweep with n_hidden = [2, 3] (static): an m = 2 run shows no hidden 0 vs 2
    panel, an m = 3 run shows its 3 x 5 W in both direction panels."""
    r = raw(train={"steps": 40, "batch_size": 64, "log_every": 10})
    r["sweep"] = {"n_hidden": [2, 3], "sparsity": [0.0, 0.9], "seed": [0, 1]}
    results = tm.run_sweep(tm.parse_config(r), tmp_path / "run", quiet=True)
    ds, out = load_results(results), tmp_path / "static.html"
    assert main(["explore", str(results), "--out", str(out), "--x", "n_hidden",
                 "--y", "sparsity"]) == 0
    driver.get(out.as_uri())
    browser.wait_for(driver, "return document.body.dataset.exploreView")
    for m_index, m in enumerate((2, 3)):
        state = browser.click_cell(driver, m_index, 1)
        at = {"n_hidden": m_index, "sparsity": 1,
              "seed": _best_seed_index(ds, {"n_hidden": m_index, "sparsity": 1})}
        assert state["index"] == at
        W = ds.W.isel(at).values[:m].astype(np.float64)
        first, second = (browser.model_data(driver, f"directions{k}") for k in (0, 1))
        np.testing.assert_allclose(first["x1"], W[0], rtol=1e-5)
        np.testing.assert_allclose(first["y1"], W[1], rtol=1e-5)
        if m == 2:
            assert second["x1"] == []
        else:
            np.testing.assert_allclose(second["y1"], W[2], rtol=1e-5)
        matrix = browser.model_data(driver, "matrix")
        assert len(matrix["value"]) == 25
        np.testing.assert_allclose(sorted(matrix["value"]), np.sort((W.T @ W).ravel()),
                                   rtol=1e-5, atol=1e-7)


def _check_clicked_run(trained, driver, out: Path, cell: tuple[int, int]) -> None:
    """Opens the page, clicks `cell` (x, y indices) with the mouse and compares the run
    view with the stored run (the best seed of the cell; other axes at their first
    value); no console errors, no resource loaded."""
    ds, results = trained
    assert main(["explore", str(results), "--out", str(out)]) == 0
    driver.get(out.as_uri())
    view = browser.wait_for(driver, "return document.body.dataset.exploreView")
    data = page_data(ds)
    x, y = tm.explore.default_axes(data.axes)
    assert f'"x":"{x}","y":"{y}"' in view
    state = browser.click_cell(driver, *cell)
    at = {x: cell[0], y: cell[1]}
    if "seed" not in at:
        at["seed"] = _best_seed_index(ds, {x: cell[0], y: cell[1], **{
            a: 0 for a in data.axes if a not in (x, y, "seed")}})
    at.update({a: 0 for a in data.axes if a not in at})  # the other axes at their first value
    assert state["index"] == at
    W = ds.W.isel(at).values.astype(np.float64)
    gram = W.T @ W
    matrix = browser.model_data(driver, "matrix")
    shown = np.zeros_like(gram)
    shown[matrix["y"], matrix["x"]] = matrix["value"]
    np.testing.assert_allclose(shown, gram, rtol=1e-5, atol=1e-7)
    keep = curve_steps(ds.sizes["step"], 50)
    curve = browser.model_data(driver, "loss")
    np.testing.assert_array_equal(curve["x"], ds.step.values[keep])
    np.testing.assert_allclose(curve["y"], ds.loss.isel(at).values[keep], rtol=2e-4)
    norms = browser.model_data(driver, "bars")["right"]
    np.testing.assert_allclose(norms, np.linalg.norm(W, axis=0), rtol=1e-5)
    png = driver.get_screenshot_as_png()
    out.with_suffix(".png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_selectors_in_chromium_change_the_reduction(phase, driver, tmp_path):
    """final_loss, mean over seeds: each cell is the seed mean; "seed 1" clicks seed 1."""
    ds, results = phase
    out = tmp_path / "phase.html"
    assert main(["explore", str(results), "--out", str(out), "--var", "final_loss"]) == 0
    driver.get(out.as_uri())
    browser.wait_for(driver, "return document.body.dataset.exploreView")
    browser.set_value(driver, "reduce", "mean")
    browser.wait_for(driver, "return document.body.dataset.exploreView.includes('mean')")
    cells = browser.model_data(driver, "cells")
    mean = ds.final_loss.mean("seed").transpose("feature_probability", "relative_importance")
    np.testing.assert_allclose(np.array(cells["text"], float), mean.values.ravel(), rtol=1e-3)
    browser.set_value(driver, "reduce", "seed:1")
    browser.wait_for(driver, "return document.body.dataset.exploreView.includes('seed:1')")
    state = browser.click_cell(driver, 0, 3)
    assert state["index"] == {"relative_importance": 0, "feature_probability": 3, "seed": 1}


@pytest.mark.slow
def test_sae_page_in_chromium_shows_latent_feature_cosines(phase, driver, tmp_path):
    """Trained SAEs on a phase_2_1 run: the clicked SAE's matrix is the cosine of its
    decoder rows with the source's W columns, computed here from the stored arrays."""
    _, source = phase
    raw_sae = {"name": "sae", "sae": {"source": str(source), "kind": "relu",
                                      "runs": {"relative_importance": 10.0,
                                               "feature_probability": 1.0, "seed": 0}},
               "train": {"steps": 60, "batch_size": 128, "log_every": 20},
               "sweep": {"width": [2, 4], "seed": [0, 1]}}
    results = tm.run_sweep(tm.parse_config(raw_sae, "sae.toml"), tmp_path / "sae", quiet=True)
    out = tmp_path / "sae.html"
    assert main(["explore", str(results), "--out", str(out)]) == 0
    driver.get(out.as_uri())
    browser.wait_for(driver, "return document.body.dataset.exploreView")
    state = browser.click_cell(driver, 1, 1)
    assert state["index"] == {"width": 1, "seed": 1}
    ds = tm.load(results).isel(width=1, seed=1)
    decoder, truth = ds.decoder.values.astype(np.float64), ds.truth.values.astype(np.float64)
    cosines = (decoder / np.linalg.norm(decoder, axis=1, keepdims=True)) @ (
        truth / np.linalg.norm(truth, axis=0, keepdims=True))
    matrix = browser.model_data(driver, "matrix")
    shown = np.full(cosines.shape, np.nan)
    shown[matrix["y"], matrix["x"]] = matrix["value"]
    np.testing.assert_allclose(shown, cosines, rtol=1e-5, atol=1e-6)
