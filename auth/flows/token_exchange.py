"""OAuth 2.0 token exchange (RFC 8693, Salesforce API 60.0+): keyless on Google Cloud.

The worker asks its identity provider for a token (by default a Google-signed ID token for
its own service account, with the connection's ``audience``) and exchanges it at the org's
token endpoint. The org's token exchange handler (Apex) validates the token and maps its
subject to a Salesforce user. Nothing to store, rotate or leak: no private key, password or
client secret (unless the External Client App requires a secret for this flow).

Like every flow, a new exchange happens only when Salesforce rejects the session, and the
per-process client cache makes that one exchange per worker process.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from pydantic import field_validator

from forcebeam.auth import subject_tokens
from forcebeam.auth.config_types import AuthConfig, SecretRef
from forcebeam.auth.credentials import Credentials, TokenRequest
from forcebeam.auth.oauth import TokenResponse, request_token

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
TOKEN_TYPES = {"id_token": "urn:ietf:params:oauth:token-type:id_token",
               "jwt": "urn:ietf:params:oauth:token-type:jwt"}


class TokenExchangeConfig(AuthConfig):
    type: Literal["token_exchange"]
    consumer_key: str
    audience: str
    subject_token: str = subject_tokens.GOOGLE_ID_TOKEN
    subject_token_type: Literal["id_token", "jwt"] = "id_token"  # noqa: S105
    consumer_secret: SecretRef | None = None  # only if the app requires a secret for this flow
    token_handler: str | None = None  # the handler's API name; the org's default otherwise

    secret_fields = ("consumer_secret",)

    @field_validator("audience")
    @classmethod
    def _audience(cls, value: str) -> str:
        if not value:
            raise ValueError("must name the audience the org's token exchange handler accepts "
                             "(e.g. your My Domain URL)")
        return value

    @field_validator("subject_token")
    @classmethod
    def _source(cls, value: str) -> str:
        if subject_tokens.is_reference(value) or value in subject_tokens.known_sources():
            return value
        # Never echo the value: it may be a pasted token.
        raise ValueError(f"must be {subject_tokens.GOOGLE_ID_TOKEN} (default), where a token "
                         "lives such as env://VARIABLE or file:///path (never the token), or "
                         f"a {subject_tokens.ENTRY_POINT_GROUP} plugin name "
                         f"({', '.join(subject_tokens.known_sources())})")


class TokenExchangeCredentials(Credentials):
    type = "token_exchange"
    config_model = TokenExchangeConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._source: Any = None
        self._source_lock = threading.Lock()

    def _subject_source(self) -> Any:
        config: TokenExchangeConfig = self.config  # type: ignore[assignment]
        with self._source_lock:
            if self._source is None:
                self._source = subject_tokens.source_for(config.subject_token, config.audience)
            return self._source

    def _fetch(self, request: TokenRequest) -> TokenResponse:
        config: TokenExchangeConfig = self.config  # type: ignore[assignment]
        subject = subject_tokens.fetch(self._subject_source())
        form = {"grant_type": GRANT_TYPE, "subject_token": subject.text(),
                "subject_token_type": TOKEN_TYPES[config.subject_token_type],
                "client_id": config.consumer_key}
        if config.token_handler:
            form["token_handler"] = config.token_handler
        if config.consumer_secret:
            form["client_secret"] = self.secret("consumer_secret").text()
        return request_token(request, self.login_endpoint, form, grant="token exchange")
