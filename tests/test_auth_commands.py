"""check / keygen / authorize end to end against the emulator, plus refresh-token rotation."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from forcebeam.auth import AuthError, factory, get_client, secrets
from forcebeam.auth.commands import authorize, check_connection, keygen
from tests.support.org import trusting_session
from tests.test_auth_fixtures import (
    auth_section,
    clean_auth_state,  # noqa: F401 - fixture
    connection_for,
)

pytestmark = pytest.mark.usefixtures("clean_auth_state")
PROJECT = "forcebeam-emulator"


def secret_manager(org, monkeypatch):
    """The real Google client, pointed at the emulator's Secret Manager endpoint."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager

    monkeypatch.setenv("SECRET_MANAGER_EMULATOR_HOST", org.info["secret_manager_host"])
    return secretmanager.SecretManagerServiceClient(
        credentials=AnonymousCredentials(), transport="rest",
        client_options=ClientOptions(api_endpoint=f"http://{org.info['secret_manager_host']}"))


def create_secret(client, secret_id: str) -> None:
    client.create_secret(request={"parent": f"projects/{PROJECT}", "secret_id": secret_id,
                                  "secret": {"replication": {"automatic": {}}}})


def version_count(client, secret_id: str) -> int:
    return len(list(client.list_secret_versions(
        request={"parent": f"projects/{PROJECT}/secrets/{secret_id}"})))


def test_check_prints_org_user_instance_and_usage(org, monkeypatch, tmp_path):
    connection = connection_for(org, auth_section(org, "jwt_bearer", monkeypatch, tmp_path))
    out = io.StringIO()
    assert check_connection(connection, out) == 0
    text = out.getvalue()
    assert org.info["org_id"] in text
    assert org.info["username"] in text
    assert org.info["instance_url"] in text
    assert re.search(r"API usage:\s+\d+ of \d+ daily requests", text), text


def test_check_fails_with_the_fix(org, monkeypatch, tmp_path):
    auth = auth_section(org, "jwt_bearer", monkeypatch, tmp_path)
    auth["consumer_key"] = org.info["self_authorize_app"]["consumer_key"]
    out = io.StringIO()
    assert check_connection(connection_for(org, auth), out) == 1
    assert "hasn't approved this consumer" in out.getvalue()
    assert "forcebeam authorize" in out.getvalue()


def test_keygen_pair_uploaded_to_the_app_works_for_jwt(org_factory, monkeypatch, tmp_path):
    org = org_factory(records=100)  # approvals/certificates change org state
    out = io.StringIO()
    assert keygen(tmp_path / "keys", common_name="etl-test", days=30, out=out) == 0
    key_path, cert_path = tmp_path / "keys" / "server.key", tmp_path / "keys" / "server.crt"
    assert key_path.stat().st_mode & 0o077 == 0
    assert "Use digital signatures" in out.getvalue()
    auth = auth_section(org, "jwt_bearer", monkeypatch, tmp_path)
    auth["private_key"] = f"file://{key_path}"
    connection = connection_for(org, auth)
    with pytest.raises(AuthError):  # not uploaded yet: the app does not trust it
        get_client(connection)
    factory.reset()
    app_key = org.info["connected_app"]["consumer_key"]
    org.admin("POST", f"apps/{app_key}/certificates", data=cert_path.read_bytes())
    client = get_client(connection)
    assert client.sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
    assert keygen(tmp_path / "keys", out=io.StringIO()) == 1  # never overwrites a key


def test_keygen_store_adds_a_secret_manager_version(org, monkeypatch, tmp_path):
    client = secret_manager(org, monkeypatch)
    create_secret(client, "keygen-store-test")
    reference = f"gcp-sm://projects/{PROJECT}/secrets/keygen-store-test/versions/latest"
    out = io.StringIO()
    assert keygen(tmp_path, store=reference, out=out) == 0
    assert version_count(client, "keygen-store-test") == 1
    secrets.clear_cache()
    assert secrets.resolve(reference).reveal() == (tmp_path / "server.key").read_bytes()
    assert reference in out.getvalue()


