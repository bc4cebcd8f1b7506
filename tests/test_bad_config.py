"""Issue 23, bad sweep files and settings: unhashable axis values, sizes that cannot run,
seeds out of range, an LLC pass without an nbeta, files that are not UTF-8 TOML and a
`--set` of another trainer's table. Each is one line and exit 2, before any directory or
lock is made, so that the corrected command works."""

from __future__ import annotations

import glob
import json
import os
import tomllib
from pathlib import Path

import jax
import pytest

from toymodels import limits, machine, sweep
from toymodels.cli import main
from toymodels.spd_config import parse_spd
from toymodels.trainers import get_trainer, parse_config

from helpers import files_in, refused

GiB = 2**30
MEMORY = 64 * GiB  # the machine's memory the rows assume (the engine's check reads it)
TINY_TRAIN = "[train]\nsteps = 20\nbatch_size = 64\nlog_every = 10\neval_samples = 8192\n"
TOY = "[model]\nn_features = 5\nn_hidden = 2\n" + TINY_TRAIN + "[sweep]\nseed = [0, 1]\n"
SAE = ('[sae]\nsource = "synthetic"\nn_features = 5\nn_hidden = 2\n'
       "[train]\nsteps = 20\nbatch_size = 64\nlog_every = 10\n")
ONE_EXAMPLE = TOY.replace("[train]\n", "[data]\ndataset_size = 1\n[train]\n").replace(
    "batch_size = 64", 'batch_size = "full"')  # the LLC rows' source
FILES = {  # the rows' files, in their working directory
    "toy.toml": TOY,
    "sae.toml": SAE,
    "llc.toml": '[llc]\nsource = "nowhere"\n',
    "sae_kinds.toml": SAE + '[sweep]\nkind = [["relu"], ["topk"]]\n',
    "sae_wide.toml": SAE.replace("[train]", "width = 2000000000\n[train]"),
    "sae_truth.toml": SAE.replace("[train]", "truth_seed = 2147483648\n[train]"),
    "features.toml": TINY_TRAIN + "[sweep]\nn_features = [5, 1000000000]\n",
    "linspace.toml": "[sweep]\nlearning_rate = { linspace = [0.001, 1, 1000000000] }\n",
    "runs.toml": ("[sweep]\nweight_decay = { linspace = [0, 1, 100000] }\n"
                  "learning_rate = { geomspace = [0.001, 1, 100000] }\n"),
    "groups.toml": f"[sweep]\nn_hidden = {list(range(1, 5001))}\n",
    "dataset_int32.toml": '[data]\ndataset_size = 100000000000\n[train]\nbatch_size = "full"\n',
    "dataset.toml": ('[data]\ndataset_size = 2000000000\n[train]\nbatch_size = "full"\n'
                     "steps = 20\nlog_every = 10\n"),
    "work.toml": ("[model]\nn_features = 5\nn_hidden = 2\n[train]\nsteps = 1073741824\n"
                  "log_every = 1073741824\nbatch_size = 1048576\n"
                  f"[sweep]\nseed = {list(range(16))}\n"),
    "seed.toml": "seed = 18446744073709551616\n" + TOY,
    "fixed_seed.toml": "seed = 7\n" + ONE_EXAMPLE,  # seed.toml corrected: the LLC source
    "bad_seed.toml": "seed = 18446744073709551616\n" + ONE_EXAMPLE,
    "not_toml.toml": "name = \n",
    "long_integer.toml": "seed = " + "1" * 5000 + "\n",
    "deep.toml": "seed = " + "[" * 5000 + "]" * 5000 + "\n",
}
FILES_BYTES = {"not_utf8.toml": b'name = "x"\nseed = 0 \xff\n'}

SEED_RANGE = "must be an integer >= 0 and < 2147483648"
ONE_STEP = "one compiled step needs at least"
OUT = ["--out", "out"]

