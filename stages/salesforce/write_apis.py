"""The two ways a batch of records reaches Salesforce, with one result per input record.

* sObject Collections (``composite/sobjects``): <= 200 records per call, results in input
  order - cheap for small batches.
* Bulk API 2.0 ingest: one job per batch (create, upload CSV, close, poll, read results) -
  a handful of calls whatever the size, so it wins for volume. The upload is built and the
  result files are matched back to their inputs column by column (``ingest_csv``); a result
  file the job info says is empty is not downloaded.

Null values (``None``; an empty CSV cell read by Beam) follow ``nulls``, the same way on both
paths, like Salesforce's own tools (Data Loader's "insert null values" is off by default):

* ``ignore`` (default): the field is left unchanged - left out of the REST record, an empty
  Bulk CSV cell;
* ``set``: the field is cleared - JSON ``null`` on REST, ``#N/A`` in the Bulk CSV.

Values are sent as written: a ``Decimal`` keeps every digit on both paths (``json_bytes``,
``ingest_csv.cell_text``).

Both return ``list[RecordResult]`` aligned with the input list.
"""

from __future__ import annotations

import decimal
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from forcebeam.stages.salesforce import ingest_csv
from forcebeam.stages.salesforce.bulk_query import BulkJobFailedError, wait_for_job
from forcebeam.stages.salesforce.frame_records import FrameRecords
from forcebeam.stages.salesforce.rest_query import ApiClient
from forcebeam.stages.salesforce.timestamps import time_text

__all__ = ["RecordRejection", "RecordResult", "write_collections", "write_bulk",
           "COLLECTION_LIMIT", "BULK_OPERATIONS"]

COLLECTION_LIMIT = 200
NULLS = ("ignore", "set")
#: Bulk API 2.0 takes up to 150 MB of CSV per ingest job; a batch whose CSV is larger than
#: Salesforce's recommended 100 MB is sent as several jobs (halves, recursively).
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
BULK_OPERATIONS = {"insert": "insert", "update": "update", "upsert": "upsert",
                   "delete": "delete", "hard_delete": "hardDelete"}


@dataclass(frozen=True)
class RecordRejection:
    """One reason Salesforce (or our pre-send check) refused a record: code, message, fields.

    A value, not an exception: a refused record is data for the ``failed`` output.
    """

    status_code: str
    message: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordResult:
    success: bool
    id: str | None = None
    created: bool | None = None
    errors: list[RecordRejection] = field(default_factory=list)


#: A success whose new Id nobody asked for (``write_bulk(ids_wanted=False)``): one shared,
#: immutable answer for every such record instead of 100k equal objects.
_WRITTEN = RecordResult(success=True, errors=[])


def json_value(value: Any) -> Any:
    """A record value for the REST JSON body (times -> ISO-8601; a Decimal stays one and
    ``json_bytes`` writes its exact digits)."""
    text = time_text(value)
    return value if text is None else text


def json_bytes(body: Any) -> bytes:
    """``body`` as JSON (as ``requests`` writes it), every ``Decimal`` with its exact digits.

    The json module has no exact form for a Decimal (through ``float``,
    ``1234567890123456.78`` becomes ``1234567890123456.8``): each is written as a placeholder
    string unique to this call, then every placeholder, quotes included, becomes the digits.
    """
    tag = uuid.uuid4().hex
    numbers: list[str] = []

    def exact(value: Any) -> Any:
        if isinstance(value, decimal.Decimal):
            if not value.is_finite():
                return float(value)            # NaN/Infinity: refused below, as before
            numbers.append(format(value, "f"))
            return f"{tag}:{len(numbers) - 1}"
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    text = json.dumps(body, default=exact, allow_nan=False)
    if numbers:
        text = re.sub(f'"{tag}:(\\d+)"', lambda match: numbers[int(match.group(1))], text)
    return text.encode("utf-8")


# ------------------------------------------------------------------ sObject Collections

def write_collections(client: ApiClient, sobject: str, operation: str,
                      records: Sequence[Mapping[str, Any]], *,
                      external_id_field: str | None = None,
                      nulls: str = "ignore") -> list[RecordResult]:
    _check_nulls(nulls)
    results: list[RecordResult] = []
    for start in range(0, len(records), COLLECTION_LIMIT):
        chunk = records[start:start + COLLECTION_LIMIT]
        results.extend(_collection_call(client, sobject, operation, chunk, external_id_field,
                                        nulls))
    return results


