"""The installed namespace keeps its one-way dependencies: pipelines -> stages -> auth, and
the emulator (a server a worker never installs) imports none of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What each folder (installed as forcebeam.<folder>) may import of the others.
ALLOWED = {
    "auth": set(),
    "stages": {"auth"},
    "pipelines": {"stages", "auth", "emulator"},  # `forcebeam emulator` / `demo` start it
    "emulator": set(),
}


def _imported_subpackages(path: Path) -> set[str]:
    """forcebeam.<folder> names a module imports (absolute imports; ours use no relative)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "forcebeam" and len(parts) > 1:
                found.add(parts[1])
            assert parts[0] not in ALLOWED, f"{path}: `{name}` must be `forcebeam.{name}`"
    return found


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_each_folder_imports_only_what_is_below_it(folder):
    wrong = {}
    for path in sorted((REPO / folder).rglob("*.py")):
        reached = _imported_subpackages(path) - ALLOWED[folder] - {folder}
        if reached:
            wrong[str(path.relative_to(REPO))] = sorted(reached)
    assert not wrong, f"{folder} may import only {sorted(ALLOWED[folder])}: {wrong}"


# ------------------------------------------------------------------ no import cycles

def _module_files() -> dict[str, Path]:
    """Dotted name (as installed, `forcebeam.<folder>...`) -> file, for every module."""
    modules = {}
    for folder in ALLOWED:
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(("forcebeam", *parts))] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Dotted names a module imports when it runs: module level and inside functions alike;
    `if TYPE_CHECKING:` blocks never run, so they are left out. `from a import b` gives
    `a.b`: the module b, or (b being a name in it) the module a."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (each name resolved to the longest module
    that exists: `forcebeam.auth.get_client` is the package `forcebeam.auth`)."""
    files = _module_files()
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = set()
        for name in _imported_names(tree, module, path.name == "__init__.py"):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> ... -> a) per strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_path_around(graph, group) for group in groups]


def _path_around(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest import path from the group's first module back to itself."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & group):
            if target == start:
                return [*paths[node], start]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group has one


def test_no_module_imports_itself_through_others():
    """Import cycles make import order matter and hide which module owns what: none."""
    cycles = _cycles(_import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_sees_function_level_imports(tmp_path):
    """The check must see `import` inside a function (how a cycle is usually hidden) and
    must not count what only a type checker reads."""
    tree = ast.parse("from typing import TYPE_CHECKING\n"
                     "if TYPE_CHECKING:\n    from forcebeam.auth.client import Client\n"
                     "def late():\n    from forcebeam.pipelines.run import run_file\n"
                     "    from . import sibling\n")
    names = _imported_names(tree, "forcebeam.pipelines.demo", is_package=False)
    assert "forcebeam.pipelines.run.run_file" in names
    assert "forcebeam.pipelines.sibling" in names
    assert not any(name.startswith("forcebeam.auth") for name in names)
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
