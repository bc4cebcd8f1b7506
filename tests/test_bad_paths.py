"""Issue 23, bad output paths and a closed stdout: each is one line and exit 2 (or a quiet
141), checked before any work, with nothing written, and the corrected command works."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure

import toymodels as tm
from tests.helpers import config, refused
from toymodels import outputs
from toymodels.cli import main

IMAGE = "an image ending ."  # then matplotlib's formats: .avif, .eps, ... (see TAILS)

# (id, argv, starts, code): run in a folder holding the file file.toml, the file a_file,
# the empty folder runs/ and the file plots/quick; {dir} is a finished tiny sweep
SWEEP = str(Path(__file__).parents[1] / "sweeps" / "intro.toml")
ROWS = [
    ("plot_unknown_suffix", ["plot", "loss", "{dir}", "--out", "x.xyz"],
     "x.xyz: --out: " + IMAGE, 2),
    ("plot_no_suffix", ["plot", "loss", "{dir}", "--out", "x"], "x: --out: " + IMAGE, 2),
    ("plot_out_is_folder", ["plot", "loss", "{dir}", "--out", "runs"], "runs: --out: " + IMAGE, 2),
    ("plot_parent_is_file", ["plot", "loss", "{dir}", "--out", "file.toml/x.png"],
     "file.toml/x.png: --out: a path whose parents are folders, got file.toml, a file", 2),
    ("plot_ancestor_is_file", ["plot", "loss", "{dir}", "--out", "file.toml/a/x.png"],
     "file.toml/a/x.png: --out: a path whose parents are folders, got file.toml, a file", 2),
    ("plot_out_checked_first", ["plot", "loss", "missing", "--out", "x.xyz"],
     "x.xyz: --out: " + IMAGE, 2),
    ("explore_parent_is_file", ["explore", "{dir}", "--out", "file.toml/x.html"],
     "file.toml/x.html: --out: a path whose parents are folders, got file.toml, a file", 2),
    ("explore_out_is_folder", ["explore", "{dir}", "--out", "runs"],
     "runs: --out: an HTML page ending .html or .htm, got a folder", 2),
    ("explore_suffix", ["explore", "{dir}", "--out", "x.txt"],
     "x.txt: --out: an HTML page ending .html or .htm, got .txt", 2),
    ("explore_out_checked_first", ["explore", "missing", "--out", "runs"],
     "runs: --out: an HTML page ending .html or .htm, got a folder", 2),
    ("sweep_out_is_file", ["sweep", SWEEP, "--out", "a_file"],
     "a_file: is a file, not a directory; --out names a results directory", 2),
    ("sweep_out_under_a_file", ["sweep", SWEEP, "--out", "a_file/sub"],
     "a_file/sub: cannot create the directory (Not a directory); choose another --out", 2),
    ("zoo_build_out_is_file", ["zoo", "build", "intro_dense", "--out", "a_file"],
     "a_file: --out: a folder (new or existing), got a file", 2),
    ("zoo_build_parent_is_file", ["zoo", "build", "intro_dense", "--out", "a_file/zoo"],
     "a_file/zoo: --out: a path whose parents are folders, got a_file, a file", 2),
    ("reproduce_runs_is_file", ["reproduce", "--quick", "--only", "intro", "--runs", "a_file"],
     "a_file: --runs: a folder (new or existing), got a file", 2),
    ("reproduce_runs_parent_is_file",
     ["reproduce", "--quick", "--only", "intro", "--runs", "file.toml/runs"],
     "file.toml/runs: --runs: a path whose parents are folders, got file.toml, a file", 2),
    ("reproduce_plots_is_file",
     ["reproduce", "--quick", "--only", "intro", "--runs", "runs", "--plots", "a_file"],
     "a_file: --plots: a folder (new or existing), got a file", 2),
    ("reproduce_quick_plots_is_file",
     ["reproduce", "--quick", "--only", "intro", "--runs", "runs", "--plots", "plots"],
     "plots/quick: --plots: a folder (new or existing), got a file", 2),
]

TAILS = {"plot_unknown_suffix": "got .xyz", "plot_no_suffix": "got no extension",
         "plot_out_is_folder": "got a folder", "plot_out_checked_first": "got .xyz"}
"""The ends of the image rows' lines, after matplotlib's list of formats."""


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A finished sweep of 2 tiny runs."""
    cfg = config(train={"steps": 20, "batch_size": 64, "log_every": 10, "eval_samples": 8192},
                 sweep={"sparsity": [0.0, 0.9], "seed": [0]})
    return tm.run_sweep(cfg, tmp_path_factory.mktemp("bad_paths") / "tiny", quiet=True)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """The rows' folder, as the working directory."""
    (tmp_path / "file.toml").write_text('name = "x"\n')
    (tmp_path / "a_file").write_text("")
    (tmp_path / "runs").mkdir()
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "quick").write_text("")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tree(root: Path) -> list[tuple[str, int]]:
    """Every path under `root` with its size (0 for a folder)."""
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else 0)
                  for p in root.rglob("*"))


