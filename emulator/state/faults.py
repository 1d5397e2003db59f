"""Fault injection and network shaping for the emulated org, reproducible from a seed.

Why: the stages must survive what real orgs do to long extracts — sessions that expire in the
middle of paging, the daily request limit, 503s, connections cut without a response, row
lock contention — and benchmarks need a "realistic" network (latency, a per-connection
bandwidth cap). Every random decision comes from a `random.Random` seeded per fault kind, so
the same spec and the same sequence of requests give the same faults.

Spec (JSON object, `@file` holding one, or `k=v,k=v` on the command line;
`PUT /__emulator/faults` replaces it, `DELETE` clears it, `GET` shows it with the number of
faults injected so far):

| key | effect |
|---|---|
| `seed` | seeds every fault kind's random stream (default 0) |
| `expire_sessions_every_seconds` | every T s all sessions in use expire |
| `expire_sessions_every_calls` | every N-th API call expires all sessions in use (and fails) |
| `request_limit_after_calls` | API calls after the first N get 403 REQUEST_LIMIT_EXCEEDED |
| `http_503_rate` | probability of 503 SERVER_UNAVAILABLE instead of handling the request |
| `drop_connection_rate` | probability of closing the connection without any response |
| `latency_ms` | added before every response |
| `bandwidth_mbps` | each response body streamed at most at B megabits/s |
| `unable_to_lock_row_rate` | probability a written row fails with UNABLE_TO_LOCK_ROW |
| `daily_api_limit` | sets the org's daily API limit (Sforce-Limit-Info, /limits) |
| `bulk_job_delay_seconds` | sets the org's minimum Bulk job processing time |
| `bulk_queue_seconds` | a Bulk query job waits this long before InProgress (default 0) |
| `bulk_chunk_*` | server-side chunks of query jobs (`emulator.bulk.processing`) |
| `bulk_query_timeout_seconds` | a longer chunk fails its job: QUERY_TIMEOUT (120) |
| `max_concurrent_long_requests` | result downloads beyond: 403 REQUEST_LIMIT_EXCEEDED |

Where faults apply: everything under `/services/` on the org's listeners — REST, composite,
Bulk 2.0, Bulk 1.0 (`/services/async/`), `/services/oauth2/*` token calls and SOAP login get
latency, bandwidth, 503 and dropped connections; session expiry applies to authenticated API
calls (`/services/data/vXX.X/`, and Bulk 1.0's `X-SFDC-Session` sessions), the request limit
to `/services/data/vXX.X/` only (a token call has no session). Never to the admin API
(`/__emulator/`) or the Secret Manager endpoint (a separate listener without this middleware).

This module is the fault *model*: the spec, its parsing and the seeded decisions. It knows
nothing of HTTP; `emulator.wire.faults` is the aiohttp middleware that asks it what to do
per request and renders the errors (bodies: wire reference §0), and `require_session` asks it
whether a session expires.

Session expiry is decided here, on the access token as the request carries it: a token is
"issued" (for this purpose) when first seen, and an expiry event invalidates every token seen
before it, permanently — a client must log in again, exactly as after a real expiry.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from forcebeam.emulator.bulk.processing import QueryProcessing
from forcebeam.emulator.records.validation import WriteError
from forcebeam.emulator.state.org import OrgSettings

LOCK_ROW_CODE = "UNABLE_TO_LOCK_ROW"
LOCK_ROW_MESSAGE = "unable to obtain exclusive access to this record or 1 records"


class FaultSpecError(ValueError):
    """A fault spec that cannot be used; the message names the key and the fix."""


class FaultSpec(BaseModel):
    """The validated fault and shaping settings (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    expire_sessions_every_seconds: float | None = Field(default=None, gt=0)
    expire_sessions_every_calls: int | None = Field(default=None, gt=0)
    request_limit_after_calls: int | None = Field(default=None, ge=0)
    http_503_rate: float = Field(default=0.0, ge=0, le=1)
    drop_connection_rate: float = Field(default=0.0, ge=0, le=1)
    latency_ms: float = Field(default=0.0, ge=0)
    bandwidth_mbps: float | None = Field(default=None, gt=0)
    unable_to_lock_row_rate: float = Field(default=0.0, ge=0, le=1)
    daily_api_limit: int | None = Field(default=None, ge=0)
    bulk_job_delay_seconds: float | None = Field(default=None, ge=0)
    bulk_queue_seconds: float = Field(default=0.0, ge=0)
    bulk_chunk_rows: int = Field(default=250_000, gt=0)
    bulk_chunks_per_job: int = Field(default=4, gt=0)
    bulk_chunk_workers: int = Field(default=16, gt=0)
    bulk_chunk_rows_per_second: float | None = Field(default=None, gt=0)
    bulk_query_timeout_seconds: float = Field(default=120.0, gt=0)
    max_concurrent_long_requests: int | None = Field(default=None, gt=0)

    def query_processing(self) -> QueryProcessing:
        """The Bulk query processing model these settings describe."""
        return QueryProcessing(
            queue_seconds=self.bulk_queue_seconds, chunk_rows=self.bulk_chunk_rows,
            chunks_per_job=self.bulk_chunks_per_job, chunk_workers=self.bulk_chunk_workers,
            chunk_rows_per_second=self.bulk_chunk_rows_per_second,
            query_timeout_seconds=self.bulk_query_timeout_seconds)

    @classmethod
    def parse(cls, value: str | dict[str, Any] | None) -> FaultSpec:
        """From a dict, a JSON object text or `k=v,k=v` text; errors name the bad key."""
        if value is None or value == "":
            return cls()
        if isinstance(value, str):
            value = _parse_text(value)
        try:
            return cls.model_validate(value)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in item['loc']) or 'spec'}: {item['msg']}"
                for item in error.errors())
            raise FaultSpecError(
                f"invalid fault spec ({problems}). Known keys: {', '.join(cls.model_fields)}"
            ) from None

    def active(self) -> dict[str, Any]:
        """Only the keys that differ from the defaults (what a user set)."""
        return self.model_dump(exclude_defaults=True)


