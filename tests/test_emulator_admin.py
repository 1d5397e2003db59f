"""The admin API (`/__emulator/`): counters, org toggles, session expiry, approvals,
certificates, record touches — each checked through the behaviour a client then sees."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.org import EmulatedOrg, start_org, trusting_session

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture(scope="module")
def private_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    running = start_org(tmp_path_factory.mktemp("admin-org"), records=50)
    try:
        yield running
    finally:
        running.stop()


def jwt_token(org: EmulatedOrg, *, consumer_key: str | None = None,
              username: str | None = None, base: str | None = None,
              cert: tuple[str, str] | None = None) -> requests.Response:
    app = org.info["connected_app"]
    signed = jwt.encode({"iss": consumer_key or app["consumer_key"],
                         "sub": username or org.info["username"],
                         "aud": "https://login.salesforce.com", "exp": int(time.time()) + 120},
                        Path(app["private_key"]).read_bytes(), algorithm="RS256")
    return trusting_session(org.ca_cert, cert).post(
        f"{base or org.info['login_url']}/services/oauth2/token",
        data={"grant_type": JWT_GRANT, "assertion": signed}, timeout=30)


def api(org: EmulatedOrg, access_token: str, path: str = "limits") -> requests.Response:
    return org.session().get(f"{org.info['instance_url']}/services/data/v62.0/{path}",
                             headers={"Authorization": f"Bearer {access_token}"}, timeout=30)


def test_counters_count_by_kind_and_reset(private_org: EmulatedOrg) -> None:
    private_org.reset_counters()
    access = jwt_token(private_org).json()["access_token"]
    jwt_token(private_org, username="nobody@example.com")
    api(private_org, access)
    api(private_org, access)
    counters = private_org.counters()
    assert counters["token_requests"] == {"total": 2, "failed": 1, "jwt_bearer": 2}
    assert counters["logins"] == {"total": 1, "jwt_bearer": 1}
    assert counters["api_calls"] == {"total": 2, "limits": 2}
    private_org.reset_counters()
    assert private_org.counters()["api_calls"] == {"total": 0}


def test_org_patch_validates_names_and_types(private_org: EmulatedOrg) -> None:
    for bad in ({"no_such_toggle": True}, {"daily_api_limit": "many"}):
        response = private_org.session().patch(private_org.info["admin_url"] + "/org", json=bad,
                                               timeout=30)
        assert response.status_code == 400
        assert next(iter(bad)) in response.json()["error"]
    assert private_org.admin("GET", "org").json()["daily_api_limit"] > 0


def test_daily_limit_gives_request_limit_exceeded(private_org: EmulatedOrg) -> None:
    access = jwt_token(private_org).json()["access_token"]
    used = int(api(private_org, access).headers["Sforce-Limit-Info"].split("=")[1].split("/")[0])
    private_org.admin("PATCH", "org", json={"daily_api_limit": used + 1})
    try:
        assert api(private_org, access).status_code == 200
        refused = api(private_org, access)
    finally:
        private_org.admin("PATCH", "org", json={"daily_api_limit": 5_000_000})
    assert refused.status_code == 403
    assert refused.json() == [{"message": "TotalRequests Limit exceeded.",
                               "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert refused.headers["Sforce-Limit-Info"] == f"api-usage={used + 1}/{used + 1}"


def test_expire_sessions_rest_and_bulk_shapes(private_org: EmulatedOrg) -> None:
    access = jwt_token(private_org).json()["access_token"]
    assert api(private_org, access).status_code == 200
    before = private_org.counters()["sessions_expired"]
    private_org.admin("POST", "sessions/expire")
    rest = api(private_org, access)
    assert rest.status_code == 401
    assert rest.json() == [{"message": "Session expired or invalid",
                            "errorCode": "INVALID_SESSION_ID"}]
    bulk = api(private_org, access, "jobs/query")
    assert bulk.status_code == 400
    assert bulk.json() == [{"errorCode": "InvalidSessionId",
                            "message": "Session expired or invalid"}]
    assert private_org.counters()["sessions_expired"] == before + 2
    assert api(private_org, jwt_token(private_org).json()["access_token"]).status_code == 200


def test_approval_lets_self_authorize_app_use_jwt(private_org: EmulatedOrg) -> None:
    key = private_org.info["self_authorize_app"]["consumer_key"]
    username = private_org.info["mtls_username"]  # not approved by any other test
    client = (private_org.info["client_tls"]["certificate"],
              private_org.info["client_tls"]["private_key"])
    refused = jwt_token(private_org, consumer_key=key, username=username,
                        base=private_org.info["mtls_url"], cert=client)
    assert refused.json()["error_description"] == "user hasn't approved this consumer"
    private_org.admin("POST", "approvals", json={"username": username, "consumer_key": key})
    assert jwt_token(private_org, consumer_key=key, username=username,
                     base=private_org.info["mtls_url"], cert=client).status_code == 200


def test_mutual_auth_certificate_upload(private_org: EmulatedOrg, tmp_path: Path) -> None:
    """A certificate chained to a CA the org trusts still needs uploading for enforce-users."""
    pki = Path(private_org.ca_cert).parent
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "second-client")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(ca_key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "c.pem").write_bytes(pem)
    (tmp_path / "k.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    client = (str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
    username = private_org.info["mtls_username"]
    before = jwt_token(private_org, username=username, base=private_org.info["mtls_url"],
                       cert=client)
    assert before.status_code == 400 and "mutual" in before.json()["error_description"]
    private_org.admin("POST", "mutual-auth-certificates", data=pem)
    after = jwt_token(private_org, username=username, base=private_org.info["mtls_url"],
                      cert=client)
    assert after.status_code == 200, after.text


def test_touch_records_returns_touched_ids(private_org: EmulatedOrg) -> None:
    touched = private_org.admin("POST", "records/Account/touch", json={"count": 3}).json()["ids"]
    assert len(touched) == 3 and all(record_id.startswith("001") for record_id in touched)
    again = private_org.admin("POST", "records/Account/touch",
                              json={"ids": touched[:1],
                                    "system_modstamp": "2030-01-01T00:00:00Z"}).json()["ids"]
    assert again == touched[:1]


def test_admin_rejects_bad_bodies(private_org: EmulatedOrg) -> None:
    session = private_org.session()
    base = private_org.info["admin_url"]
    assert session.post(f"{base}/approvals", json={"username": "x", "consumer_key": "y"},
                        timeout=30).status_code == 404
    assert session.post(f"{base}/mutual-auth-certificates", data=b"not a cert",
                        timeout=30).status_code == 400
    assert session.post(f"{base}/records/Account/touch", json={},
                        timeout=30).status_code == 400


def test_user_flags_api_disabled_and_inactive(private_org: EmulatedOrg) -> None:
    username = private_org.info["username"]
    access = jwt_token(private_org).json()["access_token"]
    private_org.admin("PATCH", f"users/{username}", json={"api_enabled": False})
    try:
        refused = api(private_org, access)
        assert refused.status_code == 403
        assert refused.json()[0]["errorCode"] == "API_DISABLED_FOR_ORG"
    finally:
        private_org.admin("PATCH", f"users/{username}", json={"api_enabled": True})
    assert api(private_org, access).status_code == 200
    private_org.admin("PATCH", f"users/{username}", json={"active": False})
    try:
        assert jwt_token(private_org).json()["error"] == "inactive_user"
        assert api(private_org, access).status_code == 401
    finally:
        private_org.admin("PATCH", f"users/{username}", json={"active": True})
    bad = private_org.session().patch(f"{private_org.info['admin_url']}/users/{username}",
                                      json={"is_admin": True}, timeout=30)
    assert bad.status_code == 400 and "is_admin" in bad.text


def test_sessions_expire_after_the_org_session_timeout(private_org: EmulatedOrg) -> None:
    private_org.admin("PATCH", "org", json={"session_seconds": 1})
    try:
        access = jwt_token(private_org).json()["access_token"]
    finally:
        private_org.admin("PATCH", "org", json={"session_seconds": 7200})
    assert api(private_org, access).status_code == 200
    before = private_org.counters()["sessions_expired"]
    time.sleep(1.2)
    assert api(private_org, access).status_code == 401
    assert private_org.counters()["sessions_expired"] == before + 1


def test_wrong_method_under_data_api_is_salesforce_json(private_org: EmulatedOrg) -> None:
    access = jwt_token(private_org).json()["access_token"]
    response = private_org.session().delete(
        f"{private_org.info['instance_url']}/services/data/v62.0/limits",
        headers={"Authorization": f"Bearer {access}"}, timeout=30)
    assert response.status_code == 405
    assert response.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    assert "GET" in response.headers["Allow"]


def test_added_callback_url_is_accepted_by_authorize(private_org: EmulatedOrg) -> None:
    app = private_org.info["self_authorize_app"]
    callback = "http://localhost:54321/OauthRedirect"
    url = private_org.info["login_url"] + "/services/oauth2/authorize"
    params = {"response_type": "code", "client_id": app["consumer_key"],
              "redirect_uri": callback}
    assert private_org.session().get(url, params=params, timeout=30).status_code == 400
    private_org.admin("POST", f"apps/{app['consumer_key']}/callback-urls", json={"url": callback})
    assert private_org.session().get(url, params=params, timeout=30).status_code == 200
