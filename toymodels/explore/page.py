"""The explore page: a Bokeh layout of the embedded arrays (`toymodels.explore.data`).

Bokeh draws everything; two short CustomJS callbacks do the rest in the browser: `HEATMAP`
reduces the runs to the cells of the chosen variable over two chosen axes (selectors for
the variable, the axes, best-of-seeds / mean / one seed, and the values of the other
axes), `RUN` fills the run view of a clicked cell's run (its matrix leftᵀ right, feature
norms, directions, dimensionality and loss curve). The selected run's coordinates are
also written to `document.body.dataset.exploreRun` (JSON), for tests and scripts.
"""

from __future__ import annotations

import numpy as np
from bokeh.document import Document
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    CustomJS,
    Div,
    FixedTicker,
    HoverTool,
    Label,
    LinearColorMapper,
    Range1d,
    Select,
    Span,
)
from bokeh.palettes import Category10_10, Viridis256
from bokeh.plotting import figure
from bokeh.resources import INLINE
from matplotlib import colormaps
from matplotlib.colors import LinearSegmentedColormap, to_hex

from toymodels.errors import UserError
from toymodels.explore.data import LOG_LEVELS, NONE_CODE, PER_FEATURE, PageData
from toymodels.plotting import PHASE_COLORS, REFERENCE_DIMENSIONS, label

NONE = "none"  # the "axis" of a heatmap with fewer than two sweep axes
DENSITY_AXES = ("feature_probability", "sparsity")
PANEL = dict(width=340, height=255, toolbar_location=None)


def _palette(cmap, n: int = 101) -> list[str]:
    return [to_hex(c) for c in cmap(np.linspace(0.0, 1.0, n))]


def default_axes(axes: tuple[str, ...]) -> tuple[str, str]:
    """The heatmap's first axes: x relative_importance (else a non-seed axis), y a
    density axis (else another axis, seed last), "none" when there are too few.

    Example:
      >>> default_axes(("relative_importance", "feature_probability", "seed"))
      ('relative_importance', 'feature_probability')
      >>> default_axes(("sparsity", "seed"))
      ('sparsity', 'seed')
    """
    plain = [a for a in axes if a != "seed"]
    density = [a for a in plain if a in DENSITY_AXES]
    x = "relative_importance" if "relative_importance" in plain else None
    x = x or next((a for a in plain if a not in density), None) or (plain or [None])[0]
    rest = [a for a in density if a != x] + [a for a in plain if a != x] + ["seed"] * (
        "seed" in axes)
    if x is None:
        return (rest[0] if rest else NONE), NONE
    return x, (rest[0] if rest else NONE)


def default_variable(data: PageData) -> str:
    """The variable shown first: the sweep's main one, `mmcs` for SAE results, else
    `final_loss` (then `phase`, then the first)."""
    keys = [v.key for v in data.variables]
    order = ("mmcs", "final_loss", "phase") if data.trainer == "sae" else ("final_loss", "phase")
    return next((key for key in order if key in keys), keys[0])


def _check(data: PageData, var: str | None, x: str | None, y: str | None):
    """The initial variable and axes, or a UserError naming the valid ones."""
    keys = [v.key for v in data.variables]
    if not keys:
        raise UserError(f"{data.name}: no variable with one value per run to show")
    var = var or default_variable(data)
    if var not in keys:
        names = dict.fromkeys(v.array + (":mean|:I" if v.width > 1 else "") for v in data.variables)
        raise UserError(f"--var {var!r}: not a variable of {data.name}; valid: "
                        f"{', '.join(names)} (I a feature index)")
    dx, dy = default_axes(data.axes)
    x, y = x or dx, y or (dy if dy != x else next((a for a in data.axes if a != x), NONE))
    for flag, axis in (("--x", x), ("--y", y)):
        if axis != NONE and axis not in data.axes:
            raise UserError(f"{flag} {axis!r}: not a sweep axis of {data.name}; "
                            f"valid: {', '.join(data.axes)}")
    if x == y and x != NONE:
        raise UserError(f"--x and --y are both {x!r}; choose two different axes")
    return var, x, y


