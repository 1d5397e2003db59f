"""Process-wide token state for one connection: login once, refresh once per rejection.

Many threads (DoFn instances) share one TokenManager. When several requests are rejected with
the same expired token at once, only the first refreshes; the rest see a newer token and just
resend. A permanent failure (AuthError) is remembered, so a broken connection never hammers
the token endpoint: the next caller gets the same error without a network call.
"""

from __future__ import annotations

import logging
import threading

from forcebeam.auth.credentials import Credentials
from forcebeam.auth.errors import AuthError

log = logging.getLogger(__name__)


class TokenManager:
    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._lock = threading.Lock()
        self._failure: AuthError | None = None
        self.logins = 0

    @property
    def failure(self) -> AuthError | None:
        return self._failure

    def current_token(self) -> str:
        """The bearer token to send now (logging in first if there is none)."""
        token = self.credentials.token
        if token is not None and self.credentials.valid and self._failure is None:
            return token.text()
        with self._lock:
            self._raise_remembered()
            if not self.credentials.valid:
                self._login()
            return self.credentials.token.text()  # type: ignore[union-attr]

    def renew(self, rejected_token: str) -> str:
        """Salesforce rejected ``rejected_token``: refresh unless another thread already did."""
        with self._lock:
            self._raise_remembered()
            token = self.credentials.token
            if token is None or token.text() == rejected_token:
                log.debug("session expired; logging in again (%s)", self.credentials.type)
                self._login()
            return self.credentials.token.text()  # type: ignore[union-attr]

    def _login(self) -> None:
        try:
            self.credentials.refresh()
        except AuthError as error:
            self._failure = error
            raise
        if self.credentials.can_refresh:  # a fixed access token is not a login
            self.logins += 1

    def _raise_remembered(self) -> None:
        if self._failure is not None:
            failure = self._failure
            raise AuthError(failure.message, code=failure.code, fix=failure.fix)
