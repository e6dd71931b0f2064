"""No two modules of the project import each other, directly or through others.

Every import counts, also one inside a function (the usual way to hide a cycle); only imports
under `if TYPE_CHECKING:` are left out, since they never run. An import names the module it
reads from (`from feedback.services import datasets` reads feedback.services.datasets); the
package `__init__` a submodule import passes through is not counted, so a package may re-export
its modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "feedback", "rewardmodels")


def project_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _runs(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes below `node` that run, skipping `if TYPE_CHECKING:` bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            for branch in child.orelse:
                yield branch
                yield from _runs(branch)
            continue
        yield child
        yield from _runs(child)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in modules:  # `import a.b.func` reads module a.b
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in _runs(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in modules else base)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_no_module_imports_itself_through_others() -> None:
    graph = import_graph()

    found = cycles(graph)

    assert found == [], "\n".join(" <-> ".join(cycle) for cycle in found)


def test_services_never_import_tasks() -> None:
    graph = import_graph()

    offenders = {
        (name, target)
        for name, targets in graph.items()
        for target in targets
        if ".services" in name and target.endswith(".tasks")
    }

    assert offenders == set()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import a.b\n", {"a.b"}),
        ("from a import b\n", {"a.b"}),
        ("from a.b import func\n", {"a.b"}),
        ("def f():\n    from a import b\n", {"a.b"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a import b\n", set()),
        ("from . import b\n", {"a.b"}),
        ("from .b import func\n", {"a.b"}),
    ],
)
def test_the_graph_sees_every_kind_of_import(
    tmp_path: Path, source: str, expected: set[str]
) -> None:
    path = tmp_path / "c.py"
    path.write_text(source)
    modules = {"a": tmp_path / "__init__.py", "a.b": tmp_path / "b.py", "a.c": path}

    assert imports_of("a.c", path, modules) == expected


def test_a_cycle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
