"""Fault injection and shaping: the exact bodies clients react to, and seeded reproducibility.

Every fault kind is switched on through the admin API (`PUT /__emulator/faults`) of a private
org, observed through real HTTPS calls, and — for the random kinds — replayed with the same
seed to show the same sequence (a different seed gives a different one).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bench.org import Login, login, session_for
from tests.support.org import EmulatedOrg, start_org

REST_EXPIRED = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
BULK_EXPIRED = [{"errorCode": "InvalidSessionId", "message": "Session expired or invalid"}]
LIMIT_EXCEEDED = [{"message": "TotalRequests Limit exceeded.",
                   "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
LOCK_ERROR = ("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 "
              "records:--")


@pytest.fixture(scope="module")
def faulty_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    """A private org for this module only: faults set here never reach other tests."""
    running = start_org(tmp_path_factory.mktemp("faults"), records=2000)
    try:
        yield running
    finally:
        running.stop()


class Api:
    """One logged-in client of the org (login happens before any fault is switched on)."""

    def __init__(self, org: EmulatedOrg) -> None:
        self.org = org
        self.session = session_for(org)
        self.auth: Login = login(org, self.session)

    def relogin(self) -> None:
        self.auth = login(self.org, self.session)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.auth.headers(), **kwargs.pop("headers", {})}
        return self.session.get(self.auth.data_url(path), headers=headers, timeout=60,
                                **kwargs)

    def outcome(self, path: str = "limits") -> str:
        """'200', '503', … or 'drop' when the connection closed without a response."""
        try:
            return str(self.get(path).status_code)
        except requests.ConnectionError:
            return "drop"


@pytest.fixture
def api(faulty_org: EmulatedOrg) -> Iterator[Api]:
    client = Api(faulty_org)
    yield client
    faulty_org.admin("DELETE", "faults")


def set_faults(org: EmulatedOrg, **spec: Any) -> dict[str, Any]:
    return org.admin("PUT", "faults", json=spec).json()


def injected(org: EmulatedOrg) -> dict[str, int]:
    return org.admin("GET", "faults").json()["injected"]


def run_sequence(api: Api, calls: int, **spec: Any) -> list[str]:
    set_faults(api.org, **spec)
    return [api.outcome() for _ in range(calls)]


def test_http_503_follows_the_seed(api):
    first = run_sequence(api, 60, seed=11, http_503_rate=0.3)
    assert set(first) == {"200", "503"}
    assert 8 <= first.count("503") <= 30, first
    assert injected(api.org)["http_503"] == first.count("503")
    assert run_sequence(api, 60, seed=11, http_503_rate=0.3) == first
    assert run_sequence(api, 60, seed=12, http_503_rate=0.3) != first
    set_faults(api.org, http_503_rate=1)
    response = api.get("limits")
    assert response.status_code == 503
    assert response.json() == [{"message": "Server temporarily unavailable, please retry.",
                                "errorCode": "SERVER_UNAVAILABLE"}]


def test_dropped_connections_follow_the_seed(api):
    first = run_sequence(api, 40, seed=3, drop_connection_rate=0.25)
    assert set(first) == {"200", "drop"}
    assert injected(api.org)["drop_connection"] == first.count("drop")
    assert run_sequence(api, 40, seed=3, drop_connection_rate=0.25) == first


def test_session_expiry_every_n_calls_with_exact_bodies(api):
    set_faults(api.org, expire_sessions_every_calls=4)
    expired_before = api.org.counters()["sessions_expired"]
    assert [api.get("limits").status_code for _ in range(3)] == [200, 200, 200]
    refused = api.get("limits")
    assert refused.status_code == 401 and refused.json() == REST_EXPIRED
    bulk = api.get("jobs/query")
    assert bulk.status_code == 400 and bulk.json() == BULK_EXPIRED, "expired for good"
    api.relogin()
    assert api.get("jobs/query").status_code == 200, "a new session works"
    assert api.org.counters()["sessions_expired"] - expired_before == 2
    assert injected(api.org)["session_expired"] == 1


def test_session_expiry_every_t_seconds(api):
    set_faults(api.org, expire_sessions_every_seconds=1.0)
    assert api.get("limits").status_code == 200
    time.sleep(1.2)
    refused = api.get("limits")
    assert refused.status_code == 401 and refused.json() == REST_EXPIRED
    api.relogin()
    assert api.get("limits").status_code == 200


def test_request_limit_after_n_calls(api):
    set_faults(api.org, request_limit_after_calls=3)
    assert [api.get("limits").status_code for _ in range(3)] == [200, 200, 200]
    for path in ("limits", "jobs/query"):
        refused = api.get(path)
        assert refused.status_code == 403 and refused.json() == LIMIT_EXCEEDED
        assert refused.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_daily_api_limit_is_reported_and_enforced(api):
    used = int(api.get("limits").headers["Sforce-Limit-Info"].split("=")[1].split("/")[0])
    set_faults(api.org, daily_api_limit=used + 2)
    response = api.get("limits")
    assert response.headers["Sforce-Limit-Info"] == f"api-usage={used + 1}/{used + 2}"
    assert response.json()["DailyApiRequests"]["Max"] == used + 2
    assert api.get("limits").status_code == 200
    refused = api.get("limits")
    assert refused.status_code == 403 and refused.json() == LIMIT_EXCEEDED


def test_latency_applies_to_the_api_but_not_admin_or_secret_manager(api):
    set_faults(api.org, latency_ms=400)
    started = time.monotonic()
    assert api.get("limits").status_code == 200
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    api.org.admin("GET", "counters")
    secret = requests.get(
        f"http://{api.org.info['secret_manager_host']}/v1/projects/forcebeam-emulator/"
        "secrets/connected-app-private-key/versions/latest:access", timeout=30)
    assert secret.status_code == 200
    assert time.monotonic() - started < 0.4


def test_admin_and_secret_manager_are_never_failed(api):
    set_faults(api.org, http_503_rate=1.0, drop_connection_rate=0.0)
    assert api.outcome() == "503"
    assert api.org.admin("GET", "counters").status_code == 200
    secret = requests.get(
        f"http://{api.org.info['secret_manager_host']}/v1/projects/forcebeam-emulator/"
        "secrets/connected-app-private-key/versions/latest:access", timeout=30)
    assert secret.status_code == 200


def bulk_results(api: Api, soql: str) -> tuple[bytes, float]:
    job = api.session.post(api.auth.data_url("jobs/query"), headers=api.auth.headers(),
                           json={"operation": "query", "query": soql}, timeout=60).json()
    while api.get(f"jobs/query/{job['id']}").json()["state"] != "JobComplete":
        time.sleep(0.05)
    started = time.monotonic()
    body = api.get(f"jobs/query/{job['id']}/results",
                   headers={"Accept-Encoding": "identity"}).content
    return body, time.monotonic() - started


def test_bandwidth_cap_paces_bulk_pages_and_rest_responses(api):
    soql = "SELECT Id, Name, Description, Website, Phone, BillingStreet FROM Account"
    body, fast = bulk_results(api, soql)
    assert len(body) > 200_000
    set_faults(api.org, bandwidth_mbps=4)  # 500,000 bytes per second
    shaped, slow = bulk_results(api, soql)
    assert shaped == body
    assert slow >= 0.8 * len(body) / 500_000 > 2 * fast
    started = time.monotonic()
    rest = api.get("query", params={"q": soql})
    assert rest.status_code == 200
    assert time.monotonic() - started >= 0.8 * len(rest.content) / 500_000


def locked_rows(api: Api, names: list[str]) -> list[str]:
    url = api.auth.data_url("jobs/ingest")
    job = api.session.post(url, headers=api.auth.headers(), timeout=60,
                           json={"object": "Account", "operation": "insert"}).json()
    api.session.put(f"{url}/{job['id']}/batches", data="Name\n" + "\n".join(names) + "\n",
                    headers={**api.auth.headers(), "Content-Type": "text/csv"}, timeout=60)
    api.session.patch(f"{url}/{job['id']}", json={"state": "UploadComplete"},
                      headers=api.auth.headers(), timeout=60)
    while api.get(f"jobs/ingest/{job['id']}").json()["state"] != "JobComplete":
        time.sleep(0.05)
    failed = list(csv.DictReader(io.StringIO(
        api.get(f"jobs/ingest/{job['id']}/failedResults").text)))
    assert {row["sf__Error"] for row in failed} <= {LOCK_ERROR}
    return [row["Name"] for row in failed]


def test_unable_to_lock_row_follows_the_seed(api):
    set_faults(api.org, seed=5, unable_to_lock_row_rate=0.2)
    first = locked_rows(api, [f"Lock A {i:03d}" for i in range(200)])
    assert 15 <= len(first) <= 70, first
    assert injected(api.org)["lock_row"] == len(first)
    set_faults(api.org, seed=5, unable_to_lock_row_rate=0.2)
    again = locked_rows(api, [f"Lock B {i:03d}" for i in range(200)])
    assert [name.replace("Lock B", "Lock A") for name in again] == first


def test_bad_specs_name_the_key(api):
    response = api.session.put(api.org.info["admin_url"] + "/faults",
                               json={"http_503_rate": 2}, timeout=30)
    assert response.status_code == 400 and "http_503_rate" in response.json()["error"]
    response = api.session.put(api.org.info["admin_url"] + "/faults",
                               json={"http_503": 0.1}, timeout=30)
    assert response.status_code == 400 and "Known keys" in response.json()["error"]


def test_faults_and_shaping_from_the_command_line(org_factory):
    org = org_factory(records=50, extra_args=("--faults", "seed=4,http_503_rate=1",
                                              "--latency-ms", "150"))
    spec = org.admin("GET", "faults").json()
    assert (spec["seed"], spec["http_503_rate"], spec["latency_ms"]) == (4, 1.0, 150.0)
    session = session_for(org)
    started = time.monotonic()
    token = session.post(f"{org.info['login_url']}/services/oauth2/token",
                         data={"grant_type": "client_credentials"}, timeout=30)
    assert token.status_code == 503, "token calls are faulted too"
    assert time.monotonic() - started >= 0.15


def test_bad_command_line_spec_stops_the_emulator_with_the_key(tmp_path):
    with pytest.raises(RuntimeError) as refused:
        start_org(tmp_path, records=10, extra_args=("--faults", "seed=1,http_503_rate=2"))
    assert "http_503_rate" in str(refused.value)
    assert "less than or equal to 1" in str(refused.value)
