"""The API quota guard (`max_api_usage: 80%` on a connection) against the org's daily limit.

A shared org's daily API limit is shared with every other integration; a big extract must
stop itself before it eats their share. The guard is client-side (it reads
`Sforce-Limit-Info`), so the proof is server-side: the org's own usage after the stopped run
is at or under 80% of its limit, the org never had to refuse a call, and the run stopped with
a message that says which setting stopped it.
"""

from __future__ import annotations

import math

import pytest

from tests.support.faults import api_usage, assert_exact, run_read, set_faults
from tests.support.stages import connection_mapping
from tests.support.truth import rest_records

RECORDS = 5000
GUARD = "80%"


def test_quota_guard_stops_a_read_at_80_percent_of_the_daily_limit(org_factory, tmp_path):
    org = org_factory(records=RECORDS)
    truth = rest_records(org, "SELECT Id, Name FROM Account")
    guarded = connection_mapping(org, max_api_usage=GUARD)
    read = {"sobject": "Account", "fields": ["Id", "Name"], "mode": "rest"}

    # Far below the guard it changes nothing: the read is complete and exact.
    org.reset_counters()
    assert_exact(run_read(tmp_path / "clean", guarded, **read), truth)
    calls_per_run = org.counters()["api_calls"]["total"]
    assert calls_per_run >= 4, f"a multi-page REST read makes several calls: {calls_per_run}"

    # Lower the daily limit so that 80% of it falls in the middle of the next run.
    used_before, _ = api_usage(org)
    ceiling = used_before + calls_per_run // 2
    daily_limit = math.ceil(ceiling * 100 / 80)
    set_faults(org, daily_api_limit=daily_limit)
    ceiling = int(daily_limit * 80 / 100)
    org.reset_counters()

    with pytest.raises(Exception) as caught:  # noqa: B017 - Beam may wrap ApiQuotaExceeded
        run_read(tmp_path / "guarded", guarded, **read)

    message = str(caught.value)
    assert "max_api_usage" in message and GUARD in message, message
    used_after, reported_limit = api_usage(org)
    assert reported_limit == daily_limit
    used_by_run = used_after - 1 - used_before  # minus the api_usage() call itself
    assert used_by_run > 0, "the run must have started before the guard stopped it"
    assert used_after - 1 <= ceiling, (
        f"org usage {used_after - 1} passed the guard's ceiling {ceiling} of {daily_limit}")
    assert "REQUEST_LIMIT_EXCEEDED" not in message, "the guard, not the org, must stop the run"
