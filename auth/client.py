"""SalesforceClient: an authenticated simple-salesforce client whose session renews itself.

The trick that covers every simple-salesforce call (REST, Bulk 2.0 job calls and result-page
downloads, which simple-salesforce itself never refreshes) is an HTTP adapter on the
requests.Session it uses: on each request to the org it injects the *current* bearer token, and
when Salesforce answers REST 401 INVALID_SESSION_ID or Bulk 400 InvalidSessionId it renews the
token once (shared, locked, de-duplicated) and resends the same request. The same adapter keeps
API usage (Sforce-Limit-Info), enforces ``max_api_usage`` before sending, and counts calls.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from simple_salesforce import Salesforce

from forcebeam.auth import responses
from forcebeam.auth.errors import (
    ApiQuotaExceeded,
    OrgUnreachableError,
    SalesforceApiError,
)
from forcebeam.auth.transport import RETRY_ATTEMPTS, PinnedTLSAdapter, ThrottleClock

if TYPE_CHECKING:
    from forcebeam.auth.connection import Connection
    from forcebeam.auth.tokens import TokenManager

log = logging.getLogger(__name__)

_LIMIT_INFO = re.compile(r"(?:^|[^-])api-usage=(\d+)/(\d+)")
# simple-salesforce needs *a* session id; the real token is injected per request by the
# adapter, so no token value sits in the simple-salesforce object (or its headers dict).
PLACEHOLDER_SESSION_ID = "forcebeam-injects-the-token-per-request"


@dataclass
class ClientStats:
    """Counters a stage reports as Beam metrics."""

    api_calls: int = 0
    auth_refreshes: int = 0
    throttled_seconds: float = 0.0
    api_usage: tuple[int, int] | None = None   # (used, daily max) from Sforce-Limit-Info
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


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
    """Injects the live token, renews it once on expiry, guards the quota, counts calls."""

    def __init__(self, *, client: SalesforceClient, **kwargs: Any) -> None:
        self._client = client
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        client = self._client
        if origin_of(request.url or "") != client.api_origin:
            # Never hand the org's token to another host (e.g. an absolute URL elsewhere).
            request.headers.pop("Authorization", None)
            return super().send(request, **kwargs)
        client._reserve_api_call()
        token = client._tokens.current_token()
        request.headers["Authorization"] = "Bearer " + token
        response = super().send(request, **kwargs)
        client._observe(response)
        if session_expired(response):
            token = client._tokens.renew(token)  # even if we cannot resend: the next call works
            if not _replayable(request):
                return response
            response.close()
            client._reserve_api_call()
            request.headers["Authorization"] = "Bearer " + token
            _rewind(request)
            response = super().send(request, **kwargs)
            client._observe(response)
        stop = responses.stops_every_call(response, client.api_version)
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


def _unreachable(url: str, error: BaseException) -> OrgUnreachableError:
    """One clear error for a host that stayed silent through urllib3's bounded retries."""
    text = str(error)
    reason = next((words for needle, words in (
        ("Connection refused", "connection refused"), ("timed out", "timed out"),
        ("Name or service not known", "unknown host name"),
        ("nodename nor servname", "unknown host name"),
        ("Temporary failure in name resolution", "host name not resolved"),
        ("Connection reset", "connection reset"), ("Connection aborted", "connection aborted"),
        ("RemoteDisconnected", "closed the connection")) if needle in text),
        type(error).__name__)
    parts = urlsplit(url)
    return OrgUnreachableError(parts.netloc or url, reason, attempts=RETRY_ATTEMPTS + 1)


