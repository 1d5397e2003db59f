"""The emulator's own layers point one way: the wire (HTTP handlers, middlewares) calls the
org's state, records and Bulk backends, never the other way round; so a backend can be read,
tested and changed without aiohttp, and a new API's handlers cannot leak into the model."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

EMULATOR = Path(__file__).resolve().parents[1] / "emulator"
#: Layers below the wire, and the emulator modules none of them may import.
LOWER_LAYERS = ("state", "records", "bulk")
UPPER = ("forcebeam.emulator.wire", "forcebeam.emulator.app", "forcebeam.emulator.cli")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, also inside functions and TYPE_CHECKING."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


@pytest.mark.parametrize("layer", LOWER_LAYERS)
def test_lower_layers_never_import_the_wire(layer):
    wrong = [f"{path.relative_to(EMULATOR.parent)}:{line} imports {module}"
             for path in sorted((EMULATOR / layer).rglob("*.py"))
             for line, module in _imports(path)
             if module.startswith(UPPER)]
    assert not wrong, "\n".join(wrong)


def test_lower_layers_never_import_aiohttp():
    """HTTP belongs to the wire: a backend that needs aiohttp is doing a handler's job."""
    wrong = [f"{path.relative_to(EMULATOR.parent)}:{line} imports {module}"
             for layer in LOWER_LAYERS for path in sorted((EMULATOR / layer).rglob("*.py"))
             for line, module in _imports(path) if module.split(".")[0] == "aiohttp"]
    assert not wrong, "\n".join(wrong)
