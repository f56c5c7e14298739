"""dwml_py's modules import each other in one direction only: the import graph (every import,
those inside functions included, since a lazy import is still a dependency) has no cycle, so the
modules stack in floors and each one can be read knowing only the ones below it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "dwml_py"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """{module: the dwml_py modules it imports}."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [_resolve(alias.name, modules) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from dwml_py import sql` imports the module dwml_py.sql; `from dwml_py.x import f` imports dwml_py.x
                targets = [_resolve(f"{node.module}.{alias.name}", modules) for alias in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t and t != name and t.startswith("dwml_py"))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


def test_the_check_finds_a_cycle_and_a_lazy_import_counts():
    graph = {"dwml_py.a": {"dwml_py.b"}, "dwml_py.b": {"dwml_py.c"}, "dwml_py.c": {"dwml_py.a"}, "dwml_py.d": set()}
    assert cycles(graph) == [["dwml_py.a", "dwml_py.b", "dwml_py.c"]]
    real = import_graph()
    # tracking imports model_registry inside a method (registering a version when a run finishes)
    assert "dwml_py.model_registry" in real["dwml_py.tracking"]
    assert "dwml_py.tracking" not in real["dwml_py.model_registry"]
