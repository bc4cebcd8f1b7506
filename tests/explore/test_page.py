"""`toymodels explore` (toymodels/explore/page.py): its one-line errors, and the page
itself in headless Chromium (opened, clicked, screenshotted). The arrays it embeds:
test_data.py."""

from pathlib import Path

import re

import numpy as np
import pytest

import toymodels as tm
from toymodels.cli import main
from toymodels.explore import load_results, page_data
from toymodels.explore.data import curve_steps

import browser
from helpers import raw


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
        driver, trained, tmp_path, name, cell):
    _check_clicked_run(trained(name, tmp_path), driver, tmp_path / f"{name}.html", cell)


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


# ---- the first view, without a browser


def _made(H: int):
    """sparsity [3] x seed [2] runs of a 5-feature model in H dims, with final_loss and
    phase (made by hand, no training)."""
    import xarray as xr

    rng = np.random.default_rng(0)
    shape = (3, 2)
    return xr.Dataset(
        {"W": (("sparsity", "seed", "hidden", "feature"), rng.normal(size=(*shape, H, 5))),
         "loss": (("sparsity", "seed", "step"), rng.uniform(0.1, 1.0, (*shape, 4))),
         "final_loss": (("sparsity", "seed"), rng.uniform(0.1, 1.0, shape)),
         "phase": (("sparsity", "seed"), np.array([["dedicated", "superposition"]] * 3))},
        coords={"sparsity": [0.0, 0.5, 0.9], "seed": [0, 1], "step": [1, 2, 3, 4]})


def _model(doc, **match):
    return next(iter(doc.select(match)))


@pytest.mark.parametrize("H, shown", [(2, False), (3, True)])
def test_the_page_opens_on_final_loss_and_hides_the_hidden_2_panel_without_one(H, shown):
    from bokeh.models import Select
    from bokeh.plotting import figure

    doc = tm.explore.build_document(page_data(_made(H)))
    assert _model(doc, type=Select, name="var").value == "final_loss"
    assert (_model(doc, type=Select, name="x").value,
            _model(doc, type=Select, name="y").value) == ("sparsity", "seed")
    second = [f for f in doc.select({"type": figure})
              if f.title is not None and "hidden 0 vs 2" in f.title.text]
    assert len(second) == 1 and second[0].visible is shown
