"""One benchmark figure and the bookkeeping around it (timer + the org's own counters).

API calls and logins come from the emulator's counters (admin API), not from the client
under test: the server-side count is the one a Salesforce admin sees in the org's limits,
and it cannot be flattered by a client that forgets to count a retry.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tests.support.org import EmulatedOrg


@dataclass
class Measurement:
    """What one method achieved on one (profile, size) cell."""

    method: str
    profile: str
    size: int
    rows: int = 0
    seconds: float = 0.0
    api_calls: int | None = None
    logins: int | None = None
    api_calls_by_kind: dict[str, int] = field(default_factory=dict)
    peak_rss_bytes: int | None = None
    bulk_query_jobs: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def rows_per_second(self) -> float | None:
        if self.error or not self.seconds:
            return None
        return self.rows / self.seconds

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows_per_second"] = self.rows_per_second
        return data


def measure(org: EmulatedOrg, method: str, profile: str, size: int,
            run: Callable[[], tuple[int, dict[str, Any]]]) -> Measurement:
    """Time `run()` (-> rows, extra facts) with the org's counters reset just before it.

    A failing method becomes a Measurement with `error` set (the table shows it) instead of
    aborting the whole benchmark: one broken baseline must not hide the other figures.
    """
    result = Measurement(method=method, profile=profile, size=size)
    org.reset_counters()
    started = time.perf_counter()
    try:
        result.rows, result.extra = run()
    except Exception as exc:  # reported in the table, traceback kept in the JSON
        result.error = f"{type(exc).__name__}: {exc}"[:500]
        result.extra["traceback"] = traceback.format_exc()[-4000:]
    result.seconds = time.perf_counter() - started
    counters = org.counters()
    calls = dict(counters.get("api_calls", {}))
    result.api_calls = int(calls.pop("total", 0))
    result.api_calls_by_kind = {kind: int(n) for kind, n in calls.items() if n}
    result.logins = int(counters.get("logins", {}).get("total", 0))
    result.bulk_query_jobs = int(counters.get("bulk_jobs", {}).get("query", 0))
    if result.error is None and result.rows != size and result.extra.get("expect_all_rows", True):
        result.error = f"read {result.rows} rows, expected {size}"
    return result
