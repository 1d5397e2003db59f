"""OAuth 2.0 refresh token, with refresh-token rotation written back to the secret store.

With rotation on, every refresh returns a new refresh token and invalidates the old one: the
new one is kept in memory for this process and written back through the provider (a new
Secret Manager version, a rewritten file) so the next run starts from it.
"""

from __future__ import annotations

import logging
from typing import Literal

from forcebeam.auth import secrets
from forcebeam.auth.config_types import AuthConfig, SecretRef
from forcebeam.auth.credentials import Credentials, TokenRequest
from forcebeam.auth.errors import SecretError
from forcebeam.auth.oauth import TokenResponse, request_token
from forcebeam.auth.secrets import SecretValue

log = logging.getLogger(__name__)


class RefreshTokenConfig(AuthConfig):
    type: Literal["refresh_token"]
    consumer_key: str
    consumer_secret: SecretRef | None = None
    refresh_token: SecretRef

    secret_fields = ("consumer_secret", "refresh_token")


class RefreshTokenCredentials(Credentials):
    type = "refresh_token"
    config_model = RefreshTokenConfig

    _current_refresh_token: SecretValue | None = None

    def _fetch(self, request: TokenRequest) -> TokenResponse:
        config: RefreshTokenConfig = self.config  # type: ignore[assignment]
        refresh_token = self._current_refresh_token or self.secret("refresh_token")
        form = {"grant_type": "refresh_token", "client_id": config.consumer_key,
                "refresh_token": refresh_token.text()}
        if config.consumer_secret:
            form["client_secret"] = self.secret("consumer_secret").text()
        response = request_token(request, self.login_endpoint, form, grant="refresh token")
        rotated = response.refresh_token
        if rotated is not None and rotated != refresh_token:
            self._current_refresh_token = rotated
            self._store_rotated(config.refresh_token, rotated)
        return response

    @staticmethod
    def _store_rotated(reference: str, value: SecretValue) -> None:
        try:
            stored = secrets.write_back(reference, value.reveal())
        except SecretError as error:
            log.error("Salesforce rotated the refresh token but it could not be stored (%s); "
                      "this process keeps working, the next run will need `forcebeam "
                      "authorize`", error.message)
            return
        if stored:
            log.info("rotated refresh token stored through %s", reference)
        else:
            log.warning("Salesforce rotated the refresh token, but %s cannot be written; the "
                        "next run will fail unless the reference points to a writable store "
                        "(gcp-sm:// or file:)", reference)
