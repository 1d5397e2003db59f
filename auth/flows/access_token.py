"""An existing session (access token + instance URL): no login, and no way to renew it."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from forcebeam.auth.config_types import AuthConfig, SecretRef
from forcebeam.auth.credentials import Credentials, TokenRequest
from forcebeam.auth.errors import AuthError
from forcebeam.auth.oauth import TokenResponse


class AccessTokenConfig(AuthConfig):
    type: Literal["access_token"]
    access_token: SecretRef
    instance_url: str

    secret_fields = ("access_token",)

    @field_validator("instance_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be the https:// URL of the org (e.g. https://acme.my."
                             "salesforce.com)")
        return value.rstrip("/")


class AccessTokenCredentials(Credentials):
    type = "access_token"
    config_model = AccessTokenConfig
    can_refresh = False

    def _fetch(self, request: TokenRequest) -> TokenResponse:
        config: AccessTokenConfig = self.config  # type: ignore[assignment]
        if self.token is not None:   # the one token we have was rejected
            raise AuthError("the configured access token was rejected (expired or revoked)",
                            code="INVALID_SESSION_ID",
                            fix="store a fresh access token in the referenced secret, or use a "
                                "flow that can log in by itself (jwt_bearer, "
                                "client_credentials, refresh_token)")
        return TokenResponse(access_token=self.secret("access_token"),
                             instance_url=config.instance_url)
