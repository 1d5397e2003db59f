"""Bulk 2.0 ingest processing gives the same results whether rows are inserted in runs or
one by one, and those results follow from the uploaded rows.

What a user would notice: result files (ids, order, `sf__Created`, `sf__Error` codes and
messages, echoed cells) and stored records of an ingest job. The emulator inserts clean runs
of rows together (`emulator.records.writes._InsertRuns`) for speed; every job here is also
processed with runs switched off (every row through the per-row rules) on an identical org,
and the result files and stored rows must match byte for byte. The expectations are derived
from the inputs: which rows must fail and why, which Ids the successes get, what is stored.
"""

from __future__ import annotations

import csv
import io
import itertools
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from forcebeam.emulator.bulk import ingest
from forcebeam.emulator.bulk.jobs import IngestJob
from forcebeam.emulator.records import ids, writes
from forcebeam.emulator.records.store import RecordStore
from forcebeam.emulator.records.validation import WriteError

USER = "005000000000001AAA"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
HEADER = ["Name", "External_Id__c", "Phone", "NumberOfEmployees", "Description"]


class Org:
    """A private store with a clock that ticks on every reading (so the number and order
    of clock readings shows in the stamps) and the jobs run on it."""

    def __init__(self, root: Path) -> None:
        tick = itertools.count()
        self.root = root
        self.store = RecordStore(root, records=120, seed=3,
                                 now=lambda: T0 + timedelta(milliseconds=3 * next(tick)))
        self.jobs = itertools.count()

    def run(self, operation: str, sobject: str, header: list[str], rows: list[list[str]],
            external_id: str | None = None,
            fail_row: Callable[[int], Any] | None = None) -> dict[str, Any]:
        work = self.root / f"job{next(self.jobs)}"
        work.mkdir()
        upload = work / "upload.csv"
        with upload.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        job = IngestJob(id="750000000000001AAA", kind="ingest", operation=operation,
                        object=sobject, api_version="62.0", created_by_id=USER,
                        external_id_field=external_id, work_dir=work, uploads=[upload])
        ingest.process_ingest_job(job, self.store, fail_row)
        files = {name: (work / f"{name}.csv").read_bytes()
                 for name in ("successfulResults", "failedResults", "unprocessedrecords")}
        return {"files": files, "failed": job.number_records_failed,
                "processed": job.number_records_processed,
                "ok": _rows(files["successfulResults"]), "errors": _rows(files["failedResults"])}

    def table(self, sobject: str) -> list[dict[str, Any]]:
        with sqlite3.connect(self.store.path) as conn:
            conn.row_factory = sqlite3.Row
            sql = f'SELECT * FROM "{sobject}" ORDER BY _row'  # noqa: S608 - test's own names
            return [dict(r) for r in conn.execute(sql)]

    def next_serial(self, sobject: str) -> int:
        return max(r["_row"] for r in self.table(sobject)) + 1


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def _account_row(i: int, tag: str) -> tuple[list[str], str | None]:
    """An upload row and the error code it must get (one defect at most per row)."""
    row = [f"{tag} {i}", f"{tag}-{i:04d}", f"+1 555 {i}", str(i % 50), f"row {i}"]
    kind = i % 23
    if kind == 3:
        row[0] = ""                      # Name absent: required
        return row, "REQUIRED_FIELD_MISSING"
    if kind == 5:
        row[0] = "#N/A"                  # Name set to null: required
        return row, "REQUIRED_FIELD_MISSING"
    if kind == 7:
        row[3] = "many"
        return row, "INVALID_TYPE_ON_FIELD_IN_RECORD"
    if kind == 11:
        row[0] = "n" * 256               # Name is 255 long
        return row, "STRING_TOO_LONG"
    if kind == 13:
        row[2] = "#N/A"                  # a null that is fine
    if kind == 17:
        row[4] = ""                      # left out
    return row, None


