"""Bulk API 1.0 wire shapes: jobInfo, batchInfo, result lists and errors in XML or JSON.

One place for the format rules clients depend on:
- job requests and responses are JSON when the request says `Content-Type: application/json`,
  XML otherwise (the documented default);
- batch responses (batchInfo, batchInfoList, result-list) follow the job's `contentType`:
  JSON for JSON jobs, XML for CSV and XML jobs, whatever the request's Content-Type says
  (tap-salesforce sends `application/json` and parses XML from a CSV job);
- errors are `<error><exceptionCode/><exceptionMessage/></error>` or
  `{"exceptionCode","exceptionMessage"}`; JSON ones carry exactly `application/json`
  (tap-salesforce compares the header to that string).
Dates are `2026-01-15T09:30:00.000Z` in XML and `…000+0000` in JSON, as on a real org.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from forcebeam.emulator.bulk.v1_jobs import V1Batch, V1Job
from forcebeam.emulator.wire.http import sf_datetime

XML_NS = "http://www.force.com/2009/06/asyncapi/dataload"
XML_TYPE = "application/xml"
JSON_TYPE = "application/json"
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def is_json(content_type: str | None) -> bool:
    return "json" in (content_type or "").lower()


def job_format(request: web.Request) -> str:
    """"JSON" or "XML": the format of a job request and its response."""
    return "JSON" if is_json(request.headers.get("Content-Type")) else "XML"


def batch_format(job: V1Job) -> str:
    return "JSON" if job.content_type == "JSON" else "XML"


def _xml_datetime(value: Any) -> str:
    return sf_datetime(value).replace("+0000", "Z")


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _xml_element(name: str, fields: Iterable[tuple[str, Any]]) -> str:
    inner = "".join(f"<{key}>{_xml_text(value)}</{key}>" for key, value in fields
                    if value is not None)
    return f"<{name}>{inner}</{name}>"


def response(body: Any, fmt: str, status: int = 200, root: str | None = None) -> web.Response:
    """`body` (dict/list for JSON, or XML text without declaration) as a response."""
    if fmt == "JSON":
        return web.Response(status=status, body=json.dumps(body).encode(),
                            content_type=JSON_TYPE)
    text = f'{_XML_DECLARATION}{body}'
    return web.Response(status=status, body=text.encode(), content_type=XML_TYPE)


def _with_namespace(element: str, name: str) -> str:
    return element.replace(f"<{name}>", f'<{name} xmlns="{XML_NS}">', 1)


# ----- jobInfo / batchInfo -------------------------------------------------------------------
def job_fields(job: V1Job, fmt: str) -> list[tuple[str, Any]]:
    when = sf_datetime if fmt == "JSON" else _xml_datetime
    fields: list[tuple[str, Any]] = [
        ("id", job.id), ("operation", job.operation), ("object", job.object),
        ("createdById", job.created_by_id), ("createdDate", when(job.created_date)),
        ("systemModstamp", when(job.system_modstamp)), ("state", job.state),
        ("externalIdFieldName", job.external_id_field),
        ("concurrencyMode", job.concurrency_mode), ("contentType", job.content_type),
        ("numberBatchesQueued", job.count("Queued")),
        ("numberBatchesInProgress", job.count("InProgress")),
        ("numberBatchesCompleted", job.count("Completed")),
        ("numberBatchesFailed", job.count("Failed")),
        ("numberBatchesTotal", len(job.batches)),
        ("numberRecordsProcessed", job.number_records_processed),
        ("numberRetries", 0),
        ("apiVersion", float(job.api_version) if fmt == "JSON" else job.api_version),
        ("numberRecordsFailed", job.number_records_failed),
        ("totalProcessingTime", job.processing_ms),
        ("apiActiveProcessingTime", job.processing_ms),
        ("apexProcessingTime", 0),
    ]
    return [(key, value) for key, value in fields if value is not None]


def job_response(job: V1Job, fmt: str, status: int = 200) -> web.Response:
    fields = job_fields(job, fmt)
    if fmt == "JSON":
        return response(dict(fields), fmt, status)
    return response(_with_namespace(_xml_element("jobInfo", fields), "jobInfo"), fmt, status)


def batch_fields(batch: V1Batch, fmt: str) -> list[tuple[str, Any]]:
    when = sf_datetime if fmt == "JSON" else _xml_datetime
    fields: list[tuple[str, Any]] = [
        ("id", batch.id), ("jobId", batch.job_id), ("state", batch.state),
        ("stateMessage", batch.state_message),
        ("createdDate", when(batch.created_date)),
        ("systemModstamp", when(batch.system_modstamp)),
        ("numberRecordsProcessed", batch.number_records_processed),
        ("numberRecordsFailed", batch.number_records_failed),
        ("totalProcessingTime", batch.processing_ms),
        ("apiActiveProcessingTime", batch.processing_ms),
        ("apexProcessingTime", 0),
    ]
    return [(key, value) for key, value in fields if value is not None]


def batch_response(job: V1Job, batch: V1Batch, status: int = 200) -> web.Response:
    fmt = batch_format(job)
    fields = batch_fields(batch, fmt)
    if fmt == "JSON":
        return response(dict(fields), fmt, status)
    return response(_with_namespace(_xml_element("batchInfo", fields), "batchInfo"), fmt,
                    status)


def batch_list_response(job: V1Job) -> web.Response:
    fmt = batch_format(job)
    if fmt == "JSON":
        return response({"batchInfo": [dict(batch_fields(batch, fmt))
                                       for batch in job.batches]}, fmt)
    inner = "".join(_xml_element("batchInfo", batch_fields(batch, fmt))
                    for batch in job.batches)
    return response(f'<batchInfoList xmlns="{XML_NS}">{inner}</batchInfoList>', fmt)


def result_list_response(job: V1Job, result_ids: list[str]) -> web.Response:
    fmt = batch_format(job)
    if fmt == "JSON":
        return response(result_ids, fmt)
    inner = "".join(f"<result>{escape(result_id)}</result>" for result_id in result_ids)
    return response(f'<result-list xmlns="{XML_NS}">{inner}</result-list>', fmt)


# ----- errors --------------------------------------------------------------------------------
class BulkV1Error(web.HTTPException):
    """A Bulk 1.0 error response (raise it from any handler or helper). The body is bytes so
    the Content-Type stays exactly `application/json` / `application/xml`, no charset."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        self.status_code = status
        super().__init__(body=body, content_type=content_type)


