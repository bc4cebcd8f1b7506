"""Incidental polysemanticity (Lecomte et al. 2023): polysemantic neurons against width.

`incidental(ds)`: `n_polysemantic` (neurons with more than one |W_ki| in [0.8, 1.2],
`toymodels.analysis.neurons.n_polysemantic`) of every instance against the number of
neurons m (an `n_hidden` sweep axis; instances are the `seed` axis), on log-log axes:
each instance a faint dot, the mean over instances with its standard error, and the
paper's reference line n²/(4m) (sweeps/incidental.toml).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from toymodels.plotting import common as _c

FLOOR = 0.05  # where a count of 0 is drawn on the log axis


def reference_count(n: int, m) -> np.ndarray:
    """The reference line of Lecomte et al. (2023): ``n² / (4m)`` polysemantic neurons.

    Example:
      >>> reference_count(256, [256, 1024]).tolist()
      [64.0, 16.0]
    """
    return n**2 / (4.0 * np.asarray(m, np.float64))


def counts_by_width(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(m [M], counts [M, S]): `n_polysemantic` by `n_hidden`, one column per seed."""
    if "n_hidden" not in ds.dims:
        raise ValueError(f"incidental needs an n_hidden sweep axis; dims are {dict(ds.sizes)}")
    counts = ds["n_polysemantic"]
    if "seed" not in counts.dims:
        counts = counts.expand_dims("seed", -1)
    others = [d for d in counts.dims if d not in ("n_hidden", "seed")]
    if others:
        raise ValueError(f"incidental needs n_hidden and seed axes only; also found {others}")
    counts = counts.transpose("n_hidden", "seed")
    return ds["n_hidden"].values.astype(np.int64), counts.values.astype(np.float64)


def incidental(ds: xr.Dataset) -> Figure:
    """Polysemantic neurons against m, with n²/(4m) (see the module).

    Args:
      ds: results with an ``n_hidden`` axis (and ``seed``); ``n_polysemantic`` is added
        by the analysis if missing.

    Returns:
      The figure; its axes carry ``means`` [M] and ``reference`` [M].
    """

    ds = _c._ensure_analysis(ds, ["n_polysemantic"])
    m, counts = counts_by_width(ds)
    n = int(ds.sizes["feature"])
    mean = counts.mean(axis=1)
    se = counts.std(axis=1, ddof=1) / np.sqrt(counts.shape[1]) if counts.shape[1] > 1 else 0 * mean
    fig = Figure(figsize=(6.2, 4.4), layout="constrained")
    ax = fig.add_subplot()
    jitter = np.exp(np.linspace(-0.06, 0.06, counts.shape[1]))
    ax.plot((m[:, None] * jitter[None, :]).ravel(), np.maximum(counts, FLOOR).ravel(), ".",
            color="0.6", markersize=3, label=f"one instance (0 drawn at {FLOOR:g})")
    ax.errorbar(m, np.maximum(mean, FLOOR), yerr=se, fmt="o", color="#c53a32", capsize=3,
                label=f"mean of {counts.shape[1]} ± s.e.")
    line = np.geomspace(m.min(), m.max(), 100)
    ax.plot(line, reference_count(n, line), "k--", label="n²/(4m)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(m, [str(v) for v in m])
    ax.set_xlabel("neurons m")
    ax.set_ylabel("polysemantic neurons")
    ax.legend(fontsize=8)
    ax.means, ax.reference = mean, reference_count(n, m)
    ax.set_title(_c.title(ds, f"n = {n}; > 1 weight with |W| in [0.8, 1.2]"), fontsize=9)
    return fig


FIGURES = {"incidental": incidental}
