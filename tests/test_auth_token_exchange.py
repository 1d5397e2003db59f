"""Keyless auth end to end: `type: token_exchange` against the emulated org.

The emulator plays both sides a Dataflow worker sees: Google's metadata server (an ID token
for the worker's service account) and the org (an External Client App with token exchange
enabled and a handler that trusts the metadata issuer). `forcebeam` runs as a separate
process whose GCE_METADATA_HOST / GCE_METADATA_IP point at the emulator's metadata listener and
whose NO_GCE_CHECK is unset, exactly as on GCE; this test process keeps the blackhole.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from forcebeam.auth import AuthError, Connection, get_client
from forcebeam.auth.commands import check_connection
from tests.support.org import EmulatedOrg, start_org
from tests.test_auth_fixtures import clean_auth_state  # noqa: F401 - fixture

RECORDS = 120
MAX_TOKEN_CALLS = 3  # a broken connection may be tried once per process (main + 2 workers)
JWT_LIKE = re.compile(rb"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")  # any JWS, ID tokens too
ACCESS_TOKEN_LIKE = re.compile(rb"00D[A-Za-z0-9]{12}!AQ")


@pytest.fixture(scope="module")
def te_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    """An org of its own: tests here change the token exchange handler and write rows."""
    running = start_org(tmp_path_factory.mktemp("token-exchange-org"), records=RECORDS)
    try:
        yield running
    finally:
        running.stop()


def worker_env(org: EmulatedOrg) -> dict[str, str]:
    """A Google Cloud worker's environment: the metadata server answers, no NO_GCE_CHECK."""
    env = {k: v for k, v in os.environ.items() if k != "NO_GCE_CHECK"}
    host = org.info["token_exchange"]["metadata_host"]
    env.update({"GCE_METADATA_HOST": host, "GCE_METADATA_IP": host})
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    return env


def keyless_connection(org: EmulatedOrg, **auth: Any) -> dict[str, Any]:
    exchange = org.info["token_exchange"]
    return {"login_url": org.info["login_url"], "ca_bundle": org.ca_cert,
            "auth": {"type": "token_exchange", "consumer_key": exchange["consumer_key"],
                     "audience": exchange["audience"], **auth}}


def pipeline_file(path: Path, connection: dict[str, Any], out: Path) -> Path:
    """Read Accounts to JSON and upsert two invoices, both through the keyless connection."""
    (out / "invoices.csv").write_text("External_Id__c,Name,Status__c,Amount__c\n"
                                      "TX-1,Keyless one,Draft,10.5\nTX-2,Keyless two,Paid,3\n")
    document = {
        "connections": {"keyless": connection},
        "pipeline": {"transforms": [
            {"type": "ReadFromSalesforce", "name": "ReadAccounts",
             "config": {"connection": "keyless", "sobject": "Account", "fields": ["Id", "Name"]}},
            {"type": "WriteToJson", "input": "ReadAccounts",
             "config": {"path": str(out / "accounts")}},
            {"type": "ReadFromCsv", "name": "ReadInvoices",
             "config": {"path": str(out / "invoices.csv")}},
            {"type": "WriteToSalesforce", "name": "UpsertInvoices", "input": "ReadInvoices",
             "config": {"connection": "keyless", "sobject": "Invoice__c",
                        "operation": "upsert", "external_id_field": "External_Id__c"}},
        ]}}
    path.write_text(json.dumps(document, indent=2))  # JSON is YAML
    return path


def forcebeam(org: EmulatedOrg, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forcebeam.pipelines.cli", *args],
                          env=worker_env(org), capture_output=True, timeout=timeout, check=False)


def rows_from(out: Path, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(out.glob(f"{prefix}*"))
            for line in path.read_text().splitlines() if line.strip()]


