"""Expiry mid-work, shared logins across threads, permanent failures that never hammer the
token endpoint, transient 5xx retries, and the API quota guard — all counted by the emulator."""

from __future__ import annotations

import csv
import io
import threading
import time

import pytest

from forcebeam.auth import ApiQuotaExceeded, AuthError, SalesforceApiError, get_client
from tests.support.org import trusting_session
from tests.test_auth_fixtures import (
    auth_section,
    clean_auth_state,  # noqa: F401 - fixture
    connection_for,
)

pytestmark = pytest.mark.usefixtures("clean_auth_state")


def bulk_pages(client, soql: str, page_size: int, pause: float = 0.0):
    """Create a Bulk 2.0 query job and yield every result page's rows (all via client)."""
    job = client.request("POST", "jobs/query",
                         json={"operation": "query", "query": soql}).json()
    deadline = time.monotonic() + 120
    while True:
        state = client.request("GET", f"jobs/query/{job['id']}").json()["state"]
        if state == "JobComplete":
            break
        assert state in ("UploadComplete", "InProgress"), state
        assert time.monotonic() < deadline
        time.sleep(0.2)
    locator = None
    while True:
        params = {"maxRecords": page_size}
        if locator:
            params["locator"] = locator
        response = client.request("GET", f"jobs/query/{job['id']}/results", params=params)
        yield list(csv.DictReader(io.StringIO(response.text)))
        locator = response.headers.get("Sforce-Locator")
        if not locator or locator == "null":
            return
        time.sleep(pause)


def test_sessions_expiring_every_two_seconds_never_fail_a_call(org_factory, monkeypatch,
                                                                 tmp_path):
    org = org_factory(records=1000, extra_args=("--faults", "expire_sessions_every_seconds=2"))
    connection = connection_for(org, auth_section(org, "jwt_bearer", monkeypatch, tmp_path))
    client = get_client(connection)
    org.reset_counters()

    for call in range(200):
        result = client.sf.query("SELECT Id FROM Account ORDER BY Id LIMIT 2")
        assert result["totalSize"] == 2
        if call % 20 == 19:
            time.sleep(0.3)  # a pipeline doing other work between calls
    pages = list(bulk_pages(client, "SELECT Id, Name FROM Account", page_size=20, pause=0.08))

    assert len(pages) == 50
    ids = [row["Id"] for page in pages for row in page]
    assert len(ids) == 1000 and len(set(ids)) == 1000
    counters = org.counters()
    expiries = counters["sessions_expired"]
    assert expiries >= 2, counters            # the fault really fired during the work
    assert 2 <= counters["logins"]["total"] <= expiries + 1, counters
    assert client.stats.logins == 1 + counters["logins"]["total"]


def test_simple_salesforce_bulk2_download_survives_expiry(org_factory, monkeypatch, tmp_path):
    org = org_factory(records=1000, extra_args=("--faults", "expire_sessions_every_calls=3"))
    connection = connection_for(org, auth_section(org, "client_credentials", monkeypatch,
                                                  tmp_path))
    client = get_client(connection)
    results = client.sf.bulk2.Account.download("SELECT Id FROM Account", path=str(tmp_path),
                                               max_records=100)
    assert sum(r["number_of_records"] for r in results) == 1000
    assert client.stats.logins >= 2


