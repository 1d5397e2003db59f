# ruff: noqa: S608  (f-strings build SOQL sent to the emulator, not SQL)
"""sObject Collections (`/composite/sobjects`) against a private org, over real TLS.

What a user notices: 1,000 Contacts go in with 5 calls of 200; results come back one per
input, in input order, with `statusCode` errors; allOrNone rolls everything back exactly as
Salesforce reports it; upsert says which rows were created; retrieve returns nulls for ids
it cannot find.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bench.org import Login, login, session_for
from tests.support.org import EmulatedOrg, start_org

ROLLED_BACK = "ALL_OR_NONE_OPERATION_ROLLED_BACK"


@pytest.fixture(scope="module")
def private_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    running = start_org(tmp_path_factory.mktemp("composite"), records=200)
    try:
        yield running
    finally:
        running.stop()


class Collections:
    def __init__(self, org: EmulatedOrg) -> None:
        self.session = session_for(org)
        self.token: Login = login(org, self.session)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.token.data_url(path),
                                    headers=self.token.headers(), timeout=120, **kwargs)

    def count(self, soql: str) -> int:
        return self.call("GET", "query", params={"q": soql}).json()["totalSize"]


@pytest.fixture(scope="module")
def api(private_org: EmulatedOrg) -> Collections:
    return Collections(private_org)


def contacts(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"attributes": {"type": "Contact"}, "LastName": f"{prefix} {i}",
             "External_Id__c": f"{prefix}-{i}"} for i in range(n)]


def test_insert_1000_contacts_in_five_calls(private_org: EmulatedOrg, api: Collections) -> None:
    before = api.count("SELECT COUNT() FROM Contact")
    private_org.reset_counters()
    rows = contacts("Bulk", 1000)
    ids: list[str] = []
    for start in range(0, 1000, 200):
        response = api.call("POST", "composite/sobjects",
                            json={"allOrNone": False, "records": rows[start:start + 200]})
        assert response.status_code == 200
        results = response.json()
        assert len(results) == 200 and all(r["success"] and r["errors"] == [] for r in results)
        ids += [r["id"] for r in results]
    assert private_org.counters()["api_calls"]["composite"] == 5
    assert len(set(ids)) == 1000
    assert api.count("SELECT COUNT() FROM Contact") == before + 1000
    # results are in input order: the i-th id is the i-th record sent
    sample = api.call("GET", f"sobjects/Contact/{ids[437]}").json()
    assert sample["LastName"] == "Bulk 437"


def test_more_than_200_records_is_refused(api: Collections) -> None:
    response = api.call("POST", "composite/sobjects",
                        json={"records": contacts("TooMany", 201)})
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_partial_success_keeps_good_rows(api: Collections) -> None:
    records = contacts("Partial", 3)
    del records[1]["LastName"]
    results = api.call("POST", "composite/sobjects",
                       json={"allOrNone": False, "records": records}).json()
    assert [r["success"] for r in results] == [True, False, True]
    assert "id" not in results[1]
    assert results[1]["errors"] == [{"statusCode": "REQUIRED_FIELD_MISSING",
                                     "message": "Required fields are missing: [LastName]",
                                     "fields": ["LastName"]}]
    assert api.count("SELECT COUNT() FROM Contact WHERE LastName LIKE 'Partial%'") == 2


def test_all_or_none_rolls_back_every_row(api: Collections) -> None:
    records = contacts("Atomic", 4) + [{"attributes": {"type": "Invoice__c"}, "Name": "bad",
                                        "Status__c": "Nope"}]
    results = api.call("POST", "composite/sobjects",
                       json={"allOrNone": True, "records": records}).json()
    assert len(results) == 5 and not any(r["success"] for r in results)
    assert all(r["errors"][0]["statusCode"] == ROLLED_BACK for r in results[:4])
    assert all("id" not in r for r in results)
    assert results[4]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert api.count("SELECT COUNT() FROM Contact WHERE LastName LIKE 'Atomic%'") == 0


def test_update_and_delete_collections(api: Collections) -> None:
    created = api.call("POST", "composite/sobjects",
                       json={"records": contacts("Upd", 3)}).json()
    ids = [r["id"] for r in created]
    updates = [{"attributes": {"type": "Contact"}, "Id": i, "Title": "Updated"} for i in ids]
    updates.append({"attributes": {"type": "Contact"}, "Id": "003000000000zzzAAA",
                    "Title": "x"})
    results = api.call("PATCH", "composite/sobjects",
                       json={"allOrNone": False, "records": updates}).json()
    assert [r["success"] for r in results] == [True, True, True, False]
    assert results[3]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert api.count("SELECT COUNT() FROM Contact WHERE Title = 'Updated' "
                     "AND LastName LIKE 'Upd%'") == 3
    deleted = api.call("DELETE", "composite/sobjects",
                       params={"ids": ",".join(ids[:2]), "allOrNone": "true"}).json()
    assert deleted == [{"id": i, "success": True, "errors": []} for i in ids[:2]]
    again = api.call("DELETE", "composite/sobjects",
                     params={"ids": ",".join(ids), "allOrNone": "true"}).json()
    assert [r["errors"][0]["statusCode"] for r in again] == [
        "ENTITY_IS_DELETED", "ENTITY_IS_DELETED", ROLLED_BACK]
    assert again[2]["id"] == ids[2]  # rolled-back deletes still name their record
    assert api.count(f"SELECT COUNT() FROM Contact WHERE Id = '{ids[2]}'") == 1


def test_upsert_collection_reports_created(api: Collections) -> None:
    first = api.call("PATCH", "composite/sobjects/Contact/External_Id__c",
                     json={"allOrNone": False, "records": contacts("Ups", 2)}).json()
    assert [r["created"] for r in first] == [True, True]
    mixed = contacts("Ups", 3)
    results = api.call("PATCH", "composite/sobjects/Contact/External_Id__c",
                       json={"allOrNone": False, "records": mixed}).json()
    assert [r["created"] for r in results] == [False, False, True]
    assert [r["id"] for r in results[:2]] == [r["id"] for r in first]
    duplicate = api.call("PATCH", "composite/sobjects/Contact/External_Id__c",
                         json={"records": contacts("Dup", 1) + contacts("Dup", 1)}).json()
    assert [r["errors"][0]["statusCode"] for r in duplicate] == ["DUPLICATE_EXTERNAL_ID"] * 2


def test_retrieve_by_ids_get_and_post(api: Collections) -> None:
    created = api.call("POST", "composite/sobjects", json={"records": contacts("Ret", 2)}).json()
    ids = [r["id"] for r in created]
    wanted = [ids[1], "003000000000zzzAAA", ids[0]]
    got = api.call("GET", "composite/sobjects/Contact",
                   params={"ids": ",".join(wanted), "fields": "LastName,Account.Name"}).json()
    assert [r and r["LastName"] for r in got] == ["Ret 1", None, "Ret 0"]
    posted = api.call("POST", "composite/sobjects/Contact",
                      json={"ids": wanted, "fields": ["LastName"]}).json()
    assert [r and r["LastName"] for r in posted] == ["Ret 1", None, "Ret 0"]
    assert posted[0]["attributes"]["url"].endswith(ids[1])
