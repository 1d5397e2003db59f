"""Bulk API 2.0 query against the emulator, through unmodified simple-salesforce and raw HTTP.

What a user would notice: a Bulk extract returns exactly the rows REST returns, page after
page; every page is a complete CSV with the headers clients rely on (`Sforce-Locator`,
`Sforce-NumberOfRecords`); values are formatted as Salesforce formats them; what Bulk refuses
is refused at job creation with Salesforce's codes; jobs move through their states.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import re
import time
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from bench.org import Login, login, session_for
from forcebeam.emulator.bulk.results import converters_for, write_result_file
from tests.support.bulk import wait_until_terminal
from tests.support.clients import simple_salesforce
from tests.support.org import EmulatedOrg

DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")



class BulkClient:
    """Raw Bulk 2.0 calls (requests), for the wire details simple-salesforce hides."""

    def __init__(self, org: EmulatedOrg) -> None:
        self.session = session_for(org)
        self.auth: Login = login(org, self.session)

    def url(self, path: str, version: str | None = None) -> str:
        version = version or self.auth.api_version
        return f"{self.auth.instance_url}/services/data/v{version}/jobs/query{path}"

    def call(self, method: str, path: str = "", version: str | None = None,
             **kwargs: Any) -> requests.Response:
        headers = {**self.auth.headers(), **kwargs.pop("headers", {})}
        return self.session.request(method, self.url(path, version), headers=headers,
                                    timeout=120, **kwargs)

    def create(self, soql: str, **options: Any) -> requests.Response:
        return self.call("POST", json={"operation": "query", "query": soql, **options})

    def wait(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        return wait_until_terminal(lambda: self.call("GET", f"/{job_id}").json(), job_id,
                                   timeout)

    def completed(self, soql: str, **options: Any) -> str:
        created = self.create(soql, **options)
        assert created.status_code == 200, created.text
        info = self.wait(created.json()["id"])
        assert info["state"] == "JobComplete", info
        return info["id"]

    def results(self, job_id: str, **params: Any) -> requests.Response:
        return self.call("GET", f"/{job_id}/results", params=params,
                         headers={"Accept-Encoding": "identity"})


@pytest.fixture(scope="module")
def bulk(org: EmulatedOrg) -> BulkClient:
    return BulkClient(org)


def rest_rows(sf: Salesforce, soql: str) -> dict[str, dict[str, Any]]:
    return {r["Id"]: r for r in sf.query_all_iter(soql)}


def test_bulk_download_equals_rest_query_all_row_for_row(org_factory, tmp_path):
    org = org_factory(records=100_000)
    sf = simple_salesforce(org)
    soql = ("SELECT Id, Name, Type, AnnualRevenue, NumberOfEmployees, CreatedDate, "
            "Owner.Name FROM Account")
    pages = sf.bulk2.Account.download(soql, path=str(tmp_path), max_records=30_000)
    assert len(pages) == 4, pages
    assert [p["number_of_records"] for p in pages] == [30_000, 30_000, 30_000, 10_000]
    bulk_rows: dict[str, dict[str, str]] = {}
    for page in pages:
        with open(page["file"], newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == ["Id", "Name", "Type", "AnnualRevenue",
                                         "NumberOfEmployees", "CreatedDate", "Owner.Name"]
            for row in reader:
                assert row["Id"] not in bulk_rows, "a row appeared on two pages"
                bulk_rows[row["Id"]] = row
    rest = rest_rows(sf, soql)
    assert len(rest) == 100_000
    assert bulk_rows.keys() == rest.keys()
    for record_id, expected in rest.items():
        got = bulk_rows[record_id]
        assert got["Name"] == expected["Name"]
        assert got["Type"] == (expected["Type"] or "")
        revenue = expected["AnnualRevenue"]
        assert (float(got["AnnualRevenue"]) if got["AnnualRevenue"] else None) == revenue
        employees = expected["NumberOfEmployees"]
        assert (int(got["NumberOfEmployees"]) if got["NumberOfEmployees"] else None) == employees
        # REST writes 2026-01-15T09:30:00.000+0000, Bulk CSV 2026-01-15T09:30:00.000Z.
        assert got["CreatedDate"] == expected["CreatedDate"].replace("+0000", "Z")
        owner = expected["Owner"]["Name"] if expected["Owner"] else ""
        assert got["Owner.Name"] == owner


def test_pages_carry_header_locator_and_count(bulk):
    job_id = bulk.completed("SELECT Id, Name FROM Contact")
    total = bulk.call("GET", f"/{job_id}").json()["numberRecordsProcessed"]
    assert total > 2000
    seen: list[str] = []
    locator, pages = None, 0
    while True:
        params = {"maxRecords": 1000, **({"locator": locator} if locator else {})}
        page = bulk.results(job_id, **params)
        assert page.status_code == 200, page.text
        assert page.headers["Content-Type"].startswith("text/csv")
        assert page.headers["Sforce-Limit-Info"].startswith("api-usage=")
        lines = page.content.decode().splitlines()
        assert lines[0] == '"Id","Name"', "every page starts with its own header row"
        assert int(page.headers["Sforce-NumberOfRecords"]) == len(lines) - 1
        seen += [line.split(",")[0] for line in lines[1:]]
        pages += 1
        locator = page.headers["Sforce-Locator"]
        if locator == "null":
            break
    assert pages == -(-total // 1000)
    assert len(seen) == len(set(seen)) == total
    # A locator can be fetched again and gives the same page.
    again = bulk.results(job_id, maxRecords=1000, locator="MTAwMA")
    assert again.content.decode().splitlines()[1].split(",")[0] == seen[1000]


def test_values_are_formatted_like_salesforce_bulk_csv(bulk):
    soql = ("SELECT Id, Account.Name, Title, Birthdate, HasOptedOutOfEmail, CreatedDate "
            "FROM Contact")
    job_id = bulk.completed(soql)
    rows = list(csv.DictReader(io.StringIO(bulk.results(job_id).content.decode())))
    assert rows and list(rows[0]) == ["Id", "Account.Name", "Title", "Birthdate",
                                      "HasOptedOutOfEmail", "CreatedDate"]
    for row in rows:
        assert DATETIME.match(row["CreatedDate"]), row
        assert row["HasOptedOutOfEmail"] in ("true", "false"), row
        assert row["Birthdate"] == "" or DATE.match(row["Birthdate"]), row
    assert all(row["Account.Name"] for row in rows), "relationship values are flattened"
    assert any(row["Title"] == "" for row in rows), "null is an empty field"
    accounts = bulk.completed("SELECT Id, Parent.Name FROM Account")
    rows = list(csv.DictReader(io.StringIO(bulk.results(accounts).content.decode())))
    assert any(row["Parent.Name"] for row in rows)
    assert any(row["Parent.Name"] == "" for row in rows), "a null parent is an empty field"


def test_datetimes_and_booleans_are_written_exactly_at_their_edges(org_factory):
    """The render formats datetimes and booleans in SQLite: every millisecond and era must
    come out as written and as REST answers it (REST `+0000` is Bulk's `Z`), null as an empty
    field. REST used to answer 9999-12-31T23:59:59.999 as .998 (a float on the way)."""
    org = org_factory(records=50)
    sf = simple_salesforce(org)
    moments = ["1969-12-31T23:59:59.999Z", "1900-01-01T00:00:00.001Z",
               "1970-01-01T00:00:00.000Z", "2038-01-19T03:14:08.500Z",
               "2024-02-29T12:00:00.123Z", "9999-12-31T23:59:59.999Z", None]
    records = [{"Name": f"Edge {index}", "Issued_At__c": moment, "Paid__c": index % 2 == 0}
               for index, moment in enumerate(moments)]
    created = sf.restful("composite/sobjects", method="POST",
                         json={"allOrNone": True,
                               "records": [{"attributes": {"type": "Invoice__c"}, **r}
                                           for r in records]})
    assert all(result["success"] for result in created), created
    soql = "SELECT Id, Name, Issued_At__c, Paid__c FROM Invoice__c WHERE Name LIKE 'Edge %'"
    rest = {r["Name"]: r for r in sf.query_all(soql)["records"]}
    bulk = BulkClient(org)
    body = bulk.results(bulk.completed(soql)).content.decode()
    rows = {row["Name"]: row for row in csv.DictReader(io.StringIO(body))}
    assert rows.keys() == rest.keys() == {r["Name"] for r in records}
    for record in records:
        got, expected = rows[record["Name"]], rest[record["Name"]]
        assert got["Issued_At__c"] == (expected["Issued_At__c"] or "").replace("+0000", "Z")
        assert got["Issued_At__c"] == (record["Issued_At__c"] or "")
        assert got["Paid__c"] == ("true" if record["Paid__c"] else "false")


def test_gzip_when_asked_and_same_content(bulk):
    job_id = bulk.completed("SELECT Id, Name, Phone FROM Account")
    plain = bulk.results(job_id, maxRecords=2000)
    zipped = bulk.session.get(bulk.url(f"/{job_id}/results"), params={"maxRecords": 2000},
                              headers={**bulk.auth.headers(), "Accept-Encoding": "gzip"},
                              stream=True, timeout=60)
    assert zipped.headers["Content-Encoding"] == "gzip"
    raw = zipped.raw.read(decode_content=False)
    assert len(raw) < len(plain.content) / 2
    assert gzip.decompress(raw) == plain.content
    assert int(plain.headers["Content-Length"]) == len(plain.content)


def test_column_delimiter_and_line_ending(bulk):
    job_id = bulk.completed("SELECT Id, Name FROM Account LIMIT 10",
                            columnDelimiter="PIPE", lineEnding="CRLF")
    info = bulk.call("GET", f"/{job_id}").json()
    assert (info["columnDelimiter"], info["lineEnding"]) == ("PIPE", "CRLF")
    body = bulk.results(job_id).content.decode()
    assert body.startswith('"Id"|"Name"\r\n')
    assert body.count("\r\n") == 11
    rows = list(csv.reader(io.StringIO(body, newline=""), delimiter="|"))
    assert len(rows) == 11 and all(len(row) == 2 for row in rows)


@pytest.mark.parametrize(("soql", "code", "text"), [
    ("SELECT Id, BillingAddress FROM Account", "API_ERROR",
     "Selecting compound data not supported in Bulk Query"),
    ("SELECT FIELDS(STANDARD) FROM Account", "API_ERROR", "FIELDS()"),
    ("SELECT COUNT() FROM Account", "FeatureNotEnabled", "Aggregate"),
    ("SELECT MAX(SystemModstamp) FROM Account", "FeatureNotEnabled", "Aggregate"),
    ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry", "FeatureNotEnabled",
     "Aggregate"),
    ("SELECT Id FROM Account LIMIT 10 OFFSET 5", "FeatureNotEnabled", "OFFSET"),
    ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "FeatureNotEnabled",
     "Aggregate Relationships"),
    ("SELECT Bogus FROM Account", "INVALID_FIELD", "No such column 'Bogus'"),
    ("SELECT Id FROM Nope", "INVALID_TYPE", "sObject type 'Nope' is not supported"),
])
def test_refused_at_creation_with_salesforce_codes(bulk, soql, code, text):
    response = bulk.create(soql)
    assert response.status_code == 400, response.text
    body = response.json()
    assert isinstance(body, list) and body[0]["errorCode"] == code
    assert text in body[0]["message"]


def test_bad_job_definitions_are_explained(bulk):
    response = bulk.create("SELECT Id FROM Account", columnDelimiter="COLON")
    assert response.status_code == 400
    assert "columnDelimiter" in response.json()[0]["message"]
    response = bulk.call("POST", json={"operation": "insert", "query": "SELECT Id FROM Account"})
    assert response.status_code == 400
    assert "query or queryAll" in response.json()[0]["message"]


def test_unknown_job_is_not_found(bulk):
    response = bulk.call("GET", "/750000000000999AAA")
    assert response.status_code == 404
    assert response.json() == [{"errorCode": "NOT_FOUND",
                                "message": "The requested resource does not exist"}]


def test_results_need_the_creation_api_version(bulk):
    job_id = bulk.completed("SELECT Id FROM Account LIMIT 5")
    response = bulk.call("GET", f"/{job_id}/results", version="61.0")
    assert response.status_code == 409
    assert bulk.auth.api_version in response.json()[0]["message"]
    bad = bulk.results(job_id, locator="not-a-locator")
    assert bad.status_code == 400 and "locator" in bad.json()[0]["message"]


def test_job_lifecycle_with_processing_delay(org_factory):
    org = org_factory(records=300, extra_args=("--bulk-job-delay", "1.5"))
    client = BulkClient(org)
    created = client.create("SELECT Id, Name FROM Account")
    assert created.status_code == 200
    job = created.json()
    assert job["state"] == "UploadComplete" and job["object"] == "Account"
    assert job["apiVersion"] == float(org.info["api_version"])
    early = client.call("GET", f"/{job['id']}").json()
    assert early["state"] in ("UploadComplete", "InProgress")
    not_ready = client.results(job["id"])
    assert not_ready.status_code == 400
    refused = client.call("DELETE", f"/{job['id']}")
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "API_ERROR"
    done = client.wait(job["id"])
    assert done["state"] == "JobComplete" and done["numberRecordsProcessed"] == 300
    assert done["jobType"] == "V2Query" and done["totalProcessingTime"] >= 1500
    late_abort = client.call("PATCH", f"/{job['id']}", json={"state": "Aborted"})
    assert late_abort.status_code == 400
    assert late_abort.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    listed = client.call("GET").json()
    assert job["id"] in [record["id"] for record in listed["records"]]
    assert client.call("DELETE", f"/{job['id']}").status_code == 204
    assert client.call("GET", f"/{job['id']}").status_code == 404

    second = client.create("SELECT Id FROM Account").json()
    aborted = client.call("PATCH", f"/{second['id']}", json={"state": "Aborted"})
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    time.sleep(1.6)
    assert client.call("GET", f"/{second['id']}").json()["state"] == "Aborted"
    counters = org.counters()["api_calls"]
    assert counters["bulk_query"] >= 8 and counters["bulk_results"] >= 1


def test_query_all_includes_deleted_rows(org_factory):
    org = org_factory(records=200)
    sf = simple_salesforce(org)
    victim = sf.query("SELECT Id FROM Account ORDER BY Id LIMIT 1")["records"][0]["Id"]
    sf.Account.delete(victim)
    client = BulkClient(org)
    soql = f"SELECT Id, IsDeleted FROM Account WHERE Id = '{victim}'"  # noqa: S608 - SOQL
    live = client.completed(soql)
    assert client.results(live).headers["Sforce-NumberOfRecords"] == "0"
    assert client.results(live).content.decode() == '"Id","IsDeleted"\n'
    created = client.call("POST", json={"operation": "queryAll", "query": soql})
    info = client.wait(created.json()["id"])
    body = client.results(info["id"]).content.decode()
    assert body == f'"Id","IsDeleted"\n"{victim}","true"\n'


def test_parallel_result_pages_cover_every_row_once(bulk):
    job_id = bulk.completed("SELECT Id FROM Account")
    total = bulk.call("GET", f"/{job_id}").json()["numberRecordsProcessed"]
    urls: list[str] = []
    listing = bulk.call("GET", f"/{job_id}/resultPages", params={"maxRecords": 700}).json()
    while True:
        assert len(listing["resultPages"]) <= 5
        urls += [page["resultUrl"] for page in listing["resultPages"]]
        if listing["done"]:
            assert listing["nextRecordsUrl"] is None
            break
        listing = bulk.session.get(bulk.auth.instance_url + listing["nextRecordsUrl"],
                                   headers=bulk.auth.headers(), timeout=60).json()
    assert len(urls) == -(-total // 700)
    ids: list[str] = []
    for url in reversed(urls):  # any order: each page stands alone
        page = bulk.session.get(bulk.auth.instance_url + url, timeout=60,
                                headers=bulk.auth.headers())
        lines = page.content.decode().splitlines()
        assert lines[0] == '"Id"'
        ids += lines[1:]
    assert len(ids) == len(set(ids)) == total


def test_result_file_pages_split_on_row_boundaries_with_non_ascii(tmp_path):
    """Byte offsets stay right when values are multi-byte UTF-8 or hold newlines/quotes."""
    rows = [(f"00{i}", f"Jürgen \"{i}\"\nline two" if i % 3 == 0 else f"Ann {i}",
             dt.datetime(2019, 1, 5, 3, 41, 5, 123456, tzinfo=dt.timezone.utc), i % 2 == 0,
             1.5e20 if i == 4 else None) for i in range(10)]
    result = write_result_file(tmp_path / "r.csv", ["Id", "Name", "When", "Flag", "Amount"],
                               iter(rows),
                               converters=converters_for(["id", "string", "datetime",
                                                          "boolean", "double"]))
    assert result.row_count == 10
    parsed: list[list[str]] = []
    for first in range(0, 10, 3):
        page = b"".join(result.iter_page(first, 3)).decode("utf-8")
        page_rows = list(csv.reader(io.StringIO(page, newline="")))
        assert page_rows[0] == ["Id", "Name", "When", "Flag", "Amount"]
        parsed += page_rows[1:]
    assert [row[0] for row in parsed] == [f"00{i}" for i in range(10)]
    assert parsed[0][1] == 'Jürgen "0"\nline two'
    assert parsed[0][2] == "2019-01-05T03:41:05.123Z"
    assert [row[3] for row in parsed[:2]] == ["true", "false"]
    assert parsed[4][4] == "150000000000000000000" and parsed[5][4] == ""
