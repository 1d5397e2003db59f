"""Bulk API 2.0 query jobs: what Bulk refuses at creation, and rendering the result file.

Refusals happen when the job is created, as on a real org (wire reference §5: Bulk 2.0 query
does not support compound address/location fields, FIELDS(), COUNT()/aggregates, OFFSET or
parent-to-child subqueries). Codes and texts: compound data uses the observed
`Selecting compound data not supported in Bulk Query`; the other texts are the emulator's
wording of the documented restriction (real texts unverified), with Bulk's
`FeatureNotEnabled`/`API_ERROR` codes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from forcebeam.emulator.bulk.jobs import QueryJob
from forcebeam.emulator.bulk.results import (
    COLUMN_DELIMITERS,
    LINE_ENDINGS,
    TEXT_SQL,
    ResultFile,
    converters_for,
    csv_line,
    write_result_file,
)

log = logging.getLogger(__name__)
#: Rows rendered before a job may turn JobComplete (the rest renders while pages download).
FIRST_ROWS_BEFORE_COMPLETE = 5000


class BulkQueryRefusedError(ValueError):
    """A query Bulk 2.0 will not run; `code` and `message` go into the 400 body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_bulk_query(parsed: Any, columns: list[Any]) -> None:
    """Raise BulkQueryRefusedError for what Bulk 2.0 refuses (`parsed`: the SOQL parser's
    `ParsedQuery`; `columns`: the compiled query's columns, empty before compiling)."""
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


def render_query_job(job: QueryJob, store: Any,
                     on_rendered: Callable[[int], None] | None = None) -> None:
    """Count the job's rows, then render its CSV file on a thread of its own.

    Runs on an executor thread and returns (so the job turns JobComplete) once the first
    rows are on disk: the rest renders while the client already downloads pages, and a page
    whose rows are not rendered yet waits for them (see the results endpoint). The render
    stops early when the job is aborted or deleted. `on_rendered` gets the file's size in
    bytes once the whole file is on disk (the org's daily result-storage counter).
    The job's creator's field-level security applies, as on REST.
    """
    include_deleted = job.operation == "queryAll"
    counted = store.execute(job.query, include_deleted=include_deleted, count_total=True,
                            user_id=job.created_by_id)
    _close_rows(counted.rows)
    check_bulk_query(None, list(counted.columns))
    header = [column.path for column in counted.columns]
    delimiter = COLUMN_DELIMITERS[job.column_delimiter]
    line_ending = LINE_ENDINGS[job.line_ending]
    assert job.work_dir is not None  # noqa: S101 - set by BulkJobs.add
    path = job.work_dir / "results.csv"
    job.result = ResultFile.pending(path, csv_line(header, delimiter, line_ending),
                                    counted.total_size)
    job.number_records_processed = counted.total_size
    started = threading.Event()

    def render() -> None:
        assert job.result is not None  # noqa: S101 - set above
        try:
            # SQLite connections belong to their thread: the rows are read here.
            result = store.execute(job.query, include_deleted=include_deleted,
                                   count_total=False, user_id=job.created_by_id,
                                   text_sql=TEXT_SQL)
            rows = _announcing(result.rows, started)
            write_result_file(path, header, rows, delimiter=delimiter,
                              line_ending=line_ending,
                              should_stop=lambda: job.state == "Aborted" or job.discarded,
                              converters=converters_for([c.field.type for c in result.columns],
                                                        rendered_by_sql=TEXT_SQL),
                              into=job.result)
            job.number_records_processed = job.result.row_count
            if on_rendered is not None:
                on_rendered(path.stat().st_size)
        except Exception as error:  # noqa: BLE001 - served as an error to page requests
            log.exception("rendering the results of bulk job %s failed", job.id)
            job.result.error = str(error) or type(error).__name__
            job.result.complete = True
        finally:
            started.set()

    threading.Thread(target=render, name=f"render-{job.id}", daemon=True).start()
    started.wait()
    if job.result.error and not job.result.available:
        raise RuntimeError(job.result.error)


def _announcing(rows: Iterator[Any], started: threading.Event) -> Iterator[Any]:
    """Pass rows through; set `started` once the first few thousand were handed out."""
    for index, row in enumerate(rows):
        if index == FIRST_ROWS_BEFORE_COMPLETE:
            started.set()
        yield row


def _close_rows(rows: Any) -> None:
    close = getattr(rows, "close", None)
    if close is not None:
        close()
