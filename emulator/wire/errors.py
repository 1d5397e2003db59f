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

    A subclass states a known error in its class line (`status=`, `code=`, `message=`,
    `fields=`, `order=`); the base class takes them as arguments for errors whose code comes
    from elsewhere (a SOQL or write error).
    """

    http_status: ClassVar[int] = 400
    error_code: ClassVar[str] = "UNKNOWN_EXCEPTION"
    default_message: ClassVar[str] = ""
    default_fields: ClassVar[tuple[str, ...] | None] = None
    key_order: ClassVar[tuple[str, ...]] = MESSAGE_FIRST

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None,
                          message: str | None = None, fields: tuple[str, ...] | None = None,
                          order: tuple[str, ...] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in (("http_status", status), ("error_code", code),
                            ("default_message", message), ("default_fields", fields),
                            ("key_order", order)):
            if value is not None:
                setattr(cls, name, value)

    def __init__(self, message: str | None = None, fields: list[str] | None = None, *,
                 status: int | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.code = code or self.error_code
        self.message = self.default_message if message is None else message
        defaults = self.default_fields
        self.fields = fields if fields is not None else (
            list(defaults) if defaults is not None else None)
        super().__init__(status or self.http_status, [self.entry()], headers=headers)

    def entry(self) -> dict[str, Any]:
        """The error object, keys in this error's order (`fields` only when it has any)."""
        values = {"message": self.message, "errorCode": self.code, "fields": self.fields}
        return {key: values[key] for key in self.key_order
                if key != "fields" or self.fields is not None}

    def response(self) -> web.Response:
        """The same error as a response a handler returns instead of raising."""
        return web.Response(status=self.status_code, text=self.text, content_type=JSON_TYPE)


class CodeFirstError(SalesforceError, order=CODE_FIRST):
    """Errors Salesforce documents with `errorCode` first: routing, Bulk 2.0 jobs."""


class BulkJobError(CodeFirstError):
    """A Bulk API 2.0 job-level error `[{"errorCode","message"}]` (code and status vary)."""


SESSION_EXPIRED = "Session expired or invalid"
NOT_FOUND_MESSAGE = "The requested resource does not exist"


# ----- sessions and limits (wire reference §0) ------------------------------------------------
class InvalidSessionIdError(SalesforceError, status=401, code="INVALID_SESSION_ID",
                            message=SESSION_EXPIRED):
    """REST's expired session (simple-salesforce re-logs in on exactly this body)."""


class BulkInvalidSessionIdError(CodeFirstError, status=400, code="InvalidSessionId",
                                message=SESSION_EXPIRED):
    """Bulk APIs answer an expired session with 400 and their own code."""


class InvalidAuthHeaderError(SalesforceError, status=401, code="INVALID_AUTH_HEADER",
                             message="INVALID_HEADER_TYPE"):
    """No `Authorization` (or `X-SFDC-Session`) header at all."""


class RequestLimitExceededError(SalesforceError, status=403, code="REQUEST_LIMIT_EXCEEDED",
                                message="TotalRequests Limit exceeded."):
    """The org's daily API request limit is used up."""


class ConcurrentRequestLimitExceededError(CodeFirstError, status=403,
                                          code="REQUEST_LIMIT_EXCEEDED",
                                          message="ConcurrentPerOrgLongTxn Limit exceeded."):
    """Too many long-running requests (result downloads) at once."""


class ServerUnavailableError(SalesforceError, status=503, code="SERVER_UNAVAILABLE",
                             message="Server temporarily unavailable, please retry."):
    """A transient 503 (the fault injector's `http_503_rate`)."""


class ApiDisabledError(
        CodeFirstError, status=403, code="API_DISABLED_FOR_ORG",
        message="API is not enabled for this user: give the user's profile or a permission "
                "set the API Enabled permission."):
    """The user lacks the API Enabled permission."""


class MutualAuthenticationFailedError(
        CodeFirstError, status=403, code="MUTUAL_AUTHENTICATION_FAILED",
        message="This user has the Enforce SSL/TLS Mutual Authentication permission: call "
                "the org's mutual TLS port with a client certificate uploaded under Setup > "
                "Certificate and Key Management > Mutual Authentication Certificates."):
    """A user who must use mutual TLS called without a trusted client certificate."""


# ----- resources ------------------------------------------------------------------------------
class NotFoundError(CodeFirstError, status=404, code="NOT_FOUND", message=NOT_FOUND_MESSAGE):
    """Unknown resource, API version or object (the §0 body)."""


class RecordNotFoundError(SalesforceError, status=404, code="NOT_FOUND",
                          message=NOT_FOUND_MESSAGE):
    """A record id or external id value the org does not have (REST record resources)."""


class EntityIsDeletedError(SalesforceError, status=404, code="ENTITY_IS_DELETED",
                           message="entity is deleted", fields=()):
    """A record in the Recycle Bin (Salesforce sends `"fields": []`)."""


class MethodNotAllowedError(CodeFirstError, status=405, code="METHOD_NOT_ALLOWED"):
    """An HTTP method the resource does not take; the message lists the allowed ones."""

    def __init__(self, method: str, allowed: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP Method '{method}' not allowed. Allowed are {allowed}",
                         headers=headers)


class GoneError(CodeFirstError, status=410, code="GONE"):
    """A retired API version on REST (help 000354473)."""


class InvalidVersionError(CodeFirstError, status=400, code="InvalidVersion"):
    """A retired API version on Bulk 2.0."""


# ----- request bodies and queries -------------------------------------------------------------
class JsonParserError(SalesforceError, code="JSON_PARSER_ERROR"):
    """A body that is not JSON, or not the JSON shape the resource takes."""


class MalformedQueryError(SalesforceError, code="MALFORMED_QUERY"):
    """SOQL the parser refuses before running it (an empty `q`)."""


class InvalidQueryLocatorError(SalesforceError, code="INVALID_QUERY_LOCATOR",
                               message="invalid query locator"):
    """A `nextRecordsUrl` locator that is unknown or was evicted."""


class InvalidFieldError(SalesforceError, code="INVALID_FIELD"):
    """A field the object does not have, or one a request may not set."""


class NoSuchColumnError(CodeFirstError, code="INVALID_FIELD"):
    """A `?fields=` name that is not a field name at all."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No such column '{name}'")


class MalformedIdError(SalesforceError, code="MALFORMED_ID", fields=("Id",),
                       order=("errorCode", "fields", "message")):
    """An id of another object's key prefix (REST writes errorCode, fields, message)."""


class StoreRefusedError(CodeFirstError):
    """A write the record store refused as a whole (unknown object or external id field):
    404 for NOT_FOUND, 400 for every other code."""

    @classmethod
    def of(cls, code: str, message: str) -> StoreRefusedError:
        return cls(message, code=code, status=404 if code == "NOT_FOUND" else 400)
