"""Shared wire helpers: session checks, formats and the data API middleware, in one place.

Every wire module authenticates and formats dates through these functions, and answers
errors with the classes of `emulator.wire.errors`, so that clients see one consistent org
(simple-salesforce indexes `json()[0]['errorCode']` on a 401; tap-salesforce anchors its
regex on `Sforce-Limit-Info`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from aiohttp import web

from forcebeam.emulator.tls import certificate_fingerprint
from forcebeam.emulator.wire.errors import (
    JSON_TYPE,
    ApiDisabledError,
    BulkInvalidSessionIdError,
    GoneError,
    InvalidAuthHeaderError,
    InvalidSessionIdError,
    InvalidVersionError,
    MethodNotAllowedError,
    MutualAuthenticationFailedError,
    NotFoundError,
    RequestLimitExceededError,
    SalesforceError,
    SalesforceHTTPError,
    dumps,
)

if TYPE_CHECKING:
    from forcebeam.emulator.state import EmulatorState
    from forcebeam.emulator.state.identity import Session

MIN_API_VERSION = 31
MAX_API_VERSION = 66
DATA_PREFIX = "/services/data/v{version:\\d+\\.\\d+}"
_DATA_VERSION = re.compile(r"^/services/data/v(\d+)\.(\d+)(/|$)")

def sf_error(status: int, code: str, message: str,
             fields: list[str] | None = None) -> web.Response:
    """A REST error response `[{"message","errorCode","fields"?}]` for a code known only at
    run time (known errors are classes in `emulator.wire.errors`)."""
    return SalesforceError(message, fields, status=status, code=code).response()


def sf_json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response. `Sforce-Limit-Info` is added by `data_api_middleware` on the way out."""
    return web.Response(status=status, text=dumps(data), content_type=JSON_TYPE,
                        headers=headers)


def sf_datetime(value: datetime) -> str:
    """REST JSON dateTime: `2026-01-15T09:30:00.000+0000` (UTC, milliseconds, no colon)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def sf_date(value: date) -> str:
    return value.strftime("%Y-%m-%d")


def api_version_from(request: web.Request) -> str:
    """The `vXX.X` of a /services/data route as "62.0"; 404 NOT_FOUND outside 31.0..66.0."""
    version = request.match_info.get("version", "")
    try:
        major = int(float(version))
    except ValueError:
        raise NotFoundError() from None
    if not MIN_API_VERSION <= major <= MAX_API_VERSION:
        raise NotFoundError()
    return version


def data_path(suffix: str = "") -> str:
    """Route pattern under the versioned REST root: `data_path("query")` ->
    `/services/data/v{version}/query` (read it back with `api_version_from`)."""
    suffix = suffix.lstrip("/")
    return f"{DATA_PREFIX}/{suffix}" if suffix else DATA_PREFIX


def state_of(request: web.Request) -> EmulatorState:
    return request.app["state"]


# ----- listeners and client certificates ----------------------------------------------------
def listener_port(request: web.Request) -> int:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sockname[1]) if sockname else 0


def listener_url(request: web.Request) -> str:
    """`https://127.0.0.1:PORT` of the listener that received the request."""
    return f"https://{state_of(request).urls.host}:{listener_port(request)}"


def on_mutual_tls_listener(request: web.Request) -> bool:
    return listener_port(request) == state_of(request).urls.mtls_port


def peer_certificate_der(request: web.Request) -> bytes | None:
    """The verified client certificate (DER) presented on this connection, if any."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True)


def mutual_tls_satisfied(request: web.Request) -> bool:
    """True when the request came over the mTLS listener with a certificate the org trusts
    (chain verified at the handshake, certificate uploaded as a mutual auth certificate)."""
    if not on_mutual_tls_listener(request):
        return False
    der = peer_certificate_der(request)
    if not der:
        return False
    trusted = state_of(request).identity.mutual_auth_fingerprints
    return certificate_fingerprint(der) in trusted


# ----- sessions ------------------------------------------------------------------------------
def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return None


#: Bulk API 1.0 carries the session id in this header instead of `Authorization`.
BULK_V1_SESSION_HEADER = "X-SFDC-Session"


