"""The package's structure stays easy to see: no import cycles, no hidden imports, small
modules (issue 22); parsing a sweep file imports no JAX, so a bad config answers at once,
and the kind names it checks are the runtime registries' (issue 24).

The import graph is built from the code itself with `ast`: every `import` and `from ...
import` of a toymodels module, at module level and inside functions alike (an import
hidden in a function still makes a cycle, it only defers it). Imports of the root package
`toymodels` itself are left out (its `__init__` re-exports the public API).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toymodels import kinds, models, train
from toymodels.cli import build_parser
from toymodels.dictionary.sae import SAE_KINDS
from toymodels.parsers import PARSERS
from toymodels.trainers import TRAINERS

PACKAGE = Path(__file__).resolve().parent.parent / "toymodels"
MAX_LINES = 600
MAX_HIDDEN = 3  # imports of toymodels modules inside functions, outside cli.py
CLI = "toymodels.cli"  # the command line imports each subcommand's module when it runs


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(node: ast.AST, here: str, is_package: bool, known: set[str]) -> list[str]:
    """The toymodels modules an import statement names (`from a import b` names a.b when
    that is a module, else a)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = here.split(".")
            parts = parts if is_package else parts[:-1]
            parts = parts[:len(parts) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = []
    for name in names:
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in known and name not in ("toymodels", here):
            out.append(name)
    return out


def graph() -> tuple[dict[str, set[str]], list[tuple[str, str, int, str]]]:
    """(module -> the modules it imports, [(module, imported, line, text)] of the imports
    inside functions)."""
    found = modules()
    known = set(found)
    edges = {name: set() for name in found}
    hidden = []
    for name, path in found.items():
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source)
        in_functions = {id(n) for f in ast.walk(tree)
                        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                        for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets = imported(node, name, path.name == "__init__.py", known)
            edges[name].update(targets)
            if targets and id(node) in in_functions and name != CLI:
                hidden.append((name, targets[0], node.lineno, lines[node.lineno - 1]))
    return edges, hidden


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), or of one
    module that imports itself."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges[v]:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_graph_finds_a_cycle_and_a_hidden_import():
    """The checks below can fail: a hand-made graph with a cycle has one component."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycle():
    edges, _ = graph()
    assert len(edges) > 50  # the walk saw the package
    found = cycles(edges)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_few_imports_hidden_in_functions_each_saying_why():
    _, hidden = graph()
    where = [f"{m}:{line} ({target})" for m, target, line, _ in hidden]
    assert len(hidden) <= MAX_HIDDEN, f"{len(hidden)} imports inside functions: {where}"
    for module, target, line, text in hidden:
        assert "#" in text, f"{module}:{line} imports {target} inside a function without a comment why"


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_over_600_lines(name):
    n = len(modules()[name].read_text().splitlines())
    assert n <= MAX_LINES, f"{name}: {n} lines; split it by what it does"


def test_a_script_run_from_the_folder_that_holds_the_clone_imports_the_package(tmp_path):
    """The clone's folder is named like the package: run from its parent, `import
    toymodels` must find the installed package, not the folder as an empty namespace
    package (pyproject's package-dir makes an editable install a path entry)."""
    root = PACKAGE.parent
    (tmp_path / "toymodels").symlink_to(root)
    probe = "import toymodels; print(toymodels.__file__, callable(toymodels.load))"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(PACKAGE / "__init__.py"), "True"], done.stdout


HEAVY = ("jax", "optax", "flax", "xarray", "scipy", "matplotlib")  # seconds to import
PARSE_EVERY_TRAINER = """
import sys
from pathlib import Path

import toymodels
from toymodels.cli import main
from toymodels.parsers import load_config, parse_config

out = Path(sys.argv[1])
assert load_config("sweeps/intro.toml").trainer == "toy"
assert toymodels.load_config("sweeps/sae_width.toml", ("train.steps=100",)).trainer == "sae"
assert load_config("sweeps/sae_width_synthetic.toml").spec is not None
(out / "llc.toml").write_text('[llc]\\nsource = "runs/x"\\nchains = 8\\n')
assert load_config(out / "llc.toml").trainer == "llc"
assert load_config("sweeps/compressed_computation.toml").trainer == "residual"
(out / "bad.toml").write_text("[model]\\nn_features = 5\\n[train]\\nstpes = 3\\n")
bad = [["sweep", str(out / "bad.toml"), "--out", str(out / "r")],
       ["sweep", "sweeps/intro.toml", "--out", str(out / "r"), "--set", "train.steps=-1"],
       ["sweep", "sweeps/sae_kinds.toml", "--out", str(out / "r"), "--unset", "sae.nope"],
       ["sweep", str(out / "missing.toml"), "--out", str(out / "r")],
       ["llc", str(out), "--chains", "1"]]
assert [main(argv) for argv in bad] == [2] * len(bad)
print(" ".join(m for m in %r if m in sys.modules))
""" % (HEAVY,)


def test_parsing_every_trainer_imports_no_jax(tmp_path):
    """Parsing a toy, an SAE, an LLC and a residual file, and five config errors through the command
    line, leaves JAX, optax, flax, xarray, scipy and matplotlib unimported (a fresh
    interpreter; the timing-free check that `toymodels sweep BAD.toml` answers at once)."""
    done = subprocess.run([sys.executable, "-c", PARSE_EVERY_TRAINER, str(tmp_path)],
                          cwd=PACKAGE.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"parsing imported {done.stdout.strip()}"
    assert done.stderr.count("toymodels: error:") == 5, done.stderr


def test_the_kind_names_parsing_checks_are_the_registries_keys():
    """`toymodels.kinds` (what parsing checks, without JAX) names exactly the runtime
    registries' entries, in their order, with the keys each reads."""
    assert kinds.MODEL_KINDS == tuple(models.MODELS)
    assert kinds.NORM_KINDS == tuple(models.NORMS)
    assert set(kinds.KGON_KINDS) <= set(kinds.MODEL_KINDS)
    assert kinds.OPTIMIZER_NAMES == tuple(train.OPTIMIZERS)
    assert kinds.SAE_KIND_NAMES == tuple(SAE_KINDS)
    assert {n: k.reads for n, k in SAE_KINDS.items()} == kinds.SAE_READS
    llc = build_parser()._subparsers._group_actions[0].choices["llc"]
    assert next(a.choices for a in llc._actions if a.dest == "loss") == kinds.LLC_LOSSES


def test_every_trainer_is_parsed_by_its_entry_of_the_jax_free_registry():
    """A sweep file is parsed by `toymodels.parsers.PARSERS` before JAX is imported; each
    trainer holds that same Parser (its name, table, parse, settable keys), so a trainer
    registered without one, or under another name, is caught here."""
    assert list(PARSERS) == list(TRAINERS)
    for name, trainer in TRAINERS.items():
        assert trainer.parser is PARSERS[name] and trainer.name == name
