"""OAuth 2.0 against the emulated org with real clients: simple-salesforce, PyJWT, requests.

Every flow goes over real TLS; simple-salesforce is unmodified and reaches the emulator through
`tests/support/routing.py` (its `https://login.salesforce.com` etc. URLs keep their names in
Host, SNI and the certificate check, but connect to loopback).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce import Salesforce, SalesforceAuthenticationFailed

from tests.support.org import EmulatedOrg, start_org
from tests.support.routing import routed_session

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def routed(org: EmulatedOrg) -> requests.Session:
    return routed_session(org.ca_cert, port_of(org.info["instance_url"]))


def assertion(org: EmulatedOrg, *, key: bytes | None = None, **claims: Any) -> str:
    """A JWT bearer assertion for the integration user, claims overridable."""
    app = org.info["connected_app"]
    body: dict[str, Any] = {"iss": app["consumer_key"], "sub": org.info["username"],
                            "aud": "https://login.salesforce.com",
                            "exp": int(time.time()) + 180}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key or Path(app["private_key"]).read_bytes(), algorithm="RS256")


def token_call(org: EmulatedOrg, data: dict[str, str], **kwargs: Any) -> requests.Response:
    return org.session().post(org.info["login_url"] + "/services/oauth2/token", data=data,
                              timeout=30, **kwargs)


def oauth_error(response: requests.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"], body["error_description"]


def api_get(org: EmulatedOrg, token: str, path: str = "limits",
            base: str | None = None) -> requests.Response:
    url = f"{base or org.info['instance_url']}/services/data/v{org.info['api_version']}/{path}"
    return org.session().get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture(scope="module")
def private_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    """An org these tests may change (certificates, approvals, toggles)."""
    running = start_org(tmp_path_factory.mktemp("oauth-org"), records=50)
    try:
        yield running
    finally:
        running.stop()


# ----- simple-salesforce, unmodified -----------------------------------------------------------
def test_simple_salesforce_jwt_bearer_with_key_file_and_key_text(org: EmulatedOrg) -> None:
    app = org.info["connected_app"]
    session = routed(org)
    by_file = Salesforce(username=org.info["username"], consumer_key=app["consumer_key"],
                         privatekey_file=app["private_key"], session=session)
    assert by_file.sf_instance == org.info["instance_url"].removeprefix("https://")
    assert by_file.limits()["DailyApiRequests"]["Max"] > 0
    by_text = Salesforce(username=org.info["username"], consumer_key=app["consumer_key"],
                         privatekey=Path(app["private_key"]).read_text(), domain="test",
                         session=session)
    assert by_text.session_id != by_file.session_id
    assert by_text.limits()["DailyApiRequests"]["Remaining"] > 0


def test_simple_salesforce_client_credentials_on_my_domain(org: EmulatedOrg) -> None:
    app = org.info["connected_app"]
    sf = Salesforce(consumer_key=app["consumer_key"], consumer_secret=app["consumer_secret"],
                    domain="acme.my", session=routed(org))
    assert sf.limits()["DailyApiRequests"]["Max"] > 0
    with pytest.raises(SalesforceAuthenticationFailed, match="invalid client credentials"):
        Salesforce(consumer_key=app["consumer_key"], consumer_secret="wrong",
                   domain="acme.my", session=routed(org))


@pytest.mark.parametrize("host", ["login.salesforce.com", "test.salesforce.com"])
def test_client_credentials_refused_on_generic_login_hosts(org: EmulatedOrg, host: str) -> None:
    app = org.info["connected_app"]
    basic = base64.b64encode(f"{app['consumer_key']}:{app['consumer_secret']}".encode()).decode()
    response = routed(org).post(f"https://{host}/services/oauth2/token",
                                data={"grant_type": "client_credentials"},
                                headers={"Authorization": f"Basic {basic}"}, timeout=30)
    assert oauth_error(response) == (400, "invalid_grant", "request not supported on this domain")


def test_client_credentials_secret_in_body(org: EmulatedOrg) -> None:
    app = org.info["connected_app"]
    response = token_call(org, {"grant_type": "client_credentials",
                                "client_id": app["consumer_key"],
                                "client_secret": app["consumer_secret"]})
    body = response.json()
    assert response.status_code == 200
    assert body["token_format"] == "opaque" and body["token_type"] == "Bearer"
    assert body["instance_url"] == org.info["instance_url"]
    assert body["id"].endswith(f"/id/{org.info['org_id']}/{org.info['user_id']}")
    assert body["issued_at"].isdigit() and abs(int(body["issued_at"]) / 1000 - time.time()) < 60
    assert api_get(org, body["access_token"]).status_code == 200


def test_simple_salesforce_password_flow(org: EmulatedOrg) -> None:
    app = org.info["connected_app"]
    sf = Salesforce(username=org.info["username"],
                    password=org.info["password"] + org.info["security_token"],
                    consumer_key=app["consumer_key"], consumer_secret=app["consumer_secret"],
                    session=routed(org))
    assert sf.limits()["DailyApiRequests"]["Max"] > 0
    with pytest.raises(SalesforceAuthenticationFailed, match="authentication failure"):
        Salesforce(username=org.info["username"], password=org.info["password"],
                   consumer_key=app["consumer_key"], consumer_secret=app["consumer_secret"],
                   session=routed(org))


def test_simple_salesforce_existing_session(org: EmulatedOrg) -> None:
    token = token_call(org, {"grant_type": JWT_GRANT, "assertion": assertion(org)}).json()
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                    session=org.session())
    assert sf.limits()["DailyApiRequests"]["Max"] > 0


def test_password_flow_blocked_by_org_toggle(private_org: EmulatedOrg) -> None:
    app = private_org.info["connected_app"]
    form = {"grant_type": "password", "client_id": app["consumer_key"],
            "client_secret": app["consumer_secret"], "username": private_org.info["username"],
            "password": private_org.info["password"] + private_org.info["security_token"]}
    assert token_call(private_org, form).status_code == 200
    private_org.admin("PATCH", "org", json={"password_flow_blocked": True})
    try:
        status, error, description = oauth_error(token_call(private_org, form))
    finally:
        private_org.admin("PATCH", "org", json={"password_flow_blocked": False})
    assert (status, error) == (400, "invalid_grant")
    assert "Username-Password" in description


# ----- JWT bearer rules ------------------------------------------------------------------------
@pytest.mark.parametrize("exp", [
    pytest.param(lambda now: now + 180, id="seconds-number"),
    pytest.param(lambda now: str(now + 180), id="seconds-string"),
    pytest.param(lambda now: (now + 300) * 1000, id="milliseconds-like-sfdx"),
])
def test_jwt_exp_forms_accepted(org: EmulatedOrg, exp) -> None:
    response = token_call(org, {"grant_type": JWT_GRANT,
                                "assertion": assertion(org, exp=exp(int(time.time())))})
    assert response.status_code == 200, response.text
    assert response.json()["scope"]


@pytest.mark.parametrize("audience", ["https://login.salesforce.com/", "https://test.salesforce.com",
                                      "my-domain", "my-domain/"])
def test_jwt_audiences_accepted(org: EmulatedOrg, audience: str) -> None:
    aud = audience.replace("my-domain", org.info["instance_url"])
    response = token_call(org, {"grant_type": JWT_GRANT, "assertion": assertion(org, aud=aud)})
    assert response.status_code == 200, response.text


def test_jwt_failures_name_the_problem(org: EmulatedOrg) -> None:
    stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    cases = {
        "unknown key": (assertion(org, key=stranger_key), "invalid_grant", "invalid assertion"),
        "unknown consumer": (assertion(org, iss="3MVG9unknown"), "invalid_client_id",
                             "client identifier invalid"),
        "expired": (assertion(org, exp=int(time.time()) - 10), "invalid_grant",
                    "expired authorization code"),
        "wrong aud": (assertion(org, aud="https://evil.example.com"), "invalid_grant",
                      "audience is invalid"),
        "unknown user": (assertion(org, sub="nobody@example.com"), "invalid_grant",
                         "user hasn't approved this consumer"),
    }
    before = org.counters()["token_requests"]["failed"]
    for name, (signed, error, description) in cases.items():
        got = oauth_error(token_call(org, {"grant_type": JWT_GRANT, "assertion": signed}))
        assert got == (400, error, description), name
    hs256 = jwt.encode({"iss": "x"}, "secret-of-32-bytes-for-hmac-sha256!", algorithm="HS256")
    assert oauth_error(token_call(org, {"grant_type": JWT_GRANT, "assertion": hs256}))[1:] == (
        "invalid_grant", "invalid assertion")
    assert org.counters()["token_requests"]["failed"] >= before + len(cases) + 1


def test_jwt_prn_wins_over_sub(org: EmulatedOrg) -> None:
    signed = assertion(org, sub="nobody@example.com", prn=org.info["username"])
    assert token_call(org, {"grant_type": JWT_GRANT, "assertion": signed}).status_code == 200


def test_uploaded_certificate_makes_a_new_key_work(private_org: EmulatedOrg) -> None:
    from forcebeam.emulator.tls import self_signed_rsa

    certificate, key = self_signed_rsa("rotated-key")
    signed = assertion(private_org, key=key)
    form = {"grant_type": JWT_GRANT, "assertion": signed}
    assert oauth_error(token_call(private_org, form))[2] == "invalid assertion"
    consumer_key = private_org.info["connected_app"]["consumer_key"]
    private_org.admin("POST", f"apps/{consumer_key}/certificates", data=certificate)
    assert token_call(private_org, form).status_code == 200


def test_unsupported_grant_type(org: EmulatedOrg) -> None:
    assert oauth_error(token_call(org, {"grant_type": "jwt-bearer"})) == (
        400, "unsupported_grant_type", "grant type not supported")


# ----- self-authorize app: JWT refused until the user approves via authorization code + PKCE -
def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorize(org: EmulatedOrg, consumer_key: str, callback: str, challenge: str | None,
              state: str = "s-1") -> dict[str, list[str]]:
    """Drive the authorize page like a browser would: GET the form, POST login + Allow."""
    session = org.session()
    params = {"response_type": "code", "client_id": consumer_key, "redirect_uri": callback,
              "state": state}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    page = session.get(org.info["login_url"] + "/services/oauth2/authorize", params=params,
                       timeout=30)
    assert page.status_code == 200 and "<form" in page.text
    answer = session.post(org.info["login_url"] + "/services/oauth2/authorize",
                          data={**params, "username": org.info["username"],
                                "password": org.info["password"], "action": "approve"},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(callback + "?")
    return parse_qs(urlsplit(location).query)


def test_self_authorize_app_needs_approval_then_jwt_works(private_org: EmulatedOrg) -> None:
    app = private_org.info["self_authorize_app"]
    signed = assertion(private_org, iss=app["consumer_key"])
    with pytest.warns(UserWarning, match="authorize"), pytest.raises(
            SalesforceAuthenticationFailed, match="user hasn't approved this consumer"):
        Salesforce(username=private_org.info["username"], consumer_key=app["consumer_key"],
                   privatekey_file=private_org.info["connected_app"]["private_key"],
                   session=routed(private_org))

    verifier, challenge = pkce_pair()
    query = authorize(private_org, app["consumer_key"], app["callback_url"], challenge)
    assert query["state"] == ["s-1"]
    code = query["code"][0]
    exchange = {"grant_type": "authorization_code", "code": code,
                "client_id": app["consumer_key"], "redirect_uri": app["callback_url"],
                "code_verifier": verifier}
    tokens = token_call(private_org, exchange)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["refresh_token"]
    assert oauth_error(token_call(private_org, exchange))[1:] == (
        "invalid_grant", "expired authorization code")  # single use

    sf = Salesforce(username=private_org.info["username"], consumer_key=app["consumer_key"],
                    privatekey_file=private_org.info["connected_app"]["private_key"],
                    session=routed(private_org))
    assert sf.limits()["DailyApiRequests"]["Max"] > 0
    assert token_call(private_org, {"grant_type": JWT_GRANT, "assertion": signed}).ok


def test_pkce_verifier_checks(private_org: EmulatedOrg) -> None:
    app = private_org.info["self_authorize_app"]
    verifier, challenge = pkce_pair()
    base = {"grant_type": "authorization_code", "client_id": app["consumer_key"],
            "redirect_uri": app["callback_url"]}
    code = authorize(private_org, app["consumer_key"], app["callback_url"], challenge)["code"][0]
    assert oauth_error(token_call(private_org, {**base, "code": code,
                                                "code_verifier": verifier + "x"}))[1] == (
        "invalid_request")
    code = authorize(private_org, app["consumer_key"], app["callback_url"], challenge)["code"][0]
    assert oauth_error(token_call(private_org, {**base, "code": code}))[1] == "invalid_grant"
    code = authorize(private_org, app["consumer_key"], app["callback_url"], None)["code"][0]
    assert oauth_error(token_call(private_org, {**base, "code": code}))[1] == "invalid_client"
    code = authorize(private_org, app["consumer_key"], app["callback_url"], None)["code"][0]
    ok = token_call(private_org, {**base, "code": code,
                                  "client_secret": app["consumer_secret"]})
    assert ok.status_code == 200


def test_authorize_page_rejects_unknown_callback_and_reports_denial(org: EmulatedOrg) -> None:
    app = org.info["connected_app"]
    url = org.info["login_url"] + "/services/oauth2/authorize"
    bad = org.session().get(url, params={"response_type": "code",
                                         "client_id": app["consumer_key"],
                                         "redirect_uri": "https://attacker.example/cb"},
                            timeout=30)
    assert bad.status_code == 400 and "redirect_uri" in bad.text
    denied = org.session().post(url, data={"response_type": "code",
                                           "client_id": app["consumer_key"],
                                           "redirect_uri": app["callback_url"], "state": "z",
                                           "action": "deny"}, allow_redirects=False, timeout=30)
    query = parse_qs(urlsplit(denied.headers["Location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["z"]


# ----- refresh tokens, rotation, revocation --------------------------------------------------
def refresh_form(org: EmulatedOrg, refresh_token: str) -> dict[str, str]:
    app = org.info["connected_app"]
    return {"grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": app["consumer_key"], "client_secret": app["consumer_secret"]}


def new_refresh_token(org: EmulatedOrg) -> str:
    return org.admin("POST", "refresh-tokens", json={
        "username": org.info["username"],
        "consumer_key": org.info["connected_app"]["consumer_key"]}).json()["refresh_token"]


def test_refresh_token_flow_and_rotation(private_org: EmulatedOrg) -> None:
    refresh = new_refresh_token(private_org)
    first = token_call(private_org, refresh_form(private_org, refresh))
    assert first.status_code == 200 and "refresh_token" not in first.json()
    assert token_call(private_org, refresh_form(private_org, refresh)).status_code == 200

    private_org.admin("PATCH", "org", json={"refresh_token_rotation": True})
    try:
        rotated = token_call(private_org, refresh_form(private_org, refresh)).json()
        assert rotated["refresh_token"] != refresh
        assert oauth_error(token_call(private_org, refresh_form(private_org, refresh))) == (
            400, "invalid_grant", "expired access/refresh token")
        again = token_call(private_org, refresh_form(private_org, rotated["refresh_token"]))
        assert again.status_code == 200
    finally:
        private_org.admin("PATCH", "org", json={"refresh_token_rotation": False})


def test_revoke_refresh_token_and_access_token(private_org: EmulatedOrg) -> None:
    refresh = new_refresh_token(private_org)
    access = token_call(private_org, refresh_form(private_org, refresh)).json()["access_token"]
    assert api_get(private_org, access).status_code == 200
    revoke = private_org.session().post(private_org.info["login_url"] +
                                        "/services/oauth2/revoke", data={"token": refresh},
                                        timeout=30)
    assert revoke.status_code == 200
    assert oauth_error(token_call(private_org, refresh_form(private_org, refresh)))[2] == (
        "expired access/refresh token")
    expired = api_get(private_org, access)
    assert expired.status_code == 401
    assert expired.json() == [{"message": "Session expired or invalid",
                               "errorCode": "INVALID_SESSION_ID"}]
    unknown = private_org.session().post(private_org.info["login_url"] +
                                         "/services/oauth2/revoke", data={"token": "nope"},
                                         timeout=30)
    assert unknown.status_code == 400


# ----- identity endpoints --------------------------------------------------------------------
def test_userinfo_and_identity_url(org: EmulatedOrg) -> None:
    token = token_call(org, {"grant_type": JWT_GRANT, "assertion": assertion(org)}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    info = org.session().get(org.info["login_url"] + "/services/oauth2/userinfo",
                             headers=headers, timeout=30).json()
    assert info["user_id"] == org.info["user_id"]
    assert info["organization_id"] == org.info["org_id"]
    assert info["preferred_username"] == org.info["username"]
    assert "{version}" in info["urls"]["rest"]
    ident = org.session().get(token["id"], headers=headers, timeout=30).json()
    assert ident["username"] == org.info["username"] and ident["user_id"] == org.info["user_id"]
    assert org.session().get(org.info["login_url"] + "/services/oauth2/userinfo",
                             timeout=30).status_code == 403


# ----- the session checks every API call goes through ----------------------------------------
def test_api_session_errors_have_salesforce_shapes(org: EmulatedOrg) -> None:
    missing = org.session().get(f"{org.info['instance_url']}/services/data/v62.0/limits",
                                timeout=30)
    assert missing.status_code == 401
    assert missing.json()[0]["errorCode"] == "INVALID_AUTH_HEADER"
    garbage = api_get(org, "00Dnot-a-session")
    assert garbage.status_code == 401
    assert garbage.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert garbage.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_limit_info_versions_and_unknown_resources(org: EmulatedOrg) -> None:
    token = token_call(org, {"grant_type": JWT_GRANT, "assertion": assertion(org)}).json()
    ok = api_get(org, token["access_token"])
    used, limit = ok.headers["Sforce-Limit-Info"].removeprefix("api-usage=").split("/")
    assert int(used) >= 1 and int(limit) == ok.json()["DailyApiRequests"]["Max"]
    assert api_get(org, token["access_token"], "no-such-resource").json()[0]["errorCode"] == (
        "NOT_FOUND")
    retired = org.session().get(f"{org.info['instance_url']}/services/data/v30.0/limits",
                                headers={"Authorization": f"Bearer {token['access_token']}"},
                                timeout=30)
    assert retired.status_code == 410  # retired in Summer '25: REST answers 410 GONE
    versions = org.session().get(f"{org.info['instance_url']}/services/data/", timeout=30)
    assert "Sforce-Limit-Info" not in versions.headers
    listed = [v["version"] for v in versions.json()]
    assert listed[0] == "31.0" and "62.0" in listed and "66.0" in listed


# ----- transport: chunked bodies, concurrent clients -----------------------------------------
def test_chunked_token_request_body(org: EmulatedOrg) -> None:
    app = org.info["connected_app"]
    form = (f"grant_type=client_credentials&client_id={app['consumer_key']}"
            f"&client_secret={app['consumer_secret']}").encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(form), 16):
            yield form[start:start + 16]

    response = org.session().post(org.info["login_url"] + "/services/oauth2/token",
                                  data=chunks(), timeout=30,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 200, response.text


def test_concurrent_clients_each_get_their_own_session(org: EmulatedOrg) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def login_and_call(_: int) -> tuple[str, int]:
        token = token_call(org, {"grant_type": JWT_GRANT, "assertion": assertion(org)}).json()
        return token["access_token"], api_get(org, token["access_token"]).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(login_and_call, range(16)))
    assert len({token for token, _ in results}) == 16
    assert {status for _, status in results} == {200}


def test_oauth_authorization_scheme_is_accepted(org: EmulatedOrg) -> None:
    token = token_call(org, {"grant_type": JWT_GRANT, "assertion": assertion(org)}).json()
    response = org.session().get(f"{org.info['instance_url']}/services/data/v62.0/limits",
                                 headers={"Authorization": f"OAuth {token['access_token']}"},
                                 timeout=30)
    assert response.status_code == 200