def _meta(data: PageData) -> dict:
    """The page's description of the arrays (JSON-able)."""
    present = {k: v for k, v in PER_FEATURE.items() if v in data.arrays}
    label_colors = dict(PHASE_COLORS)
    return {
        "axes": list(data.axes), "coords": [list(c) for c in data.coords],
        "labels": {a: label(a) for a in data.axes}, "shape": list(data.shape),
        "vars": {v.key: {"label": v.label, "array": v.array, "width": v.width,
                         "feature": v.feature, "labels": list(v.labels)} for v in data.variables},
        "rank": data.rank, "H": data.hidden, "CL": data.left_columns,
        "CR": data.right_columns, "T": len(data.steps), "steps": data.steps.tolist(),
        "loss_range": list(data.loss_range), "levels": LOG_LEVELS,
        "trainer": data.trainer, "per_feature": present,
        "bars": present.get("norm") or ("best_cosine" if "best_cosine" in data.arrays else None),
        "palette": list(Viridis256), "diverging": _palette(colormaps["RdBu_r"]),
        "gold": _palette(LinearSegmentedColormap.from_list("s", ["#111111", "#f2b705"])),
        "category": list(Category10_10), "label_colors": label_colors, "none": NONE_CODE,
    }


def _heatmap(data: PageData):
    cells = ColumnDataSource({k: [] for k in ("x", "y", "run", "color", "text", "xl", "yl")},
                             name="cells")
    p = figure(width=540, height=500, x_range=Range1d(-0.5, 0.5), y_range=Range1d(-0.5, 0.5),
               tools="tap,reset,save", toolbar_location="above", name="heatmap")
    p.rect("x", "y", 1, 1, source=cells, fill_color="color", line_color=None,
           selection_line_color="black", selection_line_width=3, nonselection_fill_alpha=1.0,
           nonselection_line_color=None)
    p.add_tools(HoverTool(tooltips=[("x", "@xl"), ("y", "@yl"), ("value", "@text"),
                                    ("run", "@run")]))
    for axis in (p.xaxis[0], p.yaxis[0]):
        axis.ticker = FixedTicker(ticks=[])
    p.xaxis.major_label_orientation = 0.8
    p.grid.visible = False
    mapper = LinearColorMapper(palette=Viridis256, low=0, high=1)
    bar = ColorBar(color_mapper=mapper, width=14, name="colorbar")
    p.add_layout(bar, "right")
    return p, cells, mapper, bar


def _matrix_panel(data: PageData):
    source = ColumnDataSource({k: [] for k in ("x", "y", "value", "color", "text")},
                              name="matrix")
    p = figure(title=data.matrix, x_range=Range1d(-0.5, 0.5), y_range=Range1d(0.5, -0.5),
               tools="hover", tooltips=[("row", "@y"), ("column", "@x"), ("value", "@text")],
               **PANEL)
    p.rect("x", "y", 1, 1, source=source, fill_color="color", line_color=None)
    p.grid.visible = False
    return p, source


def _bars_panel(data: PageData, bars: str | None):
    source = ColumnDataSource({k: [] for k in ("y", "right", "color", "text")}, name="bars")
    title = {"feature_norm": "norms ‖W_i‖ (colour: superposition)",
             "best_cosine": "best cosine of each feature with a latent"}.get(
        bars, "feature norms: not in these results")
    p = figure(title=title, y_range=Range1d(0.5, -0.5), tools="hover",
               tooltips=[("feature", "@y"), ("value", "@text")], **PANEL)
    p.hbar(y="y", right="right", height=0.8, source=source, fill_color="color", line_color=None)
    return p, source


