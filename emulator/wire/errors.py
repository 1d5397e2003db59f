"""Salesforce's server errors as classes: each knows its HTTP status, `errorCode` and
message, and renders its own JSON body (moto's per-service `exceptions`).

REST and Bulk API 2.0 answer errors as a JSON array of one object (wire reference §0). The
key order of that object is part of each body's bytes and differs between Salesforce's own
examples (REST writes `message` first; routing and Bulk 2.0 job errors write `errorCode`
first); clients parse JSON so the order carries no meaning, but the emulator keeps each body
byte for byte: a class states its order in `key_order`, and `SalesforceError.entry` is the
one place the JSON object is built. Bulk API 1.0 re-renders these errors in its own XML/JSON
shape (`emulator.wire.bulk_v1_formats.v1_error`), SOAP as a fault (`emulator.wire.soap`).

Raise an error from any handler or helper (aiohttp renders it; the data API middleware adds
`Sforce-Limit-Info`); a handler that answers without raising returns `error.response()`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from aiohttp import web

JSON_TYPE = "application/json"
MESSAGE_FIRST = ("message", "errorCode", "fields")
CODE_FIRST = ("errorCode", "message", "fields")


def dumps(data: Any) -> str:
    """Compact JSON, as Salesforce writes it."""
    return json.dumps(data, separators=(",", ":"))


class SalesforceHTTPError(web.HTTPException):
    """An HTTP error with a prepared Salesforce-shaped body (JSON value or text)."""

    def __init__(self, status: int, body: Any, *, content_type: str = JSON_TYPE,
                 headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        text = body if isinstance(body, str) else dumps(body)
        super().__init__(text=text, content_type=content_type, headers=headers)


class SalesforceError(SalesforceHTTPError):
    """One REST / Bulk 2.0 error: `[{"message","errorCode","fields"?}]` with its status.

    Subclasses fix the status, code and message of a known error; the base class takes
    them as arguments for errors that come from elsewhere (a SOQL or write error).
    """

    http_status: ClassVar[int] = 400
    error_code: ClassVar[str] = "UNKNOWN_EXCEPTION"
    default_message: ClassVar[str] = ""
    default_fields: ClassVar[list[str] | None] = None
    key_order: ClassVar[tuple[str, ...]] = MESSAGE_FIRST

    def __init__(self, message: str | None = None, fields: list[str] | None = None, *,
                 status: int | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.code = code or self.error_code
        self.message = self.default_message if message is None else message
        self.fields = self.default_fields if fields is None else fields
        super().__init__(status or self.http_status, [self.entry()], headers=headers)

    def entry(self) -> dict[str, Any]:
        """The error object, keys in this error's order (`fields` only when it has any)."""
        values = {"message": self.message, "errorCode": self.code, "fields": self.fields}
        return {key: values[key] for key in self.key_order
                if key != "fields" or self.fields is not None}

    def response(self) -> web.Response:
        """The same error as a response a handler returns instead of raising."""
        return web.Response(status=self.status_code, text=self.text, content_type=JSON_TYPE)


class CodeFirstError(SalesforceError):
    """Errors Salesforce documents with `errorCode` first: routing, Bulk 2.0 jobs."""

    key_order = CODE_FIRST


class BulkJobError(CodeFirstError):
    """A Bulk API 2.0 job-level error `[{"errorCode","message"}]` (code and status vary)."""


# ----- sessions and limits (wire reference §0) ------------------------------------------------
class InvalidSessionIdError(SalesforceError):
    http_status = 401
    error_code = "INVALID_SESSION_ID"
    default_message = "Session expired or invalid"


class BulkInvalidSessionIdError(CodeFirstError):
    """Bulk APIs answer an expired session with 400 and their own code."""

    http_status = 400
    error_code = "InvalidSessionId"
    default_message = "Session expired or invalid"


class InvalidAuthHeaderError(SalesforceError):
    http_status = 401
    error_code = "INVALID_AUTH_HEADER"
    default_message = "INVALID_HEADER_TYPE"


