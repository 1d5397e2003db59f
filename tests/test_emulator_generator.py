"""The emulator's generated data set: deterministic, proportional, realistic enough to hurt.

A user relies on the same `--records N --seed S` always giving the same org (benchmarks and
tests compare runs), on soft-deleted rows existing only for queryAll, and on text values
that exercise CSV/JSON edge cases (commas, quotes, newlines, non-ASCII).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from forcebeam.emulator.records.generator import DELETED_EVERY
from forcebeam.emulator.records.store import RecordStore, database_file
from forcebeam.emulator.state.identity import INTEGRATION_USER_ID, MTLS_USER_ID

RECORDS = 2000


def dump(path: Path, table: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY _row').fetchall()  # noqa: S608


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    first = RecordStore(tmp_path / "a", records=RECORDS, seed=1)
    again = RecordStore(tmp_path / "b", records=RECORDS, seed=1)
    other = RecordStore(tmp_path / "c", records=RECORDS, seed=2)
    for table in ("Account", "Contact", "Invoice__c"):
        assert dump(first.path, table) == dump(again.path, table)
    assert dump(first.path, "Account") != dump(other.path, "Account")
    # ids do not depend on the seed: row n of Account is always the same id
    assert [r[1] for r in dump(first.path, "Account")] == [r[1] for r in dump(other.path,
                                                                              "Account")]


def test_counts_are_proportional_and_deleted_rows_extra(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, records=RECORDS, seed=3)
    live = {name: store.execute(f"SELECT COUNT() FROM {name}").total_size  # noqa: S608
            for name in ("Account", "Contact", "Opportunity", "Lead", "Case", "Invoice__c")}
    assert live == {"Account": RECORDS, "Contact": RECORDS // 2, "Opportunity": RECORDS // 4,
                    "Lead": RECORDS // 20, "Case": RECORDS // 20, "Invoice__c": RECORDS // 10}
    all_accounts = store.execute("SELECT COUNT() FROM Account", include_deleted=True).total_size
    assert all_accounts == RECORDS + RECORDS // (DELETED_EVERY - 1)


def test_seeded_users_match_the_server_core_identities(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, records=10)
    users = {row[0]: row[1] for row in store.execute("SELECT Id, Username FROM User").rows}
    assert INTEGRATION_USER_ID in users and MTLS_USER_ID in users
    owners = {row[0] for row in store.execute("SELECT OwnerId FROM Account").rows}
    assert owners <= set(users)


def test_text_values_cover_csv_and_json_edge_cases(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, records=500)
    descriptions = {row[0] for row in store.execute("SELECT Description FROM Account").rows}
    assert any(d and "\n" in d for d in descriptions)
    assert any(d and '"' in d for d in descriptions)
    assert any(d and "," in d for d in descriptions)
    assert any(d and any(ord(c) > 127 for c in d) for d in descriptions)
    assert None in descriptions


def test_timestamps_spread_over_time(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, records=1000)
    stamps = sorted(row[0] for row in store.execute("SELECT SystemModstamp FROM Account").rows)
    assert (stamps[-1] - stamps[0]).days > 365
    created_vs_modified = list(store.execute("SELECT CreatedDate, LastModifiedDate FROM Account")
                               .rows)
    assert all(created <= modified for created, modified in created_vs_modified)


def test_restart_reuses_the_cached_database(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, records=300, seed=5)
    result = store.write("Account", "insert", [{"Name": "Survives restart"}])
    store.close()
    path = database_file(tmp_path, 300, 5)
    reopened = RecordStore(tmp_path, records=300, seed=5)
    assert reopened.path == path
    rows = list(reopened.execute(
        f"SELECT Name FROM Account WHERE Id = '{result[0].id}'").rows)  # noqa: S608
    assert rows == [("Survives restart",)]  # a rebuild would have lost the write
