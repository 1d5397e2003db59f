"""Register plugins the way an installed package does: a *.dist-info with entry_points.txt
on sys.path (forcebeam's registries read entry points only)."""

from __future__ import annotations

from pathlib import Path

import pytest


def install_entry_points(directory: Path, monkeypatch: pytest.MonkeyPatch,
                         group: str, entries: dict[str, str], name: str = "test-plugin") -> None:
    """Make ``entries`` (name -> "module:attr") visible in entry point ``group``."""
    dist = directory / f"{name.replace('-', '_')}-1.0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{key} = {target}\n" for key, target in entries.items())
    (dist / "entry_points.txt").write_text(f"[{group}]\n{lines}")
    monkeypatch.syspath_prepend(str(directory))