def _jobs(org: Org, fail_row: Callable[[int], Any] | None) -> dict[str, dict[str, Any]]:
    """The representative jobs, in order, on `org`."""
    done: dict[str, dict[str, Any]] = {}
    inserts = [_account_row(i, "ins")[0] for i in range(400)]
    inserts[101][1] = inserts[100][1].upper()        # a clash with a row just inserted
    done["insert"] = org.run("insert", "Account", HEADER, inserts, fail_row=fail_row)
    upserts = [_account_row(i, "ups")[0] for i in range(300)]
    upserts += [row[:] for row in inserts[::4]]       # some match the records inserted above
    upserts[10][1] = upserts[11][1]                   # a duplicate external id in the batch
    done["upsert"] = org.run("upsert", "Account", HEADER, upserts, "External_Id__c",
                             fail_row=fail_row)
    contacts = [[f"Last {i}", f"First {i}", f"c{i}@example.com",
                 f"ins-{i:04d}" if i % 7 else "no-such-account"] for i in range(0, 200, 2)]
    done["contacts"] = org.run("insert", "Contact",
                               ["LastName", "FirstName", "Email", "Account.External_Id__c"],
                               contacts, fail_row=fail_row)
    created = [row["sf__Id"] for row in done["insert"]["ok"]]
    done["update"] = org.run("update", "Account", ["Id", "Name", "NumberOfEmployees"],
                             [[record_id, f"renamed {n}", "x" if n % 9 == 0 else str(n)]
                              for n, record_id in enumerate(created[:60])], fail_row=fail_row)
    done["delete"] = org.run("delete", "Account", ["Id"],
                             [[record_id] for record_id in created[60:90]], fail_row=fail_row)
    return done


def _lock_failures() -> Callable[[int], WriteError | None]:
    """A `fail_row` with state, as the fault injector's: every 11th draw fails."""
    draws = itertools.count()
    return lambda _index: WriteError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access",
                                     []) if next(draws) % 11 == 10 else None


@pytest.fixture(params=[False, True], ids=["clean", "lock-failures"])
def both_ways(request, tmp_path_factory, monkeypatch) -> tuple[Org, dict, dict]:
    """The jobs on two identical orgs: with runs (the default) and row by row."""
    monkeypatch.setattr(ingest, "WRITE_BATCH_ROWS", 150)   # several batches per job
    outcomes = []
    for runs in (True, False):
        monkeypatch.setattr(writes, "INSERT_RUNS", runs)
        org = Org(tmp_path_factory.mktemp("runs" if runs else "rows"))
        outcomes.append((org, _jobs(org, _lock_failures() if request.param else None)))
    (fast_org, fast), (slow_org, slow) = outcomes
    return fast_org, fast, {"slow": slow, "slow_org": slow_org}


def test_runs_change_nothing(both_ways):
    fast_org, fast, other = both_ways
    for name, outcome in fast.items():
        assert outcome["files"] == other["slow"][name]["files"], name
    for sobject in ("Account", "Contact"):
        assert fast_org.table(sobject) == other["slow_org"].table(sobject)


