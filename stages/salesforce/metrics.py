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

__all__ = ["NAMESPACE", "StageCounters", "ProgressLog"]

NAMESPACE = "forcebeam"
LOG = logging.getLogger("forcebeam.progress")
PROGRESS_EVERY_SECONDS = 5.0

_STATS_LOCK = threading.Lock()
# Per client object (weakly held: a closed client's successor never inherits its totals).
_STATS_SEEN: weakref.WeakKeyDictionary[Any, dict[str, float]] = weakref.WeakKeyDictionary()
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
        stats = getattr(client, "stats", None)
        if stats is None:
            return
        with _STATS_LOCK:
            seen = _STATS_SEEN.setdefault(client, {})
            for stat, counter in self._from_stats.items():
                value = _stat_value(stats, stat)
                delta = max(int(value - seen.get(stat, 0)), 0)
                counter.inc(delta)      # also 0: every counter shows up in the results
                seen[stat] = seen.get(stat, 0) + delta


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