def _direction_panels(data: PageData):
    sources, panels = [], []
    for k, title in enumerate(("feature directions: hidden 0 vs 1",
                               "feature directions: hidden 0 vs 2 (m ≥ 3)")):
        feat = ColumnDataSource({k: [] for k in ("x0", "y0", "x1", "y1", "color", "name")},
                                name=f"directions{k}")
        lat = ColumnDataSource({k: [] for k in ("x0", "y0", "x1", "y1")}, name=f"latents{k}")
        p = figure(title=title, match_aspect=True, tools="hover",
                   tooltips=[("feature", "@name")], **PANEL)
        p.segment("x0", "y0", "x1", "y1", source=lat, line_color="#999999", line_dash="dashed")
        p.segment("x0", "y0", "x1", "y1", source=feat, line_color="color", line_width=2)
        p.scatter("x1", "y1", source=feat, color="color", size=7)
        sources += [feat, lat]
        panels.append(p)
    return panels, sources


def _dims_panel(data: PageData):
    source = ColumnDataSource({k: [] for k in ("x", "y", "color")}, name="dims")
    available = "dimensionality" in _meta_features(data)
    title = ("dimensionality D_i (dotted: 1 … 3/8)" if available
             else "dimensionality D_i: not for these results")
    p = figure(title=title, y_range=Range1d(0, 1.1), x_axis_label="feature", tools="", **PANEL)
    for name, value in REFERENCE_DIMENSIONS.items():
        p.add_layout(Span(location=value, dimension="width", line_dash="dotted",
                          line_color="grey"))
        p.add_layout(Label(x=0, y=value, text=name, text_font_size="7pt", x_units="screen",
                           text_color="dimgrey"))
    p.scatter("x", "y", source=source, color="color", size=9)
    return p, source


def _meta_features(data: PageData) -> dict:
    return {k: v for k, v in PER_FEATURE.items() if v in data.arrays}


def _loss_panel(data: PageData):
    source = ColumnDataSource({"x": [], "y": []}, name="loss")
    p = figure(title="training loss", y_axis_type="log", x_axis_label="step", tools="hover",
               tooltips=[("step", "@x"), ("loss", "@y")], **PANEL)
    p.line("x", "y", source=source, line_width=2)
    return p, source


def _selectors(data: PageData, var: str, x: str, y: str) -> dict:
    axis_options = [(a, label(a)) for a in data.axes] + ([(NONE, "(none)")] * (len(data.axes) < 2))
    reductions = [("best", "best of seeds (lowest final loss)"), ("mean", "mean over seeds")]
    if "seed" in data.axes:
        seeds = data.coords[data.axes.index("seed")]
        reductions += [(f"seed:{i}", f"seed {s}") for i, s in enumerate(seeds)]
    out = {
        "var": Select(title="variable", value=var, width=250, name="var",
                      options=[(v.key, v.label) for v in data.variables]),
        "x": Select(title="x axis", value=x, options=axis_options, width=170, name="x"),
        "y": Select(title="y axis", value=y, options=axis_options, width=170, name="y"),
        "reduce": Select(title="over seeds", value="best", options=reductions, width=210,
                         name="reduce"),
    }
    for a, coords in zip(data.axes, data.coords):
        if a != "seed":
            out[f"at:{a}"] = Select(title=f"at {label(a)}", value="0", width=150,
                                    options=[(str(i), c) for i, c in enumerate(coords)],
                                    name=f"at:{a}")
    return out


