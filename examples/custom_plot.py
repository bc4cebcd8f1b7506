"""A custom figure from a results directory: matplotlib plus toymodels' axes functions.

Usage (after `toymodels reproduce --only intro`, or any sweep with a density axis):

    python examples/custom_plot.py runs/reproduce/intro out.png

Left: the number of represented features and the dimensions per feature D* of the
lowest-loss seed at each density, drawn with plain matplotlib from the analysed dataset.
Right: toymodels' own training-loss panel (`toymodels.plotting.loss`) on the same figure.
"""

from __future__ import annotations

import sys

import numpy as np
from matplotlib.figure import Figure

import toymodels as tm
from toymodels import plotting


def density_axis(ds) -> str:
    """The sweep's density axis ("sparsity" or "feature_probability").

    Args:
      ds: results dataset.

    Returns:
      The axis name.
    """
    axes = [a for a in plotting.sweep_axes(ds) if a in plotting.DENSITY_AXES]
    if not axes:
        raise SystemExit(f"this example needs a density axis; the sweep axes are "
                         f"{plotting.sweep_axes(ds)}")
    return axes[0]


def custom_figure(ds) -> Figure:
    """Represented features and D* against density, beside the loss curves.

    Args:
      ds: results dataset (analysis variables are added if missing).

    Returns:
      The figure (not saved).
    """
    ds = tm.analyze(ds) if "n_represented" not in ds else ds
    axis = density_axis(ds)
    best = plotting.best_runs(ds, [axis])          # lowest-loss seed at each density
    density = best["density"].mean("feature").values
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(density, best["n_represented"].values, "o-", label="represented features")
    left.set_xscale("log")
    left.set_xlabel("feature density 1−S")
    left.set_ylabel("represented features (‖W_i‖ > 0.5)")
    twin = left.twinx()
    twin.plot(density, best["dims_per_feature"].values, "s--", color="C1",
              label="D* = m/‖W‖²_F")
    twin.set_ylabel("dimensions per feature D*")
    twin.set_ylim(0, 1.1 * np.nanmax(best["dims_per_feature"].values))
    left.legend(handles=left.lines + twin.lines, fontsize=8, loc="center left")
    left.set_title(plotting.title(ds, "best seed per density"), fontsize=9)
    plotting.loss(right, ds)                        # a toymodels axes function
    return fig


def main(argv: list[str]) -> int:
    """Loads RESULTS_DIR, draws the figure, writes OUT."""
    if len(argv) != 2:
        print("usage: python examples/custom_plot.py RESULTS_DIR OUT.png", file=sys.stderr)
        return 2
    results_dir, out = argv
    custom_figure(tm.load(results_dir)).savefig(out, dpi=100)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
