"""What the emulated org offers replication tools: getDeleted, a cross-object formula,
run-time custom fields and field-level security (all over real TLS, plain requests)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from bench.org import login
from tests.support.bulk import wait_until_terminal

RECORDS = 200


class Api:
    def __init__(self, org):
        self.session = org.session()
        self.auth = login(org, self.session)

    def raw(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.auth.data_url(path),
                                    headers=self.auth.headers(), timeout=60, **kwargs)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.raw(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def query(self, soql: str, endpoint: str = "query") -> list[dict[str, Any]]:
        return self.call("GET", endpoint, params={"q": soql})["records"]

    def deleted(self, sobject: str, start: dt.datetime, end: dt.datetime) -> requests.Response:
        return self.raw("GET", f"sobjects/{sobject}/deleted/",
                        params={"start": start.isoformat(), "end": end.isoformat()})


@pytest.fixture
def org(org_factory):
    return org_factory(records=RECORDS)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def test_get_deleted_lists_soft_hard_and_purged_deletes_in_the_window(org):
    api = Api(org)
    start = _now() - dt.timedelta(seconds=5)
    leads = [r["Id"] for r in api.query("SELECT Id FROM Lead LIMIT 4")]
    api.call("DELETE", f"sobjects/Lead/{leads[0]}")            # soft
    api.call("DELETE", f"sobjects/Lead/{leads[1]}")            # soft, then purged
    purged = org.admin("POST", "records/Lead/empty-recycle-bin",
                       json={"ids": [leads[1]]}).json()["purged"]
    assert purged == [leads[1]]
    job = api.call("POST", "jobs/ingest", json={"object": "Lead", "operation": "hardDelete"})
    api.session.put(api.auth.data_url(f"jobs/ingest/{job['id']}/batches"),
                    data=f"Id\n{leads[2]}\n",
                    headers={**api.auth.headers(), "Content-Type": "text/csv"},
                    timeout=60).raise_for_status()
    api.call("PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    assert wait_until_terminal(lambda: api.call("GET", f"jobs/ingest/{job['id']}"),
                               job["id"])["state"] == "JobComplete"

    response = api.deleted("Lead", start, _now() + dt.timedelta(minutes=1))
    assert response.status_code == 200
    body = response.json()
    assert {r["id"] for r in body["deletedRecords"]} == set(leads[:3])
    assert all(r["deletedDate"].endswith("+0000") for r in body["deletedRecords"])
    assert body["earliestDateAvailable"] and body["latestDateCovered"]
    assert body["latestDateCovered"] <= _now().strftime("%Y-%m-%dT%H:%M:%S.999+0000")
    # queryAll still shows the soft delete (IsDeleted), not the purged or hard-deleted ones.
    seen = {r["Id"]: r["IsDeleted"] for r in api.query(
        f"SELECT Id, IsDeleted FROM Lead WHERE Id IN ("  # noqa: S608
        f"'{leads[0]}', '{leads[1]}', "
        f"'{leads[2]}', '{leads[3]}')", endpoint="queryAll")}
    assert seen == {leads[0]: True, leads[3]: False}
    assert api.deleted("Contact", start, _now()).json()["deletedRecords"] == []


def test_get_deleted_refuses_a_start_before_the_earliest_date_available(org):
    api = Api(org)
    org.admin("POST", "deleted-records/forget", json={"before": _now().isoformat()})
    response = api.deleted("Account", _now() - dt.timedelta(days=1), _now())
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    assert api.deleted("Account", _now(), _now()).status_code == 200


def test_formula_follows_a_parent_rename_without_touching_the_contact(org):
    api = Api(org)
    field = next(f for f in api.call("GET", "sobjects/Contact/describe")["fields"]
                 if f["name"] == "Account_Name__c")
    assert field["calculated"] is True and field["calculatedFormula"] == "Account.Name"
    assert not field["createable"] and not field["updateable"]
    contact = api.query("SELECT Id, AccountId, Account.Name, Account_Name__c, SystemModstamp "
                        "FROM Contact WHERE AccountId != null LIMIT 1")[0]
    assert contact["Account_Name__c"] == contact["Account"]["Name"]
    api.call("PATCH", f"sobjects/Account/{contact['AccountId']}", json={"Name": "Renamed Co"})
    after = api.query(f"SELECT Account_Name__c, SystemModstamp FROM Contact "  # noqa: S608
                      f"WHERE Id = '{contact['Id']}'")[0]
    assert after["Account_Name__c"] == "Renamed Co"
    assert after["SystemModstamp"] == contact["SystemModstamp"]
    assert api.query("SELECT Id FROM Contact WHERE Account_Name__c = 'Renamed Co'")
    refused = api.raw("PATCH", f"sobjects/Contact/{contact['Id']}",
                      json={"Account_Name__c": "x"})
    assert refused.status_code == 400


def test_custom_fields_added_and_removed_at_run_time(org):
    api = Api(org)
    created = org.admin("POST", "schema/Account/fields",
                        json={"name": "Tier__c", "type": "string", "label": "Tier"})
    assert created.status_code == 201
    names = {f["name"] for f in api.call("GET", "sobjects/Account/describe")["fields"]}
    assert "Tier__c" in names
    account = api.query("SELECT Id FROM Account LIMIT 1")[0]["Id"]
    api.call("PATCH", f"sobjects/Account/{account}", json={"Tier__c": "Gold"})
    soql = f"SELECT Tier__c FROM Account WHERE Id = '{account}'"  # noqa: S608
    assert api.query(soql)[0]["Tier__c"] \
        == "Gold"
    org.admin("DELETE", "schema/Account/fields/Tier__c")
    response = api.raw("GET", "query", params={"q": "SELECT Tier__c FROM Account"})
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "INVALID_FIELD"


def test_field_level_security_hides_a_field_from_one_user(org):
    api = Api(org)
    username = org.info["username"]
    # The client-credentials user of `login` is the integration user: hide Phone from it.
    org.admin("PUT", f"users/{username}/field-access/Account/Phone", json={"readable": False})
    names = {f["name"] for f in api.call("GET", "sobjects/Account/describe")["fields"]}
    assert "Phone" not in names and "Name" in names
    response = api.raw("GET", "query", params={"q": "SELECT Id, Phone FROM Account"})
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Phone'" in response.json()[0]["message"]
    bulk = api.raw("POST", "jobs/query", json={"operation": "query",
                                                "query": "SELECT Id, Phone FROM Account"})
    assert bulk.status_code == 400
    every = {r["QualifiedApiName"] for r in api.query(
        "SELECT QualifiedApiName FROM FieldDefinition "
        "WHERE EntityDefinition.QualifiedApiName = 'Account'")}
    assert "Phone" in every
    account = api.query("SELECT Id FROM Account LIMIT 1")[0]["Id"]
    assert "Phone" not in api.call("GET", f"sobjects/Account/{account}")
    org.admin("PUT", f"users/{username}/field-access/Account/Phone", json={"readable": True})
    assert api.raw("GET", "query", params={"q": "SELECT Phone FROM Account"}).ok