def _header(data: PageData) -> Div:
    axes = ", ".join(f"{a} ({len(c)})" for a, c in zip(data.axes, data.coords))
    notes = "".join(f"<li>{_escape(n)}</li>" for n in data.notes)
    return Div(text=f"<h2 style='margin:4px 0'>{_escape(data.name)}</h2>"
               f"<div>{data.n_runs:,} runs · axes: {_escape(axes)} · click a cell to see "
               f"its run (for a mean, the cell's best seed)</div>"
               + (f"<details><summary>left out or noted ({len(data.notes)})</summary>"
                  f"<ul style='margin:2px'>{notes}</ul></details>" if notes else ""),
               width=1200, name="header")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_document(data: PageData, *, var: str | None = None, x: str | None = None,
                   y: str | None = None) -> Document:
    """The page as a Bokeh Document (the heatmap drawn when the page opens)."""
    var, x, y = _check(data, var, x, y)
    meta = _meta(data)
    heat, cells, mapper, bar = _heatmap(data)
    matrix, matrix_src = _matrix_panel(data)
    bars, bars_src = _bars_panel(data, meta["bars"])
    dirs, dir_srcs = _direction_panels(data)
    dirs[1].visible = data.hidden >= 3  # hidden 0 vs 2: no run has a hidden dim 2
    dims, dims_src = _dims_panel(data)
    loss, loss_src = _loss_panel(data)
    widgets = _selectors(data, var, x, y)
    legend = Div(text="", width=560, name="legend")
    selected = Div(text="click a heatmap cell to show its run", width=680, name="selected")
    arrays = {k: v.reshape(-1) for k, v in data.arrays.items() if k != "right"}
    if data.arrays["right"] is not data.arrays["left"]:  # a toy model's factors are both W
        arrays["right"] = data.arrays["right"].reshape(-1)
    meta["right"] = "right" if "right" in arrays else "left"
    callback = CustomJS(  # one callback, so that the arrays are embedded once
        args=dict(data=arrays, meta=meta, w=widgets, cells=cells, heat=heat,
                  xaxis=heat.xaxis[0], yaxis=heat.yaxis[0], mapper=mapper, bar=bar,
                  legend=legend, selected=selected, matrix=matrix_src, mx=matrix,
                  bars=bars_src, barfig=bars, dims=dims_src, loss=loss_src, dirs=dir_srcs,
                  dirfig=dirs[0], dirfig2=dirs[1]),
        code=f"const heatmap = () => {{{HEATMAP}}};\nconst run = () => {{{RUN}}};\n"
             "if (cb_obj === cells.selected) run(); else heatmap();")
    for widget in widgets.values():
        widget.js_on_change("value", callback)
    cells.selected.js_on_change("indices", callback)
    controls = row(*widgets.values())
    runs = column(selected, row(matrix, bars), row(*dirs), row(dims, loss))
    layout = column(_header(data), controls, row(column(heat, legend), runs))
    doc = Document()
    doc.add_root(layout)
    doc.js_on_event("document_ready", callback)
    doc.title = f"explore {data.name}"
    return doc


def page_html(data: PageData, **initial) -> str:
    """The self-contained HTML of the page: BokehJS inlined, nothing fetched."""
    doc = build_document(data, **initial)
    return file_html(doc, INLINE, doc.title)


