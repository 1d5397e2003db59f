"""Describe of the emulated org, as tools that map Salesforce types read it.

Airbyte/tap-salesforce/forcebeam type their output from describe: every object must be
listed, every field must carry the full key set of a real describe, and each field's type
and soapType must be the declared ones (all the types extract tools know).
"""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceResourceNotFound

from bench.org import login, session_for
from forcebeam.emulator.records.schema import SCHEMA, SOAP_TYPES
from tests.support.org import EmulatedOrg

FIELD_KEYS = {
    "aggregatable", "autoNumber", "byteLength", "calculated", "calculatedFormula",
    "cascadeDelete", "caseSensitive", "compoundFieldName", "controllerName", "createable",
    "custom", "defaultValue", "defaultValueFormula", "defaultedOnCreate", "dependentPicklist",
    "deprecatedAndHidden", "digits", "displayLocationInDecimal", "encrypted", "externalId",
    "extraTypeInfo", "filterable", "filteredLookupInfo", "groupable", "highScaleNumber",
    "htmlFormatted", "idLookup", "inlineHelpText", "label", "length", "mask", "maskType", "name",
    "nameField", "namePointing", "nillable", "permissionable", "picklistValues",
    "polymorphicForeignKey", "precision", "queryByDistance", "referenceTargetField",
    "referenceTo", "relationshipName", "relationshipOrder", "restrictedDelete",
    "restrictedPicklist", "scale", "searchPrefilterable", "soapType", "sortable", "type",
    "unique", "updateable", "writeRequiresMasterRead"}
OBJECTS = ["Account", "Contact", "Opportunity", "Lead", "Case", "User", "Invoice__c",
           "Organization"]
ALL_TYPES = {"id", "string", "textarea", "picklist", "boolean", "int", "double", "currency",
             "percent", "date", "datetime", "reference", "email", "phone", "url", "address",
             "location"}


@pytest.fixture(scope="module")
def sf(org: EmulatedOrg) -> Salesforce:
    session = session_for(org)
    token = login(org, session)
    return Salesforce(instance_url=token.instance_url, session_id=token.access_token,
                      session=session, version=token.api_version)


def test_describe_global_lists_every_object(sf: Salesforce) -> None:
    body = sf.describe()
    listed = {o["name"]: o for o in body["sobjects"]}
    assert set(OBJECTS) <= set(listed)
    assert listed["Account"]["keyPrefix"] == "001" and listed["Invoice__c"]["custom"] is True
    assert all(o["queryable"] for o in listed.values())
    assert listed["Contact"]["urls"]["describe"] == "/services/data/v62.0/sobjects/Contact/describe"


@pytest.mark.parametrize("sobject", OBJECTS)
def test_describe_of_every_object_has_declared_types(sf: Salesforce, sobject: str) -> None:
    body = getattr(sf, sobject).describe()
    declared = SCHEMA.object(sobject)
    assert declared is not None and body["name"] == sobject
    assert [f["name"] for f in body["fields"]] == [f.name for f in declared.field_list]
    for described, field in zip(body["fields"], declared.field_list, strict=True):
        assert set(described) >= FIELD_KEYS, field.name
        assert described["type"] == field.type and described["soapType"] == SOAP_TYPES[field.type]
        assert described["nillable"] == field.nillable
        assert described["referenceTo"] == list(field.reference_to)
    assert body["fields"][0]["name"] == "Id" and body["fields"][0]["type"] == "id"


def test_all_extract_types_are_covered() -> None:
    covered = {f.type for obj in SCHEMA.object_list for f in obj.field_list}
    assert covered == ALL_TYPES


def test_field_details_a_mapper_needs(sf: Salesforce) -> None:
    fields = {f["name"]: f for f in sf.Invoice__c.describe()["fields"]}
    assert fields["External_Id__c"]["externalId"] is True and fields["External_Id__c"]["unique"]
    status = fields["Status__c"]
    assert status["restrictedPicklist"] is True
    assert [v["value"] for v in status["picklistValues"]] == ["Draft", "Sent", "Paid", "Void"]
    assert fields["Location__Latitude__s"]["compoundFieldName"] == "Location__c"
    assert (fields["Amount__c"]["precision"], fields["Amount__c"]["scale"]) == (16, 2)
    assert fields["Account__c"]["relationshipName"] == "Account__r"
    account = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert account["BillingCity"]["compoundFieldName"] == "BillingAddress"
    assert account["Name"]["nillable"] is False and account["Name"]["length"] == 255
    assert account["CreatedDate"]["createable"] is False


def test_child_relationships_listed(sf: Salesforce) -> None:
    children = {(c["childSObject"], c["field"]): c["relationshipName"]
                for c in sf.Account.describe()["childRelationships"]}
    assert children[("Contact", "AccountId")] == "Contacts"
    assert children[("Invoice__c", "Account__c")] == "Invoices__r"


def test_basic_sobject_info_and_unknown_object(sf: Salesforce, org: EmulatedOrg) -> None:
    basic = sf.Lead.metadata()
    assert basic["objectDescribe"]["name"] == "Lead" and basic["recentItems"] == []
    with pytest.raises(SalesforceResourceNotFound) as error:
        sf.Nothing__c.describe()
    assert error.value.content[0]["errorCode"] == "NOT_FOUND"


def test_retired_api_version_is_gone(org: EmulatedOrg) -> None:
    session = session_for(org)
    token = login(org, session)
    response: requests.Response = session.get(
        f"{token.instance_url}/services/data/v20.0/sobjects", headers=token.headers(),
        timeout=60)
    assert response.status_code == 410, "retired versions answer 410 GONE (help 000354473)"
