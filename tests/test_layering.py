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
