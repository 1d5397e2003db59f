"""Bulk API 2.0 query jobs: what Bulk refuses at creation, and rendering the result file.

Refusals happen when the job is created, as on a real org (wire reference §5: Bulk 2.0 query
does not support compound address/location fields, FIELDS(), COUNT()/aggregates, OFFSET or
parent-to-child subqueries). Codes and texts: compound data uses the observed
`Selecting compound data not supported in Bulk Query`; the other texts are the emulator's
wording of the documented restriction (real texts unverified), with Bulk's
`FeatureNotEnabled`/`API_ERROR` codes.
"""

from __future__ import annotations

from typing import Any

from forcebeam.emulator.bulk.jobs import QueryJob
from forcebeam.emulator.bulk.results import (
    COLUMN_DELIMITERS,
    LINE_ENDINGS,
    converters_for,
    write_result_file,
)


class BulkQueryRefusedError(ValueError):
    """A query Bulk 2.0 will not run; `code` and `message` go into the 400 body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_bulk_query(parsed: Any, columns: list[Any]) -> None:
    """Raise BulkQueryRefusedError for what Bulk 2.0 refuses; `parsed` is B's ParsedQuery."""
    if getattr(parsed, "uses_fields_function", False):
        raise BulkQueryRefusedError(
            "API_ERROR", "FIELDS() is not supported in Bulk Query: list the fields by name")
    if getattr(parsed, "is_count", False) or getattr(parsed, "is_aggregate", False):
        raise BulkQueryRefusedError(
            "FeatureNotEnabled", "Aggregate queries are not supported by Bulk API")
    if getattr(parsed, "offset", None):
        raise BulkQueryRefusedError("FeatureNotEnabled", "OFFSET is not supported in Bulk Query")
    if getattr(parsed, "has_subquery", False):
        raise BulkQueryRefusedError(
            "FeatureNotEnabled", "Aggregate Relationships not supported in Bulk Query")
    for column in columns:
        if getattr(column.field, "type", None) in ("address", "location"):
            raise BulkQueryRefusedError(
                "API_ERROR", "Selecting compound data not supported in Bulk Query")


def render_query_job(job: QueryJob, store: Any) -> None:
    """Run the job's SOQL once and write the whole result set as the job's CSV file.

    Runs on an executor thread. Rows stream from SQLite straight into the file; the job
    polls its own state so an abort stops the rendering.
    """
    result = store.execute(job.query, include_deleted=job.operation == "queryAll",
                           count_total=False)
    check_bulk_query(None, list(result.columns))
    header = [column.path for column in result.columns]
    converters = converters_for([column.field.type for column in result.columns])
    assert job.work_dir is not None  # noqa: S101 - set by BulkJobs.add
    job.result = write_result_file(
        job.work_dir / "results.csv", header, result.rows,
        delimiter=COLUMN_DELIMITERS[job.column_delimiter],
        line_ending=LINE_ENDINGS[job.line_ending],
        should_stop=lambda: job.state == "Aborted", converters=converters)
    job.number_records_processed = job.result.row_count
