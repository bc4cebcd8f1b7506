"""The documentation (docs/, README.md) against what the project holds: every figure of
plots/, every plot kind, sweep file, analysis variable, key and zoo model appears; the
generated parts come from the registries; and (slow) every command block of the README
and of the getting-started page, and every Python block of the docs, runs on a fresh
results directory. CI also builds the site with `mkdocs build --strict`."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from toymodels import reference, zoo
from toymodels.analysis import residual, spd as spd_analysis, variables
from toymodels.config import SCHEMA
from toymodels.dictionary import analysis as sae_analysis
from toymodels.dictionary.config import SAE_SCHEMA
from toymodels.plotting import PLOTS
from toymodels.residual_config import RESIDUAL_SCHEMA
from toymodels.trainers.llc import LLC_SCHEMA
from toymodels.spd_config import SPD_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- not run: (?P<why>[^>]*) -->\s*)?```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)
SET_UP = "python3 -m venv .venv && . .venv/bin/activate && pip install -e "  # CI runs these


def pages() -> dict[str, str]:
    """{page: its Markdown with the generated parts filled in, as the site shows it}."""
    marker = re.compile(r"<!-- generated: (\w+) -->")
    return {p.name: marker.sub(lambda m: reference.GENERATED[m.group(1)](), p.read_text())
            for p in sorted(DOCS.glob("*.md"))}


def blocks(text: str, lang: str) -> list[tuple[str, str | None]]:
    """The (body, reason not run or None) of each fenced block of `lang`."""
    return [(m["body"], m["why"]) for m in BLOCK.finditer(text) if m["lang"] == lang]


@pytest.fixture(scope="module")
def site() -> str:
    return "\n".join(pages().values())


def test_every_figure_of_plots_is_shown_in_the_docs(site):
    shown = set(re.findall(r"\]\(plots/([\w.-]+\.png)\)", site))
    on_disk = {p.name for p in (ROOT / "plots").glob("*.png")}
    assert on_disk - shown == set(), "figures in plots/ that no page shows"
    assert shown - on_disk == set(), "pages show figures that plots/ does not hold"


def test_every_plot_kind_sweep_file_variable_and_zoo_model_appears(site):
    for kind in PLOTS:
        assert f"### `{kind}`" in site, kind
    for sweep in sorted((ROOT / "sweeps").glob("*.toml")):
        assert re.search(rf"\b{re.escape(sweep.stem)}\.toml|sweeps/{re.escape(sweep.stem)}\b",
                         site), sweep.name
    tables = (variables.VARIABLES, variables.BASIS_VARIABLES, variables.BASIS_P_VARIABLES,
              variables.RELIANCE_VARIABLES, variables.RESCALED_LOSS_VARIABLES,
              variables.NEURON_VARIABLES, variables.ABS_VARIABLES, variables.ATTACK_VARIABLES,
              variables.POINT_VARIABLES, variables.SNAPSHOT_VARIABLES)
    names = [name for table in tables for name, _, _ in table]
    names += [name for table in sae_analysis.SAE_TABLES for name in table]
    names += [name for table in (residual.VARIABLES, residual.UAND_VARIABLES)
              for name, _, _ in table]
    for name in names:
        assert f"| `{name}` |" in site, name
    matrices = (*spd_analysis.PATTERN_MATRICES, "W_hidden")
    spd_names = {k for m in matrices for k in spd_analysis.matrix_variables(m)}
    spd_names |= set(spd_analysis.RUN_VARIABLES) | set(spd_analysis.FEATURE_VARIABLES)
    for name in spd_names:  # W_hidden's and the per-matrix rows are written with <M>
        general = re.sub(r"_W_(in|out|hidden)$", "_<M>", name)
        assert f"| `{name}` |" in site or f"| `{general}` |" in site, name
    for name in zoo.names():
        assert f"| `{name}` | {zoo.describe(name).replace('|', chr(92) + '|')} |" in site, name


def test_the_key_reference_has_every_key_with_its_rule_default_and_axis(site):
    """Every key of every schema has a row; spot checks against the rules written in
    the code by hand: train.steps is a static integer >= 1 defaulting to 10,000, sparsity
    a traced number in [0, 1), llc.chains not sweepable."""
    for table, schema in (*((t, SCHEMA[t]) for t in ("model", "data", "train")),
                          ("sae", SAE_SCHEMA), ("llc", LLC_SCHEMA), ("residual", RESIDUAL_SCHEMA),
                          ("spd", SPD_SCHEMA)):
        for key, declared in schema.items():
            assert f"| `{key}` |" in site and declared.description in site, f"{table}.{key}"
    rows = {line.split("|")[1].strip(): line for line in reference.key_table(
        "train", SCHEMA["train"]).splitlines()[2:]}
    assert rows["`steps`"] == ("| `steps` | an integer >= 1 | `10000` | static | optimiser "
                               "steps per run |")
    data = reference.key_table("data", SCHEMA["data"])
    assert "| `sparsity` | a number in [0, 1) | `0.0` | traced |" in data
    assert "| `chains` | an integer >= 2 |" in reference.key_table("llc", LLC_SCHEMA)
    assert "not sweepable" in reference.key_table("llc", LLC_SCHEMA).split("`chains`")[1].split("\n")[0]
    assert "| `label_mixing` | a finite number | `0.0` | traced |" in reference.key_table(
        "residual", RESIDUAL_SCHEMA)


def test_every_page_is_in_the_navigation_and_every_marker_is_known():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.glob("*.md"):
        assert f": {page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"
    for page in DOCS.glob("*.md"):
        for name in re.findall(r"<!-- generated: (\w+) -->", page.read_text()):
            assert name in reference.GENERATED, f"{page.name}: {name}"


def test_the_readme_is_short_and_its_set_up_is_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    set_up = [b for b, _ in blocks(text, "bash") if b.startswith(SET_UP)]
    assert [s.strip() for s in set_up] == [
        f"{SET_UP}. && toymodels sweep sweeps/intro.toml --out runs/intro",
        f'{SET_UP}".[test]" && python -m pytest -q']


def test_every_python_block_of_the_docs_runs_or_says_why_not():
    for name, text in pages().items():
        for body, why in blocks(text, "python"):
            assert why is None or why.strip(), f"{name}: a block marked not run needs a reason"


# ---- the blocks, run (slow: they train the intro sweep, shortened, and draw its figures)


def commands(text: str) -> list[str]:
    """The command lines of the bash blocks, comments removed, set-up lines and servers
    left out (CI itself installs the project from its files and runs the test command)."""
    lines = []
    for body, why in blocks(text, "bash"):
        if why is not None:
            continue
        for line in body.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith(SET_UP) and "mkdocs serve" not in line:
                lines.append(line)
    return lines


def short(argv: list[str]) -> list[str]:
    """A `toymodels sweep` command shortened to 200 steps where it sets no steps."""
    if argv[:2] == ["toymodels", "sweep"] and not any("train.steps" in a for a in argv):
        return [*argv, "--set", "train.steps=200"]
    return argv


@pytest.mark.slow  # trains intro (200 steps) and a short copy, draws figures: about 2 minutes
def test_the_readme_and_getting_started_commands_and_every_python_block_run(tmp_path):
    (tmp_path / "sweeps").symlink_to(ROOT / "sweeps")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sources = {"README.md": README.read_text(), "getting-started.md": pages()["getting-started.md"]}
    ran = set()  # a line both pages hold runs once (the second would find its work done)
    for source, text in sources.items():
        for line in commands(text):
            argv = short(shlex.split(line))
            assert argv[0] == "toymodels", f"{source}: {line}"
            if tuple(argv) in ran:
                continue
            ran.add(tuple(argv))
            done = subprocess.run([sys.executable, "-m", "toymodels", *argv[1:], "--quiet"]
                                  if argv[1] == "sweep" else
                                  [sys.executable, "-m", "toymodels", *argv[1:]],
                                  cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"{source}: {line}\n{done.stderr[-2000:]}"
    python = [(f"{name}", b) for name, text in {**sources, **pages()}.items()
              for b, why in blocks(text, "python") if why is None]
    for name, body in python:
        body = re.sub(r"train\.steps=\d+", "train.steps=200", body)  # short, as the commands
        done = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{name}:\n{body}\n{done.stderr[-2000:]}"
    for made in ("intro.png", "dims.png", "d.png", "explore.html"):
        assert (tmp_path / made).stat().st_size > 1000, made
