"""`toymodels info DIR`: what a results directory holds, finished or not."""

from __future__ import annotations

from pathlib import Path

from toymodels import store
from toymodels.plotting.needs import NEEDS, kinds_for
from toymodels.trainers import stored_config


def describe(out: str | Path) -> str:
    """A few lines: name, model, training, axes, runs done, the data variables and the plot
    kinds that apply (`plotting.needs.kinds_for`; from results.nc opened lazily, names
    only), device, versions, the config."""
    manifest = store.read_manifest(out)
    store.check_results(out)
    config = stored_config(manifest["config"], f"{out}/{store.MANIFEST}")
    R = manifest["n_runs"]
    done = int(store.done_mask(out, R).sum())
    m, t = config.spec.model, config.train
    swept = dict(config.static_axes)
    v = lambda key, value: "[" + ", ".join(map(str, swept[key])) + "]" if key in swept else value
    axes = "; ".join(f"{n} ({len(v)}): {_span(v)}" for n, v in config.axes) or "none (one run)"
    state = "complete" if store.is_complete(out) else "in progress"
    if config.trainer == "sae":
        s = config.table
        what = [f"SAEs: {v('kind', s['kind'])}, width {v('width', s['width'])}, on {s['source']}"
                f" ({m.n_features} features -> {m.n_hidden} hidden)"]
        for key, default in (("tied", False), ("dictionary", "learned")):  # options, when set
            if key in swept or s.get(key, default) != default:
                what[0] += f", {key} {v(key, s.get(key, default))}"
        extra = ""
    elif config.trainer == "residual":
        r = config.table
        what = [f"residual MLPs: task {v('task', r['task'])}, {v('n_features', r['n_features'])} "
                f"features in d_embed {v('d_embed', r['d_embed'])}, {v('d_mlp', r['d_mlp'])} "
                f"neurons in {v('n_layers', r['n_layers'])} layer(s), embed "
                f"{v('embed', r['embed'])}"]
    elif config.trainer == "spd":
        s = config.table
        what = [f"SPD: C {v('C', s['C'])}, d_gate {v('d_gate', s['d_gate'])}, identity "
                f"{v('identity', s['identity'])}, on {s['source']} ({m.n_features} features -> "
                f"{m.n_hidden} hidden), beta {s['beta']:g}, p {s['p']:g}"]
        extra = ""
    else:
        what = [f"model: {v('kind', m.kind)}, {v('n_features', m.n_features)} features -> "
                f"{v('n_hidden', m.n_hidden)} hidden"]
        extra = f", dropout {t['dropout']:g}"
        if t.get("init", "random") == "kgon":
            extra += (f", init: the {v('init_k', t['init_k'])}-gon + noise "
                      f"{v('init_noise', t['init_noise'])}")
    lines = [
        f"{out}: sweep {config.name!r}, {state}: {done}/{R} runs done",
        *what,
        f"train: {v('steps', t['steps'])} steps, batch {v('batch_size', t['batch_size'])}, "
        f"{v('optimizer', t.get('optimizer', 'adam'))} lr {t['learning_rate']:g}, "
        f"weight decay {t.get('weight_decay', 0.0):g}{extra}, {t['schedule']} schedule",
        f"axes: {axes}  (grid {' x '.join(map(str, config.shape)) or '1'})",
        *([f"static groups: {len(config.groups)} ({' x '.join(swept)}), each compiled once"]
          if swept else []),
        *_contents(out),
        f"device: {manifest['device']}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in manifest["versions"].items()),
        "config:",
        *("  " + line for line in manifest["config"].strip().splitlines()),
    ]
    return "\n".join(lines)


def _contents(out: str | Path) -> list[str]:
    """The `variables:` and `plots:` lines, read from results.nc without loading its data."""
    found = store.peek(out, lambda ds: (list(ds.data_vars), kinds_for(ds)))
    if found is None:
        return ["variables: none yet (results.nc is written once every run is done)",
                "plots: none yet (the sweep is not finished)"]
    names, kinds = found
    return [f"variables: {', '.join(names) or 'none'}",
            f"plots: {', '.join(kinds) or 'none'} ({len(kinds)} of {len(NEEDS)} kinds; "
            "`toymodels plot KIND DIR --out FILE`)"]


def _span(values) -> str:
    values = list(values)
    show = lambda v: f"{v:g}" if isinstance(v, float) else str(v)
    if len(values) <= 4:
        return ", ".join(map(show, values))
    return f"{show(values[0])}, {show(values[1])}, ..., {show(values[-1])}"
