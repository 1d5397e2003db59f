"""The one place a Salesforce error answer becomes an error of a kind: fatal or retriable.

Model: Singer SDK's ``RESTStream.validate_response``, where a response becomes either a fatal
or a retriable error and nothing else decides. Salesforce says what went wrong in three
shapes, all read here:

* REST and sObject Collections: a JSON list ``[{"errorCode", "message", "fields"}]``, and per
  record ``{"statusCode", "message", "fields"}`` inside a 200 answer;
* Bulk API 2.0: the same JSON list for job calls; ``sf__Error`` cells (``CODE:message``) in
  result files; a job's ``errorMessage`` when it ends Failed;
* OAuth token endpoint ``{"error", "error_description"}`` and SOAP faults
  (``exceptionCode``), both read by the login flows, which ask :func:`kind_of_answer`.

Session expiry (401 INVALID_SESSION_ID, Bulk 400 InvalidSessionId) is neither kind: the API
session renews the token and resends (``auth.client``), so it never reaches this module.
"""

from __future__ import annotations

from collections.abc import Iterable

import requests

from forcebeam.auth.errors import (
    ApiQuotaExceeded,
    ApiVersionRetired,
    ErrorKind,
    RetriableApiError,
    SalesforceApiError,
)

#: The gateway answered before the org did any work, so even a POST may be sent again: the
#: HTTP level resends these at once (``auth.transport``, with the retry policy's back-off).
RESEND_STATUSES = frozenset({502, 503, 504})
#: Statuses that may pass by themselves: the above, and "too many requests".
TRANSIENT_STATUSES = RESEND_STATUSES | {429}
#: Error codes that may pass by themselves (REST, composite per-record, Bulk, SOAP, OAuth).
TRANSIENT_CODES = frozenset({
    "UNABLE_TO_LOCK_ROW",            # another transaction holds the row: per-record retry
    "API_TEMPORARILY_UNAVAILABLE",   # the org sheds load: per-record retry
    "SERVER_UNAVAILABLE",            # SOAP login fault / REST: the instance is unavailable
    "server_error", "temporarily_unavailable",   # OAuth 2.0 (RFC 6749 5.2)
})
#: The daily API request limit (the org's, or the connection's ``max_api_usage`` share):
#: transient, but its 24 h window outlasts any in-run back-off, so a run stops cleanly and a
#: rerun resumes.
QUOTA_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "MAX_API_USAGE_REACHED"})
#: The query itself is wrong (every API refuses it alike): never a reason to leave Bulk 2.0.
QUERY_MISTAKES = frozenset({"INVALID_FIELD", "INVALID_TYPE", "MALFORMED_QUERY"})
#: A Bulk query job ended Failed because the org's query ran too long: retrying the same job
#: fails again, so the read replans it into smaller Id-range jobs (``stages.salesforce.read``).
QUERY_TIMEOUT = "QUERY_TIMEOUT"
#: Session expiry as the Bulk API says it; renewed by the session, never a Bulk refusal.
_SESSION_CODES = frozenset({"INVALID_SESSION_ID", "InvalidSessionId"})


def kind_of_answer(status: int | None, code: str = "") -> ErrorKind:
    """TRANSIENT or FATAL for one error answer: Salesforce's code first, then the status.

    A known code decides; a status of 429/502/503/504 is transient whatever the body says;
    a 5xx without a code of Salesforce's (an HTML error page) is transient; every other
    answer (a SOAP fault, which comes with HTTP 500, included) is the org's final word.
    """
    if code in TRANSIENT_CODES or code in QUOTA_CODES:
        return ErrorKind.TRANSIENT
    if status in TRANSIENT_STATUSES:
        return ErrorKind.TRANSIENT
    uncoded = not code or code.lower() == f"http_{status}"
    if uncoded and status is not None and status >= 500:
        return ErrorKind.TRANSIENT
    return ErrorKind.FATAL


def parse_error(response: requests.Response) -> tuple[str, str, list[str]]:
    """(errorCode, message, fields) from Salesforce's JSON array (or dict) error body."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP_{response.status_code}", response.text[:500], []
    item = body[0] if isinstance(body, list) and body else body
    if isinstance(item, dict):
        code = item.get("errorCode") or item.get("error") or f"HTTP_{response.status_code}"
        message = item.get("message") or item.get("error_description") or ""
        return str(code), str(message), [str(f) for f in item.get("fields") or []]
    return f"HTTP_{response.status_code}", str(body)[:500], []


def version_retired(response: requests.Response) -> bool:
    """REST 410 GONE under /services/data/vXX.X, or Bulk 2.0's 400 InvalidVersion."""
    if "/services/data/v" not in (response.url or ""):
        return False
    if response.status_code == 410:
        return True
    return response.status_code == 400 and b"InvalidVersion" in response.content


def classify(response: requests.Response, api_version: str = "") -> SalesforceApiError:
    """The error to raise for an error answer (status >= 400) of the org's API.

    :class:`ApiVersionRetired` (fix the connection), :class:`ApiQuotaExceeded` (stop, resume
    later), :class:`RetriableApiError` (may pass) or :class:`SalesforceApiError` (final).
    """
    stop = stops_every_call(response, api_version)
    if stop is not None:
        return stop
    code, message, fields = parse_error(response)
    if code in QUOTA_CODES:
        return ApiQuotaExceeded(response.status_code, code, message, fields)
    if kind_of_answer(response.status_code, code) is ErrorKind.TRANSIENT:
        return RetriableApiError(response.status_code, code, message, fields)
    return SalesforceApiError(response.status_code, code, message, fields)


def stops_every_call(response: requests.Response, api_version: str = ""
                     ) -> SalesforceApiError | None:
    """The error that must stop *any* caller, simple-salesforce's own calls included (which
    would report it as a generic refusal): a retired API version, or the org's daily request
    limit (403 REQUEST_LIMIT_EXCEEDED). None for every other answer."""
    if version_retired(response):
        code, _, _ = parse_error(response)
        return ApiVersionRetired.for_version(response.status_code, code, api_version)
    if response.status_code == 403 and b"REQUEST_LIMIT_EXCEEDED" in response.content:
        code, message, fields = parse_error(response)
        return ApiQuotaExceeded(403, code, message or "daily API request limit exceeded",
                                fields)
    return None


def retriable_code(code: str) -> bool:
    """An error code worth sending the same request (or record) again after a back-off.

    The quota codes are transient too, but their 24 h window outlasts any back-off.
    """
    return code in TRANSIENT_CODES


def record_may_pass(codes: Iterable[str]) -> bool:
    """A record the org rejected only for reasons that may pass: worth sending again."""
    codes = list(codes)
    return bool(codes) and all(retriable_code(code) for code in codes)


def bulk_refuses_query(error: SalesforceApiError) -> bool:
    """Bulk 2.0 refused the query's shape (compound fields, an unsupported object or
    clause), so REST may serve it: a final 400/403 that is neither the query's own mistake
    nor an expired session."""
    return (error.status in (400, 403) and error.kind is ErrorKind.FATAL
            and error.error_code not in QUERY_MISTAKES | _SESSION_CODES)


def job_timed_out(failure: BaseException) -> bool:
    """A Bulk job ended Failed with QUERY_TIMEOUT (said in its ``errorMessage``)."""
    return QUERY_TIMEOUT in str(failure)
