"""Bulk API 2.0 ingest against the emulator, through unmodified simple-salesforce and raw HTTP.

What a user would notice: rows Salesforce refuses come back in failedResults with the code and
message that say why (never silently dropped); the rest are written and readable; upsert,
delete and hardDelete round-trip; the protocol details clients depend on (Open state,
contentUrl, 201 on upload, case-insensitive result paths) hold.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import requests

from bench.org import Login, login, session_for
from tests.support.bulk import wait_until_terminal
from tests.support.clients import read_csv, simple_salesforce
from tests.support.org import EmulatedOrg


class IngestClient:
    """Raw Bulk 2.0 ingest calls (requests)."""

    def __init__(self, org: EmulatedOrg) -> None:
        self.session = session_for(org)
        self.auth: Login = login(org, self.session)

    def call(self, method: str, path: str = "", **kwargs: Any) -> requests.Response:
        headers = {**self.auth.headers(), **kwargs.pop("headers", {})}
        return self.session.request(method, self.auth.data_url(f"jobs/ingest{path}"),
                                    headers=headers, timeout=120, **kwargs)

    def upload(self, job_id: str, body: str) -> requests.Response:
        return self.call("PUT", f"/{job_id}/batches", data=body.encode(),
                         headers={"Content-Type": "text/csv"})

    def wait(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        return wait_until_terminal(lambda: self.call("GET", f"/{job_id}").json(), job_id,
                                   timeout)


@pytest.fixture
def private_org(org_factory) -> EmulatedOrg:
    return org_factory(records=100)


def test_insert_reports_rows_missing_a_required_field(private_org):
    sf = simple_salesforce(private_org)
    records = [{"Name": f"Bulk Insert {i:04d}", "Phone": f"555-{i:04d}"} if i % 10
               else {"Phone": f"555-{i:04d}"} for i in range(1000)]
    [outcome] = sf.bulk2.Account.insert(records=records)
    assert outcome["numberRecordsTotal"] == 1000
    assert outcome["numberRecordsProcessed"] == 1000  # Salesforce counts failed rows too
    assert outcome["numberRecordsFailed"] == 100
    failed = read_csv(sf.bulk2.Account.get_failed_records(outcome["job_id"]))
    assert len(failed) == 100
    for row in failed:
        assert row["sf__Id"] == ""
        assert row["sf__Error"].startswith("REQUIRED_FIELD_MISSING:Required fields are missing: "
                                           "[Name]:Name")
        assert row["Name"] == "" and row["Phone"].startswith("555-")
    succeeded = read_csv(sf.bulk2.Account.get_successful_records(outcome["job_id"]))
    assert len(succeeded) == 900
    assert {row["sf__Created"] for row in succeeded} == {"true"}
    written = {r["Id"]: r["Name"] for r in sf.query_all_iter(
        "SELECT Id, Name FROM Account WHERE Name LIKE 'Bulk Insert %'")}
    assert written == {row["sf__Id"]: row["Name"] for row in succeeded}


def test_upsert_update_and_delete_round_trip(private_org):
    sf = simple_salesforce(private_org)
    [first] = sf.bulk2.Account.upsert(records=[
        {"External_Id__c": f"EXT-{i}", "Name": f"Upserted {i}", "Phone": "111"}
        for i in range(20)], external_id_field="External_Id__c")
    assert (first["numberRecordsProcessed"], first["numberRecordsFailed"]) == (20, 0)
    created = read_csv(sf.bulk2.Account.get_successful_records(first["job_id"]))
    assert {row["sf__Created"] for row in created} == {"true"}
    ids = {row["External_Id__c"]: row["sf__Id"] for row in created}

    # Second upsert: 10 existing (update) + 5 new; "#N/A" sets null, empty leaves unchanged.
    csv_text = "External_Id__c,Name,Phone\n" + "".join(
        f"EXT-{i},Renamed {i},#N/A\n" if i < 5 else f"EXT-{i},,222\n" for i in range(10)) + \
        "".join(f"NEW-{i},New {i},333\n" for i in range(5))
    client = IngestClient(private_org)
    job = client.call("POST", json={"object": "Account", "operation": "upsert",
                                    "externalIdFieldName": "External_Id__c"}).json()
    assert client.upload(job["id"], csv_text).status_code == 201
    client.call("PATCH", f"/{job['id']}", json={"state": "UploadComplete"})
    assert client.wait(job["id"])["numberRecordsFailed"] == 0
    results = read_csv(client.call("GET", f"/{job['id']}/successfulResults/").text)
    flags = {row["External_Id__c"]: row["sf__Created"] for row in results}
    assert [flags[f"EXT-{i}"] for i in range(10)] == ["false"] * 10
    assert [flags[f"NEW-{i}"] for i in range(5)] == ["true"] * 5
    state = {r["External_Id__c"]: r for r in sf.query_all_iter(
        "SELECT External_Id__c, Name, Phone FROM Account WHERE External_Id__c LIKE 'EXT-%'")}
    assert state["EXT-0"]["Name"] == "Renamed 0" and state["EXT-0"]["Phone"] is None
    assert state["EXT-7"]["Name"] == "Upserted 7" and state["EXT-7"]["Phone"] == "222"
    assert state["EXT-15"]["Phone"] == "111"

    [deleted] = sf.bulk2.Account.delete(records=[{"Id": ids[f"EXT-{i}"]} for i in range(5)])
    assert (deleted["numberRecordsProcessed"], deleted["numberRecordsFailed"]) == (5, 0)
    [hard] = sf.bulk2.Account.hard_delete(records=[{"Id": ids["EXT-5"]}])
    assert hard["numberRecordsFailed"] == 0
    remaining = {r["External_Id__c"] for r in sf.query_all_iter(
        "SELECT External_Id__c FROM Account WHERE External_Id__c LIKE 'EXT-%'")}
    assert remaining == {f"EXT-{i}" for i in range(6, 20)}
    with_deleted = {r["External_Id__c"]: r["IsDeleted"] for r in sf.query_all_iter(
        "SELECT External_Id__c, IsDeleted FROM Account WHERE External_Id__c LIKE 'EXT-%'",
        include_deleted=True)}
    assert all(with_deleted[f"EXT-{i}"] is True for i in range(5))
    assert "EXT-5" not in with_deleted, "hardDelete leaves nothing to queryAll"


def test_failed_update_says_why(private_org):
    client = IngestClient(private_org)
    job = client.call("POST", json={"object": "account", "operation": "update",
                                    "lineEnding": "CRLF", "columnDelimiter": "SEMICOLON"}).json()
    assert job["object"] == "Account"
    body = "Id;Name\r\n001000000000000AAA;Nobody\r\nnot-an-id;Nobody\r\n"
    assert client.upload(job["id"], body).status_code == 201
    client.call("PATCH", f"/{job['id']}", json={"state": "UploadComplete"})
    info = client.wait(job["id"])
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (2, 2)
    text = client.call("GET", f"/{job['id']}/failedResults").text
    lines = text.split("\r\n")
    assert lines[0] == '"sf__Id";"sf__Error";Id;Name'
    errors = [row[1] for row in csv.reader(io.StringIO(text, newline=""), delimiter=";")][1:]
    assert all(":" in error and error.split(":")[0].isupper() for error in errors), errors


def test_protocol_details_clients_rely_on(private_org):
    client = IngestClient(private_org)
    created = client.call("POST", json={"object": "Account", "operation": "insert",
                                        "contentType": "CSV"})
    assert created.status_code == 200
    job = created.json()
    assert job["state"] == "Open"
    assert job["contentUrl"] == (f"services/data/v{client.auth.api_version}/jobs/ingest/"
                                 f"{job['id']}/batches")
    assert client.upload(job["id"], "Name\nOne\nTwo\n").status_code == 201
    info = client.call("GET", f"/{job['id']}").json()
    assert info["jobType"] == "V2Ingest" and info["state"] == "Open"
    aborted = client.call("PATCH", f"/{job['id']}", json={"state": "Aborted"})
    assert aborted.json()["state"] == "Aborted"
    assert client.upload(job["id"], "Name\nThree\n").status_code == 409
    for path in ("unprocessedrecords", "unprocessedRecords/", "UNPROCESSEDRECORDS"):
        response = client.call("GET", f"/{job['id']}/{path}")
        assert response.status_code == 200, (path, response.text)
        assert response.text == "Name\nOne\nTwo\n"
    assert client.call("DELETE", f"/{job['id']}").status_code == 204
    assert client.call("GET", f"/{job['id']}").status_code == 404


@pytest.mark.parametrize(("job", "text"), [
    ({"object": "Account", "operation": "merge"}, "Invalid operation"),
    ({"object": "Nope", "operation": "insert"}, "Invalid object"),
    ({"object": "Account", "operation": "upsert"}, "externalIdFieldName"),
    # a real org refuses the job itself when the key is not an External ID (or Id)
    ({"object": "Account", "operation": "upsert", "externalIdFieldName": "Name"},
     "Field name provided, Name does not match an External ID, Salesforce Id, or indexed "
     "field for Account"),
    ({"object": "Account", "operation": "insert", "lineEnding": "CR"}, "lineEnding"),
])
def test_bad_job_definitions_are_refused(org, job, text):
    response = IngestClient(org).call("POST", json=job)
    assert response.status_code == 400
    assert text in response.json()[0]["message"]


def test_job_fails_with_a_reason_on_bad_data(private_org):
    client = IngestClient(private_org)
    job = client.call("POST", json={"object": "Account", "operation": "delete"}).json()
    client.upload(job["id"], "Id,Name\n001000000000001AAA,x\n")
    client.call("PATCH", f"/{job['id']}", json={"state": "UploadComplete"})
    info = client.wait(job["id"])
    assert info["state"] == "Failed"
    assert "only the 'Id' column" in info["errorMessage"]
    unprocessed = client.call("GET", f"/{job['id']}/unprocessedrecords")
    assert unprocessed.text == "Id,Name\n001000000000001AAA,x\n", "nothing is lost"
    listed = client.call("GET").json()["records"]
    assert job["id"] in [record["id"] for record in listed]


def test_unknown_column_fails_the_job_before_any_row_is_written(private_org):
    """As on a real org: a header column the object lacks fails the whole job
    (`InvalidBatch : Field name not found : X`) and every row stays unprocessed."""
    client = IngestClient(private_org)
    job = client.call("POST", json={"object": "Account", "operation": "insert"}).json()
    client.upload(job["id"], "Name,Nope__c\nNever Written,x\n")
    client.call("PATCH", f"/{job['id']}", json={"state": "UploadComplete"})
    info = client.wait(job["id"])
    assert info["state"] == "Failed"
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Nope__c"
    assert info["numberRecordsProcessed"] == 0
    unprocessed = client.call("GET", f"/{job['id']}/unprocessedrecords")
    assert unprocessed.text == "Name,Nope__c\nNever Written,x\n"


def test_a_later_upload_with_another_header_is_refused_and_nothing_is_lost(private_org):
    """A second upload whose header differs is refused when sent (400, the job stays Open
    with the first upload); the job then processes every row it took, each in a result file.
    (Found on the emulator: refused only at processing, the job failed part way and the rows
    read before the bad header were in no result file.)"""
    client = IngestClient(private_org)
    job = client.call("POST", json={"object": "Account", "operation": "insert"}).json()
    first = "Name,Phone\n" + "".join(f"Kept {i:05d},555-{i:04d}\n" for i in range(25_000))
    assert client.upload(job["id"], first).status_code == 201
    refused = client.upload(job["id"], "Phone,Name\n555-0000,Refused\n")
    assert refused.status_code == 400
    [error] = refused.json()
    assert error["errorCode"] == "ClientInputError"
    assert "same header row" in error["message"] and "not kept" in error["message"]
    assert client.call("GET", f"/{job['id']}").json()["state"] == "Open"
    assert client.upload(job["id"], "Name,Phone\nAlso Kept,555-9999\n").status_code == 201
    client.call("PATCH", f"/{job['id']}", json={"state": "UploadComplete"})
    info = client.wait(job["id"])
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
        "JobComplete", 25_001, 0)
    ok = read_csv(client.call("GET", f"/{job['id']}/successfulResults").text)
    assert sorted(row["Name"] for row in ok) == sorted(
        [f"Kept {i:05d}" for i in range(25_000)] + ["Also Kept"])
    assert read_csv(client.call("GET", f"/{job['id']}/unprocessedrecords").text) == []


def test_multipart_create_processes_at_once(private_org):
    client = IngestClient(private_org)
    job_part = ('{"object": "Contact", "operation": "insert", "lineEnding": "LF"}',
                "application/json")
    csv_part = ("LastName,FirstName\nNomical,Astro\nMcOwl,Hootie\n", "text/csv")
    created = client.call("POST", files={"job": (None, *job_part),
                                         "content": ("content", *csv_part)})
    assert created.status_code == 200, created.text
    job = created.json()
    assert job["state"] in ("UploadComplete", "InProgress", "JobComplete")
    assert "contentUrl" not in job, "nothing more can be uploaded"
    info = client.wait(job["id"])
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (2, 0)
    rows = read_csv(client.call("GET", f"/{job['id']}/successfulResults").text)
    assert [row["LastName"] for row in rows] == ["Nomical", "McOwl"]
    missing = client.call("POST", files={"job": (None, *job_part)})
    assert missing.status_code == 400 and "content" in missing.json()[0]["message"]
