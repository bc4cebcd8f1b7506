"""Results directories that are damaged, of another schema, unfinished, or whose source is
gone (issue 23, cases 7, 8 and 11): every command that reads one says so in one line and
exits 2 (`helpers.refused`), writes nothing into it, and the line's advice works; an SAE
results directory reads on its own, its source deleted.

Rows are (id, directory, damage, argv, starts): a copy of a module-built directory
("toy": a finished toy-model sweep; "saes": an SAE sweep on another one, whose source has
been moved away) is damaged by `damage`, then `toymodels *argv` is run with `{dir}` the
copy, `{toml}` a sweep file of its config and `{tmp}` a scratch folder.
"""

import json
import shutil
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

import toymodels as tm
from toymodels import store
from toymodels.cli import main
from toymodels.explore import load_results, page_data
from toymodels.info import describe
from toymodels.plotting.llc import kgon_problem

from helpers import refused

FAST = {"steps": 20, "batch_size": 64, "log_every": 10, "eval_samples": 8192}
TOY = {"name": "toy", "seed": 0, "model": {"kind": "relu_output", "n_features": 5, "n_hidden": 3},
       "train": FAST, "sweep": {"sparsity": [0.0, 0.9], "seed": [0, 1]}}


def on(source: Path) -> dict:
    """4 SAEs on the runs (sparsity 0, seed 0) and (0.9, 0) of `source`: a source_run axis."""
    return {"name": "saes", "sae": {"source": str(source), "runs": {"seed": 0}, "kind": "relu",
                                    "width": 6},
            "train": {k: v for k, v in FAST.items() if k != "eval_samples"},
            "sweep": {"seed": [0, 1]}}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A toy sweep, SAEs trained on it and analysed; then the source is moved away (its
    path no longer exists) and serves as the "toy" directory of the rows."""
    root = tmp_path_factory.mktemp("bad_results")
    source = tm.run_sweep(tm.parse_config(TOY), root / "source", quiet=True)
    saes = tm.run_sweep(tm.parse_config(on(source), "saes.toml"), root / "saes", quiet=True)
    shutil.copytree(saes, root / "unanalysed")
    assert main(["analyze", str(saes)]) == 0
    assert main(["plot", "sae_cosines", str(saes), "--out", str(root / "before.png")]) == 0
    before = SimpleNamespace(info=describe(root / "unanalysed").splitlines()[1:],  # its variables
                             mmcs=tm.load(saes).mmcs.values, png=(root / "before.png").read_bytes())
    toy = source.rename(root / "toy")
    return SimpleNamespace(root=root, source=source, toy=toy, saes=root / "unanalysed",
                           before=before)


# ---- damages


def truncate(name: str):
    def damage(d: Path) -> None:
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[:len(data) // 2])
    return damage


def manifest_edit(edit):
    """A damage that rewrites the manifest: `edit(manifest)` changes the dict in place."""
    def damage(d: Path) -> None:
        manifest = json.loads((d / store.MANIFEST).read_text())
        edit(manifest)
        (d / store.MANIFEST).write_text(json.dumps(manifest))
    return damage


def schema(version: int):
    return manifest_edit(lambda m: m.update(schema_version=version))


def unfinished(d: Path) -> None:
    (d / store.RESULTS).unlink()


def unpinned(d: Path) -> None:
    """The SAEs' config as written before configs carried their source's facts (no
    sae.source_model, source_data, and runs as given), in the manifest and results.nc."""
    def strip(text: str) -> str:
        lines = [line for line in text.splitlines()
                 if not line.startswith(("source_model =", "source_data =", "runs ="))]
        return "\n".join(lines).replace("[sae]", "[sae]\nruns = { seed = 0 }") + "\n"
    manifest_edit(lambda m: m.update(config=strip(m["config"])))(d)
    ds = tm.load(d)
    store.write_dataset(d, ds.assign_attrs(config=strip(ds.attrs["config"])))


NO_RUNS = manifest_edit(lambda m: m.pop("n_runs"))
JSON = "{dir}/manifest.json: damaged (JSONDecodeError: "
NO_N_RUNS = "{dir}/manifest.json: damaged (no n_runs); toymodels cannot read or resume {dir}: " \
            "rerun its sweep into a new directory"
NC = "{dir}/results.nc: damaged, cannot be read (OSError: "
OLD = "{dir}: made by an older toymodels (results schema 2, this one reads 3); rerun its " \
      "sweep into a new directory"
NEW = "{dir}: made by a newer toymodels (results schema 4, this one reads 3); upgrade " \
      "toymodels to read it"
UNPINNED = "an SAE config without sae.source_model (written before SAE results carried " \
           "their source's model and input law) is read with its source, which fails " \
           "(sae.source: '{source}' does not exist"
PLOT, EXPLORE = ["plot", "loss", "{dir}", "--out", "{tmp}/p.png"], ["explore", "{dir}", "--out", "{tmp}/x.html"]
SWEEP, LLC = ["sweep", "{toml}", "--out", "{dir}", "--quiet"], ["llc", "{dir}", "--quiet"]

ROWS = [
    # 7. damaged: a truncated manifest, one without n_runs, a truncated results.nc
    ("manifest-truncated-info", "toy", truncate("manifest.json"), ["info", "{dir}"], JSON),
    ("manifest-truncated-llc", "toy", truncate("manifest.json"), LLC, JSON),
    ("manifest-truncated-plot", "toy", truncate("manifest.json"), PLOT, JSON),
    ("manifest-truncated-sweep", "toy", truncate("manifest.json"), SWEEP, JSON),
    ("manifest-no-n_runs-info", "toy", NO_RUNS, ["info", "{dir}"], NO_N_RUNS),
    ("manifest-no-n_runs-llc", "toy", NO_RUNS, LLC, NO_N_RUNS),
    ("manifest-no-n_runs-analyze", "toy", NO_RUNS, ["analyze", "{dir}"], NO_N_RUNS),
    ("manifest-no-n_runs-explore", "toy", NO_RUNS, EXPLORE, NO_N_RUNS),
    ("results-truncated-plot", "toy", truncate("results.nc"), PLOT, NC),
    ("results-truncated-analyze", "toy", truncate("results.nc"), ["analyze", "{dir}"], NC),
    ("results-truncated-explore", "toy", truncate("results.nc"), EXPLORE, NC),
    ("results-truncated-info", "toy", truncate("results.nc"), ["info", "{dir}"], NC),
    ("results-truncated-llc", "toy", truncate("results.nc"), LLC, NC),
    ("results-truncated-sweep", "toy", truncate("results.nc"), SWEEP, NC),
    # 11. another results schema: refused by every command the same way
    ("schema-older-sweep", "toy", schema(2), SWEEP, OLD),
    ("schema-older-info", "toy", schema(2), ["info", "{dir}"], OLD),
    ("schema-older-plot", "toy", schema(2), PLOT, OLD),
    ("schema-older-llc", "toy", schema(2), LLC, OLD),
    ("schema-older-analyze", "toy", schema(2), ["analyze", "{dir}"], OLD),
    ("schema-older-explore", "toy", schema(2), EXPLORE, OLD),
    ("schema-newer-explore", "toy", schema(4), EXPLORE, NEW),
    ("schema-newer-info", "toy", schema(4), ["info", "{dir}"], NEW),
    # 11. the not-finished check first (before the LLC's settings: --loss online needs --n)
    ("llc-unfinished", "toy", unfinished, LLC,
     "{dir}: the sweep is not finished (0/4 runs); rerun the same `toymodels sweep` command"),
    # 11. k-gon levels only on a sweep whose levels they are
    ("kgon-trajectories-not-kgon", "toy", None,
     ["plot", "kgon_trajectories", "{dir}", "--out", "{tmp}/k.png"],
     "plot kgon_trajectories of {dir}: needs a k-gon sweep: a relu_output model in 2 hidden "
     "dims on data.inputs = \"exactly_one\" of uniform magnitude, unit importance (e.g. "
     "sweeps/kgon_trajectories.toml); this sweep has hidden dims = 3, data.inputs = 'bernoulli'"),
    ("kgon-trajectories-saes", "saes", None,
     ["plot", "kgon_trajectories", "{dir}", "--out", "{tmp}/k.png"],
     "plot kgon_trajectories of {dir}: needs a k-gon sweep"),
    # 8. SAE results of an older manifest (no source_model) need their source: it is gone
    ("sae-unpinned-info", "saes", unpinned, ["info", "{dir}"], "{dir}/manifest.json: " + UNPINNED),
    ("sae-unpinned-analyze", "saes", unpinned, ["analyze", "{dir}"],
     "{dir}: attrs['config']: " + UNPINNED),
    ("sae-unpinned-explore", "saes", unpinned, EXPLORE, "{dir}: attrs['config']: " + UNPINNED),
]


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name, which, damage, argv, starts", ROWS, ids=[r[0] for r in ROWS])
def test_refused(built, tmp_path, capsys, name, which, damage, argv, starts):
    """One line, exit 2, and the directory exactly as it was: no lock, no rewritten
    results.nc, no chunks folder."""
    d = shutil.copytree(built.toy if which == "toy" else built.saes, tmp_path / "d")
    toml = tmp_path / "sweep.toml"
    toml.write_text(json.loads((built.toy / store.MANIFEST).read_text())["config"])
    if damage:
        damage(d)
    before = snapshot(d)
    fill = lambda a: a.format(dir=d, toml=toml, tmp=tmp_path, source=built.source)
    refused(capsys, [fill(a) for a in argv], fill(starts))
    assert snapshot(d) == before


def test_a_damaged_results_nc_is_rebuilt_as_the_line_says(built, tmp_path, capsys):
    """`delete it and rerun the same toymodels sweep into DIR: it retrains every run`: the
    rerun makes the same results, bit for bit."""
    d = shutil.copytree(built.toy, tmp_path / "d")
    truncate("results.nc")(d)
    toml = tmp_path / "sweep.toml"
    toml.write_text(json.loads((d / store.MANIFEST).read_text())["config"])
    line = refused(capsys, ["sweep", toml, "--out", d, "--quiet"], f"{d}/results.nc: damaged")
    assert line.endswith(f"delete it and rerun the same `toymodels sweep` into {d}: it "
                         "retrains every run")
    (d / store.RESULTS).unlink()
    assert main(["sweep", str(toml), "--out", str(d), "--quiet"]) == 0
    again, first = tm.load(d), tm.load(built.toy)
    for name in ("W", "b", "loss", "final_loss"):
        np.testing.assert_array_equal(again[name].values, first[name].values, err_msg=name)


def test_sae_results_read_on_their_own_after_their_source_is_gone(built, tmp_path, capsys):
    """info, analyze, explore and plot of SAE results whose source folder no longer exists
    exit 0 with the numbers they gave before it was moved away."""
    assert not built.source.exists()
    d = shutil.copytree(built.saes, tmp_path / "saes")
    assert main(["info", str(d)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == built.before.info
    assert main(["analyze", str(d)]) == 0
    np.testing.assert_allclose(tm.load(d).mmcs.values, built.before.mmcs, rtol=1e-6)
    assert main(["explore", str(d), "--out", str(tmp_path / "x.html")]) == 0
    page = page_data(load_results(d))
    np.testing.assert_allclose(page.arrays["mmcs"], built.before.mmcs.reshape(-1), rtol=1e-6)
    assert main(["plot", "sae_cosines", str(d), "--out", str(tmp_path / "after.png")]) == 0
    assert (tmp_path / "after.png").read_bytes() == built.before.png


def test_the_kgon_levels_are_those_of_an_exactly_one_plane_sweep():
    """`kgon_problem` from a Dataset's config (parsed, nothing trained): none for the k-gon
    sweep, one reason per assumption broken."""
    text = (Path(__file__).parents[1] / "sweeps" / "kgon_trajectories.toml").read_text()
    ds = xr.Dataset({"loss": (("seed", "step"), np.ones((1, 2)))},
                    coords={"seed": [0], "step": [1, 2], "hidden": [0, 1]})
    assert kgon_problem(ds.assign_attrs(config=text)) is None
    assert kgon_problem(ds) is None  # made by hand: its sizes alone
    bernoulli = text.replace('inputs = "exactly_one"', 'inputs = "bernoulli"')
    assert tomllib.loads(bernoulli)["data"]["inputs"] == "bernoulli"
    assert kgon_problem(ds.assign_attrs(config=bernoulli)) == "this sweep has data.inputs = 'bernoulli'"
    flat = ds.isel(hidden=[0])
    assert kgon_problem(flat) == "this sweep has hidden dims = 1"
