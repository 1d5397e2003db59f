"""Upsert and unique-value lookups of the emulator's writes agree with a full scan of the org.

Writes look external ids and unique values up in bulk ahead of the rows (and keep those
lookups current as the call writes), instead of asking SQLite once per row. What a user would
notice if that went wrong: an upsert updating the wrong record or creating a duplicate, a
DUPLICATE_VALUE naming the wrong record, or one missed. So every step below goes through the
wire (Bulk 2.0, sObject Collections, REST, the admin API) and each outcome is compared with
what a full read of the org (queryAll of every Account) says it must be.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce

from tests.support.clients import read_csv, simple_salesforce
from tests.support.org import EmulatedOrg

EXT = "External_Id__c"




def fold(key: str) -> str:
    """Salesforce (and SQLite NOCASE) match external ids ignoring ASCII case."""
    return key.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                                       "abcdefghijklmnopqrstuvwxyz"))


def scan(sf: Salesforce) -> dict[str, list[str]]:
    """Full scan: every live Account's external id (folded) -> its ids, oldest first."""
    owners: dict[str, list[str]] = {}
    for row in sf.query_all_iter("SELECT Id, External_Id__c, IsDeleted FROM Account",
                                 include_deleted=True):
        if row[EXT] is not None and not row["IsDeleted"]:
            owners.setdefault(fold(row[EXT]), []).append(row["Id"])
    return {key: sorted(ids) for key, ids in owners.items()}   # ids sort in creation order


def lookup(sf: Salesforce, key: str) -> list[str]:
    """The index-backed lookup: GET /sobjects/Account/External_Id__c/{key}."""
    response = sf.session.get(f"{sf.base_url}sobjects/Account/{EXT}/{key}",
                              headers=sf.headers, timeout=30)
    if response.status_code == 404:
        return []
    if response.status_code == 300:
        return sorted(url.rsplit("/", 1)[-1] for url in response.json())
    response.raise_for_status()
    return [response.json()["Id"]]


def upsert_job(sf: Salesforce, tmp_path: Path, rows: list[dict[str, str]], name: str
               ) -> tuple[dict[str, Any], list[dict[str, str]], list[dict[str, str]]]:
    """Run one Bulk 2.0 upsert job on External_Id__c; (job info, successes, failures)."""
    path = tmp_path / f"{name}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    [outcome] = sf.bulk2.Account.upsert(csv_file=str(path), external_id_field=EXT)
    succeeded = read_csv(sf.bulk2.Account.get_successful_records(outcome["job_id"]))
    failed = read_csv(sf.bulk2.Account.get_failed_records(outcome["job_id"]))
    return outcome, succeeded, failed


@pytest.fixture
def private_org(org_factory) -> EmulatedOrg:
    return org_factory(records=200)