def test_insert_and_upsert_results_follow_from_the_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "WRITE_BATCH_ROWS", 150)
    org = Org(tmp_path)
    first_serial = org.next_serial("Account")
    rows = [_account_row(i, "ins") for i in range(400)]
    uploaded = [row for row, _ in rows]
    uploaded[101][1] = uploaded[100][1].upper()
    expected = [code for _, code in rows]
    expected[101] = "DUPLICATE_VALUE"
    outcome = org.run("insert", "Account", HEADER, uploaded)

    failed_codes = [row["sf__Error"].split(":")[0] for row in outcome["errors"]]
    assert failed_codes == [code for code in expected if code]
    assert outcome["failed"] == len(failed_codes) and outcome["processed"] == 400
    assert _rows(outcome["files"]["unprocessedrecords"]) == []
    ok_inputs = [row for row, code in zip(uploaded, expected, strict=True) if code is None]
    # Successes in upload order, with consecutive new Ids, echoing the cells as sent.
    assert [row["sf__Id"] for row in outcome["ok"]] == [
        ids.make_id("001", first_serial + n) for n in range(len(ok_inputs))]
    assert all(row["sf__Created"] == "true" for row in outcome["ok"])
    assert [[row[name] for name in HEADER] for row in outcome["ok"]] == ok_inputs
    stored = {r["Id"]: r for r in org.table("Account")}
    stamps = []
    for result, cells in zip(outcome["ok"], ok_inputs, strict=True):
        record = stored[result["sf__Id"]]
        assert record["Name"] == cells[0] and record["External_Id__c"] == cells[1]
        assert record["Phone"] == (None if cells[2] == "#N/A" else cells[2])
        assert record["NumberOfEmployees"] == int(cells[3])
        assert record["Description"] == (cells[4] or None)
        assert record["OwnerId"] == USER and record["CreatedById"] == USER
        assert record["IsDeleted"] == 0
        assert record["CreatedDate"] == record["LastModifiedDate"] == record["SystemModstamp"]
        stamps.append(record["CreatedDate"])
    assert stamps == sorted(set(stamps))   # one clock reading per record, in upload order
    too_long = next(row for row in outcome["errors"] if row["Name"].startswith("nnn"))
    assert too_long["sf__Error"] == (
        f"STRING_TOO_LONG:Account Name: data value too large: {'n' * 100} (max length=255)"
        ":Name --")

    # Upsert: known keys update their record, new ones insert after the last insert, keys
    # twice in the batch fail both rows.
    by_key = {row["External_Id__c"].lower(): row["sf__Id"] for row in outcome["ok"]}
    upserts = [_account_row(i, "ups")[0] for i in range(60)] + [row[:] for row in ok_inputs[:40]]
    upserts[5][1] = upserts[6][1]
    upserts[70][2] = "#N/A"
    next_serial = org.next_serial("Account")
    result = org.run("upsert", "Account", HEADER, upserts, "External_Id__c")
    created, refused = [], []
    for row in upserts:
        key = row[1].lower()
        twice = sum(other[1].lower() == key for other in upserts) > 1
        if twice:
            refused.append(("DUPLICATE_EXTERNAL_ID", row))
        elif row[0] in ("", "#N/A") or row[3] == "many" or len(row[0]) > 255:
            refused.append(("?", row))
        else:
            created.append((key not in by_key, row))
    assert [(r["sf__Error"].split(":")[0], [r[n] for n in HEADER]) for r in result["errors"]
            if r["sf__Error"].startswith("DUPLICATE_EXTERNAL_ID")] == [
        (code, row) for code, row in refused if code == "DUPLICATE_EXTERNAL_ID"]
    new_ids = iter(ids.make_id("001", next_serial + n) for n in range(len(upserts)))
    assert [(r["sf__Id"], r["sf__Created"], [r[n] for n in HEADER]) for r in result["ok"]] == [
        (next(new_ids) if new else by_key[row[1].lower()], "true" if new else "false", row)
        for new, row in created]
    stored = {r["Id"]: r for r in org.table("Account")}
    updated = stored[by_key[upserts[70][1].lower()]]
    assert updated["Phone"] is None and updated["Name"] == upserts[70][0]


def test_parents_by_external_id_and_unknown_columns(tmp_path):
    org = Org(tmp_path)
    accounts = org.run("insert", "Account", ["Name", "External_Id__c"],
                       [[f"Parent {i}", f"par-{i}"] for i in range(20)])
    parent_ids = {row["External_Id__c"]: row["sf__Id"] for row in accounts["ok"]}
    contacts = [[f"Last {i}", f"par-{i}" if i % 4 else f"gone-{i}"] for i in range(20)]
    outcome = org.run("insert", "Contact", ["LastName", "Account.External_Id__c"], contacts)
    assert [row["Account.External_Id__c"] for row in outcome["ok"]] == [
        row[1] for row in contacts if row[1].startswith("par-")]
    assert [row["sf__Error"] for row in outcome["errors"]] == [
        f"INVALID_FIELD:Foreign key external ID: {row[1]} not found for field External_Id__c "
        "in entity Account:AccountId --" for row in contacts if row[1].startswith("gone-")]
    stored = {r["Id"]: r for r in org.table("Contact")}
    for row in outcome["ok"]:
        assert stored[row["sf__Id"]]["AccountId"] == parent_ids[row["Account.External_Id__c"]]
        assert stored[row["sf__Id"]]["Name"] == row["LastName"]

    before = org.table("Account")
    with pytest.raises(ingest.IngestDataError, match="Field name not found : Bogus__c"):
        org.run("insert", "Account", ["Name", "Bogus__c"], [["x", "y"]])
    assert org.table("Account") == before
