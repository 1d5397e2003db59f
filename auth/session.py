"""The session side of the credential seam: it alone decides when to log in and resend.

Credentials (:mod:`auth.credentials`) know how to get and apply a token. :class:`SessionAuth`
decides *when*: on the first call, when the token's expiry passed, or when Salesforce rejected
the token a request carried (REST 401 INVALID_SESSION_ID, Bulk 400 InvalidSessionId). Many
threads (DoFn instances) share one SessionAuth; when several requests are rejected with the
same token at once only the first logs in again, the rest resend with the newer token.

A permanent failure (AuthError) is remembered for the connection, process-wide, until
:func:`forget_failures`: a broken connection never hammers the token endpoint, however many
worker threads or new clients ask again.

:class:`ApiAdapter` is where requests meet the session: it applies the token to every request
to the org, resends once after a rejected session, and counts calls through :class:`ApiUsage`.
The flow is one-way: credentials -> session -> client (:mod:`auth.client` builds on this).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from forcebeam.auth import responses
from forcebeam.auth.credentials import Credentials
from forcebeam.auth.errors import AuthError
from forcebeam.auth.transport import PinnedTLSAdapter

if TYPE_CHECKING:
    from forcebeam.auth.connection import Connection
    from forcebeam.auth.usage import ApiUsage

log = logging.getLogger(__name__)

_failures_lock = threading.Lock()
_failures: dict[Connection, AuthError] = {}


def forget_failures() -> None:
    """Forget remembered permanent failures (a person fixed the org or the connection)."""
    with _failures_lock:
        _failures.clear()


def _raise_remembered(connection: Connection) -> None:
    failure = _failures.get(connection)
    if failure is not None:
        raise AuthError(failure.message, code=failure.code, fix=failure.fix)


class SessionAuth:
    """One connection's login state in this process: when to log in, and how many times."""

    def __init__(self, credentials: Credentials, token_http: requests.Session) -> None:
        self.credentials = credentials
        self._token_http = token_http   # the verified (mTLS) transport to the token endpoint
        self._lock = threading.Lock()
        self.logins = 0                 # logins this session made (a fixed token is none)

    def current_token(self) -> str:
        """The bearer token to send now (logging in first if there is none or it expired)."""
        connection = self.credentials.connection
        token = self.credentials.token
        if token is not None and self.credentials.valid and connection not in _failures:
            return token.text()
        with self._lock:
            _raise_remembered(connection)
            if not self.credentials.valid:
                self._login()
            return self.credentials.token.text()  # type: ignore[union-attr]

    def renew(self, rejected_token: str) -> str:
        """Salesforce rejected ``rejected_token``: log in again unless another thread did."""
        with self._lock:
            _raise_remembered(self.credentials.connection)
            token = self.credentials.token
            if token is None or token.text() == rejected_token:
                log.debug("session expired; logging in again (%s)", self.credentials.type)
                self._login()
            return self.credentials.token.text()  # type: ignore[union-attr]

    def authorize(self, headers: Any, rejected_token: str | None = None) -> str:
        """Apply the token to send (a renewed one after ``rejected_token``); returns it."""
        token = self.renew(rejected_token) if rejected_token else self.current_token()
        self.credentials.apply(headers, token)
        return token

    def close(self) -> None:
        self._token_http.close()

    def _login(self) -> None:
        try:
            self.credentials.refresh(self._token_http.request)
        except AuthError as error:
            with _failures_lock:
                _failures[self.credentials.connection] = error
            raise
        if self.credentials.can_refresh:  # a fixed access token is not a login
            self.logins += 1

    def __repr__(self) -> str:
        return f"SessionAuth({self.credentials!r}, logins={self.logins})"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def session_expired(response: requests.Response) -> bool:
    """REST: 401 INVALID_SESSION_ID; Bulk 2.0: 400 InvalidSessionId (peers miss the latter);
    the OAuth userinfo endpoint (`forcebeam check`): 403 Bad_OAuth_Token."""
    if response.status_code == 401:
        return b"INVALID_SESSION_ID" in response.content or not response.content
    if response.status_code == 400:
        return b"InvalidSessionId" in response.content
    if response.status_code == 403:
        return response.content.strip() == b"Bad_OAuth_Token"
    return False


class ApiAdapter(PinnedTLSAdapter):
    """Applies the live token, resends once after a rejected session, guards the quota."""

    def __init__(self, *, auth: SessionAuth, usage: ApiUsage, api_origin: str,
                 api_version: str, **kwargs: Any) -> None:
        self._auth = auth
        self._usage = usage
        self._api_origin = api_origin
        self._api_version = api_version
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if origin_of(request.url or "") != self._api_origin:
            # Never hand the org's token to another host (e.g. an absolute URL elsewhere).
            request.headers.pop("Authorization", None)
            return super().send(request, **kwargs)
        self._usage.reserve()
        sent = self._auth.authorize(request.headers)
        response = super().send(request, **kwargs)
        self._usage.observe(response)
        if session_expired(response):
            if not _replayable(request):
                self._auth.renew(sent)  # even if we cannot resend: the next call works
                return response
            self._auth.authorize(request.headers, rejected_token=sent)
            response.close()
            self._usage.reserve()
            _rewind(request)
            response = super().send(request, **kwargs)
            self._usage.observe(response)
        stop = responses.stops_every_call(response, self._api_version)
        if stop is not None:
            response.close()
            raise stop
        return response


def _replayable(request: requests.PreparedRequest) -> bool:
    body = request.body
    return body is None or isinstance(body, (bytes, str)) or hasattr(body, "seek")


def _rewind(request: requests.PreparedRequest) -> None:
    if hasattr(request.body, "seek"):
        request.body.seek(0)  # type: ignore[union-attr]
