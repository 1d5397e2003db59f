"""Counts of API calls, logins and token requests, read by tests and benchmarks.

Benchmarks report "API calls per 100k rows" and "logins per run" from here, so every wire
module counts through these methods and nothing else.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

API_CALL_KINDS = ("rest_query", "rest_describe", "rest_sobject", "rest_other", "composite",
                  "bulk_query", "bulk_results", "bulk_ingest", "bulk_v1", "limits")
GRANTS = ("jwt_bearer", "client_credentials", "password", "refresh_token",
          "authorization_code", "token_exchange", "soap")


class Counters:
    """Thread-safe counters (handlers run on the loop, store work on executor threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._api_calls: Counter[str] = Counter()
            self._logins: Counter[str] = Counter()
            self._token_ok: Counter[str] = Counter()
            self._token_failed = 0
            self._sessions_expired = 0
            self._id_tokens_issued = 0
            self._bulk_jobs: Counter[str] = Counter()

    def bulk_job(self, kind: str) -> None:
        """A Bulk 2.0 job created (`query` or `ingest`): orgs cap query jobs per 24 h."""
        with self._lock:
            self._bulk_jobs[kind] += 1

    def api_call(self, kind: str) -> None:
        with self._lock:
            self._api_calls[kind] += 1

    def login(self, grant: str) -> None:
        """A successful login (token issued or SOAP session created) by grant."""
        with self._lock:
            self._logins[grant] += 1

    def token_request(self, grant: str, ok: bool) -> None:
        with self._lock:
            self._token_ok[grant] += 1
            if not ok:
                self._token_failed += 1

    def session_expired(self) -> None:
        """A request refused because its session had expired (natural or forced)."""
        with self._lock:
            self._sessions_expired += 1

    def id_token_issued(self) -> None:
        """The metadata endpoint signed an ID token (what a worker exchanges)."""
        with self._lock:
            self._id_tokens_issued += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "api_calls": {"total": sum(self._api_calls.values()), **self._api_calls},
                "logins": {"total": sum(self._logins.values()), **self._logins},
                "token_requests": {"total": sum(self._token_ok.values()),
                                   "failed": self._token_failed, **self._token_ok},
                "sessions_expired": self._sessions_expired,
                "id_tokens_issued": self._id_tokens_issued,
                "bulk_jobs": {"total": sum(self._bulk_jobs.values()), **self._bulk_jobs},
            }
