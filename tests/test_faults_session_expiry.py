"""Sessions expiring every 2 s while a multi-page extract is paging through its results.

This is where peers lose data: simple-salesforce re-logs-in on REST but not while paging
Bulk results, and a client that restarts a page from scratch emits its first rows twice. The
emulator expires every session in use every 2 s (REST answers 401 INVALID_SESSION_ID, Bulk
400 InvalidSessionId); the latency makes each call slow enough that expiries land between
and inside the pages of every read unit.
"""

from __future__ import annotations

import pytest

from tests.support.faults import assert_exact, injected, run_read, set_faults
from tests.support.stages import connection_mapping
from tests.support.truth import rest_records

RECORDS = 12_000
EXPIRY_SECONDS = 2
LATENCY_MS = 400
BULK_PAGE = 2000  # small pages: a CI-sized org still pages many times


@pytest.mark.parametrize("mode", ["bulk", "rest"])
def test_extract_survives_sessions_expiring_every_2_seconds(org_factory, tmp_path, mode):
    org = org_factory(records=RECORDS)
    truth = rest_records(org, "SELECT Id, Name FROM Account")
    assert len(truth) == RECORDS
    set_faults(org, seed=3, expire_sessions_every_seconds=EXPIRY_SECONDS, latency_ms=LATENCY_MS)
    org.reset_counters()

    rows = run_read(tmp_path / "out", connection_mapping(org), sobject="Account",
                    fields=["Id", "Name"], mode=mode, split=2,
                    **({"bulk_page_size": BULK_PAGE} if mode == "bulk" else {}))

    counters = org.counters()
    expired = injected(org).get("session_expired", 0)
    assert expired >= 2, f"the run must outlast several expiries (saw {expired})"
    pages = counters["api_calls"].get("bulk_results" if mode == "bulk" else "rest_query", 0)
    assert pages >= 4, f"a multi-page extract: {counters['api_calls']}"
    assert_exact(rows, truth)
    # One re-login per expiry at most (plus the first login): no refresh storms.
    assert counters["logins"]["total"] <= expired + 1, (counters["logins"], expired)