def test_keygen_store_to_missing_secret_says_how_to_create_it(org, monkeypatch, tmp_path):
    secret_manager(org, monkeypatch)
    out = io.StringIO()
    reference = f"gcp-sm://projects/{PROJECT}/secrets/no-such-secret/versions/latest"
    assert keygen(tmp_path, store=reference, out=out) == 1
    assert "gcloud secrets create no-such-secret" in out.getvalue()
    assert "add a version" not in out.getvalue()      # keygen --store adds it itself
    assert "run keygen --store again" in out.getvalue()
    assert list(tmp_path.iterdir()) == []             # no key file left behind


def approve_in_page(org, *, username: str, password: str):
    """What a person does in the browser: log in on the authorize page and click Allow."""
    def on_url(url: str) -> None:
        session = trusting_session(org.ca_cert)
        page = session.get(url, timeout=30)
        page.raise_for_status()
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                                 page.text))
        fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
        fields.update(username=username, password=password, action="approve")
        landed = session.post(org.info["login_url"] + "/services/oauth2/authorize", data=fields,
                              timeout=30)
        assert landed.status_code == 200, landed.text  # our localhost callback page
        assert "authorized" in landed.text
    return on_url


def test_authorize_approves_a_self_authorize_app_for_jwt(org_factory, monkeypatch, tmp_path):
    org = org_factory(records=100)  # approvals/certificates change org state
    auth = auth_section(org, "jwt_bearer", monkeypatch, tmp_path)
    auth["consumer_key"] = org.info["self_authorize_app"]["consumer_key"]
    connection = connection_for(org, auth)
    with pytest.raises(AuthError, match="hasn't approved"):
        get_client(connection)
    out = io.StringIO()
    code = authorize(connection, open_browser=False, out=out, on_url=approve_in_page(
        org, username=org.info["username"], password=org.info["password"]))
    assert code == 0, out.getvalue()
    factory.reset()  # forget the remembered failure: the person fixed it
    assert get_client(connection).sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


def test_authorize_stores_a_refresh_token_that_the_refresh_flow_uses(org_factory, monkeypatch,
                                                                      tmp_path):
    org = org_factory(records=100)  # approvals/certificates change org state
    app = org.info["self_authorize_app"]
    monkeypatch.setenv("FB_SELF_APP_SECRET", app["consumer_secret"])
    token_file = tmp_path / "rt"
    connection = connection_for(org, {"type": "refresh_token", "consumer_key": app["consumer_key"],
                                      "consumer_secret": "env://FB_SELF_APP_SECRET",
                                      "refresh_token": f"file://{token_file}"})
    out = io.StringIO()
    code = authorize(connection, open_browser=False, out=out, on_url=approve_in_page(
        org, username=org.info["username"], password=org.info["password"]))
    assert code == 0, out.getvalue()
    assert token_file.stat().st_mode & 0o077 == 0
    assert token_file.read_text() not in out.getvalue()
    org.reset_counters()
    assert get_client(connection).sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
    assert org.counters()["logins"]["refresh_token"] == 1


def test_authorize_denied_returns_1(org_factory, monkeypatch, tmp_path):
    org = org_factory(records=100)  # approvals/certificates change org state
    auth = auth_section(org, "jwt_bearer", monkeypatch, tmp_path)

    def deny(url: str) -> None:
        session = trusting_session(org.ca_cert)
        page = session.get(url, timeout=30)
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                                 page.text))
        fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
        session.post(org.info["login_url"] + "/services/oauth2/authorize",
                     data=dict(fields, action="deny"), timeout=30)

    out = io.StringIO()
    assert authorize(connection_for(org, auth), open_browser=False, out=out, on_url=deny) == 1
    assert "access_denied" in out.getvalue()


