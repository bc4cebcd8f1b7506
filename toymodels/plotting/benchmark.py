"""SynthSAEBench's table: per SAE kind and L0, the benchmark's metrics, beside the published one.

The rows come from analysed SAE results (`toymodels analyze` stores `firing_f1`,
`decoder_mcc`, `uniqueness`, `explained_variance`, `l0` and `dead_fraction`, see
`toymodels.dictionary.benchmark`): one row per kind and target L0, the median over the
seeds with the lowest and highest seed (no best-of-seeds pick). The kinds with a k (a `k`
sweep axis) are read at k = the target; the kinds whose L0 follows from a penalty (an
`l1_coefficient` axis) at the coefficient whose median L0 is nearest the target, and the
row says the L0 reached. Several results directories make one table (the k kinds and the
penalty kinds are two sweeps: `sweeps/sae_synthbench_table*.toml`).

`PUBLISHED` is SAELens's table for SynthSAEBench-16k (docs/synth_sae_bench.md of
decoderesearch/SAELens, "Raw results for SynthSAEBench-16k at selected L0s": mean ± std
over the seeds [0, 1, 2, 3, 4] of synth-sae-bench-experiments' sweep_l0.py; width 4,096,
200M samples, batch 1,024, lr 3e-4).

Example (two analysed sweeps)::

  rows = benchmark_rows([load("runs/k"), load("runs/penalty")], l0=(5, 6))
  print(benchmark_markdown(rows))
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels import store

METRICS = (("firing_f1", "F1"), ("decoder_mcc", "MCC"), ("uniqueness", "uniqueness"),
           ("explained_variance", "explained variance"))
"""The benchmark's four scores: (our variable, the published column), higher is better."""
EXTRAS = (("l0", "L0"), ("dead_fraction", "dead"))
SETTINGS = ("k", "l1_coefficient")  # the axis that sets a kind's L0
KIND_ORDER = ("relu", "gated", "jumprelu", "topk", "batchtopk", "matryoshka", "mp")
PUBLISHED_NAMES = {"batchtopk": "BatchTopK", "matryoshka": "Matryoshka", "mp": "MatchPursuit",
                   "relu": "Standard L1", "jumprelu": "JumpReLU"}
PUBLISHED = {  # L0 -> kind -> metric -> (mean, std); SAELens docs/synth_sae_bench.md
    25: {"batchtopk": {"firing_f1": (0.7316, 0.0010), "decoder_mcc": (0.7574, 0.0003),
                       "uniqueness": (0.9837, 0.0015), "explained_variance": (0.7923, 0.0003)},
         "matryoshka": {"firing_f1": (0.8793, 0.0021), "decoder_mcc": (0.7927, 0.0006),
                        "uniqueness": (0.9987, 0.0005), "explained_variance": (0.7792, 0.0004)},
         "mp": {"firing_f1": (0.4464, 0.0044), "decoder_mcc": (0.6930, 0.0030),
                "uniqueness": (0.8281, 0.0069), "explained_variance": (0.8351, 0.0003)},
         "relu": {"firing_f1": (0.5562, 0.0020), "decoder_mcc": (0.6039, 0.0012),
                  "uniqueness": (0.8976, 0.0021), "explained_variance": (0.7654, 0.0001)},
         "jumprelu": {"firing_f1": (0.7317, 0.0034), "decoder_mcc": (0.7527, 0.0009),
                      "uniqueness": (0.9885, 0.0010), "explained_variance": (0.7951, 0.0004)}},
    20: {"batchtopk": {"firing_f1": (0.8183, 0.0011), "decoder_mcc": (0.7526, 0.0007),
                       "uniqueness": (0.9760, 0.0028), "explained_variance": (0.7889, 0.0002)},
         "matryoshka": {"firing_f1": (0.8601, 0.0016), "decoder_mcc": (0.7455, 0.0021),
                        "uniqueness": (0.9874, 0.0020), "explained_variance": (0.7699, 0.0002)},
         "mp": {"firing_f1": (0.4439, 0.0024), "decoder_mcc": (0.6748, 0.0028),
                "uniqueness": (0.7552, 0.0026), "explained_variance": (0.8267, 0.0003)},
         "relu": {"firing_f1": (0.5777, 0.0012), "decoder_mcc": (0.5834, 0.0015),
                  "uniqueness": (0.8528, 0.0055), "explained_variance": (0.7501, 0.0009)},
         "jumprelu": {"firing_f1": (0.8241, 0.0041), "decoder_mcc": (0.7434, 0.0015),
                      "uniqueness": (0.9781, 0.0029), "explained_variance": (0.7906, 0.0005)}},
}
COLOURS = ("#3b75af", "#ef8636")  # the smaller and the larger L0


