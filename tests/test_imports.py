"""The import rules of issue 17, checked on the source.

* every cxkit module imports on its own, in a fresh interpreter;
* the module-level import graph of cxkit has no cycle (personas <-> voc once had one,
  hidden by function-level imports);
* no module uses a ``_private`` name of another cxkit module;
* no function-level imports, except of optional dependencies.

The graph is built with :mod:`ast` from the files, so it sees every module-level import
(also those under ``try`` or ``if``, but not those under ``if TYPE_CHECKING:``, which
never run).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cxkit"

#: Modules that may be imported inside a function: optional dependencies, which a user
#: without the extra must still be able to import cxkit without.
OPTIONAL = {"pyspark", "psycopg"}
#: Per-module exceptions, with the reason.
LOCAL_IMPORT_ALLOWED = {
    # the worker must point stdout at its log before papermill is imported, so that
    # nothing printed while importing it reaches the runner's protocol pipe
    "cxkit.report._worker": {"papermill", "papermill.exceptions"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {
    _module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts
}


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported (not in functions or TYPE_CHECKING)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                found += _module_level(node.body)
            found += _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for part in (node.body, node.orelse, node.finalbody):
                found += _module_level(part)
            for handler in node.handlers:
                found += _module_level(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            found += _module_level(node.body)
    return found


@dataclass
class ModuleInfo:
    name: str
    #: cxkit modules imported at module level
    imports: set[str] = field(default_factory=set)
    #: (line, what) for every private name taken from another cxkit module
    private: list[tuple[int, str]] = field(default_factory=list)
    #: (line, module, statement) for every import inside a function
    local_imports: list[tuple[int, str, str]] = field(default_factory=list)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[tuple[str, str | None]]:
    """(cxkit module imported, name taken from it or None) for one import statement."""
    out: list[tuple[str, str | None]] = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == "cxkit":
                out.append((alias.name, None))
        return out
    source = _absolute(module, node)
    if source.split(".")[0] != "cxkit":
        return out
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        if sub in MODULES:  # ``from cxkit import plots``: the submodule itself
            out.append((sub, None))
        else:
            out.append((source, alias.name))
    return out


def _analyse(module: str) -> ModuleInfo:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))
    info = ModuleInfo(module)
    module_aliases: dict[str, str] = {}  # local name -> cxkit module it is bound to
    for node in _module_level(tree.body):
        for target, name in _targets(module, node):
            if target not in MODULES:
                continue  # no such module in the tree: the import test reports it
            if target != module:
                info.imports.add(target)
            if name is not None and name.startswith("_") and not name.startswith("__"):
                info.private.append((node.lineno, f"from {target} import {name}"))
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                sub = f"{_absolute(module, node)}.{alias.name}"
                if sub in MODULES:
                    module_aliases[alias.asname or alias.name] = sub
        else:
            for alias in node.names:
                if alias.asname and alias.name in MODULES:
                    module_aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import):
                    info.local_imports += [
                        (sub.lineno, a.name, ast.unparse(sub)) for a in sub.names
                    ]
                elif isinstance(sub, ast.ImportFrom):
                    info.local_imports.append(
                        (sub.lineno, _absolute(module, sub), ast.unparse(sub))
                    )
        # ``from cxkit import lifecycle`` then ``lifecycle._stage_times(...)``
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            info.private.append((node.lineno, f"{module_aliases[node.value.id]}.{node.attr}"))
    return info


@pytest.fixture(scope="module")
def graph() -> dict[str, ModuleInfo]:
    return {m: _analyse(m) for m in MODULES}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def _one_cycle(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A concrete loop through the component's first module, for the message."""
    members = set(component)
    start = component[0]
    path = [start]
    seen = {start}

    def walk(v: str) -> bool:
        for w in sorted(edges[v] & members):
            if w == start:
                return True
            if w not in seen:
                seen.add(w)
                path.append(w)
                if walk(w):
                    return True
                path.pop()
        return False

    walk(start)
    return [*path, start]


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _one_cycle(["a", "b", "c"], edges) == ["a", "b", "c", "a"]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_relative_imports_are_resolved() -> None:
    package = next(m for m in MODULES if _is_package(m) and m != "cxkit")
    node = ast.parse("from .x import y").body[0]
    assert isinstance(node, ast.ImportFrom)
    assert _absolute(package, node) == f"{package}.x"
    inner = next(m for m in MODULES if m.startswith(package + ".") and not _is_package(m))
    assert _absolute(inner, node) == f"{package}.x"


def test_the_graph_sees_module_level_imports(graph: dict[str, ModuleInfo]) -> None:
    assert "cxkit.data" in graph["cxkit.validate"].imports
    assert "cxkit.plots" in graph["cxkit.health"].imports  # ``from cxkit import plots``
    assert "cxkit.personas" in graph["cxkit.widgets"].imports
    src = "if TYPE_CHECKING:\n    import a\ntry:\n    import b\nexcept ImportError:\n    c = None\n"
    assert [n.names[0].name for n in _module_level(ast.parse(src).body)] == ["b"]


def test_every_module_imports_on_its_own() -> None:
    """Each module is imported with no cxkit module loaded before it (third-party
    packages stay loaded between modules, to keep this fast)."""
    script = """
import importlib, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "cxkit" or m.startswith("cxkit.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""
    names = [m for m in MODULES if m != "cxkit.report._worker"] + ["cxkit.report._worker"]
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(names)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    failed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failed, "\n".join(f"{m}:\n{tb}" for m, tb in failed.items())


def test_import_graph_has_no_cycle(graph: dict[str, ModuleInfo]) -> None:
    edges = {m: info.imports for m, info in graph.items()}
    loops = [" -> ".join(_one_cycle(c, edges)) for c in _cycles(edges)]
    assert not loops, "import cycles among cxkit modules:\n" + "\n".join(loops)


def test_no_private_name_is_used_across_modules(graph: dict[str, ModuleInfo]) -> None:
    bad = [
        f"{MODULES[m].relative_to(ROOT)}:{line}: {what}"
        for m, info in sorted(graph.items())
        for line, what in info.private
    ]
    assert not bad, "private names used across modules:\n" + "\n".join(bad)


def test_no_function_level_imports_but_optional_dependencies(
    graph: dict[str, ModuleInfo],
) -> None:
    bad = [
        f"{MODULES[m].relative_to(ROOT)}:{line} in a function: {statement}"
        for m, info in sorted(graph.items())
        for line, what, statement in info.local_imports
        if what.split(".")[0] not in OPTIONAL and what not in LOCAL_IMPORT_ALLOWED.get(m, ())
    ]
    assert not bad, "imports inside functions (move them to the top):\n" + "\n".join(bad)
