"""5% of calls answering 503 or losing their connection, during extracts and writes.

Both are what a busy org or a flaky network does; both must be retried without losing a row
and — the hard part — without emitting or writing any row twice (a page re-fetched after a
cut must not repeat the rows already emitted; a write retried after a refused call must not
insert twice). Faults are seeded, so a failure here reproduces.
"""

from __future__ import annotations

import pytest

from tests.test_faults_support import (
    assert_exact,
    assert_written_exactly,
    connection_mapping,
    injected,
    new_accounts,
    rest_records,
    run_read,
    run_write,
    set_faults,
)

RECORDS = 8000
WRITES = 1000
FAULTS = {"503": {"http_503_rate": 0.05}, "dropped": {"drop_connection_rate": 0.05}}
INJECTED_KIND = {"503": "http_503", "dropped": "drop_connection"}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("mode", ["bulk", "rest"])
def test_extract_is_exact_when_5_percent_of_calls_fail(org_factory, tmp_path, fault, mode):
    org = org_factory(records=RECORDS)
    truth = rest_records(org, "SELECT Id, Name FROM Account")
    set_faults(org, seed=11, **FAULTS[fault])

    rows = run_read(tmp_path / "out", connection_mapping(org), sobject="Account",
                    fields=["Id", "Name"], mode=mode, split=4)

    assert injected(org).get(INJECTED_KIND[fault], 0) >= 1, "the fault must have happened"
    assert_exact(rows, truth)


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("mode", ["rest", "bulk"])
def test_write_is_exact_when_5_percent_of_calls_fail(org_factory, tmp_path, fault, mode):
    org = org_factory(records=100)
    tag = f"TRANSIENT{fault.upper()}{mode.upper()}"
    records = new_accounts(tag, WRITES)
    set_faults(org, seed=5, **FAULTS[fault])

    written, failed = run_write(tmp_path / "out", connection_mapping(org), records,
                                sobject="Account", operation="insert", mode=mode)

    assert injected(org).get(INJECTED_KIND[fault], 0) >= 1, "the fault must have happened"
    set_faults(org)  # check the result on a healthy org
    assert failed == [], f"{len(failed)} rows failed, e.g. {failed[:2]}"
    assert_written_exactly(org, tag, records, written)
