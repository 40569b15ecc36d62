"""Imports point one way: stages use the spine's leaf modules only, and no project modules form a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("serve_app", "deployments")
# the spine modules a stage may import: leaves that import nothing else of the project
LEAVES = {"serve_app.errors", "serve_app.protocol", "serve_app.lifecycle", "serve_app.metrics",
          "serve_app.secret_url"}
# the storage package (the database, for deployments/records) imports nothing of the project outside itself
STORAGE = {"serve_app.storage", "serve_app.storage.config", "serve_app.storage.schema",
           "serve_app.storage.store"}
LEAVES |= STORAGE


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(name: str, path: Path, known: dict[str, Path], top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # `from pkg import module` depends on the module, not on everything in pkg/__init__
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target.split(".")[0] in PACKAGES:
                found.add(target)
    return found


def test_stages_import_only_the_spines_leaf_modules() -> None:
    known = _modules()
    wrong = {}
    for name, path in known.items():
        if not name.startswith("deployments"):
            continue
        spine = {m for m in _imports(name, path, known, top_level_only=False) if m.startswith("serve_app")}
        extra = spine - LEAVES - {"serve_app"}
        if extra:
            wrong[name] = sorted(extra)
    assert wrong == {}


def test_leaf_modules_import_nothing_of_the_project() -> None:
    known = _modules()
    for leaf in ("serve_app.errors", "serve_app.lifecycle", "serve_app.secret_url"):
        assert _imports(leaf, known[leaf], known, top_level_only=False) == set(), leaf
    assert _imports("serve_app.protocol", known["serve_app.protocol"], known, False) <= {"serve_app.errors"}
    for module in STORAGE:
        assert _imports(module, known[module], known, top_level_only=False) <= STORAGE, module


def test_no_import_cycles() -> None:
    known = _modules()
    # function-level imports count too (deferring an import does not undo a cycle); the package
    # roots' lazy re-exports (serve_app.build_app) are the one exception
    graph = {n: _imports(n, p, known, top_level_only=False) for n, p in known.items() if n not in PACKAGES}
    # a package's __init__ importing its own submodules is not a cycle between ideas
    graph = {n: {m for m in deps if not n.startswith(m + ".")} for n, deps in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []
