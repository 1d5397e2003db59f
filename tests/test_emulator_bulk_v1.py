"""Bulk API 1.0 (`/services/async/XX.X/job…`) against the emulator, through unmodified
simple-salesforce (`sf.bulk`) and raw HTTP for the wire details it hides.

What a user would notice: a Bulk 1.0 query, queryAll, insert, upsert or delete gives the same
records and the same outcomes REST gives on the same data, PK chunking included; XML job
bodies work as the docs show; batches move through their states with the org's processing
delay; an expired session says InvalidSessionId in Bulk 1.0's own error shape.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk import SFBulkType
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceMalformedRequest

from bench.org import login, session_for
from tests.support.clients import simple_salesforce
from tests.support.org import EmulatedOrg, start_org

RECORDS = 300
ACCOUNT_SOQL = ("SELECT Id, Name, Industry, AnnualRevenue, NumberOfEmployees, CreatedDate, "
                "Owner.Name FROM Account")
INVOICE_SOQL = ("SELECT Id, Name, Amount__c, Tax_Rate__c, Quantity__c, Due_Date__c, "
                "Issued_At__c, Paid__c, Account__r.Name FROM Invoice__c")
XML_NS = "http://www.force.com/2009/06/asyncapi/dataload"
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def v1_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    """A private small org: these tests write records and change the processing delay."""
    running = start_org(tmp_path_factory.mktemp("bulk-v1"), records=RECORDS)
    try:
        yield running
    finally:
        running.stop()


def client(org: EmulatedOrg) -> Salesforce:
    return simple_salesforce(org)


def epoch_ms(text: str) -> int:
    """REST's dateTime / date text as the epoch milliseconds Bulk 1.0 JSON gives."""
    if _DATE.match(text):
        moment = dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)
    else:
        moment = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    return round((moment - _EPOCH).total_seconds() * 1000)


def as_bulk_json(value: Any) -> Any:
    """A REST record with its dates written the way Bulk 1.0 JSON writes them."""
    if isinstance(value, dict):
        return {key: as_bulk_json(inner) for key, inner in value.items()}
    if isinstance(value, str) and (_DATETIME.match(value) or _DATE.match(value)):
        return epoch_ms(value)
    return value


def rest_records(sf: Salesforce, soql: str, include_deleted: bool = False) -> dict[str, Any]:
    records = sf.query_all(soql, include_deleted=include_deleted)["records"]
    return {record["Id"]: as_bulk_json(record) for record in records}


def by_id(records: list[dict[str, Any]]) -> dict[str, Any]:
    keyed = {record["Id"]: record for record in records}
    assert len(keyed) == len(records), "a record came back twice"
    return keyed


@pytest.mark.parametrize("soql", [ACCOUNT_SOQL, INVOICE_SOQL], ids=["Account", "Invoice__c"])
def test_query_and_query_all_agree_with_rest_lazy_or_not(v1_org: EmulatedOrg,
                                                         soql: str) -> None:
    sf = client(v1_org)
    sobject = soql.rsplit(" ", 1)[-1]
    bulk = getattr(sf.bulk, sobject)
    expected = rest_records(sf, soql)
    expected_all = rest_records(sf, soql, include_deleted=True)
    assert expected and len(expected_all) >= len(expected)

    eager = bulk.query(soql, wait=0)
    lazy = [record for chunk in bulk.query(soql, lazy_operation=True, wait=0)
            for record in chunk]
    assert by_id(eager) == expected
    assert by_id(lazy) == expected

    eager_all = bulk.query_all(soql, wait=0)
    lazy_all = [record for chunk in bulk.query_all(soql, lazy_operation=True, wait=0)
                for record in chunk]
    assert by_id(eager_all) == expected_all
    assert by_id(lazy_all) == expected_all


