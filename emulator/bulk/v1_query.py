"""Bulk API 1.0 query batches: run the batch's SOQL through the org's SOQL engine (the one
REST and Bulk 2.0 use, with Bulk's refusals) and write the result file; PK chunking.

PK chunking (header `Sforce-Enable-PKChunking: true; chunkSize=N; parent=Obj; startRow=Id`,
Bulk API developer guide "PK Chunking"): the object's record ids, soft-deleted ones
included, are cut into ranges of `chunkSize` (default 100,000, at most 250,000) starting at
`startRow` (default: the first id); each range becomes one batch running the query with
`WHERE Id >= 'lo' AND Id < 'hi'` added to its own conditions. With `parent`, the ranges are
the parent object's ids and the bound field is the queried object's reference to it.
Only queries without ORDER BY, LIMIT or OFFSET can be chunked (the documented "no clauses
other than WHERE").
"""

from __future__ import annotations

import re
from typing import Any

from forcebeam.emulator.bulk.query import BulkQueryRefusedError, check_bulk_query
from forcebeam.emulator.bulk.v1_data import RecordPlan, invalid_batch, write_query_results
from forcebeam.emulator.bulk.v1_jobs import BatchFailedError, PkChunking, V1Batch, V1Job
from forcebeam.emulator.records.soql import SoqlError
from forcebeam.emulator.records.soql import parse as soql_parse

DEFAULT_CHUNK_SIZE = 100_000
MAX_CHUNK_SIZE = 250_000
#: Standard objects the docs list as PK-chunkable (custom objects always are).
PK_CHUNKING_OBJECTS = frozenset({
    "Account", "Campaign", "CampaignMember", "Case", "Contact", "Lead", "LoginHistory",
    "Opportunity", "Task", "User"})
_RESULT_EXTENSIONS = {"CSV": "csv", "JSON": "json", "XML": "xml"}
_ID_TEXT = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
_NAME = re.compile(r"[A-Za-z0-9_]+")
_WHERE = re.compile(r"^\s*WHERE\s+(.*\S)\s*$", re.IGNORECASE | re.DOTALL)


def _query_failure(code: str, message: str) -> BatchFailedError:
    return invalid_batch(f"Failed to process query: {code}: {message}")


def run_query_batch(job: V1Job, batch: V1Batch, store: Any, new_result_id: Any) -> None:
    """Execute the batch's SOQL and write its one result file (runs on a thread)."""
    assert batch.soql is not None and job.work_dir is not None  # noqa: S101
    try:
        parsed = soql_parse(batch.soql)
        check_bulk_query(parsed, [])
        result = store.execute(batch.soql, include_deleted=job.operation == "queryAll",
                               count_total=False)
        check_bulk_query(parsed, list(result.columns))
    except SoqlError as error:
        raise _query_failure(error.code, error.message) from None
    except BulkQueryRefusedError as error:
        raise _query_failure(error.code, error.message) from None
    if result.sobject.lower() != job.object.lower():
        rows = getattr(result.rows, "close", None)
        if rows is not None:
            rows()
        raise _query_failure("INVALID_TYPE_FOR_OPERATION", "The root entity of the requested "
                             f"query ({result.sobject}) does not match the entity of the "
                             f"requested Bulk API Job ({job.object}).")
    result_id = new_result_id()
    path = job.work_dir / f"{batch.id}-{result_id}.{_RESULT_EXTENSIONS[job.content_type]}"
    plan = RecordPlan(getattr(store, "schema", None), result.sobject, list(result.columns))
    batch.number_records_processed = write_query_results(
        path, job.content_type, plan, list(result.columns), result.rows, job.api_version)
    batch.result_paths[result_id] = path


