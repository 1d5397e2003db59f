"""Live REST query locators (`nextRecordsUrl`): the SOQL and where each page starts.

A cursor keeps only the query and positions, never the rows: each page re-runs the query
from a keyset position (no ORDER BY) or an offset, so a 1M-row result costs no memory.
The registry is a bounded LRU; an evicted locator answers INVALID_QUERY_LOCATOR on the wire.
"""

from __future__ import annotations

import secrets
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field

from forcebeam.emulator.records.ids import BASE62

MAX_CURSORS = 500
MAX_ORDERED_CURSORS = 16  # each holds 8 bytes per result row


@dataclass
class QueryCursor:
    """What a nextRecordsUrl stands for: the SOQL and where each page starts."""

    soql: str
    include_deleted: bool
    total_size: int
    batch_size: int
    version: str
    keys: dict[int, int | None] = field(default_factory=dict)  # offset -> keyset position
    ordered: array | None = None  # ORDER BY queries: every row key, sorted once


class QueryCursors:
    """Live query locators (bounded LRU; an evicted one answers INVALID_QUERY_LOCATOR)."""

    def __init__(self) -> None:
        self._cursors: OrderedDict[str, QueryCursor] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, cursor: QueryCursor) -> str:
        locator = "01g" + "".join(secrets.choice(BASE62) for _ in range(15))
        with self._lock:
            self._cursors[locator] = cursor
            while len(self._cursors) > MAX_CURSORS:
                self._cursors.popitem(last=False)
            holding = [c for c in self._cursors.values() if c.ordered is not None]
            for old in holding[:-MAX_ORDERED_CURSORS]:
                old.ordered = None  # memory bound: older sorted cursors page by OFFSET
        return locator

    def get(self, locator: str) -> QueryCursor | None:
        with self._lock:
            cursor = self._cursors.get(locator)
            if cursor is not None:
                self._cursors.move_to_end(locator)
            return cursor