def test_insert_upsert_delete_agree_with_rest(v1_org: EmulatedOrg) -> None:
    sf = client(v1_org)
    rows = [{"Name": f"Bulk One {n}", "External_Id__c": f"B1-{n}", "NumberOfEmployees": n}
            for n in range(5)]
    inserted = sf.bulk.Account.insert(rows + [{"Industry": "Energy"}], batch_size=4)
    assert [result["success"] for result in inserted] == [True] * 5 + [False]
    assert all(result["created"] for result in inserted[:5])
    # The record Bulk refused is the one REST refuses, with the same code.
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Account.create({"Industry": "Energy"})
    assert inserted[5]["errors"][0]["statusCode"] == refused.value.content[0]["errorCode"]
    ids = [result["id"] for result in inserted[:5]]
    stored = rest_records(sf, "SELECT Id, Name, External_Id__c, NumberOfEmployees FROM Account "
                          "WHERE External_Id__c LIKE 'B1-%'")
    assert {record_id: (stored[record_id]["Name"], stored[record_id]["NumberOfEmployees"])
            for record_id in ids} == {ids[n]: (rows[n]["Name"], n) for n in range(5)}

    upserted = sf.bulk.Account.upsert(
        [{"External_Id__c": "B1-0", "Name": "Bulk One renamed"},
         {"External_Id__c": "B1-new", "Name": "Bulk One new"}], "External_Id__c")
    assert [(result["success"], result["created"]) for result in upserted] == [
        (True, False), (True, True)]
    assert upserted[0]["id"] == ids[0]
    assert sf.Account.get(ids[0])["Name"] == "Bulk One renamed"
    assert sf.Account.get(upserted[1]["id"])["Name"] == "Bulk One new"

    deleted = sf.bulk.Account.delete([{"Id": record_id} for record_id in ids[:3]])
    assert [(result["id"], result["success"]) for result in deleted] == [
        (record_id, True) for record_id in ids[:3]]
    live = rest_records(sf, "SELECT Id FROM Account WHERE External_Id__c LIKE 'B1-%'")
    assert set(live) == {*ids[3:], upserted[1]["id"]}
    everything = rest_records(sf, "SELECT Id, IsDeleted FROM Account WHERE External_Id__c "
                              "LIKE 'B1-%'", include_deleted=True)
    assert {record_id for record_id, record in everything.items() if record["IsDeleted"]} == (
        set(ids[:3]))
    # and Bulk's own queryAll sees the same thing
    assert by_id(sf.bulk.Account.query_all("SELECT Id, IsDeleted FROM Account WHERE "
                                           "External_Id__c LIKE 'B1-%'", wait=0)) == everything