# ----- PK chunking ---------------------------------------------------------------------------
def parse_pk_chunking(header: str | None) -> PkChunking | None:
    """The `Sforce-Enable-PKChunking` header; None when absent or false. ValueError names
    the bad part."""
    if header is None or not header.strip():
        return None
    settings = PkChunking(chunk_size=DEFAULT_CHUNK_SIZE)
    enabled = False
    for part in (piece.strip() for piece in header.split(";")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            if key.lower() == "false":
                return None
            if key.lower() != "true":
                raise ValueError(f"Sforce-Enable-PKChunking: unknown value {part!r} (use true, "
                                 "chunkSize=N, parent=Object, startRow=Id)")
            enabled = True
        elif key.lower() == "chunksize":
            if not value.isdigit() or not 1 <= int(value) <= MAX_CHUNK_SIZE:
                raise ValueError(f"Sforce-Enable-PKChunking: chunkSize must be 1 to "
                                 f"{MAX_CHUNK_SIZE:,}, got {value!r}")
            settings.chunk_size = int(value)
            enabled = True
        elif key.lower() == "parent":
            settings.parent = value
            enabled = True
        elif key.lower() == "startrow":
            if not _ID_TEXT.match(value):
                raise ValueError(f"Sforce-Enable-PKChunking: startRow must be a 15 or 18 "
                                 f"character record id, got {value!r}")
            settings.start_row = value
            enabled = True
        else:
            raise ValueError(f"Sforce-Enable-PKChunking: unknown option {key!r} (use "
                             "chunkSize, parent or startRow)")
    return settings if enabled else None


def _chunk_target(job: V1Job, schema: Any, settings: PkChunking) -> tuple[str, str]:
    """(object whose ids are chunked, field of the queried object bound by the ranges)."""
    obj = schema.object(job.object) if schema is not None else None
    name = obj.name if obj is not None else job.object
    if settings.parent is None or settings.parent.lower() == name.lower():
        if name not in PK_CHUNKING_OBJECTS and not name.endswith("__c"):
            raise invalid_batch(f"PK chunking is not supported for {name}: it works on "
                                f"{', '.join(sorted(PK_CHUNKING_OBJECTS))} and custom objects "
                                "(sharing and history objects with parent=)")
        return name, "Id"
    parent = schema.object(settings.parent) if schema is not None else None
    if parent is None or obj is None:
        raise invalid_batch(f"PK chunking parent {settings.parent!r} is not an object of "
                            "this org")
    for field in obj.field_list:
        if field.type == "reference" and parent.name in (field.reference_to or ()):
            return parent.name, field.name
    raise invalid_batch(f"PK chunking parent {parent.name} is not a parent of {name}: name "
                        "an object the queried object looks up to")


def _split_query(soql: str) -> tuple[str, str | None]:
    """(SELECT … FROM Object, the WHERE condition or None) of a chunkable query."""
    try:
        parsed = soql_parse(soql)
    except SoqlError as error:
        raise _query_failure(error.code, error.message) from None
    if parsed.order_by or parsed.limit is not None or parsed.offset is not None:
        raise invalid_batch("PK chunking works only with queries that have no clauses other "
                            "than WHERE: remove ORDER BY, LIMIT and OFFSET")
    lines = soql.split("\n")
    start = sum(len(line) + 1 for line in lines[:parsed.sobject_line - 1]) + (
        parsed.sobject_column - 1)
    name = _NAME.match(soql, start)
    if name is None:
        raise invalid_batch("Could not locate the FROM object of the query")
    head, rest = soql[:name.end()], soql[name.end():]
    if not rest.strip():
        return head, None
    where = _WHERE.match(rest)
    if where is None:
        raise invalid_batch("PK chunking works only with queries that have no clauses other "
                            "than WHERE")
    return head, where.group(1)


def plan_chunks(job: V1Job, soql: str, store: Any) -> list[str]:
    """One SOQL per chunk of ids (runs on a thread); BatchFailedError when it cannot chunk."""
    settings = job.pk_chunking or PkChunking()
    head, condition = _split_query(soql)
    chunked_object, bound_field = _chunk_target(job, getattr(store, "schema", None), settings)
    ids_result = store.execute(f"SELECT Id FROM {chunked_object} ORDER BY Id",  # noqa: S608 - SOQL, object name from the schema
                               include_deleted=True, count_total=False)
    ids = [row[0] for row in ids_result.rows]
    if settings.start_row:
        ids = [record_id for record_id in ids if record_id >= settings.start_row]
    bounds = ids[::settings.chunk_size]
    chunks = []
    for index, low in enumerate(bounds):
        clause = f"{bound_field} >= '{low}'"
        if index + 1 < len(bounds):
            clause += f" AND {bound_field} < '{bounds[index + 1]}'"
        if condition:
            clause += f" AND ({condition})"
        chunks.append(f"{head} WHERE {clause}")
    return chunks
