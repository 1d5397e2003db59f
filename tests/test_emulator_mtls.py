"""Mutual TLS: the user with "Enforce SSL/TLS Mutual Authentication" is served only on the
org's mutual-TLS listener with a client certificate the org trusts — at login and at API time.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import jwt
import pytest
import requests
from simple_salesforce import Salesforce

from forcebeam.emulator.tls import self_signed_rsa
from tests.support.org import EmulatedOrg, trusting_session
from tests.support.routing import routed_session

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def mtls_assertion(org: EmulatedOrg) -> str:
    app = org.info["connected_app"]
    return jwt.encode({"iss": app["consumer_key"], "sub": org.info["mtls_username"],
                       "aud": "https://login.salesforce.com", "exp": int(time.time()) + 180},
                      Path(app["private_key"]).read_bytes(), algorithm="RS256")


def client_cert(org: EmulatedOrg) -> tuple[str, str]:
    return org.info["client_tls"]["certificate"], org.info["client_tls"]["private_key"]


def token(org: EmulatedOrg, base: str, cert: tuple[str, str] | None) -> requests.Response:
    return trusting_session(org.ca_cert, cert).post(
        f"{base}/services/oauth2/token",
        data={"grant_type": JWT_GRANT, "assertion": mtls_assertion(org)}, timeout=30)


def test_enforced_user_refused_on_main_port(org: EmulatedOrg) -> None:
    refused = token(org, org.info["login_url"], client_cert(org))
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert "mutual" in refused.json()["error_description"]


def test_enforced_user_refused_on_mtls_port_without_certificate(org: EmulatedOrg) -> None:
    refused = token(org, org.info["mtls_url"], None)
    assert refused.status_code == 400 and "mutual" in refused.json()["error_description"]


def test_untrusted_certificate_fails_the_handshake(org: EmulatedOrg, tmp_path: Path) -> None:
    certificate, key = self_signed_rsa("intruder")
    (tmp_path / "c.pem").write_bytes(certificate)
    (tmp_path / "k.pem").write_bytes(key)
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        token(org, org.info["mtls_url"], (str(tmp_path / "c.pem"), str(tmp_path / "k.pem")))


def test_trusted_certificate_serves_token_and_api_calls(org: EmulatedOrg) -> None:
    served = token(org, org.info["mtls_url"], client_cert(org))
    assert served.status_code == 200, served.text
    body = served.json()
    assert body["instance_url"] == org.info["mtls_url"]  # the listener that served it
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    path = f"/services/data/v{org.info['api_version']}/limits"
    with_cert = trusting_session(org.ca_cert, client_cert(org))
    assert with_cert.get(org.info["mtls_url"] + path, headers=headers, timeout=30).ok
    on_main = with_cert.get(org.info["instance_url"] + path, headers=headers, timeout=30)
    assert on_main.status_code == 403
    assert on_main.json()[0]["errorCode"] == "MUTUAL_AUTHENTICATION_FAILED"
    no_cert = trusting_session(org.ca_cert).get(org.info["mtls_url"] + path, headers=headers,
                                                timeout=30)
    assert no_cert.status_code == 403


def test_other_users_may_use_mtls_port_without_certificate(org: EmulatedOrg) -> None:
    app = org.info["connected_app"]
    response = trusting_session(org.ca_cert).post(
        org.info["mtls_url"] + "/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": app["consumer_key"],
              "client_secret": app["consumer_secret"]}, timeout=30)
    assert response.status_code == 200


def test_simple_salesforce_soap_login_over_mutual_tls(org: EmulatedOrg) -> None:
    mtls_port = int(org.info["mtls_url"].rsplit(":", 1)[1])
    session = routed_session(org.ca_cert, mtls_port, hostnames=("acme.my.salesforce.com",),
                             client_cert=client_cert(org))
    sf = Salesforce(username=org.info["mtls_username"], password=org.info["mtls_password"],
                    security_token=org.info["mtls_security_token"], domain="acme.my",
                    session=session)
    assert sf.sf_instance == org.info["mtls_url"].removeprefix("https://")
    assert sf.limits()["DailyApiRequests"]["Max"] > 0
    without_cert = routed_session(org.ca_cert, mtls_port, hostnames=("acme.my.salesforce.com",))
    with pytest.raises(Exception, match="MUTUAL_AUTHENTICATION_FAILED"):
        Salesforce(username=org.info["mtls_username"], password=org.info["mtls_password"],
                   security_token=org.info["mtls_security_token"], domain="acme.my",
                   session=without_cert)


def test_mtls_listener_requests_but_does_not_require_a_certificate(org: EmulatedOrg) -> None:
    context = ssl.create_default_context(cafile=org.ca_cert)
    host, port = org.info["mtls_url"].removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
