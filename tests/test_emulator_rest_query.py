"""REST query/queryAll against the running emulator through unmodified simple-salesforce.

What a user notices: `query_all` returns every row across pages with the right totalSize;
deleted rows appear only with `include_deleted=True`; parents are nested objects (or null);
values carry Salesforce's JSON types; bad SOQL fails with Salesforce's error codes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from bench.org import Login, login, session_for
from tests.support.org import EmulatedOrg

DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")


@pytest.fixture(scope="module")
def auth(org: EmulatedOrg) -> tuple[requests.Session, Login]:
    session = session_for(org)
    return session, login(org, session)


@pytest.fixture(scope="module")
def sf(auth: tuple[requests.Session, Login]) -> Salesforce:
    session, token = auth
    return Salesforce(instance_url=token.instance_url, session_id=token.access_token,
                      session=session, version=token.api_version)


def get(auth: tuple[requests.Session, Login], path: str, **kwargs: Any) -> requests.Response:
    session, token = auth
    headers = {**token.headers(), **kwargs.pop("headers", {})}
    return session.get(token.data_url(path), headers=headers, timeout=60, **kwargs)


def test_query_all_returns_every_account_over_three_pages(org: EmulatedOrg, sf: Salesforce,
                                                          auth) -> None:
    org.reset_counters()
    result = sf.query_all("SELECT Id, Name FROM Account")
    assert result["totalSize"] == 5000 and len(result["records"]) == 5000
    assert len({r["Id"] for r in result["records"]}) == 5000
    assert org.counters()["api_calls"]["rest_query"] == 3  # 2000 + 2000 + 1000
    first = get(auth, "query", params={"q": "SELECT Id FROM Account"}).json()
    assert first["done"] is False and len(first["records"]) == 2000
    assert re.fullmatch(r"/services/data/v62\.0/query/01g\w+-2000", first["nextRecordsUrl"])
    session, token = auth
    second = session.get(token.instance_url + first["nextRecordsUrl"], headers=token.headers(),
                         timeout=60).json()
    assert second["totalSize"] == 5000 and len(second["records"]) == 2000
    assert not {r["Id"] for r in second["records"]} & {r["Id"] for r in first["records"]}
    last = session.get(token.instance_url + second["nextRecordsUrl"], headers=token.headers(),
                       timeout=60).json()
    assert last["done"] is True and len(last["records"]) == 1000
    assert "nextRecordsUrl" not in last


def test_include_deleted_returns_soft_deleted_rows_only_then(sf: Salesforce) -> None:
    live = sf.query_all("SELECT Id FROM Account WHERE IsDeleted = true")
    assert live["totalSize"] == 0
    everything = sf.query_all("SELECT Id, IsDeleted FROM Account", include_deleted=True)
    deleted = [r for r in everything["records"] if r["IsDeleted"]]
    assert everything["totalSize"] == 5000 + len(deleted) and len(deleted) == 50
    visible = {r["Id"] for r in sf.query_all("SELECT Id FROM Account")["records"]}
    assert not visible & {r["Id"] for r in deleted}


def test_ordered_pages_follow_order_by(sf: Salesforce) -> None:
    result = sf.query_all("SELECT Id, Name FROM Contact ORDER BY Name DESC, Id")
    names = [r["Name"].lower() for r in result["records"]]
    assert len(names) == 2500 and names == sorted(names, reverse=True)


def test_batch_size_header_controls_page_size(auth) -> None:
    page = get(auth, "query", params={"q": "SELECT Id FROM Contact"},
               headers={"Sforce-Query-Options": "batchSize=300"}).json()
    assert len(page["records"]) == 300 and page["nextRecordsUrl"].endswith("-300")
    tiny = get(auth, "query", params={"q": "SELECT Id FROM Contact"},
               headers={"Sforce-Query-Options": "batchSize=5"}).json()
    assert len(tiny["records"]) == 200  # Salesforce's minimum


def test_relationships_are_nested_objects_or_null(sf: Salesforce) -> None:
    with_parent = sf.query("SELECT Id, Name, Account.Name, Account.Owner.Name FROM Contact "
                           "WHERE AccountId != null LIMIT 2")["records"]
    account = with_parent[0]["Account"]
    assert account["attributes"]["type"] == "Account" and isinstance(account["Name"], str)
    assert account["Owner"]["attributes"]["type"] == "User" and account["Owner"]["Name"]
    orphans = sf.query("SELECT Id, Parent.Name FROM Account WHERE ParentId = null LIMIT 1")
    assert orphans["records"][0]["Parent"] is None


def test_values_have_salesforce_json_types(sf: Salesforce) -> None:
    record = sf.query(
        "SELECT Id, Name, Amount__c, Quantity__c, Paid__c, Due_Date__c, Issued_At__c, "
        "Location__c, CreatedDate, Account__r.BillingAddress FROM Invoice__c "
        "WHERE Account__c != null LIMIT 1")["records"][0]
    assert record["attributes"]["url"].endswith("/sobjects/Invoice__c/" + record["Id"])
    assert isinstance(record["Amount__c"], float) and isinstance(record["Paid__c"], bool)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["Due_Date__c"])
    assert DATETIME.match(record["Issued_At__c"]) and DATETIME.match(record["CreatedDate"])
    assert set(record["Location__c"]) == {"latitude", "longitude"}
    address = record["Account__r"]["BillingAddress"]
    assert {"street", "city", "state", "postalCode", "country"} <= set(address)


def test_count_query_shape(sf: Salesforce) -> None:
    result = sf.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Acme%'")
    expected = sf.query_all("SELECT Id FROM Account WHERE Name LIKE 'Acme%'")["totalSize"]
    assert result == {"totalSize": expected, "done": True, "records": []} and expected > 0


def test_bad_soql_raises_salesforce_errors(sf: Salesforce) -> None:
    cases = {"SELECT Id FROM Account WHERE": "MALFORMED_QUERY",
             "SELECT Bogus FROM Contact": "INVALID_FIELD",
             "SELECT Id FROM Nothing__c": "INVALID_TYPE"}
    for soql, code in cases.items():
        with pytest.raises(SalesforceMalformedRequest) as error:
            sf.query(soql)
        assert error.value.status == 400
        assert error.value.content[0]["errorCode"] == code, soql
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.query("SELECT Bogus FROM Contact")
    assert "ERROR at Row:1:Column:8" in error.value.content[0]["message"]


def test_query_more_with_unknown_locator(auth) -> None:
    response = get(auth, "query/01gNOPE-2000")
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_without_session_is_refused_like_salesforce(org: EmulatedOrg, auth) -> None:
    session, token = auth
    response = session.get(token.data_url("query"), params={"q": "SELECT Id FROM Account"},
                           headers={"Authorization": "Bearer not-a-token"}, timeout=60)
    assert response.status_code == 401
    assert response.json() == [{"message": "Session expired or invalid",
                                "errorCode": "INVALID_SESSION_ID"}]


def test_columns_metadata_like_the_cli_asks(auth) -> None:
    body = get(auth, "query", params={"q": "SELECT Id, Name, Account.Name FROM Contact",
                                      "columns": "true"}).json()
    assert body["entityName"] == "Contact" and body["idSelected"] is True
    names = [c["columnName"] for c in body["columnMetadata"]]
    assert names == ["Id", "Name", "Account"]
    assert body["columnMetadata"][2]["joinColumns"][0]["displayName"] == "Account.Name"


def test_every_data_response_carries_limit_info(auth) -> None:
    response = get(auth, "query", params={"q": "SELECT Id FROM Lead LIMIT 1"})
    assert re.fullmatch(r"api-usage=\d+/\d+", response.headers["Sforce-Limit-Info"])
    resources = get(auth, "").json()
    assert resources["query"].endswith("/services/data/v62.0/query")


def test_is_sandbox_query_works(sf: Salesforce) -> None:
    # simple-salesforce's is_sandbox() runs SELECT IsSandbox FROM Organization LIMIT 1
    assert sf.is_sandbox() is False