def _kinds(ds: xr.Dataset) -> list[str]:
    return [str(k) for k in ds.kind.values] if "kind" in ds.dims else [str(ds.attrs.get("sae_kind", "?"))]


def _runs(ds: xr.Dataset) -> tuple[str | None, list]:
    """(the setting axis, its values) of an SAE results Dataset; any other axis than kind,
    the setting and seed must have one value."""
    names = [n for n, _ in METRICS + EXTRAS]
    missing = [n for n in names if n not in ds]
    if missing:
        raise ValueError(f"needs {', '.join(missing)}: run `toymodels analyze` on an SAE sweep first")
    setting = next((s for s in SETTINGS if s in ds.dims), None)
    other = [d for d in ds.l0.dims if d not in ("kind", "seed", setting) and ds.sizes[d] > 1]
    if other:
        raise ValueError(f"one row per kind and L0: the axes {', '.join(other)} have several values "
                         "(select one first)")
    return setting, list(ds[setting].values) if setting else [None]


def _cell(ds: xr.Dataset, kind: str, setting: str | None, value) -> dict:
    """{variable: [seeds] values} of one kind at one setting."""
    part = ds.sel(kind=kind) if "kind" in ds.dims else ds
    if setting is not None:
        part = part.sel({setting: value})
    return {n: np.asarray(part[n].values, float).ravel() for n, _ in METRICS + EXTRAS}


def benchmark_rows(datasets: Sequence[xr.Dataset], l0: Sequence[float] | None = None) -> list[dict]:
    """One row per kind and target L0 of analysed SAE results: {kind, target, setting
    (its axis name), value (its value), seeds, and per variable of `METRICS` and `EXTRAS`
    (median, min, max) over the seeds}.

    Args:
      datasets: analysed SAE results; a kind in two of them is an error.
      l0: the target L0s; default: the values of the `k` axes (every setting of a sweep
        with neither a k axis nor targets is a row of its own, target None).
    """
    cells: dict[str, tuple[str | None, dict]] = {}
    for ds in datasets:
        setting, values = _runs(ds)
        for kind in _kinds(ds):
            if kind in cells:
                raise ValueError(f"the kind {kind} is in two of the results")
            cells[kind] = (setting, {v: _cell(ds, kind, setting, v) for v in values})
    if l0 is None:
        ks = sorted({float(v) for s, c in cells.values() if s == "k" for v in c})
        l0 = ks or None
    rows = []
    for kind in sorted(cells, key=lambda k: (KIND_ORDER + (k,)).index(k)):
        setting, by_value = cells[kind]
        medians = {v: float(np.nanmedian(c["l0"])) for v, c in by_value.items()}
        picks = ([(None, v) for v in by_value] if l0 is None else
                 [(float(t), _nearest(setting, by_value, medians, float(t))) for t in l0])
        for target, value in picks:
            c = by_value[value]
            row = {"kind": kind, "target": target, "setting": setting,
                   "value": None if value is None else float(value), "seeds": int(c["l0"].size)}
            for name, _ in METRICS + EXTRAS:
                v = c[name]
                row[name] = (float(np.nanmedian(v)), float(np.nanmin(v)), float(np.nanmax(v)))
            rows.append(row)
    return rows


def _nearest(setting, by_value, medians, target):
    """The setting value for a target L0: k = the target where it is one (else the
    nearest k), a penalty's value whose median L0 is nearest."""
    if setting == "k":
        return min(by_value, key=lambda v: abs(float(v) - target))
    return min(by_value, key=lambda v: abs(medians[v] - target))


def winners(rows: Sequence[dict]) -> dict:
    """{target: {metric: kind}}: the kind with the highest median of each metric at each
    target (among the rows given)."""
    out: dict = {}
    for target in dict.fromkeys(r["target"] for r in rows):
        at = [r for r in rows if r["target"] == target]
        out[target] = {m: max(at, key=lambda r: r[m][0])["kind"] for m, _ in METRICS}
    return out