# (id, argv, starts, code): run in a folder holding FILES; "{src}" is a finished sweep of
# 2 runs on one training example (data.dataset_size = 1)
ROWS = [
    # 1. axis values that are lists or tables: the key's own check, not a TypeError
    ("axis_of_lists_sae", ["sweep", "sae_kinds.toml", *OUT],
     "sae_kinds.toml: sweep.kind: must be one of relu, topk, batchtopk, jumprelu, gated, "
     "matryoshka, mp, got ['relu']", 2),
    ("axis_of_lists_set", ["sweep", "toy.toml", "--set", "sweep.seed=[[0],[1]]", *OUT],
     f"toy.toml: sweep.seed: {SEED_RANGE}, got [0]", 2),
    ("axis_of_tables_set", ["sweep", "toy.toml", "--set", "sweep.sparsity=[{ a = 1 }]", *OUT],
     "toy.toml: sweep.sparsity: must be a number in [0, 1), got {'a': 1}", 2),
    # 2. sizes that cannot run: refused before the results directory is made
    ("sae_width_2e9", ["sweep", "sae_wide.toml", *OUT],
     f"sae_wide.toml: {ONE_STEP} 596 GiB (2 runs of 298 GiB), more than this machine's "
     "memory (64 GiB); its largest size: sae.width = 2000000000", 2),
    ("features_1e9", ["sweep", "features.toml", *OUT],
     f"features.toml [n_features = 1000000000]: {ONE_STEP} 224 GiB (2 runs of 112 GiB), more "
     "than this machine's memory (64 GiB); its largest size: model.n_features = 1000000000", 2),
    ("dataset_2e9_full_batch", ["sweep", "dataset.toml", *OUT],
     f"dataset.toml: {ONE_STEP} 298 GiB (2 runs of 149 GiB), more than this machine's "
     "memory (64 GiB); its largest size: data.dataset_size = 2000000000, "
     "train.batch_size = 2000000000", 2),
    ("dataset_1e11", ["sweep", "dataset_int32.toml", *OUT],
     "dataset_int32.toml: data.dataset_size: must be an integer >= 1 and < 2147483648, "
     "got 100000000000", 2),
    ("linspace_1e9", ["sweep", "linspace.toml", *OUT],
     "linspace.toml: sweep.learning_rate: an axis has at most 100000 values, got 1000000000 "
     "({ linspace = [0.001, 1, 1000000000] })", 2),
    ("runs_1e10", ["sweep", "runs.toml", *OUT],
     "runs.toml: sweep: 10000000000 runs (100000 weight_decay x 100000 learning_rate), more "
     "than the 16777216 a sweep may have; shorten an axis", 2),
    ("static_groups_5000", ["sweep", "groups.toml", *OUT],
     "groups.toml: sweep: 5000 static groups (5000 n_hidden), more than the 4096 a sweep "
     "may have; shorten an axis", 2),
    ("work_2e56", ["sweep", "work.toml", *OUT],
     "work.toml: the sweep's work is about 2^56.8 values (16 runs), more than the limit of "
     "2^55 (about 7 years on 2 CPU cores); its largest size: train.steps = 1073741824", 2),
    ("llc_draws_2e9", ["llc", "{src}", "--draws", "2000000000", "--nbeta", "10"],
     f"toymodels llc: {ONE_STEP} 5.59 TiB (64 runs of 89.4 GiB), more than this machine's "
     "memory (64 GiB); its largest size: llc.draws = 2000000000", 2),
    ("llc_steps_past_int32", ["llc", "{src}", "--burn-in", "2147483000", "--draws", "1000",
                              "--nbeta", "10"],
     "toymodels llc: llc.burn_in: burn_in + draws must be < 2147483648 (SGLD counts its "
     "steps in int32), got 2147483000 + 1000", 2),
    ("llc_burn_in_1e12", ["llc", "{src}", "--burn-in", "1000000000000"],
     "toymodels llc: llc.burn_in: must be an integer >= 0 and < 2147483648, got 1000000000000", 2),
    # 3. seeds: one range for the root, run, data and truth seeds
    ("root_seed_2e64", ["sweep", "seed.toml", *OUT],
     f"seed.toml: seed: {SEED_RANGE}, got 18446744073709551616", 2),
    ("run_seed_2e31", ["sweep", "toy.toml", "--set", "sweep.seed=[0, 2147483648]", *OUT],
     f"toy.toml: sweep.seed: {SEED_RANGE}, got 2147483648", 2),
    ("data_seed_axis_2e31", ["sweep", "toy.toml", "--set", "data.dataset_size=8",
                             "--set", "sweep.data_seed=[2147483648]", *OUT],
     f"toy.toml: sweep.data_seed: {SEED_RANGE}, got 2147483648", 2),
    ("truth_seed_2e31", ["sweep", "sae_truth.toml", *OUT],
     f"sae_truth.toml: sae.truth_seed: {SEED_RANGE}, got 2147483648", 2),
    # 4. an LLC pass whose nbeta = n / ln n cannot be computed
    ("llc_dataset_of_one", ["llc", "{src}"],
     "toymodels llc: llc.n: nbeta = n / ln n needs n >= 2, and n is the source's "
     "data.dataset_size = 1: give llc.n >= 2 or llc.nbeta", 2),
    ("llc_n_401_digits", ["llc", "{src}", "--n", "1" + "0" * 400],
     "toymodels llc: llc.n: must be an integer >= 2 and < 9007199254740992, got 1" + "0" * 400, 2),
    # 5. files that are not UTF-8 TOML, values tomllib cannot read
    ("not_utf8", ["sweep", "not_utf8.toml", *OUT],
     "not_utf8.toml: not UTF-8 text (a TOML file is UTF-8): byte 0xff at line 2, column 10", 2),
    ("not_toml", ["sweep", "not_toml.toml", *OUT],
     "not_toml.toml: TOML syntax error: Invalid value (at line 1, column 8)", 2),
    ("integer_of_5000_digits", ["sweep", "long_integer.toml", *OUT],
     "long_integer.toml: TOML syntax error: Exceeds the limit (4300 digits) for integer "
     "string conversion", 2),
    ("nested_5000_deep", ["sweep", "deep.toml", *OUT],
     "deep.toml: TOML syntax error: arrays or tables nested too deeply to read", 2),
    ("set_integer_of_5000_digits", ["sweep", "toy.toml", "--set", "train.steps=" + "1" * 5000, *OUT],
     "toy.toml: --set train.steps: cannot read the value: Exceeds the limit (4300 digits)", 2),
    # 6. --set of a table the file's trainer does not have: blamed on the --set
    ("set_sae_on_toy", ["sweep", "toy.toml", "--set", "sae.kind=topk", *OUT],
     "toy.toml: --set sae.kind=topk: the file is a toy-model sweep, whose tables are model, "
     "data, train, sweep; it has no [sae]", 2),
    ("set_model_on_sae", ["sweep", "sae.toml", "--set", "model.kind=linear", *OUT],
     "sae.toml: --set model.kind=linear: the file is an SAE sweep, whose tables are sae, "
     "synthetic, data, train, sweep; it has no [model]", 2),
    ("set_sae_on_llc", ["sweep", "llc.toml", "--set", "sae.kind=topk"],
     "llc.toml: --set sae.kind=topk: the file is an LLC pass, whose tables are llc; it has "
     "no [sae]", 2),
]


