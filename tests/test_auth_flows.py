"""Every auth type, with and without mutual TLS, from YAML-shaped config to a real query.

Secrets come through the real google-cloud-secret-manager client (the emulator's endpoint),
environment variables and files; TLS is verified against the emulator's CA.
"""

from __future__ import annotations

import logging
import pickle
import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from forcebeam.auth import AuthError, get_client
from tests.test_auth_fixtures import (
    AUTH_TYPES,
    auth_section,
    clean_auth_state,  # noqa: F401 - fixture
    connection_for,
    mtls_port,
)

GRANT_COUNTER = {"jwt_bearer": "jwt_bearer", "client_credentials": "client_credentials",
                 "refresh_token": "refresh_token", "password": "password", "basic": "soap"}

pytestmark = pytest.mark.usefixtures("clean_auth_state")


@pytest.mark.parametrize("mtls", [False, True], ids=["tls", "mtls"])
@pytest.mark.parametrize("auth_type", AUTH_TYPES)
def test_connection_from_yaml_logs_in_and_queries(org, monkeypatch, tmp_path, auth_type, mtls):
    connection = connection_for(org, auth_section(org, auth_type, monkeypatch, tmp_path,
                                                  mtls=mtls), mtls=mtls)
    org.reset_counters()

    client = get_client(connection)
    result = client.sf.query("SELECT Id, Name FROM Account ORDER BY Id LIMIT 5")

    assert result["totalSize"] == 5
    assert all(record["Id"].startswith("001") for record in result["records"])
    assert client.api_version == org.info["api_version"]
    counters = org.counters()
    if auth_type in GRANT_COUNTER:
        assert counters["logins"].get(GRANT_COUNTER[auth_type]) == 1
        assert counters["logins"]["total"] == 1
    else:
        assert counters["logins"]["total"] == 0  # an access token is used as given
    expected_port = mtls_port(org) if mtls else urlsplit(org.info["instance_url"]).port
    assert urlsplit(client.instance_url).port == expected_port
    assert client.stats.api_calls >= 1
    assert client.stats.api_usage is not None  # from Sforce-Limit-Info


def test_mutual_tls_user_without_client_certificate_gets_actionable_error(org, monkeypatch,
                                                                            tmp_path):
    auth = auth_section(org, "jwt_bearer", monkeypatch, tmp_path, mtls=True)
    connection = connection_for(org, auth, mtls=False)
    with pytest.raises(AuthError) as caught:
        get_client(connection)
    assert "mutual_tls" in caught.value.fix and "Mutual Authentication" in caught.value.fix


@pytest.mark.parametrize("auth_type", ["password", "basic"])
def test_legacy_flows_warn_once_that_salesforce_retires_them(org, monkeypatch, tmp_path, caplog,
                                                             auth_type):
    from forcebeam.auth import credentials

    credentials._warned_legacy.discard(auth_type)
    connection = connection_for(org, auth_section(org, auth_type, monkeypatch, tmp_path))
    with caplog.at_level(logging.WARNING, logger="forcebeam.auth"):
        client = get_client(connection)
        client.auth.renew(client.auth.current_token())  # a second login
    warnings = [r for r in caplog.records if "Salesforce retire" in r.getMessage()]
    assert len(warnings) == 1
    assert "jwt_bearer or client_credentials" in warnings[0].getMessage()


def _secret_values(org, client) -> list[bytes]:
    info = org.info
    key_lines = Path(info["connected_app"]["private_key"]).read_text().splitlines()[1:4]
    values = [info["password"], info["security_token"], info["connected_app"]["consumer_secret"],
              client.auth.credentials.token.text(), *key_lines]
    return [value.encode() for value in values if value]


@pytest.mark.parametrize("auth_type", ["jwt_bearer", "password"])
def test_pickles_hold_no_secret_bytes(org, monkeypatch, tmp_path, auth_type):
    connection = connection_for(org, auth_section(org, auth_type, monkeypatch, tmp_path))
    client = get_client(connection)
    client.sf.query("SELECT Id FROM Account LIMIT 1")
    pickled = pickle.dumps(connection) + pickle.dumps(client)
    for value in _secret_values(org, client):
        assert value not in pickled
    # The unpickled client is this process's shared client for the same connection.
    assert pickle.loads(pickle.dumps(client)) is client  # noqa: S301 - our own bytes


