"""Beam metrics for the Salesforce stages, and rate-limited progress logging.

Why deltas: the API client is shared by every DoFn in a worker process (one login per
process), so its ``stats`` are process totals. Each DoFn reports only the growth since the
last report made by *any* DoFn of the process (a lock-guarded snapshot), so the pipeline's
``api_calls`` counter sums to the real number of calls, never a multiple of it.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from apache_beam.metrics import Metrics

__all__ = ["NAMESPACE", "StageCounters", "StatsLedger", "ProgressLog", "PlannedRows"]

NAMESPACE = "forcebeam"
LOG = logging.getLogger("forcebeam.progress")
PROGRESS_EVERY_SECONDS = 5.0

_STAT_COUNTERS = {"api_calls": "api_calls", "logins": "logins",
                  "throttled_seconds": "cumulativeThrottlingSeconds"}


class StageCounters:
    """The counters of ARCHITECTURE §4, created in ``setup()`` of each DoFn."""

    def __init__(self) -> None:
        self.records_read = Metrics.counter(NAMESPACE, "records_read")
        self.records_written = Metrics.counter(NAMESPACE, "records_written")
        self.records_failed = Metrics.counter(NAMESPACE, "records_failed")
        self.read_units = Metrics.counter(NAMESPACE, "read_units")
        self._from_stats = {stat: Metrics.counter(NAMESPACE, name)
                            for stat, name in _STAT_COUNTERS.items()}

    def sync_client(self, client: Any) -> None:
        """Add the client's API calls / logins / throttled seconds since the last sync."""
        for stat, counter in self._from_stats.items():
            # also 0: every counter shows up in the results
            counter.inc(_SYNCED.claim(client, stat))


class StatsLedger:
    """The growth of a client's ``stats`` since the last claim made in this process.

    One ledger per purpose (Beam metrics, a replication's manifest): each claim takes what
    no earlier claim on the same ledger took, so the claims of every DoFn of every process
    add up to each call once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Per client object (weakly held: a closed client's successor never inherits its
        # totals).
        self._seen: weakref.WeakKeyDictionary[Any, dict[str, float]] = \
            weakref.WeakKeyDictionary()

    def claim(self, client: Any, stat: str = "api_calls") -> int:
        stats = getattr(client, "stats", None)
        if stats is None:
            return 0
        with self._lock:
            seen = self._seen.setdefault(client, {})
            delta = max(int(_stat_value(stats, stat) - seen.get(stat, 0)), 0)
            seen[stat] = seen.get(stat, 0) + delta
            return delta


_SYNCED = StatsLedger()


def _stat_value(stats: Any, name: str) -> float:
    return float(getattr(stats, name))


class ProgressLog:
    """Process-wide ``rows so far / expected, rows/s`` lines, at most every ~5 s."""

    _lock = threading.Lock()
    _rows = 0
    _expected = 0
    _started = 0.0
    _last = 0.0

    @classmethod
    def expect(cls, rows: int) -> None:
        with cls._lock:
            if not cls._started:
                cls._started = cls._last = time.monotonic()
            cls._expected += max(rows, 0)

    @classmethod
    def add(cls, rows: int) -> None:
        with cls._lock:
            cls._rows += rows
            now = time.monotonic()
            if not cls._started:
                cls._started = cls._last = now
            if now - cls._last < PROGRESS_EVERY_SECONDS:
                return
            cls._last = now
            rate = cls._rows / max(now - cls._started, 1e-6)
            LOG.info("read %d of ~%d rows in this process (%.0f rows/s)",
                     cls._rows, cls._expected, rate)


class PlannedRows:
    """Rows each read's plan expects, by the name its pipeline gives the read (per process).

    Planning learns a read's size at no cost: its Bulk job's ``numberRecordsProcessed``, or
    the ``COUNT()`` that auto mode and Id ranges make anyway. ``forcebeam run``'s progress
    line ("rows of N") reads it here instead of spending an API call on a count of its own.
    """

    _lock = threading.Lock()
    _rows: dict[str, int] = {}

    @classmethod
    def record(cls, name: str, rows: int) -> None:
        with cls._lock:
            cls._rows[name] = rows

    @classmethod
    def get(cls, name: str) -> int | None:
        with cls._lock:
            return cls._rows.get(name)

    @classmethod
    def forget(cls) -> None:
        """A new run starts: plans of earlier runs in this process are not its plans."""
        with cls._lock:
            cls._rows.clear()
