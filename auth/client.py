"""SalesforceClient: an authenticated simple-salesforce client whose session renews itself.

The trick that covers every simple-salesforce call (REST, Bulk 2.0 job calls and result-page
downloads, which simple-salesforce itself never refreshes) is the session's HTTP adapter
(:class:`auth.session.ApiAdapter`) on the requests.Session it uses: it applies the *current*
token to each request to the org and, when Salesforce rejects the session, renews it once
(shared, locked, de-duplicated) and resends. The client only uses that session; the factory
(:mod:`auth.factory`) puts the parts together and shares one client per connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from simple_salesforce import Salesforce

from forcebeam.auth import responses
from forcebeam.auth.errors import OrgUnreachableError, SalesforceApiError
from forcebeam.auth.session import SessionAuth
from forcebeam.auth.transport import RETRY_ATTEMPTS, ThrottleClock
from forcebeam.auth.usage import ApiUsage

if TYPE_CHECKING:
    from forcebeam.auth.connection import Connection

log = logging.getLogger(__name__)
# simple-salesforce needs *a* session id; the real token is injected per request by the
# adapter, so no token value sits in the simple-salesforce object (or its headers dict).
PLACEHOLDER_SESSION_ID = "forcebeam-injects-the-token-per-request"


@dataclass(frozen=True)
class ClientStats:
    """Counters a stage reports as Beam metrics (a snapshot)."""

    api_calls: int = 0
    logins: int = 0
    throttled_seconds: float = 0.0
    api_usage: tuple[int, int] | None = None   # (used, daily max) from Sforce-Limit-Info


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

    def __init__(self, connection: Connection, auth: SessionAuth, http: requests.Session,
                 usage: ApiUsage, clock: ThrottleClock, instance_url: str,
                 cleanup: Callable[[], None] | None = None) -> None:
        self.connection = connection
        self.auth = auth              # the session's login state (logged in already)
        self.http = http              # requests.Session with the session's ApiAdapter
        self._usage = usage
        self._clock = clock
        self._cleanup = cleanup
        self._closed = False
        self.instance_url = instance_url
        self.api_version = connection.api_version
        self.identity_url = auth.credentials.identity_url
        self.sf = Salesforce(instance_url=self.instance_url, session_id=PLACEHOLDER_SESSION_ID,
                             version=self.api_version, session=self.http)
        if connection.max_api_usage is not None:
            self._prime_api_usage()

    # ------------------------------------------------------------------ public API

    @property
    def stats(self) -> ClientStats:
        return ClientStats(api_calls=self._usage.api_calls, logins=self.auth.logins,
                           throttled_seconds=self._clock.seconds,
                           api_usage=self._usage.org_usage)

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
        """Close connections and remove mTLS temp files (the factory then builds a new one)."""
        if self._closed:
            return
        self._closed = True
        self.http.close()
        self.auth.close()
        if self._cleanup is not None:
            self._cleanup()

    @property
    def closed(self) -> bool:
        return self._closed

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