class RequestLimitExceededError(SalesforceError):
    http_status = 403
    error_code = "REQUEST_LIMIT_EXCEEDED"
    default_message = "TotalRequests Limit exceeded."


class ConcurrentRequestLimitExceededError(CodeFirstError):
    """Too many long-running requests (result downloads) at once."""

    http_status = 403
    error_code = "REQUEST_LIMIT_EXCEEDED"
    default_message = "ConcurrentPerOrgLongTxn Limit exceeded."


class ServerUnavailableError(SalesforceError):
    http_status = 503
    error_code = "SERVER_UNAVAILABLE"
    default_message = "Server temporarily unavailable, please retry."


class ApiDisabledError(CodeFirstError):
    http_status = 403
    error_code = "API_DISABLED_FOR_ORG"
    default_message = ("API is not enabled for this user: give the user's profile or a "
                       "permission set the API Enabled permission.")


class MutualAuthenticationFailedError(CodeFirstError):
    http_status = 403
    error_code = "MUTUAL_AUTHENTICATION_FAILED"
    default_message = (
        "This user has the Enforce SSL/TLS Mutual Authentication permission: call the "
        "org's mutual TLS port with a client certificate uploaded under Setup > "
        "Certificate and Key Management > Mutual Authentication Certificates.")


# ----- resources ------------------------------------------------------------------------------
class NotFoundError(CodeFirstError):
    """Unknown resource, API version or object (the §0 body)."""

    http_status = 404
    error_code = "NOT_FOUND"
    default_message = "The requested resource does not exist"


class RecordNotFoundError(SalesforceError):
    """A record id or external id value the org does not have (REST record resources)."""

    http_status = 404
    error_code = "NOT_FOUND"
    default_message = "The requested resource does not exist"


class EntityIsDeletedError(SalesforceError):
    http_status = 404
    error_code = "ENTITY_IS_DELETED"
    default_message = "entity is deleted"
    default_fields = []  # noqa: RUF012 - never mutated; Salesforce sends "fields": []


class MethodNotAllowedError(CodeFirstError):
    http_status = 405
    error_code = "METHOD_NOT_ALLOWED"

    def __init__(self, method: str, allowed: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP Method '{method}' not allowed. Allowed are {allowed}",
                         headers=headers)


class GoneError(CodeFirstError):
    """A retired API version on REST (help 000354473)."""

    http_status = 410
    error_code = "GONE"


class InvalidVersionError(CodeFirstError):
    """A retired API version on Bulk 2.0."""

    http_status = 400
    error_code = "InvalidVersion"


# ----- request bodies and queries -------------------------------------------------------------
class JsonParserError(SalesforceError):
    error_code = "JSON_PARSER_ERROR"


class MalformedQueryError(SalesforceError):
    error_code = "MALFORMED_QUERY"


class InvalidQueryLocatorError(SalesforceError):
    error_code = "INVALID_QUERY_LOCATOR"
    default_message = "invalid query locator"


class InvalidFieldError(SalesforceError):
    error_code = "INVALID_FIELD"


class NoSuchColumnError(CodeFirstError):
    """A `?fields=` name that is not a field name at all."""

    error_code = "INVALID_FIELD"

    def __init__(self, name: str) -> None:
        super().__init__(f"No such column '{name}'")


class MalformedIdError(SalesforceError):
    """An id of another object's key prefix (REST writes errorCode, fields, message)."""

    error_code = "MALFORMED_ID"
    default_fields = ["Id"]  # noqa: RUF012 - never mutated
    key_order = ("errorCode", "fields", "message")


class StoreRefusedError(CodeFirstError):
    """A write the record store refused as a whole (unknown object or external id field):
    404 for NOT_FOUND, 400 for every other code."""

    @classmethod
    def of(cls, code: str, message: str) -> StoreRefusedError:
        return cls(message, code=code, status=404 if code == "NOT_FOUND" else 400)