class SalesforceClient:
    """What stages use: ``sf`` (simple-salesforce), ``request()``, ``stats``.

    Build it with :func:`auth.get_client` (shared per process). Pickles as its Connection: the
    unpickled value is the receiving process's shared client for that connection.
    """

    def __init__(self, connection: Connection, tokens: TokenManager,
                 token_http: requests.Session,
                 api_http_factory: Callable[[SalesforceClient], requests.Session],
                 clock: ThrottleClock, cleanup: Callable[[], None] | None = None) -> None:
        self.connection = connection
        self._tokens = tokens
        self._token_http = token_http
        self._clock = clock
        self._cleanup = cleanup
        self._stats = ClientStats()
        self._closed = False
        tokens.current_token()  # log in now: configuration errors surface at setup()
        credentials = tokens.credentials
        self.instance_url = connection.api_endpoint(credentials.instance_url or
                                                    connection.login_url)
        self.api_origin = origin_of(self.instance_url)
        self.api_version = connection.api_version
        self.identity_url = credentials.identity_url
        self.http: requests.Session = api_http_factory(self)
        self.sf = Salesforce(instance_url=self.instance_url, session_id=PLACEHOLDER_SESSION_ID,
                             version=self.api_version, session=self.http)
        if connection.max_api_usage is not None:
            self._prime_api_usage()

    # ------------------------------------------------------------------ public API

    @property
    def stats(self) -> ClientStats:
        self._stats.auth_refreshes = self._tokens.logins
        self._stats.throttled_seconds = self._clock.seconds
        return self._stats

    @property
    def base_url(self) -> str:
        """``https://host[:port]/services/data/vXX.X/``"""
        return f"{self.instance_url}/services/data/v{self.api_version}/"

    def url_for(self, path: str) -> str:
        if path.startswith(("https://", "http://")):
            return path
        if path.startswith("/"):
            return self.instance_url + path
        return self.base_url + path

    def request(self, method: str, path: str, *, params: Any = None, json: Any = None,
                data: Any = None, headers: dict[str, str] | None = None, stream: bool = False,
                timeout: float | None = None) -> requests.Response:
        """One API call; an error answer raises what ``auth.responses.classify`` makes of it."""
        if self._closed:
            raise RuntimeError("this SalesforceClient was closed; call auth.get_client() again")
        url = self.url_for(path)
        try:
            response = self.http.request(method, url, params=params, json=json, data=data,
                                         headers=headers, stream=stream, timeout=timeout)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
            if isinstance(error, requests.exceptions.SSLError):
                raise
            raise _unreachable(url, error) from None
        if response.status_code >= 400:
            error = responses.classify(response, self.api_version)
            response.close()
            raise error
        return response

    def close(self) -> None:
        """Close connections and remove mTLS temp files; evicts it from the process cache."""
        if self._closed:
            return
        self._closed = True
        from forcebeam.auth.factory import _forget

        _forget(self)
        self.http.close()
        self._token_http.close()
        if self._cleanup is not None:
            self._cleanup()

    @property
    def closed(self) -> bool:
        return self._closed

    def __reduce__(self) -> tuple[Any, tuple[Connection]]:
        from forcebeam.auth.factory import get_client

        return (get_client, (self.connection,))

    def __repr__(self) -> str:
        return (f"SalesforceClient({self.instance_url}, auth={self.connection.auth.type}, "
                f"api_version={self.api_version})")

    def _prime_api_usage(self) -> None:
        """Learn the org's usage before the first real call, so the guard applies to it too."""
        try:
            self.request("GET", "limits").close()
        except SalesforceApiError as error:
            log.debug("could not read /limits (%s); the quota guard starts after the first "
                      "call", error.error_code)

    # ------------------------------------------------------------------ adapter hooks

    def _reserve_api_call(self) -> None:
        """Count a call about to be sent, refusing it if it would pass ``max_api_usage``."""
        stats = self._stats
        with stats._lock:
            if stats.api_usage is not None:
                used, daily_max = stats.api_usage
                ceiling = self.connection.api_usage_ceiling(daily_max)
                if ceiling is not None and used + 1 > ceiling:
                    raise ApiQuotaExceeded(
                        403, "MAX_API_USAGE_REACHED",
                        f"this connection may use {self.connection.max_api_usage} of the "
                        f"daily API limit ({ceiling} of {daily_max} calls) and {used} are used; "
                        "resume after the 24 h window rolls, or raise max_api_usage")
                stats.api_usage = (used + 1, daily_max)
            stats.api_calls += 1

    def _observe(self, response: requests.Response) -> None:
        info = response.headers.get("Sforce-Limit-Info")
        if info:
            match = _LIMIT_INFO.search(info)
            if match:
                with self._stats._lock:
                    self._stats.api_usage = (int(match.group(1)), int(match.group(2)))