HEATMAP = """
const A = meta.axes, S = meta.shape, n = A.length;
const stride = []; let s = 1;
for (let k = n - 1; k >= 0; k--) { stride[k] = s; s *= S[k]; }
const x = w.x.value, y = w.y.value;
if (x === y && x !== 'none') {  // keep the two axes apart: move y to another axis
  w.y.value = A.find(a => a !== x) ?? 'none';
  return;
}
const v = meta.vars[w.var.value], arr = data[v.array], rank = data[meta.rank];
const isLabel = v.labels.length > 0, red = w.reduce.value;
const xi = A.indexOf(x), yi = A.indexOf(y), si = A.indexOf('seed');
const nx = xi < 0 ? 1 : S[xi], ny = yi < 0 ? 1 : S[yi];
const free = si >= 0 && si !== xi && si !== yi && !red.startsWith('seed:');
let base = 0;
A.forEach((a, k) => {
  if (k === xi || k === yi || (k === si && free)) return;
  const at = k === si ? Number(red.slice(5)) : Number(w['at:' + a].value);
  base += at * stride[k];
});
for (const a of A) if (a !== 'seed') w['at:' + a].disabled = (a === x || a === y);
w.reduce.disabled = !(si >= 0 && si !== xi && si !== yi);
const value = r => {
  if (v.width === 1) return arr[r];
  if (v.feature >= 0) return arr[r * v.width + v.feature];
  let t = 0, c = 0;
  for (let f = 0; f < v.width; f++) { const u = arr[r * v.width + f]; if (isFinite(u)) { t += u; c++; } }
  return c ? t / c : NaN;
};
const out = {x: [], y: [], run: [], value: [], text: [], xl: [], yl: []};
for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
  const b = base + (xi < 0 ? 0 : i * stride[xi]) + (yi < 0 ? 0 : j * stride[yi]);
  const runs = free ? Array.from({length: S[si]}, (_, q) => b + q * stride[si]) : [b];
  let best = runs[0];
  for (const r of runs) if (isFinite(rank[r]) && !(rank[r] >= rank[best])) best = r;
  let val = value(best);
  if (red === 'mean' && free) {
    const vals = runs.map(value).filter(u => isLabel ? u !== meta.none : isFinite(u));
    if (isLabel) {  // the most frequent label
      const count = {}; for (const u of vals) count[u] = (count[u] || 0) + 1;
      val = vals.length ? Number(Object.keys(count).reduce((p, q) => count[q] > count[p] ? q : p)) : meta.none;
    } else val = vals.length ? vals.reduce((p, q) => p + q, 0) / vals.length : NaN;
  }
  out.x.push(i); out.y.push(j); out.run.push(best); out.value.push(val);
  out.text.push(isLabel ? (v.labels[val] ?? '(none)') : (isFinite(val) ? Number(val).toPrecision(4) : 'NaN'));
  out.xl.push(xi < 0 ? '' : meta.coords[xi][i]); out.yl.push(yi < 0 ? '' : meta.coords[yi][j]);
}
const finite = out.value.filter(u => isFinite(u));
let lo = Math.min(...finite), hi = Math.max(...finite);
if (!finite.length) { lo = 0; hi = 1; } else if (hi === lo) { hi = lo + 1; }
const P = meta.palette;
out.color = out.value.map(u => isLabel
  ? (u === meta.none ? '#eeeeee' : meta.label_colors[v.labels[u]] ?? meta.category[u % 10])
  : (isFinite(u) ? P[Math.min(P.length - 1, Math.floor((u - lo) / (hi - lo) * P.length))] : '#eeeeee'));
cells.selected.indices = [];
cells.data = out;
mapper.low = lo; mapper.high = hi; bar.visible = !isLabel;
legend.text = isLabel ? v.labels.map((l, k) =>
  `<span style="background:${meta.label_colors[l] ?? meta.category[k % 10]};padding:0 8px">&nbsp;</span> ${l}`).join(' &nbsp; ') : '';
const ticks = (axis, k, m) => {
  const every = Math.max(1, Math.ceil(m / 12)), t = [], o = new Map();
  for (let q = 0; q < m; q += every) { t.push(q); o.set(q, k < 0 ? '' : meta.coords[k][q]); }
  axis.ticker.ticks = t; axis.major_label_overrides = o;
  axis.axis_label = k < 0 ? '' : meta.labels[A[k]];
};
ticks(xaxis, xi, nx); ticks(yaxis, yi, ny);
heat.x_range.start = -0.5; heat.x_range.end = nx - 0.5;
heat.y_range.start = -0.5; heat.y_range.end = ny - 0.5;
const how = !free ? '' : red === 'mean' ? (isLabel ? ', most frequent over seeds' : ', mean over seeds') : ', best of seeds';
heat.title.text = v.label + how;
document.body.dataset.exploreView = JSON.stringify({variable: w.var.value, x, y, reduce: red});
"""