def write_files(folder: Path) -> None:
    for name, text in FILES.items():
        (folder / name).write_text(text)
    for name, data in FILES_BYTES.items():
        (folder / name).write_bytes(data)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, int]:
    """(the LLC rows' source, the exit code of its first try): bad_seed.toml refused into
    the source's --out, then fixed_seed.toml (the same sweep, seed 7) run into it."""
    folder = tmp_path_factory.mktemp("bad_config")
    write_files(folder)
    out = folder / "src"
    first = main(["sweep", str(folder / "bad_seed.toml"), "--out", str(out), "--quiet"])
    assert main(["sweep", str(folder / "fixed_seed.toml"), "--out", str(out), "--quiet"]) == 0
    return out, first


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """The rows' folder, as the working directory, on a machine of `MEMORY` bytes."""
    write_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweep, "machine_memory", lambda: (MEMORY, "this machine's memory"))
    return tmp_path


@pytest.mark.parametrize("case", ROWS, ids=[row[0] for row in ROWS])
def test_bad_config_is_one_line(case, capsys, workdir, source):
    """Each row's line and code; nothing is written: no --out, the source unchanged."""
    _, argv, starts, code = case
    src = source[0]
    before = files_in(src)
    refused(capsys, [a.replace("{src}", str(src)) for a in argv], starts, code)
    assert not (workdir / "out").exists(), "a refused sweep must leave no directory"
    assert files_in(src) == before, "a refused LLC pass must leave its source as it was"