@pytest.mark.parametrize("argv, starts, code", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_output_path(capsys, request, results, workdir, argv, starts, code):
    before = tree(workdir)
    line = refused(capsys, [a.format(dir=results) for a in argv], starts, code)
    assert line.endswith(TAILS.get(request.node.callspec.id, "")), line
    assert tree(workdir) == before, "a refused command writes nothing"


def test_image_endings_are_named(capsys, results, workdir):
    line = refused(capsys, ["plot", "loss", results, "--out", "x.xyz"], "x.xyz: --out: " + IMAGE)
    for suffix in (".png", ".pdf", ".svg", ".jpg"):
        assert f"{suffix}, " in line or f"{suffix} or " in line, line


def test_corrected_plot_writes_the_image_and_its_folders(capsys, results, workdir):
    assert main(["plot", "loss", str(results), "--out", "new/deep/x.png"]) == 0
    assert capsys.readouterr().out == "wrote new/deep/x.png\n"
    assert (workdir / "new/deep/x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_existing_output_file_is_replaced(capsys, results, workdir):
    """The same plot and page twice: the second replaces the first (the check must not
    take the file itself for a parent that is a file)."""
    for _ in range(2):
        assert main(["plot", "loss", str(results), "--out", "again.png"]) == 0
        assert main(["explore", str(results), "--out", "again.html"]) == 0
    assert capsys.readouterr().err == ""
    assert (workdir / "again.png").stat().st_size > 1000


def test_corrected_explore_writes_the_page_and_its_folder(capsys, results, workdir):
    """Before: FileNotFoundError after the page was built (its folder did not exist)."""
    assert main(["explore", str(results), "--out", "nodir/x.html"]) == 0
    assert capsys.readouterr().out.startswith("wrote nodir/x.html (")
    assert "<html" in (workdir / "nodir/x.html").read_text(encoding="utf-8")[:500].lower()


def test_unwritable_folder_is_refused_before_the_work(capsys, monkeypatch, workdir):
    """(The tests run as root, who may write anywhere: os.access is made to say no.)"""
    monkeypatch.setattr(outputs.os, "access", lambda path, mode: False)
    refused(capsys, ["explore", "missing", "--out", "x.html"],
            "x.html: --out: a path inside a folder one may write to, got . (permission denied)")
    refused(capsys, ["zoo", "build", "intro_dense", "--out", "zoo"],
            "zoo: --out: a path inside a folder one may write to, got . (permission denied)")


def test_failed_write_is_one_line(capsys, monkeypatch, results, workdir):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    refused(capsys, ["plot", "loss", results, "--out", "x.png"],
            "x.png: --out: cannot write it (No space left on device)")


@pytest.mark.parametrize("argv, buffered", [
    (["info", "{dir}"], True),  # the whole output is written at exit
    (["info", "{dir}"], False),  # each print is written at once
    (["--help"], True),
], ids=["info", "info_unbuffered", "help"])
def test_closed_stdout_ends_quietly(results, argv, buffered):
    """`toymodels info DIR | head -1`: the reader is gone before the output is written;
    the command ends with 141 (as one killed by SIGPIPE) and nothing on stderr."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.update({} if buffered else {"PYTHONUNBUFFERED": "1"})
    process = subprocess.Popen([sys.executable, "-m", "toymodels",
                                *(a.format(dir=results) for a in argv)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    process.stdout.close()  # before the command has imported anything, let alone printed
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141, err
    assert err == "", err
