"""5% of calls answering 503 or losing their connection, during extracts and writes.

Both are what a busy org or a flaky network does; both must be retried without losing a row
and — the hard part — without emitting or writing any row twice (a page re-fetched after a
cut must not repeat the rows already emitted; a write retried after a refused call must not
insert twice). Faults are seeded, so a failure here reproduces.
"""

from __future__ import annotations

import pytest

from tests.support.faults import (
    assert_exact,
    assert_written_exactly,
    injected,
    new_accounts,
    run_read,
    run_write,
    set_faults,
)
from tests.support.stages import connection_mapping
from tests.support.truth import rest_records

RECORDS = 8000
WRITES = 1000
FAULTS = {"503": {"http_503_rate": 0.05}, "dropped": {"drop_connection_rate": 0.05}}
# Seed 715 makes the 5% streams hit early (503 at calls 2, 4, 14; drops at calls 4, 5, 8, 15,
# 19 — two drops in a row included), so even a read or write of a handful of calls is hit.
SEED = 715
INJECTED_KIND = {"503": "http_503", "dropped": "drop_connection"}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("mode", ["bulk", "rest"])
def test_extract_is_exact_when_5_percent_of_calls_fail(org_factory, tmp_path, fault, mode):
    org = org_factory(records=RECORDS)
    truth = rest_records(org, "SELECT Id, Name FROM Account")
    set_faults(org, seed=SEED, **FAULTS[fault])

    rows = run_read(tmp_path / "out", connection_mapping(org), sobject="Account",
                    fields=["Id", "Name"], mode=mode, split=4)

    assert injected(org).get(INJECTED_KIND[fault], 0) >= 1, "the fault must have happened"
    assert_exact(rows, truth)


# A 503 is a definite "not done": an insert may be resent. A dropped connection is not: the
# org may have written the rows before the cut, so only an idempotent write (upsert by an
# external id) can be resent safely — that is the write users are told to use.
WRITE_OPERATION = {"503": {"operation": "insert"},
                   "dropped": {"operation": "upsert", "external_id_field": "External_Id__c"}}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("mode", ["rest", "bulk"])
def test_write_is_exact_when_5_percent_of_calls_fail(org_factory, tmp_path, fault, mode):
    org = org_factory(records=100)
    tag = f"TRANSIENT{fault.upper()}{mode.upper()}"
    records = new_accounts(tag, WRITES)
    set_faults(org, seed=SEED, **FAULTS[fault])

    written, failed = run_write(tmp_path / "out", connection_mapping(org), records,
                                sobject="Account", mode=mode, **WRITE_OPERATION[fault])

    assert injected(org).get(INJECTED_KIND[fault], 0) >= 1, "the fault must have happened"
    set_faults(org)  # check the result on a healthy org
    assert failed == [], f"{len(failed)} rows failed, e.g. {failed[:2]}"
    assert_written_exactly(org, tag, records, written)
