"""The notebooks in examples/: committed without outputs, and each runs top to bottom.

CI executes every notebook with ``TOYMODELS_QUICK=1`` (each notebook's first cell reads it
and shrinks its grids and steps), in a fresh kernel whose working directory is a temporary
folder, importing this checkout's toymodels. A cell that raises fails the test, and each
notebook ends with a cell of ``assert``s on what it showed (a known LLC, the zoo's
pentagon, the phase diagram's corners), so running it tests more than "no exception".
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbclient  # the test extra: pip install -e ".[test]"
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))
EXPECTED = {"tour.ipynb", "sae.ipynb", "llc.ipynb"}


def test_the_notebooks_are_there():
    assert EXPECTED <= {p.name for p in NOTEBOOKS}, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_have_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {k} has outputs; strip them"
            assert cell.execution_count is None, f"{path.name}: cell {k} has a count"


def _tree(root: Path) -> set[str]:
    """Every path under root, less .git and bytecode caches."""
    skip = {".git", "__pycache__", ".pytest_cache"}
    found = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        found.update(os.path.relpath(os.path.join(folder, f), root) for f in files)
    return found


def _kernel_env() -> dict[str, str]:
    """The test's environment, quick, importing this checkout, with this Python first
    on PATH (the kernel spec runs `python -m ipykernel_launcher`)."""
    env = dict(os.environ)
    env["TOYMODELS_QUICK"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("MPLBACKEND", None)  # the kernel's own inline backend
    return env


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    before = _tree(ROOT)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute(env=_kernel_env())  # raises CellExecutionError on a failing cell
    seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.1f} s")
    last = nb.cells[-1]
    text = "".join(o.get("text", "") for o in last.outputs)
    assert "all checks passed" in text, text
    assert (tmp_path / "runs").is_dir()  # it wrote where it ran
    assert _tree(ROOT) == before, sorted(_tree(ROOT) ^ before)
