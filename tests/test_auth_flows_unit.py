"""Every auth flow against a fake transport (no org): what each grant sends, how each answer
becomes a token or an error that says what to fix in Salesforce, and that the session (not
the credentials) logs in again when Salesforce rejects a token or it expired.

The fake is what google-auth's own tests use: a ``request`` callable answering canned
responses (real ``requests.Response`` objects, so the parsing is the production one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from forcebeam.auth import AuthError, Connection, TransientAuthError, secrets
from forcebeam.auth.credentials import Credentials
from forcebeam.auth.flows import get_flow
from forcebeam.auth.session import ApiAdapter, SessionAuth, forget_failures, origin_of
from forcebeam.auth.transport import make_retry
from forcebeam.auth.usage import ApiUsage

ORG = "https://acme.my.salesforce.com"
TOKEN_URL = f"{ORG}/services/oauth2/token"
SECRETS = {"FB_UNIT_CONSUMER_SECRET": "cs-unit-0001", "FB_UNIT_PASSWORD": "pw-unit-0002",
           "FB_UNIT_SECURITY_TOKEN": "st-unit-0003", "FB_UNIT_REFRESH_TOKEN": "rt-unit-0004",
           "FB_UNIT_ACCESS_TOKEN": "00Dunit!given-token", "FB_UNIT_SUBJECT": "subject-0005"}
AUTH = {
    "jwt_bearer": {"type": "jwt_bearer", "username": "etl@acme.com", "consumer_key": "3MVGjwt",
                   "private_key": "env://FB_UNIT_PRIVATE_KEY"},
    "client_credentials": {"type": "client_credentials", "consumer_key": "3MVGcc",
                           "consumer_secret": "env://FB_UNIT_CONSUMER_SECRET"},
    "refresh_token": {"type": "refresh_token", "consumer_key": "3MVGrt",
                      "consumer_secret": "env://FB_UNIT_CONSUMER_SECRET",
                      "refresh_token": "env://FB_UNIT_REFRESH_TOKEN"},
    "password": {"type": "password", "username": "etl@acme.com",
                 "password": "env://FB_UNIT_PASSWORD",
                 "security_token": "env://FB_UNIT_SECURITY_TOKEN", "consumer_key": "3MVGpw",
                 "consumer_secret": "env://FB_UNIT_CONSUMER_SECRET"},
    "basic": {"type": "basic", "username": "etl@acme.com", "password": "env://FB_UNIT_PASSWORD",
              "security_token": "env://FB_UNIT_SECURITY_TOKEN"},
    "token_exchange": {"type": "token_exchange", "consumer_key": "3MVGte", "audience": ORG,
                       "subject_token": "env://FB_UNIT_SUBJECT"},
    "access_token": {"type": "access_token", "access_token": "env://FB_UNIT_ACCESS_TOKEN",
                     "instance_url": ORG},
}
LOGIN_GRANTS = [name for name in AUTH if name != "access_token"]
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


# ------------------------------------------------------------------ the fake transport

def response(status: int, body: Any = None, *, text: str | None = None, url: str = "",
             headers: dict[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = (text if text is not None else json.dumps(body)).encode()
    answer.headers.update(headers or {})
    answer.url = url
    return answer


def token_answer(number: int, **extra: Any) -> requests.Response:
    return response(200, {"access_token": f"00Dunit!issued-{number}", "instance_url": ORG,
                          "id": f"{ORG}/id/00D/005", "token_type": "Bearer",
                          "issued_at": str(int(time.time() * 1000)), **extra})


def soap_answer(number: int) -> requests.Response:
    return response(200, text=(
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" '
        'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
        f"<serverUrl>{ORG}/services/Soap/u/62.0/00D</serverUrl>"
        f"<sessionId>00Dunit!issued-{number}</sessionId><userInfo>"
        "<sessionSecondsValid>7200</sessionSecondsValid></userInfo></result></loginResponse>"
        "</soapenv:Body></soapenv:Envelope>"))


def soap_fault(code: str, message: str) -> requests.Response:
    return response(500, text=(
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring>"
        f"<detail><sf:LoginFault><sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:LoginFault></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"))


class FakeTransport:
    """The ``request`` callable a flow is handed: records each call, answers from a queue
    (or, when the queue is empty, with a fresh token of the grant's kind)."""

    def __init__(self, auth_type: str, *answers: requests.Response) -> None:
        self.auth_type = auth_type
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.calls.append({"method": method, "url": url, **kwargs})
        if self.answers:
            return self.answers.pop(0)
        number = len(self.calls)
        return soap_answer(number) if self.auth_type == "basic" else token_answer(number)

    request = __call__   # what SessionAuth calls on its token transport

    def close(self) -> None:
        pass

    def form(self, index: int = -1) -> dict[str, str]:
        data = self.calls[index]["data"]
        return {key: values[0] for key, values in parse_qs(data).items()} \
            if isinstance(data, str) else dict(data)


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(autouse=True)
def unit_secrets(monkeypatch: pytest.MonkeyPatch, private_key: rsa.RSAPrivateKey
                 ) -> Iterator[None]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    pem = private_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    monkeypatch.setenv("FB_UNIT_PRIVATE_KEY", pem)
    secrets.clear_cache()
    yield
    secrets.clear_cache()
    forget_failures()


def credentials_for(auth_type: str, **auth: Any) -> Credentials:
    connection = Connection.from_mapping({"login_url": ORG, "auth": {**AUTH[auth_type], **auth}},
                                         source="unit.yaml", path="connections.unit")
    return get_flow(auth_type)(connection)


def assert_no_secret_in(text: str) -> None:
    for value in (*SECRETS.values(), "issued-", "PRIVATE KEY"):
        assert value not in text, value


# ------------------------------------------------------------------ each grant's request

def test_jwt_bearer_signs_a_short_assertion_with_the_private_key(private_key):
    transport = FakeTransport("jwt_bearer")
    credentials = credentials_for("jwt_bearer")
    credentials.refresh(transport)
    (call,) = transport.calls
    assert call["url"] == TOKEN_URL
    form = transport.form()
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(form["assertion"], private_key.public_key(), algorithms=["RS256"],
                        audience="https://login.salesforce.com")
    assert claims["iss"] == "3MVGjwt" and claims["sub"] == "etl@acme.com"
    assert 0 < claims["exp"] - time.time() <= 180
    assert credentials.valid and credentials.instance_url == ORG


def test_client_credentials_keeps_the_secret_out_of_the_form():
    transport = FakeTransport("client_credentials")
    credentials_for("client_credentials").refresh(transport)
    assert transport.form() == {"grant_type": "client_credentials"}
    assert transport.calls[0]["auth"] == ("3MVGcc", SECRETS["FB_UNIT_CONSUMER_SECRET"])


def test_refresh_token_sends_the_stored_token_and_keeps_a_rotated_one():
    transport = FakeTransport("refresh_token", token_answer(1, refresh_token="rt-rotated-0006"))
    credentials = credentials_for("refresh_token")
    credentials.refresh(transport)
    assert transport.form(0) == {"grant_type": "refresh_token", "client_id": "3MVGrt",
                                 "refresh_token": SECRETS["FB_UNIT_REFRESH_TOKEN"],
                                 "client_secret": SECRETS["FB_UNIT_CONSUMER_SECRET"]}
    credentials.refresh(transport)   # env:// cannot be written back: kept in memory
    assert transport.form(1)["refresh_token"] == "rt-rotated-0006"


def test_password_appends_the_security_token():
    transport = FakeTransport("password")
    credentials_for("password").refresh(transport)
    form = transport.form()
    assert form["grant_type"] == "password" and form["username"] == "etl@acme.com"
    assert form["password"] == SECRETS["FB_UNIT_PASSWORD"] + SECRETS["FB_UNIT_SECURITY_TOKEN"]


def test_basic_is_a_soap_login_whose_session_timeout_sets_the_expiry():
    transport = FakeTransport("basic")
    credentials = credentials_for("basic")
    credentials.refresh(transport)
    (call,) = transport.calls
    assert call["url"] == f"{ORG}/services/Soap/u/62.0"
    assert call["headers"]["SOAPAction"] == "login"
    envelope = call["data"].decode()
    assert "<n1:username>etl@acme.com</n1:username>" in envelope
    assert credentials.token.text() == "00Dunit!issued-1"
    assert credentials.expiry == pytest.approx(time.time() + 7200, abs=5)
    assert credentials.valid and not credentials.expired


def test_token_exchange_sends_the_subject_token_of_its_source():
    transport = FakeTransport("token_exchange")
    credentials_for("token_exchange").refresh(transport)
    form = transport.form()
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert form["subject_token"] == SECRETS["FB_UNIT_SUBJECT"]
    assert form["client_id"] == "3MVGte"


def test_access_token_is_used_as_given_without_any_call():
    transport = FakeTransport("access_token")
    credentials = credentials_for("access_token")
    credentials.refresh(transport)
    assert transport.calls == []
    assert credentials.token.text() == SECRETS["FB_UNIT_ACCESS_TOKEN"]


@pytest.mark.parametrize("auth_type", LOGIN_GRANTS)
def test_a_login_applies_its_token_and_hides_every_secret(auth_type):
    credentials = credentials_for(auth_type)
    assert not credentials.valid
    credentials.refresh(FakeTransport(auth_type))
    headers: dict[str, str] = {}
    credentials.apply(headers)
    assert headers == {"Authorization": "Bearer 00Dunit!issued-1"}
    assert_no_secret_in(repr(credentials))
    with pytest.raises(TypeError, match="never pickled"):
        credentials.__reduce__()


def test_expiry_comes_from_expires_in_or_a_jwt_access_token():
    transport = FakeTransport("token_exchange", token_answer(1, expires_in=3600))
    credentials = credentials_for("token_exchange")
    credentials.refresh(transport)
    assert credentials.expiry == pytest.approx(time.time() + 3600, abs=5)
    issued = jwt.encode({"exp": int(time.time()) - 5}, "k" * 32, algorithm="HS256")
    answer = response(200, {"access_token": issued, "instance_url": ORG,
                            "token_format": "jwt"})
    credentials.refresh(FakeTransport("token_exchange", answer))
    assert credentials.expired and not credentials.valid
    credentials.refresh(FakeTransport("token_exchange"))   # an opaque token: no expiry
    assert credentials.expiry is None and credentials.valid


# ------------------------------------------------------------------ errors, with the fix

def oauth_refusal(error: str, description: str) -> requests.Response:
    return response(400, {"error": error, "error_description": description})


ERRORS: dict[str, tuple[requests.Response, str, str]] = {
    # grant: (the answer, Salesforce's code in our error, words of the fix)
    "jwt_bearer": (oauth_refusal("invalid_grant", "user hasn't approved this consumer"),
                   "invalid_grant: user hasn't approved this consumer", "pre-authorize"),
    "client_credentials": (oauth_refusal("invalid_grant", "request not supported on this "
                                         "domain"), "invalid_grant", "My Domain"),
    "refresh_token": (oauth_refusal("invalid_grant", "expired access/refresh token"),
                      "invalid_grant", "forcebeam authorize"),
    "password": (oauth_refusal("invalid_grant", "authentication failure"),
                 "invalid_grant: authentication failure", "External Client App"),
    "basic": (soap_fault("INVALID_LOGIN", "Invalid username, password, security token; or "
                         "user locked out."), "INVALID_LOGIN", "Reset My Security Token"),
    "token_exchange": (oauth_refusal("invalid_request", "invalid subject token"),
                       "invalid_request", "https://accounts.google.com"),
}


@pytest.mark.parametrize("auth_type", LOGIN_GRANTS)
def test_each_refusal_is_an_auth_error_saying_what_to_do_in_salesforce(auth_type):
    answer, code, fix_words = ERRORS[auth_type]
    with pytest.raises(AuthError) as caught:
        credentials_for(auth_type).refresh(FakeTransport(auth_type, answer))
    assert caught.value.code.startswith(code)
    assert fix_words in caught.value.fix
    assert_no_secret_in(str(caught.value))


def test_a_rejected_access_token_cannot_be_renewed_and_says_so():
    credentials = credentials_for("access_token")
    credentials.refresh(FakeTransport("access_token"))
    with pytest.raises(AuthError) as caught:
        credentials.refresh(FakeTransport("access_token"))
    assert caught.value.code == "INVALID_SESSION_ID"
    assert "fresh access token" in caught.value.fix


@pytest.mark.parametrize("auth_type", ["jwt_bearer", "basic"])
def test_unavailable_token_endpoint_is_transient(auth_type):
    with pytest.raises(TransientAuthError):
        credentials_for(auth_type).refresh(FakeTransport(auth_type, response(503, text="")))


def test_an_unreachable_endpoint_is_transient_and_names_no_form_value():
    def unreachable(method: str, url: str, **kwargs: Any) -> requests.Response:
        raise requests.exceptions.ConnectionError(f"refused {kwargs}")

    with pytest.raises(TransientAuthError) as caught:
        credentials_for("password").refresh(unreachable)
    assert "could not reach" in str(caught.value)
    assert_no_secret_in(str(caught.value))


# ------------------------------------------------------------------ the session decides

class FakeOrg:
    """Answers API calls: 401 INVALID_SESSION_ID for tokens in ``expired``, 200 otherwise."""

    def __init__(self) -> None:
        self.expired: set[str] = set()
        self.seen: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Stands in for the network under the adapter (HTTPAdapter.send)."""
        token = request.headers["Authorization"].removeprefix("Bearer ")
        self.seen.append(token)
        if token in self.expired:
            return response(401, [{"errorCode": "INVALID_SESSION_ID",
                                   "message": "Session expired or invalid"}], url=request.url)
        return response(200, {"totalSize": 0, "records": []}, url=request.url,
                        headers={"Sforce-Limit-Info": "api-usage=10/15000"})


def api_session(auth: SessionAuth, monkeypatch: pytest.MonkeyPatch, org: FakeOrg,
                usage: ApiUsage) -> requests.Session:
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", org.send)
    session = requests.Session()
    session.mount("https://", ApiAdapter(auth=auth, usage=usage, api_origin=origin_of(ORG),
                                         api_version="62.0", ca_bundle=None, client_cert=None,
                                         retry=make_retry()))
    return session


@pytest.mark.parametrize("auth_type", LOGIN_GRANTS)
def test_the_session_logs_in_again_on_401_and_resends_once(auth_type, monkeypatch):
    transport = FakeTransport(auth_type)
    credentials = credentials_for(auth_type)
    auth = SessionAuth(credentials, transport)  # type: ignore[arg-type]
    org, usage = FakeOrg(), ApiUsage(credentials.connection)
    session = api_session(auth, monkeypatch, org, usage)

    assert session.get(f"{ORG}/services/data/v62.0/query").status_code == 200
    assert auth.logins == 1 and org.seen == ["00Dunit!issued-1"]
    org.expired.add("00Dunit!issued-1")          # Salesforce ends the session
    assert session.get(f"{ORG}/services/data/v62.0/query").status_code == 200
    assert org.seen[1:] == ["00Dunit!issued-1", "00Dunit!issued-2"]
    assert auth.logins == 2 and len(transport.calls) == 2
    assert usage.api_calls == 3 and usage.org_usage == (10, 15000)


def test_the_session_logs_in_before_sending_once_the_token_expired(monkeypatch):
    transport = FakeTransport("basic")
    credentials = credentials_for("basic")
    auth = SessionAuth(credentials, transport)  # type: ignore[arg-type]
    session = api_session(auth, monkeypatch, FakeOrg(), ApiUsage(credentials.connection))
    session.get(f"{ORG}/services/data/v62.0/limits")
    credentials.expiry = time.time() - 1          # the session timeout passed
    session.get(f"{ORG}/services/data/v62.0/limits")
    assert auth.logins == 2 and len(transport.calls) == 2   # no 401 was needed


def test_a_rejected_access_token_fails_once_and_is_remembered(monkeypatch):
    credentials = credentials_for("access_token")
    auth = SessionAuth(credentials, FakeTransport("access_token"))  # type: ignore[arg-type]
    org = FakeOrg()
    org.expired.add(SECRETS["FB_UNIT_ACCESS_TOKEN"])
    session = api_session(auth, monkeypatch, org, ApiUsage(credentials.connection))
    with pytest.raises(AuthError, match="fresh access token"):
        session.get(f"{ORG}/services/data/v62.0/query")
    with pytest.raises(AuthError):
        SessionAuth(credentials_for("access_token"), FakeTransport("access_token")
                    ).current_token()   # a new session for the same connection: no retry
    assert auth.logins == 0   # a given token is never a login


def test_the_token_never_goes_to_another_host(monkeypatch):
    credentials = credentials_for("client_credentials")
    auth = SessionAuth(credentials, FakeTransport("client_credentials"))  # type: ignore[arg-type]
    seen: dict[str, Any] = {}

    def elsewhere(adapter: Any, request: requests.PreparedRequest, **kwargs: Any
                  ) -> requests.Response:
        seen["authorization"] = request.headers.get("Authorization")
        return response(200, {})

    session = api_session(auth, monkeypatch, FakeOrg(), ApiUsage(credentials.connection))
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", elsewhere)
    session.get("https://files.example.com/x", headers={"Authorization": "Bearer keep-out"})
    assert seen["authorization"] is None and auth.logins == 0


def concurrent(count: int, work: Callable[[], Any]) -> list[Any]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: work(), range(count)))


def test_concurrent_rejections_of_one_token_make_one_login():
    transport = FakeTransport("jwt_bearer")
    auth = SessionAuth(credentials_for("jwt_bearer"), transport)  # type: ignore[arg-type]
    first = auth.current_token()
    renewed = concurrent(8, lambda: auth.renew(first))
    assert set(renewed) == {"00Dunit!issued-2"} and auth.logins == 2
