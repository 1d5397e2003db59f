"""OAuth 2.0 client credentials: the connected app logs in as its configured Run As user."""

from __future__ import annotations

from typing import Literal

from forcebeam.auth.config_types import AuthConfig, SecretRef
from forcebeam.auth.credentials import Credentials, TokenRequest
from forcebeam.auth.oauth import TokenResponse, request_token


class ClientCredentialsConfig(AuthConfig):
    type: Literal["client_credentials"]
    consumer_key: str
    consumer_secret: SecretRef

    secret_fields = ("consumer_secret",)


class ClientCredentials(Credentials):
    type = "client_credentials"
    config_model = ClientCredentialsConfig

    def _fetch(self, request: TokenRequest) -> TokenResponse:
        config: ClientCredentialsConfig = self.config  # type: ignore[assignment]
        # HTTP Basic client authentication keeps the secret out of the form body.
        secret = self.secret("consumer_secret").text()
        return request_token(request, self.login_endpoint, {"grant_type": "client_credentials"},
                             grant="client credentials", basic_auth=(config.consumer_key, secret))