def test_debug_logs_of_login_and_query_hold_no_secret(org, monkeypatch, tmp_path, caplog):
    connection = connection_for(org, auth_section(org, "password", monkeypatch, tmp_path))
    with caplog.at_level(logging.DEBUG):
        client = get_client(connection)
        client.sf.query("SELECT Id, Name FROM Account LIMIT 3")
        client.request("GET", "limits")
    text = "\n".join(record.getMessage() for record in caplog.records).encode()
    assert b"/services/oauth2/token" in text  # the login was logged (urllib3 / auth) ...
    for value in _secret_values(org, client):
        assert value not in text           # ... without any secret or token


def test_repr_of_everything_redacts(org, monkeypatch, tmp_path):
    connection = connection_for(org, auth_section(org, "password", monkeypatch, tmp_path))
    client = get_client(connection)
    text = " ".join(repr(x) for x in (connection, client, client.auth.credentials,
                                      client.auth.credentials.token, client.stats))
    for value in _secret_values(org, client):
        assert value not in text.encode()


def test_mutual_tls_temp_files_are_private_and_removed_on_close(org, monkeypatch, tmp_path):
    connection = connection_for(org, auth_section(org, "jwt_bearer", monkeypatch, tmp_path,
                                                  mtls=True), mtls=True)
    client = get_client(connection)
    cert_path, key_path = (Path(p) for p in client.http.get_adapter(client.instance_url)
                           ._client_cert)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    client.sf.query("SELECT Id FROM Account LIMIT 1")
    client.close()
    assert not key_path.exists() and not cert_path.exists() and not key_path.parent.exists()
    # A closed client is evicted: asking again logs in again with fresh files.
    again = get_client(connection)
    assert again is not client
    assert again.sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


def test_token_is_never_sent_to_another_host(org, monkeypatch, tmp_path):
    connection = connection_for(org, auth_section(org, "client_credentials", monkeypatch,
                                                  tmp_path))
    client = get_client(connection)
    seen = {}

    def capture(adapter_self, request, **kwargs):
        seen["authorization"] = request.headers.get("Authorization")
        raise ConnectionError("stop")

    adapter = client.http.get_adapter(client.instance_url)
    monkeypatch.setattr(type(adapter).__mro__[1], "send", capture)
    with pytest.raises(ConnectionError):
        client.http.get("https://localhost:9/elsewhere",
                        headers={"Authorization": "Bearer should-be-dropped"})
    assert seen["authorization"] is None


def test_ca_bundle_wins_over_requests_ca_bundle_environment(org, monkeypatch, tmp_path):
    import certifi

    # The environment points requests at the public CAs, which don't know the emulator's CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    connection = connection_for(org, auth_section(org, "client_credentials", monkeypatch,
                                                  tmp_path))
    assert get_client(connection).sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


def test_unverifiable_server_is_refused_with_the_fix(org, monkeypatch, tmp_path):
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    auth = auth_section(org, "client_credentials", monkeypatch, tmp_path)
    connection = connection_for(org, auth, ca_bundle=None)
    org.reset_counters()
    with pytest.raises(AuthError) as caught:
        get_client(connection)
    assert caught.value.code == "tls_verification_failed"
    assert "ca_bundle" in caught.value.fix
    assert org.counters()["token_requests"]["total"] == 0


def test_beam_pickler_ships_a_dofn_holding_the_client_without_secrets(org, monkeypatch,
                                                                      tmp_path):
    import base64
    import bz2

    import apache_beam as beam
    from apache_beam.internal import pickler

    connection = connection_for(org, auth_section(org, "password", monkeypatch, tmp_path))
    client = get_client(connection)

    class QueryDoFn(beam.DoFn):
        def __init__(self, client):
            self.client = client

    shipped = pickler.dumps(QueryDoFn(client))
    raw = bz2.decompress(base64.b64decode(shipped))  # Beam compresses what it ships
    assert b"QueryDoFn" in raw
    for value in _secret_values(org, client):
        assert value not in raw
    restored = pickler.loads(shipped)
    assert restored.client.sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
