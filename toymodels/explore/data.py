"""What the explore page embeds: a results Dataset flattened to run arrays (pure numpy).

The runs of a sweep are flattened to one axis R in C order of the sweep axes (the dims of
`loss` before `step`), so that run r sits at the multi-index `np.unravel_index(r, shape)`.
Every embedded array is float32 (uint8 for labels), flat, with `width` values per run:

- heatmap variables: a scalar per run (width 1), a per-feature variable (width F; the page
  shows one feature or their mean), or a label per run (codes into `labels`, 255 = none);
- the run view: the two factors of its matrix panel, `left` and `right` [R, H*C] (the
  page shows leftᵀ right over the hidden rows: WᵀW for a toy model, the cosines of the
  SAE's latents with the true features for an SAE), the feature norms, superposition and
  dimensionality [R, F] where they exist, and the loss curve subsampled to at most
  `max_curve` logged steps, stored as uint16 levels of log10(loss) between its smallest
  and largest value (`encode_log`: a relative error below 1e-4 for losses spanning ten
  decades; half the bytes of float32).

Padding (static axes, `toymodels.groups`) stays NaN; the page drops the all-NaN rows and
columns of a run, as `toymodels.plotting.unpadded` does. Shapes: R runs, H hidden, F
features, L latents, T logged steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from toymodels.analysis import analyze
from toymodels.errors import UserError
from toymodels.store import load

MAX_CURVE = 50  # logged steps of the loss curve kept per run (evenly spaced, last kept)
LOG_LEVELS = 65534  # loss curves are stored as uint16 steps of log10(loss); 65535 = none
FEATURE_ENTRIES = 8  # per-feature variables offer each feature up to this many features
NONE_CODE = 255  # label code of a padded (absent) run
SHOWN = ("W", "W1", "decoder", "truth", "loss")  # in the run view
PER_FEATURE = {"norm": "feature_norm", "superposition": "superposition",
               "dimensionality": "feature_dimensionality"}


@dataclass(frozen=True)
class Variable:
    """One heatmap variable: `array` holds `width` values per run; `feature` picks one
    (-1: their mean); `labels` names the codes of a label variable (empty: numeric)."""

    key: str
    label: str
    array: str
    width: int = 1
    feature: int = -1
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class PageData:
    """Everything the page shows, as flat arrays over the runs (see the module doc).

    `matrix` names the run view's matrix panel, `hidden` and `columns` the row and column
    counts of `left` and `right` (H and F for a toy model), `notes` the variables left
    out and why.
    """

    name: str
    trainer: str
    axes: tuple[str, ...]
    coords: tuple[tuple[str, ...], ...]
    variables: tuple[Variable, ...]
    arrays: dict[str, np.ndarray] = field(repr=False)
    rank: str
    steps: np.ndarray
    loss_range: tuple[float, float]
    hidden: int
    left_columns: int
    right_columns: int
    matrix: str
    notes: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.coords)

    @property
    def n_runs(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def load_results(results_dir: str | Path) -> xr.Dataset:
    """A finished results directory as a Dataset, analysed in memory if it is not yet
    (`toymodels.analysis.analyze`: toy models, and SAEs scored against the truth; the
    directory is not changed). UserError if it is not one."""
    path = Path(results_dir)
    if not path.is_dir():
        raise UserError(f"{path}: not a directory; give a results directory, e.g. runs/intro")
    ds = load(path)
    if "loss" not in ds or "step" not in ds["loss"].dims:
        raise UserError(f"{path}: results without a loss curve [step]; cannot list its runs")
    if ("mmcs" if ds.attrs.get("trainer") == "sae" else "feature_norm") not in ds:
        try:
            ds = analyze(ds)
        except ValueError as e:  # as `toymodels analyze` says it
            raise UserError(f"{path}: {e}") from None
    return ds


def run_axes(ds: xr.Dataset) -> tuple[str, ...]:
    """The sweep axes in config order: the dims of `loss` before `step`."""
    return tuple(d for d in ds["loss"].dims if d != "step")


def _format(value) -> str:
    value = value.item() if isinstance(value, np.generic) else value
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _flat(da: xr.DataArray, axes: tuple[str, ...], trailing: tuple[str, ...],
          template: xr.DataArray) -> np.ndarray:
    """`da` as [R, prod(trailing)] over the run axes (broadcast where it lacks one)."""
    da = da.broadcast_like(template).transpose(*axes, *trailing)
    return np.asarray(da.values).reshape(int(np.prod(template.shape, dtype=np.int64)), -1)


def page_data(ds: xr.Dataset, *, max_curve: int = MAX_CURVE) -> PageData:
    """Flattens a results Dataset (toy models, static axes, SAE or LLC results) into the
    arrays the page embeds.

    Example:
      >>> W = np.arange(6, dtype=np.float32).reshape(3, 1, 2)
      >>> ds = xr.Dataset({"W": (("seed", "hidden", "feature"), W),
      ...                  "loss": (("seed", "step"), np.ones((3, 4)))},
      ...                 coords={"seed": [0, 1, 2], "step": [1, 2, 3, 4]})
      >>> data = page_data(ds)
      >>> data.axes, data.shape, data.arrays["left"][2].tolist()
      (('seed',), (3,), [4.0, 5.0])
    """
    axes = run_axes(ds)
    template = ds["loss"].isel(step=0, drop=True).transpose(*axes)
    flat = lambda da, trailing=(): _flat(da, axes, trailing, template)
    arrays, notes = {}, []
    trainer = "sae" if ds.attrs.get("trainer") == "sae" else "toy"
    matrix_view = _sae_matrix if trainer == "sae" else _toy_matrix
    left, right, hidden, matrix = matrix_view(ds, flat, notes)
    arrays["left"], arrays["right"] = left, right
    keep = curve_steps(ds.sizes["step"], max_curve)
    arrays["loss"], loss_range = encode_log(flat(ds["loss"], ("step",))[:, keep])
    steps = np.asarray(ds["step"].values)[keep]
    variables = _variables(ds, axes, flat, arrays, notes)
    rank = _rank(ds, flat, arrays, notes)
    if rank == "_rank":
        variables.append(Variable("last_loss", "last logged training loss", "_rank"))
    return PageData(
        name=str(ds.attrs.get("name", "results")), trainer=trainer, axes=axes,
        coords=tuple(tuple(_format(v) for v in ds[a].values) for a in axes),
        variables=tuple(variables), arrays=arrays, rank=rank, steps=steps,
        loss_range=loss_range, hidden=hidden,
        left_columns=left.shape[1] // max(hidden, 1),
        right_columns=right.shape[1] // max(hidden, 1), matrix=matrix, notes=tuple(notes))


def _toy_matrix(ds, flat, notes):
    """(W, W, H, "WᵀW") of a toy model: W is [H, F] (W1 for untied models)."""
    name = "W" if "W" in ds else "W1"
    if name not in ds:
        raise UserError("results without W or W1 [hidden, feature]; nothing to show per run")
    W = flat(ds[name], ("hidden", "feature")).astype(np.float32)
    if name == "W1":
        notes.append("W1 (untied model): the matrix is W1ᵀW1; W2 is not shown")
    return W, W, ds.sizes["hidden"], f"{name}ᵀ{name}"


def _unit(x: np.ndarray, axis: int) -> np.ndarray:
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _sae_matrix(ds, flat, notes):
    """(decoder rows, true features, H, ...) of an SAE, each normalised to unit length
    along hidden, laid out [R, H*L] and [R, H*F]: leftᵀ right is their cosines [L, F]."""
    decoder = flat(ds["decoder"], ("hidden", "latent"))
    truth = flat(ds["truth"], ("hidden", "feature"))
    R, H = decoder.shape[0], ds.sizes["hidden"]
    left = _unit(decoder.reshape(R, H, -1), 1).reshape(R, -1)
    right = _unit(truth.reshape(R, H, -1), 1).reshape(R, -1)
    notes.append("SAE results: the matrix is the cosine of each latent (decoder row) with "
                 "each true feature (source column); directions show both")
    return left.astype(np.float32), right.astype(np.float32), H, "latent · feature cosine"


def curve_steps(T: int, max_curve: int) -> np.ndarray:
    """Indices of at most `max_curve` evenly spaced logged steps of T, first and last kept.

    Example:
      >>> curve_steps(10, 4).tolist()
      [0, 3, 6, 9]
    """
    return np.unique(np.linspace(0, T - 1, min(max_curve, T)).round()).astype(int)


def encode_log(values: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Positive values as uint16 levels of log10 between their extremes (lo, hi);
    LOG_LEVELS + 1 where a value is not positive or not finite.

    Example:
      >>> codes, (lo, hi) = encode_log(np.array([1.0, 10.0, 100.0, 0.0]))
      >>> codes.tolist(), lo, hi
      ([0, 32767, 65534, 65535], 0.0, 2.0)
    """
    ok = np.isfinite(values) & (values > 0)
    logs = np.log10(np.where(ok, values, 1.0))
    lo, hi = (float(logs[ok].min()), float(logs[ok].max())) if ok.any() else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    codes = np.round((logs - lo) / span * LOG_LEVELS)
    return np.where(ok, codes, LOG_LEVELS + 1).astype(np.uint16), (lo, hi)