def org_invoices(org: EmulatedOrg) -> dict[str, dict[str, Any]]:
    """The org's truth, through the admin-free REST API with a connected-app session."""
    session = org.session()
    app = org.info["connected_app"]
    token = session.post(f"{org.info['login_url']}/services/oauth2/token", timeout=30, data={
        "grant_type": "client_credentials", "client_id": app["consumer_key"],
        "client_secret": app["consumer_secret"]}).json()
    soql = "SELECT External_Id__c, Name, Amount__c FROM Invoice__c WHERE External_Id__c LIKE 'TX-%'"
    answer = session.get(f"{org.info['instance_url']}/services/data/v62.0/query",
                         params={"q": soql}, timeout=30,
                         headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    return {row["External_Id__c"]: row for row in answer["records"]}


def assert_no_token_in(*outputs: bytes) -> None:
    for output in outputs:
        assert not JWT_LIKE.search(output), "an ID token (or other JWT) was printed or logged"
        assert not ACCESS_TOKEN_LIKE.search(output), "a Salesforce session id was printed"


# ----- Done when 1: check and a two-worker pipeline, nothing secret anywhere ------------------
def test_check_logs_in_with_token_exchange_and_no_secret_in_the_connection(te_org, tmp_path):
    connection = keyless_connection(te_org)
    assert set(connection["auth"]) == {"type", "consumer_key", "audience"}  # nothing secret
    path = pipeline_file(tmp_path / "keyless.yaml", connection, tmp_path)
    te_org.reset_counters()

    done = forcebeam(te_org, "-v", "check", str(path), "keyless")  # -v: DEBUG logs on

    output = done.stdout + done.stderr
    assert done.returncode == 0, output.decode(errors="replace")
    assert b"ok: logged in with token_exchange" in done.stdout
    assert te_org.info["username"].encode() in done.stdout
    assert b"/computeMetadata/v1/instance/service-accounts/default/identity" in done.stderr
    assert_no_token_in(output)
    counters = te_org.counters()
    assert counters["logins"] == {"total": 1, "token_exchange": 1}
    assert counters["id_tokens_issued"] == 1


def test_pipeline_reads_and_writes_on_two_workers_with_one_exchange_per_process(te_org,
                                                                                 tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    path = pipeline_file(tmp_path / "keyless.yaml", keyless_connection(te_org), out)
    te_org.reset_counters()

    done = forcebeam(te_org, "run", str(path), "--runner=FnApiRunner",
                     "--direct_running_mode=multi_processing", "--direct_num_workers=2")

    output = done.stdout + done.stderr
    assert done.returncode == 0, output.decode(errors="replace")[-4000:]
    counters = te_org.counters()
    accounts = rows_from(out, "accounts")
    assert len(accounts) == RECORDS and all(row["Id"].startswith("001") for row in accounts)
    written = org_invoices(te_org)
    assert set(written) == {"TX-1", "TX-2"} and written["TX-1"]["Amount__c"] == 10.5
    logins = counters["logins"].get("token_exchange", 0)
    # One exchange per process that talks to the org: the launcher (schema) and 2 workers,
    # however many bundles and DoFn instances each ran.
    assert 1 <= logins <= 3, counters
    assert counters["token_requests"] == {"total": logins, "failed": 0,
                                          "token_exchange": logins}
    assert counters["logins"]["total"] == logins  # no other grant was needed
    assert_no_token_in(output)


# ----- refusals: one actionable error, no retry storm -----------------------------------------
def test_untrusted_issuer_fails_once_with_the_fix(te_org, tmp_path):
    handler = te_org.admin("GET", "token-exchange-handler").json()
    other_key = _other_public_key()
    te_org.admin("PATCH", "token-exchange-handler",
                 json={"trusted_issuers": {"https://issuer.example.com": [other_key]}})
    out = tmp_path / "out"
    out.mkdir()
    path = pipeline_file(tmp_path / "keyless.yaml", keyless_connection(te_org), out)
    te_org.reset_counters()
    try:
        done = forcebeam(te_org, "run", str(path), "--runner=FnApiRunner")
    finally:
        te_org.admin("PATCH", "token-exchange-handler",
                     json={"trusted_issuers": handler["trusted_issuers"]})

    message = done.stderr.decode(errors="replace")
    assert done.returncode == 1, message
    assert "issuer is not trusted" in message, message
    assert message.count("Fix:") == 1, f"one error, not one per retry: {message}"
    assert "https://accounts.google.com" in message and "auth.audience" in message
    assert_no_token_in(done.stdout + done.stderr)
    counters = te_org.counters()
    assert counters["token_requests"]["total"] <= MAX_TOKEN_CALLS, counters
    assert counters["token_requests"]["failed"] == counters["token_requests"]["total"]
    assert counters["api_calls"]["total"] == 0 and counters["logins"]["total"] == 0
    assert rows_from(out, "accounts") == []


def test_wrong_audience_fails_check_with_the_fix(te_org, tmp_path):
    connection = keyless_connection(te_org, audience="https://not-the-org.example.com")
    path = pipeline_file(tmp_path / "keyless.yaml", connection, tmp_path)
    te_org.reset_counters()

    done = forcebeam(te_org, "check", str(path), "keyless")

    text = done.stdout.decode(errors="replace")
    assert done.returncode == 1, text
    assert "connection check failed" in text and "audience" in text
    assert "set auth.audience to the audience the handler accepts" in text
    assert_no_token_in(done.stdout + done.stderr)
    counters = te_org.counters()
    assert counters["token_requests"] == {"total": 1, "failed": 1, "token_exchange": 1}


# ----- the ID token is a secret: never in logs, pickles or errors -----------------------------
def _fetch_id_token(org: EmulatedOrg, audience: str) -> str:
    """What the metadata server gives a worker (asked directly, as google-auth does)."""
    host = org.info["token_exchange"]["metadata_host"]
    response = requests.get(
        f"http://{host}/computeMetadata/v1/instance/service-accounts/default/identity",
        params={"audience": audience, "format": "full"}, headers={"Metadata-Flavor": "Google"},
        timeout=30)
    response.raise_for_status()
    return response.text


def _other_public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.mark.usefixtures("clean_auth_state")
def test_id_token_never_reaches_logs_pickles_or_errors(te_org, monkeypatch, caplog):
    good = _fetch_id_token(te_org, te_org.info["token_exchange"]["audience"])
    wrong = _fetch_id_token(te_org, "https://elsewhere.example.com")
    monkeypatch.setenv("FB_SUBJECT_TOKEN", good)
    connection = Connection.from_mapping(
        keyless_connection(te_org, subject_token="env://FB_SUBJECT_TOKEN"), source="t.yaml")

    with caplog.at_level(logging.DEBUG):
        client = get_client(connection)
        client.sf.query("SELECT Id FROM Account LIMIT 2")
        check_connection(connection, io.StringIO())
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/services/oauth2/token" in logged and good not in logged
    pickled = pickle.dumps(connection) + pickle.dumps(client)
    assert good.encode() not in pickled
    with pytest.raises(TypeError):
        pickle.dumps(client.auth.credentials)  # credentials refuse to travel

    monkeypatch.setenv("FB_SUBJECT_WRONG", wrong)
    refused = Connection.from_mapping(
        keyless_connection(te_org, subject_token="env://FB_SUBJECT_WRONG"), source="t.yaml")
    with pytest.raises(AuthError) as caught:
        get_client(refused)
    text = f"{caught.value} {caught.value!r} {caught.value.code} {caught.value.fix}"
    assert "audience" in text and wrong not in text and good not in text


def test_subject_token_from_env_is_read_again_for_each_exchange(te_org, monkeypatch):
    """A token another system rotates: the next exchange uses the new one, not a cached one."""
    from forcebeam.auth import factory, secrets

    factory.reset()
    secrets.clear_cache()
    audience = te_org.info["token_exchange"]["audience"]
    monkeypatch.setenv("FB_ROTATED_TOKEN", _fetch_id_token(te_org, audience))
    client = get_client(Connection.from_mapping(
        keyless_connection(te_org, subject_token="env://FB_ROTATED_TOKEN"), source="t.yaml"))
    te_org.reset_counters()
    monkeypatch.setenv("FB_ROTATED_TOKEN", "not-a-token")
    te_org.admin("POST", "sessions/expire")
    with pytest.raises(AuthError) as caught:  # the session expires; the re-exchange reads env
        client.sf.query("SELECT Id FROM Account LIMIT 1")
    assert "not a signed JWT" in str(caught.value)
    assert te_org.counters()["token_requests"]["token_exchange"] == 1
    factory.reset()


def test_google_debug_logging_never_shows_the_id_token(te_org, monkeypatch, caplog):
    """An application that turns on google-auth's HTTP body logging still never logs it."""
    from google.auth import _helpers
    from google.auth.compute_engine import _metadata

    from forcebeam.auth.subject_tokens import GoogleIdTokenSource

    host = te_org.info["token_exchange"]["metadata_host"]
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", host)  # read at import elsewhere
    monkeypatch.setenv("GCE_METADATA_IP", host)
    monkeypatch.setattr(_helpers, "_LOGGING_INITIALIZED", False)
    google_logger = logging.getLogger("google")
    monkeypatch.setattr(google_logger, "level", logging.DEBUG)  # "configured" for google-auth

    with caplog.at_level(logging.DEBUG):
        token = GoogleIdTokenSource(te_org.info["token_exchange"]["audience"]).fetch().text()
    # google-auth puts HTTP bodies in the records' extra fields (structured logging): look at
    # every attribute, not just the message.
    logged = "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records)
    assert "/service-accounts/default/identity" in logged  # the request itself is visible
    assert token.count(".") == 2 and token not in logged
    assert not JWT_LIKE.search(logged.encode())


@pytest.mark.usefixtures("clean_auth_state")
def test_expired_session_is_re_exchanged_reusing_the_still_valid_id_token(te_org, monkeypatch):
    from google.auth.compute_engine import _metadata

    host = te_org.info["token_exchange"]["metadata_host"]
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", host)  # as a worker's env would
    monkeypatch.setenv("GCE_METADATA_IP", host)
    client = get_client(Connection.from_mapping(keyless_connection(te_org), source="t.yaml"))
    te_org.reset_counters()
    te_org.admin("POST", "sessions/expire")

    assert client.sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1

    counters = te_org.counters()
    assert counters["logins"] == {"total": 1, "token_exchange": 1}  # one re-exchange ...
    assert counters["id_tokens_issued"] == 0  # ... with the hour-long ID token already held
    assert client.stats.logins == 2
