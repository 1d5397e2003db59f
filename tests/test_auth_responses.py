"""The one classifier of Salesforce error answers, over the codes Salesforce documents.

Each row is an answer as Salesforce sends it (REST, Bulk API 2.0, sObject Collections per
record, the OAuth token endpoint, SOAP faults) and the kind it must be: a retry of a final
answer wastes the org's API budget, and a final verdict on a passing one fails a run that
would have finished.
"""

from __future__ import annotations

import json

import pytest
import requests

from forcebeam.auth import responses
from forcebeam.auth.errors import (
    ApiQuotaExceeded,
    ApiVersionRetired,
    ErrorKind,
    RetriableApiError,
    SalesforceApiError,
)

T, F = ErrorKind.TRANSIENT, ErrorKind.FATAL


def answer(status: int, body: object, url: str = "https://org.example/services/data/v62.0/"
           "query") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.url = url
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return response


def rest(code: str, message: str = "", fields: list[str] | None = None) -> list[dict]:
    return [{"errorCode": code, "message": message, "fields": fields or []}]


# (status, body, class raised, kind)
API_ANSWERS = [
    # REST / Bulk 2.0 job calls: the query's or the record's own mistakes are final
    (400, rest("INVALID_FIELD", "No such column 'Nope'"), SalesforceApiError, F),
    (400, rest("MALFORMED_QUERY", "unexpected token"), SalesforceApiError, F),
    (400, rest("INVALID_TYPE", "sObject type 'Nope' is not supported"), SalesforceApiError, F),
    (404, rest("NOT_FOUND", "The requested resource does not exist"), SalesforceApiError, F),
    (403, rest("INSUFFICIENT_ACCESS", "no access"), SalesforceApiError, F),
    (400, rest("FeatureNotEnabled", "compound fields"), SalesforceApiError, F),
    (500, rest("UNKNOWN_EXCEPTION", "An unexpected error occurred"), SalesforceApiError, F),
    # ... passing ones are retriable
    (400, rest("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access"), RetriableApiError, T),
    (503, rest("SERVER_UNAVAILABLE", "try again"), RetriableApiError, T),
    (503, b"<html>Service Unavailable</html>", RetriableApiError, T),
    (502, b"Bad Gateway", RetriableApiError, T),
    (504, b"", RetriableApiError, T),
    (429, rest("API_TEMPORARILY_UNAVAILABLE", "busy"), RetriableApiError, T),
    (500, b"<html>oops</html>", RetriableApiError, T),
    # the daily limit: transient (the window rolls) but a clean stop, never a retry
    (403, rest("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), ApiQuotaExceeded, T),
]


@pytest.mark.parametrize(("status", "body", "expected", "kind"), API_ANSWERS,
                         ids=[f"{row[0]}-{row[2].__name__}-{i}"
                              for i, row in enumerate(API_ANSWERS)])
def test_api_answers_are_classified_by_code_then_status(status, body, expected, kind):
    error = responses.classify(answer(status, body), "62.0")
    assert type(error) is expected
    assert error.kind is kind
    assert error.status == status
    if isinstance(body, list):   # Salesforce's own code and message are kept for the user
        assert error.error_code == body[0]["errorCode"]
        assert body[0]["message"] in str(error)


def test_a_retired_api_version_is_a_final_answer_that_says_the_fix():
    for status, body in ((410, rest("GONE", "version retired")),
                         (400, rest("InvalidVersion", "Version 30.0 is not supported"))):
        error = responses.classify(answer(status, body, url="https://org.example/services/"
                                          "data/v30.0/jobs/query"), "30.0")
        assert isinstance(error, ApiVersionRetired) and error.kind is F
        assert "api_version" in str(error) and "30.0" in str(error)
    # The same 400 elsewhere than under /services/data is no version verdict.
    elsewhere = answer(400, rest("InvalidVersion", "x"), url="https://org.example/other")
    assert responses.stops_every_call(elsewhere) is None


def test_only_a_retired_version_or_the_daily_limit_stop_every_call():
    assert isinstance(responses.stops_every_call(answer(403, rest("REQUEST_LIMIT_EXCEEDED"))),
                      ApiQuotaExceeded)
    assert responses.stops_every_call(answer(400, rest("INVALID_FIELD"))) is None
    assert responses.stops_every_call(answer(503, b"")) is None


# Per-record codes of sObject Collections and Bulk ingest results: may the record be re-sent?
RECORD_CODES = [
    (["UNABLE_TO_LOCK_ROW"], True),
    (["API_TEMPORARILY_UNAVAILABLE"], True),
    (["UNABLE_TO_LOCK_ROW", "UNABLE_TO_LOCK_ROW"], True),
    (["REQUIRED_FIELD_MISSING"], False),
    (["DUPLICATE_VALUE"], False),
    (["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"], False),
    (["UNABLE_TO_LOCK_ROW", "FIELD_CUSTOM_VALIDATION_EXCEPTION"], False),  # would fail again
    (["REQUEST_LIMIT_EXCEEDED"], False),   # the 24 h window outlasts any back-off
    ([], False),
]


@pytest.mark.parametrize(("codes", "may_pass"), RECORD_CODES)
def test_rejected_records_are_resent_only_if_every_error_may_pass(codes, may_pass):
    assert responses.record_may_pass(codes) is may_pass


# Login answers: the OAuth token endpoint (error codes) and SOAP login faults (HTTP 500).
LOGIN_ANSWERS = [
    (400, "invalid_grant", F),
    (400, "invalid_client_id", F),
    (401, "invalid_client", F),
    (500, "INVALID_LOGIN", F),            # a SOAP fault comes with HTTP 500: still final
    (500, "LOGIN_MUST_USE_SECURITY_TOKEN", F),
    (500, "SERVER_UNAVAILABLE", T),
    (500, "REQUEST_LIMIT_EXCEEDED", T),
    (503, "", T),
    (500, "", T),                         # no code of Salesforce's: an error page
    (500, "http_500", T),
    (429, "", T),
    (400, "server_error", T),             # RFC 6749's own transient codes
    (503, "temporarily_unavailable", T),
]


@pytest.mark.parametrize(("status", "code", "kind"), LOGIN_ANSWERS)
def test_login_answers_are_classified_the_same_way(status, code, kind):
    assert responses.kind_of_answer(status, code) is kind


def test_bulk_leaves_for_rest_only_when_the_query_shape_is_refused():
    def refused(status: int, code: str) -> bool:
        return responses.bulk_refuses_query(responses.classify(answer(status, rest(code))))

    assert refused(400, "FeatureNotEnabled") and refused(400, "API_ERROR")
    for code in ("INVALID_FIELD", "MALFORMED_QUERY", "INVALID_TYPE", "InvalidSessionId"):
        assert not refused(400, code), code   # REST would refuse the same query
    assert not refused(403, "REQUEST_LIMIT_EXCEEDED")   # out of budget, not of shape
    assert not refused(503, "SERVER_UNAVAILABLE")
    assert not refused(404, "NOT_FOUND")


def test_query_timeout_is_recognised_in_a_failed_jobs_message():
    assert responses.job_timed_out(RuntimeError("Bulk job 750x ended Failed: QUERY_TIMEOUT: "
                                                "the query ran too long"))
    assert not responses.job_timed_out(RuntimeError("Bulk job 750x ended Aborted: by user"))