def test_lookups_agree_with_a_full_scan_after_mixed_writes(private_org, tmp_path):
    sf = simple_salesforce(private_org)

    # Bulk insert; the second "k-5" clashes (case-insensitively) with the row before it.
    rows = [{"Name": f"Mixed {i}", EXT: f"K-{i}"} for i in range(12)]
    rows.append({"Name": "Mixed clash", EXT: "k-5"})
    [inserted] = sf.bulk2.Account.insert(records=rows)
    created = read_csv(sf.bulk2.Account.get_successful_records(inserted["job_id"]))
    ids = {row[EXT]: row["sf__Id"] for row in created}
    [clash] = read_csv(sf.bulk2.Account.get_failed_records(inserted["job_id"]))
    assert clash["sf__Error"] == (f"DUPLICATE_VALUE:duplicate value found: {EXT} duplicates "
                                  f"value on record with id: {ids['K-5']}:{EXT} --")

    # One sObject Collections call: a key moves, the freed key is taken by the next item,
    # and the moved key is refused to a third record, naming the record that now holds it.
    response = sf.session.patch(f"{sf.base_url}composite/sobjects", headers=sf.headers,
                                timeout=30, json={"allOrNone": False, "records": [
        {"attributes": {"type": "Account"}, "id": ids["K-1"], EXT: "K-MOVED"},
        {"attributes": {"type": "Account"}, "id": ids["K-2"], EXT: "k-1"},
        {"attributes": {"type": "Account"}, "id": ids["K-3"], EXT: "K-2"},
        {"attributes": {"type": "Account"}, "id": ids["K-4"], EXT: "k-moved"}]})
    results = response.json()
    assert [r["success"] for r in results] == [True, True, True, False]
    assert results[3]["errors"][0]["message"] == (
        f"duplicate value found: {EXT} duplicates value on record with id: {ids['K-1']}")

    # Deletes through three paths, a purge of the Recycle Bin, and a touch.
    sf.Account.delete(ids["K-6"])
    [hard] = sf.bulk2.Account.hard_delete(records=[{"Id": ids["K-7"]}])
    assert hard["numberRecordsFailed"] == 0
    sf.Account.delete(ids["K-9"])
    assert private_org.admin("POST", "/records/Account/empty-recycle-bin",
                             json={"ids": [ids["K-9"]]}).status_code == 200
    assert private_org.admin("POST", "/records/Account/touch",
                             json={"ids": [ids["K-8"], ids["K-10"]]}).status_code == 200

    probes = ["K-0", "k-1", "K-2", "K-3", "K-4", "K-5", "K-6", "K-7", "K-8", "K-9", "K-10",
              "K-MOVED", "ACC-00000003", "acc-00000004", "NEW-1", "new-2"]
    before = scan(sf)
    for key in probes:
        assert lookup(sf, key) == before.get(fold(key), []), key

    # A Bulk upsert of every probe: each row updates exactly the record the scan names, or
    # creates one where the scan finds none (deleted and purged keys are free again).
    outcome, succeeded, failed = upsert_job(
        sf, tmp_path, [{EXT: key, "Name": f"Upserted {key}"} for key in probes], "probes")
    assert failed == [] and outcome["numberRecordsProcessed"] == len(probes)
    for row in succeeded:
        expected = before.get(fold(row[EXT]), [])
        assert row["sf__Created"] == ("false" if expected else "true"), row
        if expected:
            assert [row["sf__Id"]] == expected, row
    after = scan(sf)
    assert all(len(owners) == 1 for owners in after.values()), "no key is held twice"
    for key in probes:
        assert lookup(sf, key) == after[fold(key)], key


def test_upsert_job_of_20k_rows_reads_back_exactly(private_org, tmp_path):
    sf = simple_salesforce(private_org)
    before = scan(sf)
    rows: list[dict[str, str]] = []
    expected_errors: dict[int, str] = {}
    for i in range(20_000):
        key = f"ACC-{i + 1:08d}" if i < 250 else f"BIG-{i:06d}"   # the first 200 exist
        if i % 997 == 0:
            key = key.lower()
        row = {"Name": f"Big {i}", EXT: key, "Phone": f"+1 555 {i:07d}",
               "NumberOfEmployees": str(i % 5000), "Description": f"row {i}\nline two"}
        if i % 1999 == 1:
            row["NumberOfEmployees"] = "many"
            expected_errors[i] = "INVALID_TYPE_ON_FIELD_IN_RECORD"
        if i % 4999 == 7:
            row["Name"] = "#N/A"
            expected_errors[i] = "REQUIRED_FIELD_MISSING"
        rows.append(row)
    rows[9000] = dict(rows[300], Name="Big again")   # a key twice in one 10k-row batch
    expected_errors[300] = expected_errors[9000] = "DUPLICATE_EXTERNAL_ID"

    outcome, succeeded, failed = upsert_job(sf, tmp_path, rows, "big")
    assert outcome["numberRecordsProcessed"] == len(rows)
    assert outcome["numberRecordsFailed"] == len(expected_errors)
    assert sorted((tuple(r[k] for k in rows[0]), r["sf__Error"].split(":")[0], r["sf__Id"])
                  for r in failed) == sorted((tuple(rows[i].values()), code, "")
                                             for i, code in expected_errors.items())

    good = [row for i, row in enumerate(rows) if i not in expected_errors]
    assert [{k: v for k, v in row.items() if not k.startswith("sf__")} for row in succeeded] \
        == good, "successes in upload order, cells echoed as sent"
    for row in succeeded:
        owners = before.get(fold(row[EXT]), [])
        assert row["sf__Created"] == ("false" if owners else "true"), row
        if owners:
            assert [row["sf__Id"]] == owners

    stored = {r["Id"]: r for r in sf.query_all_iter(
        "SELECT Id, Name, External_Id__c, Phone, NumberOfEmployees, Description FROM Account "
        "WHERE Name LIKE 'Big %'")}
    assert len(stored) == len(good)
    for row in succeeded:
        record = stored[row["sf__Id"]]
        assert (record["Name"], record[EXT], record["Phone"], record["NumberOfEmployees"],
                record["Description"]) == (row["Name"], row[EXT], row["Phone"],
                                           int(row["NumberOfEmployees"]), row["Description"])