def session_token(request: web.Request, api: str) -> str | None:
    """The session id of an API request: `X-SFDC-Session` for Bulk API 1.0 (`api="bulk_v1"`),
    `Authorization: Bearer|OAuth` for every other API."""
    if api == "bulk_v1":
        return request.headers.get(BULK_V1_SESSION_HEADER, "").strip() or None
    return bearer_token(request)


def _invalid_session(api: str) -> SalesforceError:
    if api in ("bulk", "bulk_v1"):
        return BulkInvalidSessionIdError()
    return InvalidSessionIdError()


def _default_kind(api: str) -> str:
    return "bulk_query" if api == "bulk" else "rest_other"


def require_session(request: web.Request, *, api: str, kind: str | None = None) -> Session:
    """Authenticate an API request and count it; raise the org's error when it may not run.

    `api` is "rest", "bulk" or "bulk_v1" (they report expiry differently: REST 401
    INVALID_SESSION_ID, Bulk 400 InvalidSessionIdError; Bulk 1.0 reads `X-SFDC-Session` and its
    wire module re-renders these errors in its own shape). `kind` is the counters' API call
    kind (default rest_other / bulk_query). Checks, in order: session header, session known
    and not expired, the fault injector's forced expiry (`state.faults.session_expired`),
    mutual TLS for users with the enforce permission, then the daily API limit (403).
    """
    state = state_of(request)
    token = session_token(request, api)
    if token is None:
        raise InvalidAuthHeaderError()
    session = state.identity.session(token)
    if session is None:
        raise _invalid_session(api)
    if session.expired or state.faults.session_expired(token):
        state.counters.session_expired()
        raise _invalid_session(api)
    user = state.identity.user(session.user_id)
    if user is None or not user.active:
        raise _invalid_session(api)
    if not user.api_enabled:
        raise ApiDisabledError()
    if user.enforce_mutual_tls and not mutual_tls_satisfied(request):
        raise MutualAuthenticationFailedError()
    if not state.org.consume_api_call():
        raise RequestLimitExceededError()
    state.counters.api_call(kind or _default_kind(api))
    return session


# ----- middleware ----------------------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def data_api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /services/data/vXX.X: reject unsupported versions, answer unknown resources with
    Salesforce's JSON 404, and stamp `Sforce-Limit-Info` on every response (errors too)."""
    match = _DATA_VERSION.match(request.path)
    if match is None:
        if request.path.startswith("/services/"):
            try:
                return await handler(request)
            except web.HTTPNotFound:
                raise NotFoundError() from None
        return await handler(request)
    limit_header = {"Sforce-Limit-Info": state_of(request).org.limit_info()}
    major = int(match.group(1))
    if major < state_of(request).org.oldest_api_version:
        raise retired_version_error(request.path, major, limit_header)
    if not MIN_API_VERSION <= major <= MAX_API_VERSION:
        raise NotFoundError(headers=limit_header)
    try:
        response = await handler(request)
    except SalesforceHTTPError as error:
        error.headers.setdefault("Sforce-Limit-Info", state_of(request).org.limit_info())
        raise
    except web.HTTPNotFound:
        raise NotFoundError(headers=limit_header) from None
    except web.HTTPMethodNotAllowed as error:
        allowed = ",".join(sorted(error.allowed_methods))
        raise MethodNotAllowedError(request.method, allowed,
                               headers={**limit_header, "Allow": allowed}) from None
    except web.HTTPException as error:
        error.headers.setdefault("Sforce-Limit-Info", state_of(request).org.limit_info())
        raise
    if not response.prepared:
        response.headers.setdefault("Sforce-Limit-Info", state_of(request).org.limit_info())
    return response


def retired_version_error(path: str, major: int,
                          headers: dict[str, str]) -> SalesforceError:
    """A retired API version as Salesforce answers it (help 000354473): REST 410 GONE, Bulk
    2.0 400 InvalidVersionError. The body text is ours; clients key on the status and code."""
    message = (f"API version {major}.0 has been retired and is no longer available; use a "
               "supported API version")
    if "/jobs/" in path or path.rstrip("/").endswith("/jobs"):
        return InvalidVersionError(message, headers=headers)
    return GoneError(message, headers=headers)


def limit_headers(request: web.Request) -> dict[str, str]:
    """`{"Sforce-Limit-Info": ...}` for handlers that stream (prepare) their own response."""
    return {"Sforce-Limit-Info": state_of(request).org.limit_info()}