def wait_for_batches(session: requests.Session, url: str, headers: dict[str, str],
                     timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batches = session.get(url, headers=headers, timeout=60).json()["batchInfo"]
        if batches and all(batch["state"] not in ("Queued", "InProgress")
                           for batch in batches):
            return batches
        time.sleep(0.05)
    raise AssertionError(f"batches of {url} still running after {timeout}s")


@pytest.mark.parametrize("operation", ["query", "queryAll"])
def test_pk_chunking_splits_into_batches_that_agree_with_rest(v1_org: EmulatedOrg,
                                                              operation: str) -> None:
    """simple-salesforce 1.12.10 has no PK chunking switch: the test sends the documented
    header through its own job and batch calls, as a user extending it would."""
    sf = client(v1_org)
    headers = {**sf.bulk.headers, "Sforce-Enable-PKChunking": "chunkSize=100"}
    bulk = SFBulkType("Account", sf.bulk.bulk_url, headers, sf.session)
    soql = "SELECT Id, Name, Industry, CreatedDate FROM Account WHERE Industry != null"
    job = bulk._create_job(operation, use_serial=False)
    original = bulk._add_batch(job["id"], soql, operation)
    bulk._close_job(job["id"])
    batches = wait_for_batches(sf.session, f"{sf.bulk.bulk_url}job/{job['id']}/batch", headers)

    states = {batch["id"]: batch["state"] for batch in batches}
    assert states.pop(original["id"]) == "NotProcessed"
    assert set(states.values()) == {"Completed"}
    every_id = rest_records(sf, "SELECT Id FROM Account", include_deleted=True)
    assert len(states) == math.ceil(len(every_id) / 100)  # ids of deleted rows count too
    records = [record for batch_id in states
               for chunk in bulk._get_batch_results(job["id"], batch_id, operation)
               for record in chunk]
    assert by_id(records) == rest_records(sf, soql, include_deleted=operation == "queryAll")
    assert all(len(chunk) <= 100 for batch_id in states
               for chunk in bulk._get_batch_results(job["id"], batch_id, operation))


class RawV1:
    """Raw Bulk 1.0 calls for the XML shapes and states simple-salesforce does not show."""

    def __init__(self, org: EmulatedOrg) -> None:
        self.session = session_for(org)
        self.auth = login(org, self.session)
        self.base = f"{self.auth.instance_url}/services/async/{self.auth.api_version}"

    def call(self, method: str, path: str, body: str | bytes | None = None,
             content_type: str = "application/xml; charset=UTF-8",
             session_id: str | None = None, **headers: str) -> requests.Response:
        headers = {"X-SFDC-Session": session_id or self.auth.access_token,
                   "Content-Type": content_type, **headers}
        return self.session.request(method, self.base + path, data=body, headers=headers,
                                    timeout=60)

    def xml(self, response: requests.Response) -> dict[str, str]:
        fields = dict(re.findall(r"<(\w+)>([^<]*)</\1>", response.text))
        return fields

    def wait_batch(self, job_id: str, batch_id: str) -> dict[str, str]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            info = self.xml(self.call("GET", f"/job/{job_id}/batch/{batch_id}"))
            if info["state"] not in ("Queued", "InProgress"):
                return info
            time.sleep(0.05)
        raise AssertionError(f"batch {batch_id} still running")


def job_xml(**fields: str) -> str:
    inner = "".join(f"<{key}>{value}</{key}>" for key, value in fields.items())
    return f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{XML_NS}">{inner}</jobInfo>'


def test_xml_job_with_csv_batch_as_the_docs_show(v1_org: EmulatedOrg) -> None:
    raw = RawV1(v1_org)
    created = raw.call("POST", "/job", job_xml(operation="insert", object="Account",
                                               contentType="CSV"))
    assert created.status_code == 201
    assert created.headers["Content-Type"] == "application/xml"
    assert f'<jobInfo xmlns="{XML_NS}">' in created.text
    job = raw.xml(created)
    assert (job["state"], job["operation"], job["contentType"]) == ("Open", "insert", "CSV")

    data = 'Name,Phone\n"Docs, Inc",555-0100\nNo Phone Ltd,\n,555-0199\n'
    added = raw.call("POST", f"/job/{job['id']}/batch", data, content_type="text/csv")
    assert added.status_code == 201
    batch = raw.wait_batch(job["id"], raw.xml(added)["id"])
    assert (batch["state"], batch["numberRecordsProcessed"], batch["numberRecordsFailed"]) == (
        "Completed", "3", "1")
    result = raw.call("GET", f"/job/{job['id']}/batch/{batch['id']}/result")
    rows = list(csv.reader(io.StringIO(result.text)))
    assert rows[0] == ["Id", "Success", "Created", "Error"]
    assert [row[1:3] for row in rows[1:]] == [["true", "true"], ["true", "true"],
                                              ["false", "false"]]
    assert rows[3][3].startswith("REQUIRED_FIELD_MISSING:")
    request = raw.call("GET", f"/job/{job['id']}/batch/{batch['id']}/request")
    assert request.text == data

    closed = raw.call("POST", f"/job/{job['id']}", job_xml(state="Closed"))
    assert raw.xml(closed)["state"] == "Closed"
    assert raw.xml(closed)["numberRecordsProcessed"] == "3"
    late = raw.call("POST", f"/job/{job['id']}/batch", data, content_type="text/csv")
    assert late.status_code == 400
    assert raw.xml(late)["exceptionCode"] == "InvalidJobState"

    sf = client(v1_org)
    names = {row[0]: sf.Account.get(row[0])["Name"] for row in rows[1:3]}
    assert sorted(names.values()) == ["Docs, Inc", "No Phone Ltd"]


def test_xml_query_results_and_failed_query_batch(v1_org: EmulatedOrg) -> None:
    raw = RawV1(v1_org)
    job = raw.xml(raw.call("POST", "/job", job_xml(operation="query", object="Account",
                                                    contentType="XML")))
    good = raw.xml(raw.call("POST", f"/job/{job['id']}/batch",
                            "SELECT Id, Name, Owner.Name FROM Account LIMIT 3",
                            content_type="text/plain"))
    bad = raw.xml(raw.call("POST", f"/job/{job['id']}/batch", "SELECT Id, Nope FROM Account",
                           content_type="text/plain"))
    assert raw.wait_batch(job["id"], good["id"])["state"] == "Completed"
    failed = raw.wait_batch(job["id"], bad["id"])
    assert failed["state"] == "Failed"
    assert failed["stateMessage"].startswith("InvalidBatch : Failed to process query: "
                                             "INVALID_FIELD")
    listing = raw.call("GET", f"/job/{job['id']}/batch/{good['id']}/result")
    result_ids = re.findall(r"<result>([^<]+)</result>", listing.text)
    assert listing.text.count("<result-list") == 1 and len(result_ids) == 1
    page = raw.call("GET", f"/job/{job['id']}/batch/{good['id']}/result/{result_ids[0]}")
    assert page.headers["Content-Type"].startswith("application/xml")
    assert page.text.count('<records xsi:type="sObject"><type>Account</type>') == 3
    assert '<Owner xsi:type="sObject"><type>User</type>' in page.text
    not_done = raw.call("GET", f"/job/{job['id']}/batch/{bad['id']}/result")
    assert not_done.status_code == 400 and raw.xml(not_done)["exceptionCode"] == "InvalidBatch"
    # simple-salesforce surfaces the failed batch's message
    sf = client(v1_org)
    with pytest.raises(SalesforceGeneralError, match="INVALID_FIELD"):
        sf.bulk.Account.query("SELECT Id, Nope FROM Account", wait=0)


def test_csv_query_result_is_one_whole_file_matching_rest(v1_org: EmulatedOrg) -> None:
    """A CSV job's result file starts with its header row (tap-salesforce zips each row
    with it) and holds the rows REST returns, values formatted as Bulk writes them."""
    raw = RawV1(v1_org)
    job = raw.xml(raw.call("POST", "/job", job_xml(operation="query", object="Account",
                                                    contentType="CSV")))
    soql = "SELECT Id, Name, NumberOfEmployees, Owner.Name FROM Account"
    batch = raw.xml(raw.call("POST", f"/job/{job['id']}/batch", soql, content_type="text/csv"))
    assert raw.wait_batch(job["id"], batch["id"])["state"] == "Completed"
    listing = raw.call("GET", f"/job/{job['id']}/batch/{batch['id']}/result")
    (result_id,) = re.findall(r"<result>([^<]+)</result>", listing.text)
    page = raw.call("GET", f"/job/{job['id']}/batch/{batch['id']}/result/{result_id}")
    assert page.headers["Content-Type"] == "text/csv; charset=UTF-8"
    rows = list(csv.DictReader(io.StringIO(page.text)))
    assert list(rows[0]) == ["Id", "Name", "NumberOfEmployees", "Owner.Name"]
    sf = client(v1_org)
    expected = sf.query_all(soql)["records"]
    assert {row["Id"]: (row["Name"], row["NumberOfEmployees"], row["Owner.Name"])
            for row in rows} == {
        record["Id"]: (record["Name"], "" if record["NumberOfEmployees"] is None
                       else str(record["NumberOfEmployees"]),
                       (record["Owner"] or {}).get("Name", ""))
        for record in expected}
    # Bulk 2.0 writes the very same CSV for the same query
    bulk2_pages = list(sf.bulk2.Account.query(soql, wait=0))
    bulk2_lines = [line for page in bulk2_pages for line in page.splitlines()[1:]]
    assert bulk2_pages[0].splitlines()[0] == page.text.splitlines()[0]
    assert sorted(bulk2_lines) == sorted(page.text.splitlines()[1:])


def test_expired_session_is_invalid_session_id_in_both_shapes(
        org_factory: Any) -> None:
    private = org_factory(records=50)
    raw = RawV1(private)
    job = raw.xml(raw.call("POST", "/job", job_xml(operation="query", object="Account",
                                                    contentType="CSV")))
    private.admin("POST", "sessions/expire")
    as_xml = raw.call("GET", f"/job/{job['id']}")
    assert as_xml.status_code == 400
    assert raw.xml(as_xml) == {"exceptionCode": "InvalidSessionId",
                               "exceptionMessage": "Invalid session id"}
    as_json = raw.call("GET", f"/job/{job['id']}", content_type="application/json")
    assert as_json.status_code == 400
    assert as_json.headers["Content-Type"] == "application/json"
    assert as_json.json()["exceptionCode"] == "InvalidSessionId"
    missing = raw.session.get(f"{raw.base}/job/{job['id']}", timeout=60)
    assert missing.status_code == 400 and "InvalidSessionId" in missing.text


def test_serial_batches_wait_for_the_delay_and_abort_leaves_queued_not_processed(
        v1_org: EmulatedOrg) -> None:
    raw = RawV1(v1_org)
    v1_org.admin("PATCH", "org", json={"bulk_job_delay_seconds": 1.5})
    try:
        job = raw.xml(raw.call("POST", "/job", job_xml(operation="query", object="Account",
                                                        concurrencyMode="Serial",
                                                        contentType="CSV")))
        assert job["concurrencyMode"] == "Serial"
        first = raw.xml(raw.call("POST", f"/job/{job['id']}/batch", "SELECT Id FROM Account",
                                 content_type="text/csv"))
        second = raw.xml(raw.call("POST", f"/job/{job['id']}/batch", "SELECT Name FROM Account",
                                  content_type="text/csv"))
        time.sleep(0.3)
        states = {info["id"]: info["state"] for info in (
            raw.xml(raw.call("GET", f"/job/{job['id']}/batch/{batch['id']}"))
            for batch in (first, second))}
        assert states == {first["id"]: "InProgress", second["id"]: "Queued"}
        aborted = raw.xml(raw.call("POST", f"/job/{job['id']}", job_xml(state="Aborted")))
        assert aborted["state"] == "Aborted"
        assert raw.wait_batch(job["id"], first["id"])["state"] == "Completed"
        assert raw.wait_batch(job["id"], second["id"])["state"] == "NotProcessed"
    finally:
        v1_org.admin("PATCH", "org", json={"bulk_job_delay_seconds": 0.0})


def test_org_faults_reach_bulk_v1(org_factory: Any) -> None:
    """The fault injector applies to Bulk 1.0 as to Bulk 2.0: locked rows fail in the batch
    results, and forced session expiry answers InvalidSessionId on X-SFDC-Session."""
    private = org_factory(records=50)
    sf = client(private)
    private.admin("PUT", "faults", json={"unable_to_lock_row_rate": 1.0})
    results = sf.bulk.Account.insert([{"Name": "Locked 1"}, {"Name": "Locked 2"}])
    assert [result["success"] for result in results] == [False, False]
    assert {result["errors"][0]["statusCode"] for result in results} == {"UNABLE_TO_LOCK_ROW"}

    raw = RawV1(private)
    private.admin("PUT", "faults", json={"expire_sessions_every_calls": 3})
    job = raw.xml(raw.call("POST", "/job", job_xml(operation="query", object="Account",
                                                    contentType="CSV")))
    assert raw.call("GET", f"/job/{job['id']}").status_code == 200
    expired = raw.call("GET", f"/job/{job['id']}")
    assert expired.status_code == 400
    assert raw.xml(expired)["exceptionCode"] == "InvalidSessionId"
    assert private.admin("GET", "faults").json()["injected"]["session_expired"] >= 1


@pytest.mark.parametrize(("content_type", "data", "result_type"), [
    ("CSV", "Name\nTyped Result CSV\n", "text/csv"),
    ("XML", f'<sObjects xmlns="{XML_NS}"><sObject><Name>Typed Result XML</Name></sObject>'
            "</sObjects>", "application/xml"),
    ("JSON", '[{"Name": "Typed Result JSON"}]', "application/json"),
], ids=["CSV", "XML", "JSON"])
def test_ingest_results_carry_the_bare_content_type(v1_org: EmulatedOrg, content_type: str,
                                                    data: str, result_type: str) -> None:
    """A real org sends ingest results as exactly `text/csv` / `application/xml` /
    `application/json`, and salesforce-bulk (`get_batch_results`) picks its parser by
    comparing the header to those strings: with a charset added it returns nothing."""
    raw = RawV1(v1_org)
    job = raw.xml(raw.call("POST", "/job", job_xml(operation="insert", object="Account",
                                                    contentType=content_type)))
    batch_type = {"CSV": "text/csv", "XML": "application/xml",
                  "JSON": "application/json"}[content_type]
    added = raw.call("POST", f"/job/{job['id']}/batch", data,
                     content_type=f"{batch_type}; charset=UTF-8")
    assert added.status_code == 201
    batch_id = (added.json()["id"] if content_type == "JSON" else raw.xml(added)["id"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = raw.call("GET", f"/job/{job['id']}/batch/{batch_id}")
        state = info.json()["state"] if content_type == "JSON" else raw.xml(info)["state"]
        if state not in ("Queued", "InProgress"):
            break
        time.sleep(0.05)
    assert state == "Completed"
    result = raw.call("GET", f"/job/{job['id']}/batch/{batch_id}/result")
    assert result.status_code == 200
    assert result.headers["Content-Type"] == result_type
    assert "true" in result.text.lower()


def test_unknown_field_fails_the_whole_batch_and_its_results_say_records_not_processed(
        v1_org: EmulatedOrg) -> None:
    """A column the object does not have fails the batch before any record is written
    (`InvalidBatch : Field name not found : X`), and asking for its results answers
    `InvalidBatch` / `Records not processed`, as simple-salesforce's Bulk API notes
    describe for a real org."""
    sf = client(v1_org)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.bulk.Account.insert([{"Name": "Unknown Column 1", "Nope__c": "x"},
                                {"Name": "Unknown Column 2"}])
    assert refused.value.content == {"exceptionCode": "InvalidBatch",
                                     "exceptionMessage": "Records not processed"}
    assert sf.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Unknown Column%'")[
        "totalSize"] == 0

    raw = RawV1(v1_org)
    job = raw.xml(raw.call("POST", "/job", job_xml(operation="insert", object="Contact",
                                                    contentType="CSV")))
    data = "LastName,Acount.External_Id__c\nNo Such Parent,B1-0\n"
    batch = raw.xml(raw.call("POST", f"/job/{job['id']}/batch", data, content_type="text/csv"))
    failed = raw.wait_batch(job["id"], batch["id"])
    assert failed["state"] == "Failed"
    assert failed["stateMessage"] == "InvalidBatch : Field name not found : Acount.External_Id__c"
    results = raw.call("GET", f"/job/{job['id']}/batch/{batch['id']}/result")
    assert results.status_code == 400
    assert raw.xml(results) == {"exceptionCode": "InvalidBatch",
                                "exceptionMessage": "Records not processed"}


def test_retired_api_version_is_400_invalid_version_in_bulk_v1_shape(v1_org: EmulatedOrg) -> None:
    """Salesforce answers Bulk API calls on a retired version with 400 InvalidVersion
    (21.0-30.0 retired in Summer '25; the org's oldest version can be raised as the
    31.0-40.0 retirement of Summer '28 will)."""
    raw = RawV1(v1_org)
    body = job_xml(operation="query", object="Account", contentType="CSV")
    old = raw.session.post(raw.base.rsplit("/", 1)[0] + "/30.0/job", data=body, timeout=60,
                           headers={"X-SFDC-Session": raw.auth.access_token,
                                    "Content-Type": "application/xml"})
    assert old.status_code == 400
    assert raw.xml(old)["exceptionCode"] == "InvalidVersion"
    assert raw.session.post(raw.base.rsplit("/", 1)[0] + "/40.0/job", data=body, timeout=60,
                            headers={"X-SFDC-Session": raw.auth.access_token,
                                     "Content-Type": "application/xml"}).status_code == 201
    v1_org.admin("PATCH", "org", json={"oldest_api_version": 41})
    try:
        retired = raw.session.post(
            raw.base.rsplit("/", 1)[0] + "/40.0/job", timeout=60,
            data=b'{"operation": "query", "object": "Account", "contentType": "JSON"}',
            headers={"X-SFDC-Session": raw.auth.access_token,
                     "Content-Type": "application/json"})
        assert retired.status_code == 400
        assert retired.json()["exceptionCode"] == "InvalidVersion"
        assert "40.0" in retired.json()["exceptionMessage"]
    finally:
        v1_org.admin("PATCH", "org", json={"oldest_api_version": 31})


@pytest.mark.parametrize("field", ["Name", "Nope__c"])
def test_upsert_job_on_a_field_that_is_not_an_external_id_is_refused_at_creation(
        v1_org: EmulatedOrg, field: str) -> None:
    """Salesforce refuses the job itself (InvalidJob, before any batch) when
    externalIdFieldName is not an External ID, the record Id or an idLookup field."""
    sf = client(v1_org)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.bulk.Account.upsert([{field: "Upsert Key", "Industry": "Energy"}], field)
    assert refused.value.url.endswith("/job")  # refused at job creation
    assert refused.value.content == {
        "exceptionCode": "InvalidJob",
        "exceptionMessage": f"Field name provided, {field} does not match an External ID, "
                            "Salesforce Id, or indexed field for Account"}
    ok = sf.bulk.Account.upsert([{"External_Id__c": f"UPSERT-{field}", "Name": "Keyed"}],
                                "External_Id__c")
    assert ok[0]["success"] and ok[0]["created"]
    by_record_id = sf.bulk.Account.upsert([{"Id": ok[0]["id"], "Name": "Keyed again"}], "Id")
    assert by_record_id[0]["success"] and not by_record_id[0]["created"]


def test_query_of_another_object_than_the_jobs_fails_with_salesforces_message(
        v1_org: EmulatedOrg) -> None:
    """simple-salesforce issue 502 quotes a real org: the batch fails with
    INVALID_TYPE_FOR_OPERATION naming both entities, and simple-salesforce raises it."""
    sf = client(v1_org)
    with pytest.raises(SalesforceGeneralError) as failed:
        sf.bulk.Account.query("SELECT Id, LastName FROM Contact", wait=0)
    assert failed.value.content == (
        "InvalidBatch : Failed to process query: INVALID_TYPE_FOR_OPERATION: The root entity "
        "of the requested query (Contact) does not match the entity of the requested Bulk API "
        "Job (Account).")


def test_aggregate_query_batch_fails_as_bulk_refuses_aggregates(v1_org: EmulatedOrg) -> None:
    """REST answers GROUP BY / aggregate functions; Bulk API refuses them (wire §5)."""
    sf = client(v1_org)
    for soql in ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry",
                 "SELECT MAX(SystemModstamp) FROM Account"):
        with pytest.raises(SalesforceGeneralError, match="Aggregate queries are not supported"):
            sf.bulk.Account.query(soql, wait=0)


def test_csv_query_with_no_rows_says_records_not_found(v1_org: EmulatedOrg) -> None:
    """A real org's CSV result file for a query that matches nothing is the text
    `Records not found for this query` (salesforcer issue 21 shows it), not a header row."""
    raw = RawV1(v1_org)
    job = raw.xml(raw.call("POST", "/job", job_xml(operation="query", object="Account",
                                                    contentType="CSV")))
    batch = raw.xml(raw.call("POST", f"/job/{job['id']}/batch",
                             "SELECT Id, Name FROM Account WHERE Name = 'No Such Account'",
                             content_type="text/csv"))
    done = raw.wait_batch(job["id"], batch["id"])
    assert (done["state"], done["numberRecordsProcessed"]) == ("Completed", "0")
    listing = raw.call("GET", f"/job/{job['id']}/batch/{batch['id']}/result")
    (result_id,) = re.findall(r"<result>([^<]+)</result>", listing.text)
    page = raw.call("GET", f"/job/{job['id']}/batch/{batch['id']}/result/{result_id}")
    assert page.text == "Records not found for this query"
    assert list(csv.DictReader(io.StringIO(page.text))) == []  # what CSV readers then see


def test_xml_relationship_field_as_the_docs_show_links_the_parent(v1_org: EmulatedOrg) -> None:
    """Bulk API 1.0 "Relationship Fields in Records": in XML the parent is named as
    `<Relationship><sObject><IndexedField>value</IndexedField></sObject></Relationship>`."""
    sf = client(v1_org)
    parent = sf.Account.create({"Name": "XML Parent", "External_Id__c": "XML-PARENT-1"})["id"]
    raw = RawV1(v1_org)
    job = raw.xml(raw.call("POST", "/job", job_xml(operation="insert", object="Contact",
                                                    contentType="XML")))
    data = (f'<?xml version="1.0" encoding="UTF-8"?><sObjects xmlns="{XML_NS}"><sObject>'
            "<LastName>XML Child</LastName><Account><sObject>"
            "<External_Id__c>XML-PARENT-1</External_Id__c></sObject></Account>"
            "</sObject></sObjects>")
    batch = raw.xml(raw.call("POST", f"/job/{job['id']}/batch", data))
    done = raw.wait_batch(job["id"], batch["id"])
    assert (done["state"], done["numberRecordsFailed"]) == ("Completed", "0"), done
    child = sf.query("SELECT AccountId FROM Contact WHERE LastName = 'XML Child'")["records"]
    assert [record["AccountId"] for record in child] == [parent]


def test_batch_over_ten_million_characters_is_refused_as_a_client_input_error(
        v1_org: EmulatedOrg) -> None:
    """A real org refuses the upload itself: `ClientInputError` / `Failed to read request.
    Exceeded max size limit of 10000000` (jsforce issue 31 and others quote it)."""
    raw = RawV1(v1_org)
    job = raw.xml(raw.call("POST", "/job", job_xml(operation="insert", object="Account",
                                                    contentType="CSV")))
    row = "Too Big " + "x" * 91 + "\n"  # 100 characters
    data = "Name\n" + row * 100_000
    assert len(data) > 10_000_000
    refused = raw.call("POST", f"/job/{job['id']}/batch", data, content_type="text/csv")
    assert refused.status_code == 400
    assert raw.xml(refused) == {
        "exceptionCode": "ClientInputError",
        "exceptionMessage": "Failed to read request. Exceeded max size limit of 10000000"}
    listed = raw.call("GET", f"/job/{job['id']}/batch")
    assert "<batchInfo>" not in listed.text  # no batch was created
