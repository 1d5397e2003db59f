"""Plugins by name, from entry points: the one registry behind auth flows, secret providers,
subject token sources and stages.

setup.py's ``entry_points`` is the single list of what forcebeam itself registers; our own
plugins are found exactly like anyone's, so there is no second table to keep in step. The
entry points are read again on every lookup of a name not loaded yet (a plugin installed, or
put on ``sys.path``, is usable at once); what was loaded stays loaded for the process.
"""

from __future__ import annotations

import threading
from importlib import metadata
from typing import Any


class PluginRegistry:
    """The plugins of one entry-point group. ``load`` raises KeyError for unknown names;
    each caller words that error for its own users (auth type, secret scheme, stage)."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._lock = threading.Lock()
        self._loaded: dict[str, Any] = {}

    def entry_points(self) -> dict[str, metadata.EntryPoint]:
        """Name -> entry point; the first registration of a name wins."""
        found: dict[str, metadata.EntryPoint] = {}
        for entry in metadata.entry_points(group=self.group):
            found.setdefault(entry.name, entry)
        return found

    def names(self) -> list[str]:
        return sorted(self.entry_points())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._loaded or name in self.entry_points())

    def load(self, name: str) -> Any:
        """The object ``name`` registers (imported on first use, then kept)."""
        with self._lock:
            if name not in self._loaded:
                entry = self.entry_points().get(name)
                if entry is None:
                    raise KeyError(name)
                self._loaded[name] = entry.load()
            return self._loaded[name]