RUN = """
const k = cells.selected.indices[0];
if (k === undefined) return;
const r = cells.data.run[k], H = meta.H, CL = meta.CL, CR = meta.CR;
const L = (h, c) => data.left[(r * H + h) * CL + c], R = (h, c) => data[meta.right][(r * H + h) * CR + c];
const rows = [];
for (let h = 0; h < H; h++) { let any = false; for (let c = 0; c < CR; c++) any ||= !isNaN(R(h, c)); if (any) rows.push(h); }
const kept = (get, C) => { const o = []; for (let c = 0; c < C; c++) if (rows.some(h => !isNaN(get(h, c)))) o.push(c); return o; };
const lc = kept(L, CL), rc = kept(R, CR);
const m = {x: [], y: [], value: [], text: []};
let big = 1e-6;
lc.forEach((a, i) => rc.forEach((b, j) => {
  let t = 0; for (const h of rows) t += L(h, a) * R(h, b);
  m.x.push(j); m.y.push(i); m.value.push(t); m.text.push(t.toPrecision(4)); big = Math.max(big, Math.abs(t));
}));
const D = meta.diverging;
m.color = m.value.map(t => D[Math.round((t / big + 1) / 2 * (D.length - 1))]);
matrix.data = m;
mx.x_range.start = -0.5; mx.x_range.end = rc.length - 0.5;
mx.y_range.start = lc.length - 0.5; mx.y_range.end = -0.5;
const F = CR, colour = c => meta.category[c % 10];
const at = (name, c) => data[name][r * F + c];
const pf = meta.per_feature;
if (meta.bars) {
  const sup = pf.superposition;
  const G = meta.gold;
  bars.data = {y: rc.map((_, i) => i), right: rc.map(c => at(meta.bars, c)),
    text: rc.map(c => at(meta.bars, c).toPrecision(4)),
    color: rc.map(c => sup ? G[Math.round(Math.min(1, Math.sqrt(Math.max(0, at(sup, c)))) * (G.length - 1))] : colour(c))};
}
barfig.y_range.start = rc.length - 0.5; barfig.y_range.end = -0.5;
if (pf.dimensionality)
  dims.data = {x: rc.map((_, i) => i), y: rc.map(c => at(pf.dimensionality, c)), color: rc.map(colour)};
const dirsOf = (p, cols, get) => {  // hidden 0 against hidden p + 1 (m = 1: a row each)
  const o = {x0: [], y0: [], x1: [], y1: [], color: [], name: []}, one = rows.length === 1;
  if (one ? p > 0 : rows.length < p + 2) return o;
  cols.forEach((c, i) => {
    o.x0.push(0); o.y0.push(one ? i : 0); o.x1.push(get(rows[0], c));
    o.y1.push(one ? i : get(rows[p + 1], c)); o.color.push(colour(c)); o.name.push(String(c));
  });
  return o;
};
dirfig.title.text = rows.length === 1 ? 'feature directions (m = 1): W_i, one row per feature'
  : 'feature directions: hidden 0 vs 1' + (rows.length > 3 ? ' (of ' + rows.length + ')' : '');
dirfig2.visible = rows.length >= 3;  // this run's own m (static axes: m = 2 beside m = 3)
for (const p of [0, 1]) {
  dirs[2 * p].data = dirsOf(p, rc, R);
  dirs[2 * p + 1].data = dirsOf(p, meta.trainer === 'sae' ? lc : [], L);
}
const T = meta.T, steps = meta.steps, lx = [], ly = [], [lo, hi] = meta.loss_range;
const span = hi > lo ? hi - lo : 1;
for (let t = 0; t < T; t++) {
  const q = data.loss[r * T + t];
  if (q <= meta.levels) { lx.push(steps[t]); ly.push(10 ** (lo + q * span / meta.levels)); }
}
loss.data = {x: lx, y: ly};
const idx = {}; let rest = r;
for (let q = meta.axes.length - 1; q >= 0; q--) { idx[meta.axes[q]] = rest % meta.shape[q]; rest = Math.floor(rest / meta.shape[q]); }
const coords = {};
for (const [q, a] of meta.axes.entries()) coords[a] = meta.coords[q][idx[a]];
selected.text = `<b>run ${r}</b>: ` + Object.entries(coords).map(([a, c]) => `${meta.labels[a]} = ${c}`).join(', ');
document.body.dataset.exploreRun = JSON.stringify({run: r, coords, index: idx});
"""

