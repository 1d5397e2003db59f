"""SOAP login() against the emulated org: simple-salesforce unmodified, and the raw envelope.

simple-salesforce finds `sessionId`/`serverUrl` by bare tag name and `sf:exceptionCode` with
its prefix, so these tests prove the exact XML shapes as much as the behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from simple_salesforce import Salesforce, SalesforceAuthenticationFailed

from tests.support.org import EmulatedOrg, start_org
from tests.support.routing import routed_session

ENVELOPE = """<?xml version="1.0" encoding="utf-8" ?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:urn="urn:partner.soap.sforce.com">
  <soapenv:Body><urn:login><urn:username>{username}</urn:username>
    <urn:password>{password}</urn:password></urn:login></soapenv:Body>
</soapenv:Envelope>"""


def routed(org: EmulatedOrg) -> requests.Session:
    return routed_session(org.ca_cert, int(org.info["instance_url"].rsplit(":", 1)[1]))


def soap_post(org: EmulatedOrg, version: str, password: str) -> requests.Response:
    body = ENVELOPE.format(username=org.info["username"], password=password)
    return org.session().post(f"{org.info['login_url']}/services/Soap/u/{version}", data=body,
                              headers={"Content-Type": "text/xml", "SOAPAction": "login"},
                              timeout=30)


@pytest.fixture(scope="module")
def private_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    running = start_org(tmp_path_factory.mktemp("soap-org"), records=50)
    try:
        yield running
    finally:
        running.stop()


def test_simple_salesforce_soap_login_then_rest(org: EmulatedOrg) -> None:
    sf = Salesforce(username=org.info["username"], password=org.info["password"],
                    security_token=org.info["security_token"], session=routed(org))
    assert sf.sf_instance == org.info["instance_url"].removeprefix("https://")
    assert sf.limits()["DailyApiRequests"]["Max"] > 0
    counters = org.counters()
    assert counters["logins"]["soap"] >= 1


def test_soap_login_on_sandbox_login_host(org: EmulatedOrg) -> None:
    sf = Salesforce(username=org.info["username"], password=org.info["password"],
                    security_token=org.info["security_token"], domain="test",
                    session=routed(org))
    assert sf.session_id.startswith(org.info["org_id"][:15] + "!")


def test_wrong_password_is_invalid_login_fault(org: EmulatedOrg) -> None:
    with pytest.raises(SalesforceAuthenticationFailed, match="INVALID_LOGIN"):
        Salesforce(username=org.info["username"], password="wrong",
                   security_token=org.info["security_token"], session=routed(org))
    raw = soap_post(org, "59.0", "wrong")
    assert raw.status_code == 500
    assert "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>" in raw.text


def test_missing_security_token_says_so(org: EmulatedOrg) -> None:
    raw = soap_post(org, "59.0", org.info["password"])
    assert raw.status_code == 500
    assert "LOGIN_MUST_USE_SECURITY_TOKEN" in raw.text and "security token" in raw.text


def test_success_envelope_shape(org: EmulatedOrg) -> None:
    raw = soap_post(org, "62.0", org.info["password"] + org.info["security_token"])
    assert raw.status_code == 200 and raw.headers["Content-Type"].startswith("text/xml")
    assert "<sessionId>" in raw.text and "<serverUrl>" in raw.text  # unprefixed
    assert f"<organizationId>{org.info['org_id']}</organizationId>" in raw.text
    assert f"{org.info['instance_url']}/services/Soap/u/62.0/" in raw.text


@pytest.mark.parametrize("version", ["65.0", "66.0", "30.0"])
def test_login_refused_outside_supported_versions(org: EmulatedOrg, version: str) -> None:
    raw = soap_post(org, version, org.info["password"] + org.info["security_token"])
    assert raw.status_code == 500
    assert "<sf:exceptionCode>UNSUPPORTED_API_VERSION</sf:exceptionCode>" in raw.text
    with pytest.raises(SalesforceAuthenticationFailed, match="UNSUPPORTED_API_VERSION"):
        Salesforce(username=org.info["username"], password=org.info["password"],
                   security_token=org.info["security_token"], version=version,
                   session=routed(org))


def test_login_disabled_in_org(private_org: EmulatedOrg) -> None:
    secret = private_org.info["password"] + private_org.info["security_token"]
    assert soap_post(private_org, "59.0", secret).status_code == 200
    private_org.admin("PATCH", "org", json={"soap_login_enabled": False})
    try:
        refused = soap_post(private_org, "59.0", secret)
    finally:
        private_org.admin("PATCH", "org", json={"soap_login_enabled": True})
    assert refused.status_code == 500
    assert "Enable SOAP API login()" in refused.text


def test_entity_declarations_are_refused(org: EmulatedOrg) -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>'
            '<Envelope><Body><login><username>&a;</username><password>p</password></login>'
            '</Body></Envelope>')
    raw = org.session().post(f"{org.info['login_url']}/services/Soap/u/59.0", data=bomb,
                             headers={"Content-Type": "text/xml"}, timeout=30)
    assert raw.status_code == 500 and "INVALID_LOGIN" in raw.text
