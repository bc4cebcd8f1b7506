"""`toymodels explore DIR --out explore.html`: one self-contained HTML page to explore a
results directory in the browser (Bokeh, BokehJS inlined: works offline, from a plain file
open, nothing fetched).

The page shows a heatmap of any variable with one value per run over any two sweep axes
(selectors: the variable, the axes, best of seeds / mean / one seed, the values of the
other axes); clicking a cell shows its run: the matrix WᵀW (for SAEs the cosines of the
latents with the true features), the feature norms coloured by superposition, the feature
directions, per-feature dimensionality against the reference fractions and the loss
curve. `toymodels.explore.data` flattens the Dataset into the arrays embedded;
`toymodels.explore.page` lays them out.

Example (after `toymodels sweep sweeps/intro.toml --out runs/intro`)::

  from toymodels.explore import write_page
  write_page("runs/intro", "explore.html")
"""

from __future__ import annotations

from pathlib import Path

from toymodels.explore.data import (
    MAX_CURVE,
    PageData,
    Variable,
    curve_steps,
    load_results,
    page_data,
    run_axes,
    run_view,
)
from toymodels.explore.page import build_document, default_axes, page_html
from toymodels.outputs import output_file, written

HTML_SUFFIXES = (".html", ".htm")
"""The endings of the page `write_page` writes (a browser opens it as HTML)."""

__all__ = ["HTML_SUFFIXES", "MAX_CURVE", "PageData", "Variable", "build_document", "curve_steps",
           "default_axes", "load_results", "page_data", "page_html", "run_axes", "run_view",
           "write_page"]


def write_page(results_dir: str | Path, out: str | Path, *, var: str | None = None,
               x: str | None = None, y: str | None = None,
               max_curve: int = MAX_CURVE) -> Path:
    """Writes the explore page of a finished results directory to `out` (HTML).

    Args:
      results_dir: a results directory (toy models, static axes, SAE or LLC results).
      out: the HTML file to write (ending .html or .htm; checked before any work, and
        the folders it needs are made).
      var, x, y: the variable and axes shown first (default: final_loss, mmcs for SAE
        results; a density axis as y).
      max_curve: logged steps kept per loss curve.

    Returns:
      The path written.

    Raises:
      UserError: a bad `out`, not a finished results directory, or an unknown variable
        or axis.
    """
    out = output_file(out, "--out", HTML_SUFFIXES, "an HTML page")
    data = page_data(load_results(results_dir), max_curve=max_curve)
    html = page_html(data, var=var, x=x, y=y)
    with written(out, "--out"):
        out.write_text(html, encoding="utf-8")
    return out