def _check_nulls(nulls: str) -> None:
    if nulls not in NULLS:
        raise ValueError(f"nulls: expected ignore or set, got {nulls!r}")


def _collection_call(client: ApiClient, sobject: str, operation: str,
                     chunk: Sequence[Mapping[str, Any]], external_id_field: str | None,
                     nulls: str) -> list[RecordResult]:
    if operation == "delete":
        ids = [str(r.get("Id") or "") for r in chunk]
        missing = [i for i, value in enumerate(ids) if not value]
        present = [value for value in ids if value]
        answers: list[Any] = []
        if present:
            answers = client.request("DELETE", "composite/sobjects",
                                     params={"ids": ",".join(present),
                                             "allOrNone": "false"}).json()
        it = iter(answers)
        return [_missing_id() if i in missing else _from_json(next(it))
                for i in range(len(chunk))]
    calls = {"insert": ("POST", "composite/sobjects"),
             "update": ("PATCH", "composite/sobjects"),
             "upsert": ("PATCH", f"composite/sobjects/{sobject}/{external_id_field}")}
    if operation not in calls:
        raise ValueError(f"operation: {operation} is not available through sObject Collections")
    body_records = []
    for record in chunk:
        payload = {k: json_value(v) for k, v in record.items()
                   if not (operation == "insert" and k == "Id")
                   and (v is not None or nulls == "set")}
        payload["attributes"] = {"type": sobject}
        body_records.append(payload)
    method, path = calls[operation]
    answers = client.request(method, path,
                             data=json_bytes({"allOrNone": False, "records": body_records}),
                             headers={"Content-Type": "application/json"}).json()
    return [_from_json(answer) for answer in answers]


def _missing_id() -> RecordResult:
    return RecordResult(success=False, errors=[RecordRejection(
        "MISSING_ID", "the record has no Id; delete needs the Id of the record", ("Id",))])


def _from_json(answer: Mapping[str, Any]) -> RecordResult:
    errors = [RecordRejection(str(e.get("statusCode") or e.get("errorCode") or "UNKNOWN"),
                          str(e.get("message") or ""), tuple(e.get("fields") or ()))
              for e in answer.get("errors") or []]
    return RecordResult(success=bool(answer.get("success")), id=answer.get("id"),
                        created=answer.get("created"), errors=errors)


# ------------------------------------------------------------------ Bulk API 2.0 ingest

def _columns(operation: str, records: Sequence[Mapping[str, Any]]) -> list[str]:
    if operation in ("delete", "hard_delete"):
        return ["Id"]
    if isinstance(records, FrameRecords):    # every record has every column
        seen: dict[str, None] = dict.fromkeys(records.names)
    else:
        seen = {}
        for record in records:
            for key in record:
                seen.setdefault(key, None)
    if operation == "insert":
        seen.pop("Id", None)
    return list(seen)