def published_winners() -> dict:
    """`winners` of `PUBLISHED`: {L0: {metric: kind}}."""
    return {l0: {m: max(table, key=lambda k: table[k][m][0]) for m, _ in METRICS}
            for l0, table in PUBLISHED.items()}


def _fmt(stat: tuple[float, float, float], digits: int = 3) -> str:
    median, lo, hi = stat
    return f"{median:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def benchmark_markdown(rows: Sequence[dict]) -> str:
    """The rows as a markdown table: kind, target L0, the setting that reached it, the L0
    reached, F1, MCC, uniqueness, explained variance and the dead fraction, each the
    median (lowest–highest seed); the best median of each metric per target in bold."""
    best = winners(rows)
    head = ["kind", "target L0", "setting", "L0 reached", *(t for _, t in METRICS), "dead"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        setting = "" if r["setting"] is None else f"{'λ' if r['setting'] == 'l1_coefficient' else 'k'} = {r['value']:g}"
        cells = [r["kind"], "" if r["target"] is None else f"{r['target']:g}", setting,
                 _fmt(r["l0"], 2)]
        for m, _ in METRICS:
            text = _fmt(r[m])
            cells.append(f"**{text}**" if best[r["target"]][m] == r["kind"] else text)
        cells.append(_fmt(r["dead_fraction"], 2))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def benchmark_figure(ds: xr.Dataset, also: str | Sequence[str] | None = None, l0: list | None = None,
                     published: bool = True) -> Figure:
    """SynthSAEBench's four scores per SAE kind at each target L0 (`benchmark_rows`): F1,
    decoder MCC, uniqueness and explained variance, a dot at the median of the seeds with
    a bar from the lowest to the highest seed (left of each kind's tick), and the
    published SynthSAEBench-16k means (open diamonds, right; our smaller target's colour
    for its L0 = 20, the larger's for 25).

    Args:
      also: another analysed SAE results directory whose kinds join the table (the penalty
        kinds' sweep beside the k kinds'), or a list of them (SynthSAEBench-16k's three).
      l0: the target L0s (default: the k axis's values).
      published: draw the published values.
    """
    others = [also] if isinstance(also, str) else list(also or ())
    datasets = [ds] + [store.load(path) for path in others]
    rows = benchmark_rows(datasets, l0)
    targets = list(dict.fromkeys(r["target"] for r in rows))
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    fig = Figure(figsize=(10.5, 6.4), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    offsets = np.linspace(-0.27, -0.12, len(targets)) if len(targets) > 1 else [-0.2]  # ours left
    reached = {}
    for ax, (name, label) in zip(axes, METRICS):
        for j, target in enumerate(targets):
            colour = COLOURS[j % len(COLOURS)]
            at = {r["kind"]: r for r in rows if r["target"] == target}
            x = [i + offsets[j] for i, k in enumerate(kinds) if k in at]
            stats = np.array([at[k][name] for k in kinds if k in at])
            text = "all settings" if target is None else f"L0 target {target:g}"
            ax.errorbar(x, stats[:, 0], yerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]],
                        fmt="o", color=colour, markersize=4, capsize=2, label=text)
            reached.update({(k, target): at[k]["l0"][0] for k in at})
        if published and len(targets) == 2:
            for j, pub in enumerate(sorted(PUBLISHED)):
                xs = [i + offsets[j] + 0.39 for i, k in enumerate(kinds) if k in PUBLISHED[pub]]  # right
                ys = [PUBLISHED[pub][k][name][0] for k in kinds if k in PUBLISHED[pub]]
                ax.plot(xs, ys, "D", markerfacecolor="none", color=COLOURS[j], markersize=5,
                        label=f"published 16k, L0 = {pub}")
        ax.set_xticks(range(len(kinds)), kinds, fontsize=7)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    notes = "; ".join(f"{k} {', '.join(f'{reached[(k, t)]:.1f}' for t in targets)}" for k in kinds)
    source = f"{ds.attrs.get('n_features', '?')} features in {ds.attrs.get('n_hidden', '?')} dims"
    fig.suptitle(f"{ds.attrs.get('name', 'SAEs')}: SynthSAEBench's scores per kind ({source}; "
                 f"median of {rows[0]['seeds']} seeds, bar: lowest to highest)\n"
                 f"L0 reached: {notes}", fontsize=8)
    return fig


FIGURES = {"benchmark_table": benchmark_figure}  # also, l0, published
