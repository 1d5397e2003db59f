"""The token_exchange flow against a fake token endpoint: what it sends, when it re-exchanges,
how it is configured, and that a plugin can supply the subject token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from forcebeam.auth import AuthError, ConfigError, Connection, subject_tokens
from forcebeam.auth.flows.token_exchange import TokenExchangeCredentials
from forcebeam.auth.session import SessionAuth, forget_failures
from tests.support.plugins import install_entry_points

ORG = "https://acme.my.salesforce.com"


class FakeIdp:
    """A subject token plugin (what an entry point in forcebeam.subject_tokens names)."""

    calls = 0

    def __init__(self, audience: str) -> None:
        self.audience = audience

    def fetch(self) -> str:
        type(self).calls += 1
        return f"idp-token-{type(self).calls}-for-{self.audience}"


class FakeResponse:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status_code, self._body = status, body

    def json(self) -> dict[str, Any]:
        return self._body


class FakeTokenEndpoint:
    """Records every POST; answers from a queue (default: a fresh Salesforce token)."""

    def __init__(self, *answers: FakeResponse) -> None:
        self.posts: list[dict[str, Any]] = []
        self.answers = list(answers)

    def request(self, method: str, url: str, **kwargs: Any) -> FakeResponse:
        assert method == "POST"
        self.posts.append({"url": url, **kwargs})
        if self.answers:
            return self.answers.pop(0)
        return FakeResponse(200, {"access_token": f"00Dxx!AQ{len(self.posts)}",
                                  "instance_url": ORG, "id": f"{ORG}/id/00D/005",
                                  "token_type": "Bearer", "issued_at": "1",
                                  "issued_token_type":
                                      "urn:ietf:params:oauth:token-type:access_token"})


@pytest.fixture
def fake_idp(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[type[FakeIdp]]:
    install_entry_points(tmp_path, monkeypatch, subject_tokens.ENTRY_POINT_GROUP,
                         {"fake-idp": f"{__name__}:FakeIdp"})
    monkeypatch.setattr(subject_tokens.SOURCES, "_loaded", {})
    FakeIdp.calls = 0
    yield FakeIdp
    forget_failures()   # a refusal is remembered per connection for the process


def connection(**auth: Any) -> Connection:
    return Connection.from_mapping({"login_url": ORG, "auth": {
        "type": "token_exchange", "consumer_key": "3MVG9eca", "audience": ORG, **auth}},
        source="p.yaml", path="connections.keyless")


def test_exchange_sends_rfc_8693_parameters_and_nothing_secret_it_was_not_given(fake_idp):
    endpoint = FakeTokenEndpoint()
    credentials = TokenExchangeCredentials(connection(subject_token="fake-idp"))
    credentials.refresh(endpoint.request)

    (post,) = endpoint.posts
    assert post["url"] == f"{ORG}/services/oauth2/token"
    assert post["data"] == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": f"idp-token-1-for-{ORG}",
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "client_id": "3MVG9eca"}
    assert post["auth"] is None
    assert credentials.instance_url == ORG and credentials.token is not None


def test_jwt_type_handler_name_and_optional_secret(fake_idp, monkeypatch):
    monkeypatch.setenv("FB_ECA_SECRET", "s3cret")
    endpoint = FakeTokenEndpoint()
    TokenExchangeCredentials(connection(subject_token="fake-idp", subject_token_type="jwt",
                                        token_handler="GoogleWorkers",
                                        consumer_secret="env://FB_ECA_SECRET"),
                             ).refresh(endpoint.request)
    form = endpoint.posts[0]["data"]
    assert form["subject_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    assert form["token_handler"] == "GoogleWorkers" and form["client_secret"] == "s3cret"


def test_rejected_session_is_re_exchanged_with_a_fresh_subject_token(fake_idp):
    endpoint = FakeTokenEndpoint()
    manager = SessionAuth(TokenExchangeCredentials(connection(subject_token="fake-idp")),
                          endpoint)  # type: ignore[arg-type]
    first = manager.current_token()
    assert manager.current_token() == first and len(endpoint.posts) == 1  # no extra exchange
    second = manager.renew(first)
    assert second != first and len(endpoint.posts) == 2
    assert endpoint.posts[1]["data"]["subject_token"].startswith("idp-token-2")


def test_refusal_is_remembered_and_says_what_to_fix(fake_idp):
    endpoint = FakeTokenEndpoint(FakeResponse(400, {
        "error": "invalid_request",
        "error_description": "invalid subject token: its issuer is not trusted by the token "
                             "exchange handler ForcebeamGoogleHandler"}))
    manager = SessionAuth(TokenExchangeCredentials(connection(subject_token="fake-idp")),
                          endpoint)  # type: ignore[arg-type]
    for _ in range(3):
        with pytest.raises(AuthError) as caught:
            manager.current_token()
    assert len(endpoint.posts) == 1, "a refusal is permanent: no retry storm"
    assert "https://accounts.google.com" in caught.value.fix
    assert "idp-token" not in str(caught.value)


def test_a_pasted_token_is_refused_without_being_echoed():
    pasted = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3b3JrZXIifQ.c2lnbmF0dXJl"
    with pytest.raises(ConfigError) as caught:
        connection(subject_token=pasted)
    assert caught.value.path == "connections.keyless.auth.subject_token"
    assert "env://VARIABLE" in caught.value.message and "google-id-token" in caught.value.message
    assert pasted not in str(caught.value)


def test_defaults_are_keyless_google_id_tokens():
    auth = connection().auth
    assert auth.subject_token == "google-id-token" and auth.subject_token_type == "id_token"
    assert auth.secret_references() == {}
    with pytest.raises(ConfigError) as missing:
        Connection.from_mapping({"login_url": ORG, "auth": {"type": "token_exchange",
                                                            "consumer_key": "K"}})
    assert missing.value.path.endswith("auth.audience")


def test_a_failing_plugin_is_one_auth_error_without_its_data(monkeypatch, fake_idp):
    def broken(self: FakeIdp) -> str:
        raise RuntimeError("token eyJabc.def.ghi leaked?")

    monkeypatch.setattr(FakeIdp, "fetch", broken)
    with pytest.raises(AuthError) as caught:
        TokenExchangeCredentials(connection(subject_token="fake-idp")).refresh(
            FakeTokenEndpoint().request)
    assert caught.value.code == "subject_token_source_failed"
    assert "eyJ" not in str(caught.value)