def write_bulk(client: ApiClient, sobject: str, operation: str,
               records: Sequence[Mapping[str, Any]], *, external_id_field: str | None = None,
               timeout_seconds: float = 3600.0, nulls: str = "ignore",
               ids_wanted: bool = True) -> list[RecordResult]:
    """One Bulk 2.0 ingest job for ``records`` (halves past ``MAX_UPLOAD_BYTES``); a result
    per record, in order.

    ``ids_wanted=False`` (nobody reads the new Ids): when the job processed every record,
    the successful results are not downloaded; a success then has no ``id``/``created``.
    """
    _check_nulls(nulls)
    columns = _columns(operation, records)
    cells = ingest_csv.upload_columns(records, columns, nulls)
    payload = ingest_csv.upload_csv(cells)
    if len(payload) > MAX_UPLOAD_BYTES and len(records) > 1:
        half = len(records) // 2
        return [result for part in (records[:half], records[half:])
                for result in write_bulk(client, sobject, operation, part,
                                         external_id_field=external_id_field,
                                         timeout_seconds=timeout_seconds, nulls=nulls,
                                         ids_wanted=ids_wanted)]
    job_body: dict[str, Any] = {"object": sobject, "operation": BULK_OPERATIONS[operation],
                                "contentType": "CSV", "columnDelimiter": "COMMA",
                                "lineEnding": "LF"}
    if operation == "upsert":
        job_body["externalIdFieldName"] = external_id_field
    job = client.request("POST", "jobs/ingest", json=job_body).json()
    job_id = job["id"]
    client.request("PUT", f"jobs/ingest/{job_id}/batches", data=payload,
                   headers={"Content-Type": "text/csv; charset=UTF-8"})
    job = client.request("PATCH", f"jobs/ingest/{job_id}",
                         json={"state": "UploadComplete"}).json()
    state_error: str | None = None
    try:
        job = wait_for_job(client, f"jobs/ingest/{job_id}", job, timeout_seconds,
                           expected_records=len(records))
    except BulkJobFailedError as error:   # processed rows stay processed: collect what we can
        state_error = str(error)
        job = {}
    failed_count = _count(job, "numberRecordsFailed")
    processed = ok_count = _count(job, "numberRecordsProcessed")
    if ok_count is not None and failed_count is not None:
        ok_count -= failed_count
    # Every record processed: the failures tell the rest succeeded, and the successes'
    # file (the new Ids) is only fetched when someone reads them.
    without_ids = (not ids_wanted and state_error is None and failed_count is not None
                   and processed == len(records))
    # A result file the job info says is empty is not downloaded (one API call less).
    succeeded = _results(client, job_id, "successfulResults", 0 if without_ids else ok_count)
    failed = _results(client, job_id, "failedResults", failed_count)
    found_ok, found_failed = ingest_csv.match_results(cells, [succeeded, failed])
    if without_ids and bool((found_failed < 0).any()):
        # A rejection matched no record: the successes are then fetched after all, so no
        # rejected record can pass for a written one.
        without_ids = False
        succeeded = _results(client, job_id, "successfulResults", ok_count)
        found_ok, found_failed = ingest_csv.match_results(cells, [succeeded, failed])
    results: list[RecordResult | None] = [None] * len(records)
    if succeeded.num_rows:
        ids, created = _cells(succeeded, "sf__Id"), _cells(succeeded, "sf__Created")
        for row, index in enumerate(found_ok.tolist()):
            if index >= 0 and results[index] is None:
                results[index] = RecordResult(success=True, id=ids[row] or None,
                                              created=(created[row].lower() == "true")
                                              if created[row] else None)
    if failed.num_rows:
        ids, errors = _cells(failed, "sf__Id"), _cells(failed, "sf__Error")
        for row, index in enumerate(found_failed.tolist()):
            if index >= 0 and results[index] is None:
                results[index] = RecordResult(success=False, id=ids[row] or None,
                                              errors=[parse_bulk_error(errors[row])])
    if without_ids:
        return [_WRITTEN if r is None else r for r in results]
    why = state_error or f"Bulk ingest job {job_id} did not process this record"
    return [r if r is not None else RecordResult(success=False, errors=[
        RecordRejection("UNPROCESSED_RECORD", why)]) for r in results]


def _cells(table: pa.Table, name: str) -> list[str]:
    """One column of a result file (empty cells when the file has no such column)."""
    if name in table.column_names:
        return table.column(name).to_pylist()
    return [""] * table.num_rows


def _count(job: Mapping[str, Any], key: str) -> int | None:
    try:
        return int(job[key])
    except (KeyError, TypeError, ValueError):
        return None


def _results(client: ApiClient, job_id: str, kind: str, expected: int | None) -> pa.Table:
    """One result file as a table of strings (not downloaded when the job says it's empty)."""
    if expected == 0:
        return pa.table({})
    response = client.request("GET", f"jobs/ingest/{job_id}/{kind}/",
                              headers={"Accept": "text/csv"})
    return ingest_csv.parse_results(response.content)


def parse_bulk_error(text: str) -> RecordRejection:
    """``CODE:message:field1,field2 --`` (Bulk's sf__Error) -> RecordRejection."""
    code, _, rest = text.partition(":")
    rest = rest.strip()
    if rest.endswith("--"):
        rest = rest[:-2].rstrip()
    message, fields_text = rest, ""
    if ":" in rest:
        head, _, tail = rest.rpartition(":")
        if not tail.strip() or all(part.strip().replace("_", "").replace(".", "").isalnum()
                                   for part in tail.split(",")):
            message, fields_text = head, tail
    fields = tuple(f.strip() for f in fields_text.split(",") if f.strip())
    return RecordRejection(code.strip() or "UNKNOWN", message.strip(), fields)