def _parse_text(text: str) -> dict[str, Any]:
    text = text.strip()
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise FaultSpecError(f"cannot read fault spec file {text[1:]!r}: "
                                 f"{error.strerror}") from None
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            raise FaultSpecError(f"fault spec is not valid JSON: {error}") from None
        if not isinstance(parsed, dict):
            raise FaultSpecError("fault spec JSON must be an object of key: value")
        return parsed
    spec: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = item.partition("=")
        if not sep:
            raise FaultSpecError(f"fault spec item {item!r} is not key=value "
                                 "(example: --faults seed=1,http_503_rate=0.05)")
        spec[key.strip()] = raw.strip()
    return spec


class FaultInjector:
    """Decides, per request, which fault (if any) to inject; holds the seeded streams.

    One instance per emulator (`state.faults`), bound to the org whose settings
    (`daily_api_limit`, `bulk_job_delay_seconds`) the spec may override. Thread-safe: the
    write hook runs on the store's executor threads while the middleware runs on the event
    loop.
    """

    def __init__(self, spec: FaultSpec | None = None, org: OrgSettings | None = None) -> None:
        self._lock = threading.Lock()
        self._org = org
        self._saved_org_values: dict[str, Any] = {}
        self.configure(spec or FaultSpec())

    @classmethod
    def from_cli(cls, faults: str | None = None, latency_ms: float | None = None,
                 bandwidth_mbps: float | None = None, bulk_job_delay: float | None = None,
                 org: OrgSettings | None = None) -> FaultInjector:
        """Build from the CLI flags; the shaping flags override the same keys of `--faults`."""
        spec = FaultSpec.parse(faults).model_dump()
        for key, value in (("latency_ms", latency_ms), ("bandwidth_mbps", bandwidth_mbps),
                           ("bulk_job_delay_seconds", bulk_job_delay)):
            if value is not None:
                spec[key] = value
        return cls(FaultSpec.parse(spec), org=org)

    # -- configuration -----------------------------------------------------------------

    def configure(self, spec: FaultSpec | dict[str, Any] | str | None) -> FaultSpec:
        """Replace the spec; restarts every random stream and counter from the seed."""
        if not isinstance(spec, FaultSpec):
            spec = FaultSpec.parse(spec)
        with self._lock:
            self.spec = spec
            self._streams = {kind: random.Random(f"{spec.seed}/{kind}")
                             for kind in ("http_503", "drop_connection", "lock_row")}
            self._started = time.monotonic()
            self._api_calls = 0
            self._limited_calls = 0
            self._token_epoch: dict[str, int] = {}
            self._expired_tokens: set[str] = set()
            self._time_epoch = 0
            self._call_epoch = 0
            self.injected: Counter[str] = Counter()
        self._apply_org_settings()
        return spec

    def clear(self) -> FaultSpec:
        return self.configure(FaultSpec())

    def _apply_org_settings(self) -> None:
        """Push org-level keys into the org; a key the spec no longer sets gets the org's
        own value back (so clearing faults restores the daily limit)."""
        if self._org is None:
            return
        for key in ("daily_api_limit", "bulk_job_delay_seconds"):
            value = getattr(self.spec, key)
            if value is not None:
                self._saved_org_values.setdefault(key, getattr(self._org, key))
                setattr(self._org, key, value)
            elif key in self._saved_org_values:
                setattr(self._org, key, self._saved_org_values.pop(key))

    def describe(self) -> dict[str, Any]:
        """What `GET /__emulator/faults` returns: the spec plus faults injected so far."""
        with self._lock:
            return {**self.spec.model_dump(), "injected": dict(self.injected)}

    # -- decisions ---------------------------------------------------------------------

    def _roll(self, kind: str, rate: float) -> bool:
        """Draw from the kind's own stream (always draws, so sequences stay aligned)."""
        if rate <= 0:
            return False
        with self._lock:
            hit = self._streams[kind].random() < rate
            if hit:
                self.injected[kind] += 1
        return hit

    def should_drop_connection(self) -> bool:
        return self._roll("drop_connection", self.spec.drop_connection_rate)

    def should_fail_503(self) -> bool:
        return self._roll("http_503", self.spec.http_503_rate)

    def session_expired(self, token: str) -> bool:
        """Count one API call made with `token`; True if its session is (now) expired.

        Expiry events are numbered (an "epoch"): one every T seconds plus one at every N-th
        call. A token belongs to the epoch in which it was first seen and is expired for good
        once a later epoch starts. The N-th call itself is always refused, so N >= 2 lets a
        client's re-login and retry through.
        """
        spec = self.spec
        with self._lock:
            self._api_calls += 1
            if not (spec.expire_sessions_every_seconds or spec.expire_sessions_every_calls):
                return False
            if token in self._expired_tokens:
                return True
            if spec.expire_sessions_every_seconds:
                elapsed = time.monotonic() - self._started
                self._time_epoch = int(elapsed // spec.expire_sessions_every_seconds)
            calls = spec.expire_sessions_every_calls
            if calls and self._api_calls % calls == 0:
                self._call_epoch += 1
                self._token_epoch.setdefault(token, -1)
            epoch = self._time_epoch + self._call_epoch
            if self._token_epoch.setdefault(token, epoch) < epoch:
                self._expired_tokens.add(token)
                del self._token_epoch[token]
                self.injected["session_expired"] += 1
                return True
            return False

    def request_limit_exceeded(self) -> bool:
        """True once more than `request_limit_after_calls` API calls were made."""
        limit = self.spec.request_limit_after_calls
        if limit is None:
            return False
        with self._lock:
            self._limited_calls += 1
            exceeded = self._limited_calls > limit
            if exceeded:
                self.injected["request_limit"] += 1
        return exceeded

    def lock_failure_hook(self) -> Callable[[int], WriteError | None] | None:
        """A `fail_row` callable for `RecordStore.write` (None when the rate is 0).

        Returns a WriteError(UNABLE_TO_LOCK_ROW) for the rows the seeded stream picks.
        """
        if self.spec.unable_to_lock_row_rate <= 0:
            return None

        def fail_row(_index: int) -> WriteError | None:
            if self._roll("lock_row", self.spec.unable_to_lock_row_rate):
                return WriteError(LOCK_ROW_CODE, LOCK_ROW_MESSAGE, [])
            return None

        return fail_row
