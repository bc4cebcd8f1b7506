"""The amortisation-gap figure: how well an SAE's encoder infers the codes, against sparse
pursuit on the true dictionary (`sweeps/sae_amortisation.toml`, issue 26).

It reads an analysed SAE results Dataset (`toymodels analyze`): `mcc`, the encoder's code
MCC, and the code MCCs of gradient pursuit and OMP on the true features, at the encoder's
L0 example by example (`mcc_truth_gp`, `mcc_truth_omp`) and at the true number of active
features (`mcc_oracle_gp`, `mcc_oracle_omp`). With the decoder fixed to the truth
(`sae.dictionary = "truth"`) the encoder is the only thing trained, so the distance from
its MCC to the pursuits' is the amortisation gap. Every run is a point (seeds, and any
other axis but `kind`, pooled); a bar marks each method's median.
"""

from __future__ import annotations

import tomllib

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels.plotting.sae import COLOURS, _need, _title

MATCHED = (("mcc", "encoder", COLOURS[0]), ("mcc_truth_gp", "GP, true dict.", COLOURS[1]),
           ("mcc_truth_omp", "OMP, true dict.", COLOURS[2]))  # per kind, at the encoder's L0
ORACLES = (("mcc_oracle_gp", "GP, true dict.", COLOURS[1]),
           ("mcc_oracle_omp", "OMP, true dict.", COLOURS[2]))  # at the true k, any SAE
VARIABLES = tuple(name for name, _, _ in MATCHED + ORACLES)


def kinds(ds: xr.Dataset) -> list[str]:
    """The SAE kinds of `ds`: its `kind` axis, else `attrs["sae_kind"]` (else "SAE")."""
    if "kind" in ds.dims:
        return [str(k) for k in ds["kind"].values]
    return [str(ds.attrs.get("sae_kind", "SAE"))]


def points(ds: xr.Dataset, name: str, kind: str | None = None) -> np.ndarray:
    """[R] the finite values of variable `name` over the runs (of one `kind` if given)."""
    da = ds[name].sel(kind=kind) if kind is not None and "kind" in ds[name].dims else ds[name]
    values = np.asarray(da.values, float).ravel()
    return values[np.isfinite(values)]


def _column(ax, x: float, values: np.ndarray, colour: str, marker: str, label: str | None):
    """Each value a point (spread sideways by rank, not at random) and a bar at the median."""
    spread = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
    drawn = ax.plot(x + spread, np.sort(values), marker, color=colour, markersize=4,
                    alpha=0.7, linestyle="none", label=label)
    if len(values):
        ax.plot([x - 0.2, x + 0.2], [np.median(values)] * 2, "-", color="black", linewidth=1.5)
    return drawn


def amortisation(ax, ds: xr.Dataset) -> list:
    """Code MCC of each SAE kind's encoder (circles) against gradient pursuit and OMP on
    the true dictionary at that encoder's L0, example by example (circles, beside it), and
    at the true number of active features (diamonds, right: the same for every SAE); each
    run a point, a black bar at each median."""
    _need(ds, *VARIABLES)
    drawn, x, ticks, labels = [], 0.0, [], []
    for i, kind in enumerate(kinds(ds)):
        for j, (name, text, colour) in enumerate(MATCHED):
            label = ("SAE encoder" if j == 0 else f"{text}, at the encoder's L0") if i == 0 else None
            drawn += _column(ax, x, points(ds, name, kind if "kind" in ds.dims else None),
                             colour, "o", label)
            ticks.append(x)
            labels.append(f"{kind}\nencoder" if j == 0 else text.split(",")[0])
            x += 1.0
        x += 0.6
    for name, text, colour in ORACLES:
        drawn += _column(ax, x, points(ds, name), colour, "D", f"{text}, at the true k")
        ticks.append(x)
        labels.append(f"{text.split(',')[0]}\ntrue k")
        x += 1.0
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.set_ylabel("code MCC (true against inferred activations)")
    ax.grid(axis="y", color="0.9", linewidth=0.6)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return drawn


def dictionary_of(ds: xr.Dataset) -> str:
    """The sweep's `sae.dictionary` ("learned" unless its config says "truth")."""
    sae = tomllib.loads(ds.attrs.get("config", "")).get("sae", {})
    return str(sae.get("dictionary", "learned"))


def amortisation_figure(ds: xr.Dataset) -> Figure:
    """A one-axes figure drawn by ``amortisation(ax, ds)``."""
    fig = Figure(figsize=(9.6, 4.4), layout="constrained")
    amortisation(fig.add_subplot(), ds)
    decoder = ("decoder fixed to the truth" if dictionary_of(ds) == "truth"
               else "learned decoder (not the amortisation gap alone)")
    fig.suptitle(_title(ds, f"encoders against pursuit on the true features ({decoder})"),
                 fontsize=9)
    return fig


amortisation_figure.__wrapped__ = amortisation  # its description (toymodels.reference)

FIGURES = {"amortisation": amortisation_figure}