def test_eight_threads_share_one_login(org, monkeypatch, tmp_path):
    connection = connection_for(org, auth_section(org, "jwt_bearer", monkeypatch, tmp_path))
    org.reset_counters()
    barrier = threading.Barrier(8)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            client = get_client(connection)
            for _ in range(3):
                results.append(client.sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"])
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and results == [1] * 24
    counters = org.counters()
    assert counters["logins"]["total"] == 1
    assert counters["token_requests"]["total"] == 1


def test_concurrent_expiry_is_renewed_once(org_factory, monkeypatch, tmp_path):
    org = org_factory(records=200)
    connection = connection_for(org, auth_section(org, "client_credentials", monkeypatch,
                                                  tmp_path))
    client = get_client(connection)
    client.sf.query("SELECT Id FROM Account LIMIT 1")
    org.admin("POST", "sessions/expire")
    org.reset_counters()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            assert client.sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert org.counters()["logins"]["total"] == 1


def _unapproved(org, monkeypatch, tmp_path):
    auth = auth_section(org, "jwt_bearer", monkeypatch, tmp_path)
    return dict(auth, consumer_key=org.info["self_authorize_app"]["consumer_key"])


def _bad_key(org, monkeypatch, tmp_path):
    from forcebeam.auth.commands import keygen

    keygen(tmp_path / "other", out=io.StringIO())
    auth = auth_section(org, "jwt_bearer", monkeypatch, tmp_path)
    return dict(auth, private_key=f"file://{tmp_path / 'other' / 'server.key'}")


def _unreadable_key(org, monkeypatch, tmp_path):
    auth = auth_section(org, "jwt_bearer", monkeypatch, tmp_path)
    monkeypatch.setenv("FB_SF_NOT_A_KEY", "-----BEGIN PRIVATE KEY-----\\nbm90IGEga2V5\\n-----END")
    return dict(auth, private_key="env://FB_SF_NOT_A_KEY")


def _wrong_secret(org, monkeypatch, tmp_path):
    auth = auth_section(org, "client_credentials", monkeypatch, tmp_path)
    monkeypatch.setenv("FB_SF_WRONG_SECRET", "not-the-secret")
    return dict(auth, consumer_secret="env://FB_SF_WRONG_SECRET")


def _revoked_refresh_token(org, monkeypatch, tmp_path):
    auth = auth_section(org, "refresh_token", monkeypatch, tmp_path)
    token = (tmp_path / "refresh-token").read_text()
    trusting_session(org.ca_cert).post(org.info["login_url"] + "/services/oauth2/revoke",
                                       data={"token": token}, timeout=30).raise_for_status()
    return auth


def _wrong_soap_password(org, monkeypatch, tmp_path):
    auth = auth_section(org, "basic", monkeypatch, tmp_path)
    monkeypatch.setenv("FB_SF_PASSWORD", "wrong-password")
    return auth


@pytest.mark.parametrize(("make_auth", "words_in_fix"), [
    (_unapproved, ["Edit Policies", "forcebeam authorize"]),
    (_bad_key, ["certificate", "connected app"]),
    (_unreadable_key, ["forcebeam keygen"]),
    (_wrong_secret, ["consumer secret"]),
    (_revoked_refresh_token, ["forcebeam authorize"]),
    (_wrong_soap_password, ["security token"]),
], ids=["unapproved-consumer", "bad-key", "unreadable-key", "wrong-secret", "revoked-refresh-token",
        "wrong-password"])
def test_permanent_failure_is_one_actionable_error_without_hammering(org, monkeypatch, tmp_path,
                                                                    make_auth, words_in_fix):
    connection = connection_for(org, make_auth(org, monkeypatch, tmp_path))
    org.reset_counters()
    for _ in range(5):  # five DoFn setups in one worker process
        with pytest.raises(AuthError) as caught:
            get_client(connection)
    for words in words_in_fix:
        assert words in caught.value.fix
    assert caught.value.code
    counters = org.counters()
    assert counters["token_requests"]["total"] <= 2, counters
    assert counters["logins"]["total"] == 0


def test_blocked_password_flow_says_what_to_do(org_factory, monkeypatch, tmp_path):
    org = org_factory(records=100)
    org.admin("PATCH", "org", json={"password_flow_blocked": True})
    connection = connection_for(org, auth_section(org, "password", monkeypatch, tmp_path))
    org.reset_counters()
    for _ in range(3):
        with pytest.raises(AuthError) as caught:
            get_client(connection)
    assert "blocked" in str(caught.value)
    assert "jwt_bearer or client_credentials" in caught.value.fix
    assert org.counters()["token_requests"]["total"] == 1


def test_transient_503s_are_retried_and_counted_as_throttling(org_factory, monkeypatch,
                                                               tmp_path):
    org = org_factory(records=200, extra_args=("--faults", "http_503_rate=0.3,seed=7"))
    connection = connection_for(org, auth_section(org, "client_credentials", monkeypatch,
                                                  tmp_path))
    client = get_client(connection)
    for _ in range(20):
        assert client.sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
    assert client.stats.throttled_seconds > 0


def test_max_api_usage_stops_before_passing_the_share(org_factory, monkeypatch, tmp_path):
    org = org_factory(records=100)
    org.admin("PATCH", "org", json={"daily_api_limit": 100})
    connection = connection_for(org, auth_section(org, "client_credentials", monkeypatch,
                                                  tmp_path), max_api_usage="30%")
    client = get_client(connection)
    sent = 0
    with pytest.raises(ApiQuotaExceeded) as caught:
        for _ in range(100):
            client.request("GET", "query", params={"q": "SELECT Id FROM Account LIMIT 1"})
            sent += 1
    assert "max_api_usage" in str(caught.value) and "30%" in str(caught.value)
    used, daily_max = client.stats.api_usage
    assert daily_max == 100 and used <= 30
    assert org.counters()["api_calls"]["total"] <= 30
    assert sent >= 25  # it did not stop early either
    # Once over the share, nothing more reaches the org — simple-salesforce calls included.
    before = org.counters()["api_calls"]["total"]
    with pytest.raises(ApiQuotaExceeded):
        client.sf.query("SELECT Id FROM Account LIMIT 1")
    assert org.counters()["api_calls"]["total"] == before


def test_org_request_limit_is_api_quota_exceeded(org_factory, monkeypatch, tmp_path):
    org = org_factory(records=100)
    connection = connection_for(org, auth_section(org, "client_credentials", monkeypatch,
                                                  tmp_path))
    client = get_client(connection)
    org.admin("PATCH", "org", json={"daily_api_limit": 3})
    with pytest.raises(ApiQuotaExceeded) as caught:
        for _ in range(10):
            client.sf.query("SELECT Id FROM Account LIMIT 1")
    assert caught.value.error_code == "REQUEST_LIMIT_EXCEEDED"
    with pytest.raises(ApiQuotaExceeded):
        client.request("GET", "limits")


def test_other_api_errors_are_typed_with_salesforce_code(org, monkeypatch, tmp_path):
    connection = connection_for(org, auth_section(org, "client_credentials", monkeypatch,
                                                  tmp_path))
    client = get_client(connection)
    with pytest.raises(SalesforceApiError) as caught:
        client.request("GET", "query", params={"q": "SELECT Nope FROM Account"})
    assert caught.value.status == 400 and caught.value.error_code == "INVALID_FIELD"


def test_dropped_connections_are_retried_for_logins_and_calls(org_factory, monkeypatch,
                                                               tmp_path):
    org = org_factory(records=200, extra_args=("--faults", "drop_connection_rate=0.2,seed=3"))
    connection = connection_for(org, auth_section(org, "jwt_bearer", monkeypatch, tmp_path))
    client = get_client(connection)
    for _ in range(25):
        assert client.sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
    injected = org.admin("GET", "faults").json()["injected"]
    assert sum(injected.values()) >= 3, injected  # connections really were dropped


def test_quota_guard_applies_to_the_first_call_of_a_new_process(org_factory, monkeypatch,
                                                                  tmp_path):
    org = org_factory(records=100)
    org.admin("PATCH", "org", json={"daily_api_limit": 100})
    auth = auth_section(org, "client_credentials", monkeypatch, tmp_path)
    busy = get_client(connection_for(org, auth))
    for _ in range(40):
        busy.request("GET", "limits")
    guarded = get_client(connection_for(org, auth, max_api_usage="30%"))
    assert guarded.stats.api_usage[0] >= 40
    before = org.counters()["api_calls"]["total"]
    with pytest.raises(ApiQuotaExceeded, match="max_api_usage"):
        guarded.sf.query("SELECT Id FROM Account LIMIT 1")
    assert org.counters()["api_calls"]["total"] == before


def test_expired_access_token_says_it_cannot_be_renewed(org_factory, monkeypatch, tmp_path):
    org = org_factory(records=100)
    connection = connection_for(org, auth_section(org, "access_token", monkeypatch, tmp_path))
    client = get_client(connection)
    assert client.sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
    org.admin("POST", "sessions/expire")
    org.reset_counters()
    for _ in range(3):
        with pytest.raises(AuthError) as caught:
            client.sf.query("SELECT Id FROM Account LIMIT 1")
    assert "fresh access token" in caught.value.fix
    assert org.counters()["api_calls"]["total"] <= 1  # remembered: no more calls after that