def test_a_refused_seed_leaves_nothing_in_the_way(source):
    """The out of range root seed was refused, and the corrected file then ran into the
    same --out."""
    out, first = source
    assert first == 2
    assert {"manifest.json", "results.nc"} <= set(files_in(out))
    manifest = json.loads((out / "manifest.json").read_text())
    assert tomllib.loads(manifest["config"])["seed"] == 7


def test_the_size_check_reads_this_machines_memory(capsys, workdir, monkeypatch):
    """The engine checks against `machine_memory()` (here 1000 bytes: a tiny sweep is
    refused), which is this machine's physical memory on CPU devices."""
    if jax.devices()[0].platform == "cpu":
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        assert machine.machine_memory() == (physical, "this machine's memory")
    monkeypatch.setattr(sweep, "machine_memory", lambda: (1000, "this machine's memory"))
    line = refused(capsys, ["sweep", "toy.toml", *OUT], f"toy.toml: {ONE_STEP} ", 2)
    assert "more than this machine's memory (1000 bytes)" in line
    assert not (workdir / "out").exists()


def shipped_source(spd: dict, source: str):
    """The `parse_spd` reader of a shipped SPD sweep whose source is a results directory
    `runs/.../NAME` that `sweeps/NAME.toml` trains: what that directory will hold, every run
    of the sweep file (model, runs, residual spec or None, its one density or None)."""
    path = Path(__file__).parents[1] / "sweeps" / f"{Path(spd['source']).name}.toml"
    raw = tomllib.loads(path.read_text())
    config = parse_config(raw, str(path))
    runs = tuple(range(config.n_runs))
    if config.trainer == "residual":
        return config.spec.model, runs, config.spec.residual, raw["data"]["feature_probability"]
    return config.spec.model, runs, None, None


def test_no_shipped_sweep_comes_near_a_limit():
    """Every sweeps/*.toml is within 2 GiB a compiled step, a hundredth of the runs, axis
    length and groups, and 2^-7 of the work (an SAE sweep on a results directory as on
    its source's shape, 20 -> 5 of sweeps/sae_sources.toml)."""
    paths = sorted(glob.glob(str(Path(__file__).parents[1] / "sweeps" / "*.toml")))
    assert len(paths) > 30
    for path in paths:
        raw = tomllib.loads(Path(path).read_text())
        if "sae" in raw and raw["sae"]["source"] != "synthetic":
            raw["sae"] = {**{k: v for k, v in raw["sae"].items() if k != "runs"},
                          "source": "synthetic", "n_features": 20, "n_hidden": 5}
        if "spd" in raw and not raw["spd"]["source"].startswith(("zoo:", "hand")):
            config = parse_spd(raw, path, reader=shipped_source)  # its source not trained here
        else:
            config = parse_config(raw, path)
        trainer = get_trainer(config.trainer)
        if config.spec is None:  # an SPD sweep of a zoo model: reading it is cheap
            config = trainer.resolve(config)
        limits.check_sizes(trainer, config, (2 * GiB, "2 GiB"))
        assert config.n_runs * 100 <= limits.MAX_RUNS, path
        assert len(config.groups) * 100 <= limits.MAX_GROUPS, path
        assert all(len(v) * 100 <= limits.MAX_AXIS for _, v in config.axes), path
        work = sum(g.n_runs * trainer.work(g.spec) for g in config.groups)
        assert work * 2**7 <= limits.MAX_WORK, path
