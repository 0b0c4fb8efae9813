"""The import rules of DESIGN.md, read from the source with `ast`:

- the library never imports the command line (`tpru.commands`; `tpru.cli` is its entry
  point);
- the builder never imports evaluation (`tpru.builder` -> `tpru.eval`), not even inside
  a function or for type checking;
- tpru's modules import each other without a cycle, counting the imports a module runs
  when it is imported (module level, outside ``if TYPE_CHECKING:``). An import inside a
  function runs when the function is called, after every module is loaded.

A ``"module:attr"`` string of a name table (`tpru.registry.load`) is not an import here:
it is loaded when its name is used.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import tpru

PACKAGE = Path(tpru.__file__).parent


@dataclass(frozen=True)
class Import:
    """One import of a tpru module by another."""

    source: str
    target: str
    line: int
    at_load: bool
    """Run when `source` is imported: at module level, outside ``if TYPE_CHECKING:``."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, source: str) -> list[str]:
    """The tpru modules `node` imports (``from a import b`` imports ``a.b`` if it is one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = source if MODULES[source].name == "__init__.py" else source.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
            for alias in node.names]


def imports_of(source: str) -> list[Import]:
    """Every import of a tpru module in `source`, wherever it stands."""
    found: list[Import] = []

    def visit(node: ast.AST, at_load: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.extend(Import(source, target, node.lineno, at_load)
                         for target in _targets(node, source) if target in MODULES)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            at_load = False  # its imports run when it is called
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, at_load)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, at_load)

    visit(ast.parse(MODULES[source].read_text(encoding="utf-8"), filename=str(MODULES[source])),
          True)
    return found


IMPORTS = [found for source in MODULES for found in imports_of(source)]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _where(found: Import) -> str:
    path = MODULES[found.source].relative_to(PACKAGE.parent)
    return f"{path}:{found.line} imports {found.target}"


def test_the_graph_is_read() -> None:
    """The walk finds what it looks for (else the rules below would pass on nothing)."""
    pairs = {(f.source, f.target, f.at_load) for f in IMPORTS}
    assert ("tpru.cli", "tpru.commands", True) in pairs
    assert ("tpru.builder.pipeline", "tpru.builder.config", True) in pairs
    assert ("tpru.commands.build", "tpru.builder.pipeline", False) in pairs  # in a function
    assert ("tpru.commands.build", "tpru.eval.audit", False) in pairs  # for type checking


def test_the_library_never_imports_the_command_line() -> None:
    offending = [_where(f) for f in IMPORTS if _within(f.target, "tpru.commands")
                 and not _within(f.source, "tpru.commands") and f.source != "tpru.cli"]
    assert not offending, offending


def test_the_builder_never_imports_evaluation() -> None:
    offending = [_where(f) for f in IMPORTS
                 if _within(f.source, "tpru.builder") and _within(f.target, "tpru.eval")]
    assert not offending, offending


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `edges` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for child in sorted(edges.get(node, ())):
            if state.get(child) == 1:
                return [*path[path.index(child):], child]
            if child not in state and (found := visit(child)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_modules_import_each_other_without_a_cycle() -> None:
    edges: dict[str, set[str]] = {}
    for found in IMPORTS:
        if found.at_load and found.target != found.source:
            edges.setdefault(found.source, set()).add(found.target)
    cycle = _cycle(edges)
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b", "c"}, "b": {"c"}}, None),
])
def test_a_cycle_is_found(edges: dict[str, set[str]], expected: list[str] | None) -> None:
    assert _cycle(edges) == expected
