"""Single-record REST writes through unmodified simple-salesforce, against a private org.

What a user notices: create answers 201 with the id; update/delete answer 204 and the change
is visible to queries; upsert by external id answers 201 (created) / 200 (updated) / 300
(several matches); refused rows carry Salesforce's error code, message and fields.
"""

# ruff: noqa: S608  (f-strings build SOQL sent to the emulator, not SQL)
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from bench.org import Login, login, session_for
from tests.support.org import EmulatedOrg, start_org


@pytest.fixture(scope="module")
def private_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    """Writes change data: keep them off the shared 5,000-Account org."""
    running = start_org(tmp_path_factory.mktemp("writes"), records=300)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def auth(private_org: EmulatedOrg) -> tuple[requests.Session, Login]:
    session = session_for(private_org)
    return session, login(private_org, session)


@pytest.fixture(scope="module")
def sf(auth: tuple[requests.Session, Login]) -> Salesforce:
    session, token = auth
    return Salesforce(instance_url=token.instance_url, session_id=token.access_token,
                      session=session, version=token.api_version)


def test_create_read_update_delete(sf: Salesforce) -> None:
    created = sf.Account.create({"Name": "Write Test Ltd", "NumberOfEmployees": 42,
                                 "Description": 'Line one,\n"quoted" — ünïcode'})
    assert created["success"] is True and created["id"].startswith("001")
    record = sf.Account.get(created["id"])
    assert record["Name"] == "Write Test Ltd" and record["NumberOfEmployees"] == 42
    assert record["Description"] == 'Line one,\n"quoted" — ünïcode'
    assert sf.Account.update(created["id"], {"Rating": "Hot", "NumberOfEmployees": None}) == 204
    updated = sf.Account.get(created["id"])
    assert updated["Rating"] == "Hot" and updated["NumberOfEmployees"] is None
    assert updated["SystemModstamp"] >= record["SystemModstamp"]
    assert updated["LastModifiedDate"] >= record["LastModifiedDate"]
    assert sf.Account.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as error:
        sf.Account.get(created["id"])
    assert error.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"
    gone = sf.query_all(f"SELECT Id FROM Account WHERE Id = '{created['id']}'")
    assert gone["totalSize"] == 0
    kept = sf.query_all(f"SELECT Id, IsDeleted FROM Account WHERE Id = '{created['id']}'",
                        include_deleted=True)
    assert kept["records"][0]["IsDeleted"] is True


def test_write_moves_system_modstamp_forward(sf: Salesforce) -> None:
    target = sf.query("SELECT Id, SystemModstamp FROM Contact ORDER BY Id LIMIT 1")["records"][0]
    sf.Contact.update(target["Id"], {"Title": "Moved"})
    after = sf.Contact.get(target["Id"])
    parse = lambda s: datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f%z")  # noqa: E731
    assert parse(after["SystemModstamp"]) > parse(target["SystemModstamp"])


def test_upsert_by_external_id_created_updated_multiple(sf: Salesforce) -> None:
    first = sf.Contact.upsert("External_Id__c/EXT-W-1", {"LastName": "Upsert"},
                              raw_response=True)
    assert first.status_code == 201 and first.json()["created"] is True
    second = sf.Contact.upsert("External_Id__c/EXT-W-1", {"LastName": "Upserted"},
                               raw_response=True)
    assert second.status_code == 200
    assert second.json() == {"id": first.json()["id"], "success": True, "errors": [],
                             "created": False}
    assert sf.Contact.get_by_custom_id("External_Id__c", "EXT-W-1")["LastName"] == "Upserted"
    for last_name in ("Twin A", "Twin B"):
        sf.Contact.create({"LastName": last_name, "Legacy_Id__c": "LEG-1"})
    with pytest.raises(SalesforceMoreThanOneRecord) as error:
        sf.Contact.upsert("Legacy_Id__c/LEG-1", {"Title": "x"})
    assert error.value.status == 300 and len(error.value.content) == 2
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Contact.get_by_custom_id("Legacy_Id__c", "LEG-1")