def v1_error(status: int, code: str, message: str, fmt: str) -> BulkV1Error:
    """A Bulk 1.0 error to raise from a handler."""
    if fmt == "JSON":
        body = json.dumps({"exceptionCode": code, "exceptionMessage": message})
        return BulkV1Error(status, body.encode(), JSON_TYPE)
    body = (f'{_XML_DECLARATION}<error xmlns="{XML_NS}"><exceptionCode>{escape(code)}'
            f"</exceptionCode><exceptionMessage>{escape(message)}</exceptionMessage></error>")
    return BulkV1Error(status, body.encode(), XML_TYPE)


# ----- job requests --------------------------------------------------------------------------
def parse_job_request(body: bytes, fmt: str) -> dict[str, Any]:
    """The fields of a jobInfo request (create, close, abort) as a dict of strings/values;
    ValueError with the reason when the body is not a jobInfo."""
    if fmt == "JSON":
        try:
            parsed = json.loads(body or b"null")
        except ValueError:
            raise ValueError("The request body is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise ValueError("The request body must be a JSON object (a jobInfo)")
        return parsed
    try:
        root = ET.fromstring(body)  # noqa: S314 - loopback-only test server
    except ET.ParseError as error:
        raise ValueError(f"The request body is not valid XML: {error}") from None
    if root.tag.rsplit("}", 1)[-1] != "jobInfo":
        raise ValueError("The request body must be a <jobInfo> element in the "
                         f"{XML_NS} namespace")
    return {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in root}