def decode_log(codes: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The inverse of `encode_log` (NaN for LOG_LEVELS + 1), as the page computes it."""
    span = hi - lo if hi > lo else 1.0
    values = 10.0 ** (lo + np.asarray(codes, np.float64) * span / LOG_LEVELS)
    return np.where(codes > LOG_LEVELS, np.nan, values)


def _rank(ds, flat, arrays, notes) -> str:
    """The array that orders a cell's seeds for "best": final_loss, else the last loss."""
    if "final_loss" in ds and "final_loss" in arrays:
        return "final_loss"
    last = flat(ds["loss"], ("step",))
    finite = np.where(np.isfinite(last), last, np.nan)
    arrays["_rank"] = np.array([row[np.isfinite(row)][-1] if np.isfinite(row).any()
                                else np.nan for row in finite], np.float32)
    notes.append("no final_loss: best of seeds is by the last logged training loss (last_loss)")
    return "_rank"


def _variables(ds, axes, flat, arrays, notes) -> list[Variable]:
    """The heatmap variables, embedding their arrays; a note for each left out."""
    out = []
    for name in ds.data_vars:
        if name in SHOWN:
            continue
        da = ds[name]
        extra = tuple(d for d in da.dims if d not in axes)
        why = _left_out(da, extra)
        if why is None and _constant(flat(da, extra)):
            first = flat(da, extra)[0]
            why = f"the same value{'s' * bool(extra)} ({', '.join(map(_format, first[:4]))}"\
                  f"{', ...' * (len(first) > 4)}) in every run"
        if why:
            notes.append(f"{name}: {why}")
            continue
        out += _entries(da, extra, flat, arrays)
    return out


def _left_out(da: xr.DataArray, extra: tuple[str, ...]) -> str | None:
    """Why a variable cannot be a heatmap, or None if it can."""
    if da.dtype.kind not in "fiubUSO":
        return f"dtype {da.dtype} is neither a number nor a label"
    if extra not in ((), ("feature",)):
        return f"has dims {extra} besides the sweep axes: not one value per run"
    if extra and da.dtype.kind in "USO":
        return "a label per feature: not one value per run"
    return None


def _constant(values: np.ndarray) -> bool:
    """Whether every run [R, ...] holds the same values (NaN equal to NaN)."""
    if len(values) < 2:
        return False
    same = values == values[:1]
    if values.dtype.kind == "f":
        same |= np.isnan(values) & np.isnan(values[:1])
    return bool(same.all())


def _entries(da: xr.DataArray, extra, flat, arrays) -> list[Variable]:
    """The Variables of one data variable, and its embedded array."""
    name = str(da.name)
    if da.dtype.kind in "USO":
        values = flat(da)[:, 0].astype(str)
        labels = tuple(sorted(set(values) - {""}))
        codes = {label: k for k, label in enumerate(labels)}
        arrays[name] = np.array([codes.get(v, NONE_CODE) for v in values], np.uint8)
        return [Variable(name, name, name, labels=labels)]
    values = flat(da, extra).astype(np.float32)
    arrays[name] = values.reshape(-1)
    if not extra:
        return [Variable(name, name, name)]
    F = values.shape[1]
    mean = Variable(f"{name}:mean", f"{name} (mean over features)", name, F)
    each = [Variable(f"{name}:{i}", f"{name} (feature {i})", name, F, i)
            for i in range(F if F <= FEATURE_ENTRIES else 0)]
    return [mean, *each]


def run_view(data: PageData, run: int) -> dict[str, np.ndarray]:
    """The run view of run `run` computed from the embedded arrays, as the page does
    (numpy): its matrix leftᵀ right over the kept hidden rows, and its loss curve.

    Returns:
      {"matrix": [C_left, C_right], "loss": [T'], "coords": {axis: label}}.
    """
    H = data.hidden
    left = data.arrays["left"][run].reshape(H, -1)
    right = data.arrays["right"][run].reshape(H, -1)
    rows = ~np.isnan(left).all(axis=1)
    left = left[rows][:, ~np.isnan(left[rows]).all(axis=0)]
    right = right[rows][:, ~np.isnan(right[rows]).all(axis=0)]
    index = np.unravel_index(run, data.shape)
    coords = {a: data.coords[k][i] for k, (a, i) in enumerate(zip(data.axes, index))}
    loss = decode_log(data.arrays["loss"][run], *data.loss_range)
    return {"matrix": left.T.astype(np.float64) @ right, "loss": loss, "coords": coords}