def test_upsert_with_unknown_external_id_field_is_not_found(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.upsert("Title/abc", {"LastName": "x"})


def test_parent_by_external_id_in_body(sf: Salesforce) -> None:
    parent = sf.query("SELECT Id, External_Id__c FROM Account LIMIT 1")["records"][0]
    created = sf.Contact.create({"LastName": "Child",
                                 "Account": {"External_Id__c": parent["External_Id__c"]}})
    assert sf.Contact.get(created["id"])["AccountId"] == parent["Id"]


@pytest.mark.parametrize(("sobject", "body", "code", "fields", "message"), [
    ("Account", {"Description": "no name"}, "REQUIRED_FIELD_MISSING", ["Name"],
     "Required fields are missing: [Name]"),
    ("Account", {"Name": "x" * 256}, "STRING_TOO_LONG", ["Name"], "max length=255"),
    ("Account", {"Name": "n", "NumberOfEmployees": "many"}, "INVALID_TYPE_ON_FIELD_IN_RECORD",
     ["NumberOfEmployees"], "Employees: value not of required type: many"),
    ("Invoice__c", {"Name": "n", "Status__c": "Lost"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
     ["Status__c"], "bad value for restricted picklist field: Lost"),
    ("Account", {"Name": "n", "CreatedDate": "2024-01-01T00:00:00Z"},
     "INVALID_FIELD_FOR_INSERT_UPDATE", ["CreatedDate"], "Unable to create/update fields"),
    ("Contact", {"LastName": "n", "AccountId": "001000000000zzzAAA"},
     "INVALID_CROSS_REFERENCE_KEY", ["AccountId"], "invalid cross reference id"),
    ("Contact", {"LastName": "n", "AccountId": "not-an-id"}, "MALFORMED_ID", ["AccountId"],
     "id value of incorrect type"),
    ("Account", {"Name": "n", "External_Id__c": "ACC-00000001"}, "DUPLICATE_VALUE",
     ["External_Id__c"], "duplicate value found: External_Id__c"),
    ("Contact", {"LastName": "n", "Email": "not an email"}, "INVALID_EMAIL_ADDRESS", ["Email"],
     "invalid email address"),
])
def test_validation_errors(sf: Salesforce, sobject: str, body: dict, code: str,
                           fields: list[str], message: str) -> None:
    before = sf.query(f"SELECT COUNT() FROM {sobject}")["totalSize"]
    with pytest.raises(SalesforceMalformedRequest) as error:
        getattr(sf, sobject).create(body)
    problem = error.value.content[0]
    assert (problem["errorCode"], problem["fields"]) == (code, fields)
    assert message in problem["message"]
    assert sf.query(f"SELECT COUNT() FROM {sobject}")["totalSize"] == before


def test_id_in_create_body_and_unknown_ids(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.Account.create({"Id": "001000000000001AAA", "Name": "x"})
    assert error.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.update("001000000000zzzAAA", {"Name": "x"})
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get("001000000000zzzAAA")
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.Account.get("003000000000001AAA")
    assert error.value.content[0]["errorCode"] == "MALFORMED_ID"


def test_get_with_fields_parameter(auth) -> None:
    session, token = auth
    some = session.get(token.data_url("query"), headers=token.headers(), timeout=60,
                       params={"q": "SELECT Id FROM Account LIMIT 1"}).json()["records"][0]
    record = session.get(token.data_url(f"sobjects/Account/{some['Id']}"),
                         params={"fields": "Name,Owner.Name"}, headers=token.headers(),
                         timeout=60).json()
    assert set(record) == {"attributes", "Name", "Owner"} and record["Owner"]["Name"]


def test_writes_need_a_session_before_anything_else(auth) -> None:
    session, token = auth
    for method, path in (("POST", "sobjects/Nothing__c"), ("PATCH", "composite/sobjects"),
                         ("PATCH", "sobjects/Contact/External_Id__c/X")):
        response = session.request(method, token.data_url(path), json={"records": []},
                                   headers={"Authorization": "Bearer expired"}, timeout=60)
        assert response.status_code == 401, path
        assert response.json()[0]["errorCode"] == "INVALID_SESSION_ID"
