"""OAuth 2.0 username-password (legacy: blocked by default in new orgs, being retired)."""

from __future__ import annotations

from typing import Literal

from forcebeam.auth.config_types import AuthConfig, SecretRef
from forcebeam.auth.credentials import Credentials, TokenRequest
from forcebeam.auth.errors import AuthError
from forcebeam.auth.oauth import TokenResponse, request_token

ECA_FIX = ("if auth.consumer_key belongs to an External Client App, this flow can never work "
           "(ECAs do not offer it; the user's Login History says 'Username-Password Flow "
           "Disabled'): switch to jwt_bearer or client_credentials on that app")


class PasswordConfig(AuthConfig):
    type: Literal["password"]
    username: str
    password: SecretRef
    security_token: SecretRef | None = None   # not needed from trusted IP ranges
    consumer_key: str
    consumer_secret: SecretRef

    secret_fields = ("password", "security_token", "consumer_secret")


class PasswordCredentials(Credentials):
    type = "password"
    config_model = PasswordConfig
    legacy = True

    def _fetch(self, request: TokenRequest) -> TokenResponse:
        config: PasswordConfig = self.config  # type: ignore[assignment]
        token = self.secret("security_token").text() if config.security_token else ""
        try:
            return request_token(request, self.login_endpoint, {
                "grant_type": "password", "client_id": config.consumer_key,
                "client_secret": self.secret("consumer_secret").text(),
                "username": config.username, "password": self.secret("password").text() + token,
            }, grant="username-password")
        except AuthError as error:
            if error.code != "invalid_grant: authentication failure":
                raise
            # Salesforce answers an ECA exactly as a wrong password: say both.
            raise AuthError(error.message, code=error.code,
                            fix=f"{error.fix}; {ECA_FIX}") from None