def test_rotated_refresh_token_is_written_back_and_used_next_time(org_factory, monkeypatch,
                                                                   tmp_path):
    org = org_factory(records=100)
    org.admin("PATCH", "org", json={"refresh_token_rotation": True})
    sm = secret_manager(org, monkeypatch)
    create_secret(sm, "sf-refresh-token")
    app = org.info["connected_app"]
    first = org.admin("POST", "refresh-tokens", json={
        "username": org.info["username"], "consumer_key": app["consumer_key"]}).json()
    sm.add_secret_version(request={"parent": f"projects/{PROJECT}/secrets/sf-refresh-token",
                                   "payload": {"data": first["refresh_token"].encode()}})
    reference = f"gcp-sm://projects/{PROJECT}/secrets/sf-refresh-token/versions/latest"
    monkeypatch.setenv("FB_SF_CONSUMER_SECRET", app["consumer_secret"])
    connection = connection_for(org, {"type": "refresh_token", "consumer_key": app["consumer_key"],
                                      "consumer_secret": "env://FB_SF_CONSUMER_SECRET",
                                      "refresh_token": reference})

    for run in range(3):  # three pipeline runs (fresh processes: nothing cached)
        factory.reset()
        secrets.clear_cache()
        client = get_client(connection)
        assert client.sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
        assert version_count(sm, "sf-refresh-token") == run + 2
    secrets.clear_cache()
    assert secrets.resolve(reference).text() != first["refresh_token"]
    # Within one process, a second refresh uses the rotated token, not the stale secret.
    client.auth.renew(client.auth.current_token())
    assert version_count(sm, "sf-refresh-token") == 5


def test_unwritable_rotation_target_still_works_this_run(org_factory, monkeypatch, tmp_path,
                                                         caplog):
    org = org_factory(records=100)
    org.admin("PATCH", "org", json={"refresh_token_rotation": True})
    app = org.info["connected_app"]
    issued = org.admin("POST", "refresh-tokens", json={
        "username": org.info["username"], "consumer_key": app["consumer_key"]}).json()
    monkeypatch.setenv("FB_SF_RT", issued["refresh_token"])
    connection = connection_for(org, {"type": "refresh_token", "consumer_key": app["consumer_key"],
                                      "refresh_token": "env://FB_SF_RT"})
    client = get_client(connection)
    client.auth.renew(client.auth.current_token())  # second refresh, rotated token
    assert client.sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
    assert any("cannot be written" in r.getMessage() for r in caplog.records)


def test_pem_with_literal_newlines_from_env_logs_in(org, monkeypatch, tmp_path):
    auth = auth_section(org, "jwt_bearer", monkeypatch, tmp_path)
    pem = Path(org.info["connected_app"]["private_key"]).read_text()
    monkeypatch.setenv("FB_SF_MANGLED_KEY", pem.replace("\n", "\\n"))
    auth["private_key"] = "env://FB_SF_MANGLED_KEY"
    assert get_client(connection_for(org, auth)).sf.query(
        "SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


def test_secret_manager_debug_logs_hold_no_secret_bytes(org, monkeypatch, tmp_path, caplog):
    import base64
    import logging

    client = secret_manager(org, monkeypatch)
    create_secret(client, "debug-log-test")
    reference = f"gcp-sm://projects/{PROJECT}/secrets/debug-log-test/versions/latest"
    # google-api-core keeps the "google" logger from propagating; a user who turns it on
    # (GOOGLE_SDK_PYTHON_LOGGING_SCOPE) gets its records, so listen there too.
    google_logger = logging.getLogger("google")
    google_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG):
            assert keygen(tmp_path, store=reference, out=io.StringIO()) == 0
            secrets.clear_cache()
            secrets.resolve(reference)
    finally:
        google_logger.removeHandler(caplog.handler)
    assert any(r.name.startswith("google.cloud.secretmanager") for r in caplog.records)
    key_pem = (tmp_path / "server.key").read_bytes()
    body_line = key_pem.splitlines()[3].decode()
    encoded = base64.b64encode(key_pem).decode()[40:80]
    dumped = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert body_line not in dumped and encoded not in dumped
