"""OAuth 2.0 JWT bearer: a connected app trusts our certificate; we sign a short assertion."""

from __future__ import annotations

import time
from typing import Literal
from urllib.parse import urlsplit

import jwt

from forcebeam.auth.config_types import AuthConfig, SecretRef
from forcebeam.auth.credentials import Credentials, TokenRequest
from forcebeam.auth.errors import AuthError
from forcebeam.auth.oauth import TokenResponse, request_token
from forcebeam.auth.secrets.pem import load_private_key

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 180  # Salesforce: "expiration time of the assertion within 3 min"


class JwtBearerConfig(AuthConfig):
    type: Literal["jwt_bearer"]
    username: str
    consumer_key: str
    private_key: SecretRef
    audience: str | None = None

    secret_fields = ("private_key",)


def default_audience(login_url: str) -> str:
    """``aud`` from the login URL: My Domain hosts sign for login/test.salesforce.com.

    Salesforce accepts login.salesforce.com (production), test.salesforce.com (sandboxes) or
    an Experience Cloud site URL as the audience; the token *endpoint* may still be My Domain.
    """
    host = urlsplit(login_url).hostname or ""
    if host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    if host.endswith(".my.salesforce.com"):
        return "https://login.salesforce.com"
    return login_url


class JwtBearerCredentials(Credentials):
    type = "jwt_bearer"
    config_model = JwtBearerConfig

    def assertion(self) -> str:
        config: JwtBearerConfig = self.config  # type: ignore[assignment]
        try:
            key = load_private_key(self.secret("private_key").reveal())
        except ValueError as error:
            raise AuthError(f"auth.private_key ({config.private_key}) is unusable: {error}",
                            code="bad_private_key",
                            fix="store the PEM private key made by `forcebeam keygen` (whose "
                                "certificate is uploaded to the connected app)") from None
        claims = {"iss": config.consumer_key, "sub": config.username,
                  "aud": config.audience or default_audience(self.connection.login_url),
                  "exp": int(time.time()) + ASSERTION_LIFETIME_SECONDS}
        return jwt.encode(claims, key, algorithm="RS256")  # type: ignore[arg-type]

    def _fetch(self, request: TokenRequest) -> TokenResponse:
        return request_token(request, self.login_endpoint,
                             {"grant_type": GRANT_TYPE, "assertion": self.assertion()},
                             grant="JWT bearer")
