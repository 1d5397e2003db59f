"""UNABLE_TO_LOCK_ROW on writes: transient per-record failures retried, nothing doubled.

Row-lock contention (another job touching the same parent records) is the commonest write
failure on a busy org, and it is transient: the record is fine, the moment was not. It must
be retried — not sent to the dead letter, not dropped — and a retry must never insert a row
that already succeeded in the same batch.
"""

from __future__ import annotations

import pytest

from tests.support.faults import (
    assert_written_exactly,
    injected,
    new_accounts,
    run_write,
    set_faults,
)
from tests.support.stages import connection_mapping

WRITES = 1000
LOCK_RATE = 0.05


@pytest.mark.parametrize("mode", ["rest", "bulk"])
def test_rows_failing_with_unable_to_lock_row_are_retried_exactly_once(org_factory, tmp_path,
                                                                       mode):
    org = org_factory(records=100)
    tag = f"LOCKROW{mode.upper()}"
    records = new_accounts(tag, WRITES)
    set_faults(org, seed=9, unable_to_lock_row_rate=LOCK_RATE)

    written, failed = run_write(tmp_path / "out", connection_mapping(org), records,
                                sobject="Account", operation="insert", mode=mode)

    locked = injected(org).get("lock_row", 0)
    assert locked >= 10, f"about {LOCK_RATE:.0%} of {WRITES} rows must have been refused: {locked}"
    set_faults(org)
    assert failed == [], f"{len(failed)} transient failures reached the dead letter: {failed[:2]}"
    assert_written_exactly(org, tag, records, written)
