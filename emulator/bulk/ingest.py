"""Bulk API 2.0 ingest jobs: turn uploaded CSV into store writes and result files.

Uploaded data is kept on disk (one file per `PUT …/batches`) and parsed with the csv module
when the job is closed, in slices of 10,000 rows (Salesforce's own batch size), so memory
stays flat however large the upload. A batch is one `RecordStore.write` call; its result rows
are written (and the job's counts moved) when the batch is done, as a polling client sees
them advance on a real org. Cell rules (wire reference §6): an empty cell leaves the
field unchanged (key absent), `#N/A` sets it to null, anything else is passed as the string
the client sent (the store converts and validates per field).

Result files echo the uploaded header and cells after the `sf__` columns:
`"sf__Id","sf__Created",<original header>` and `"sf__Id","sf__Error",<original header>`,
where `sf__Error` is `CODE:message:fields --` (or `CODE:message:--` without fields), and
`unprocessedrecords` holds the original header plus the rows never processed (job aborted or
failed part way).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import threading
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, compress, islice, repeat
from operator import attrgetter
from pathlib import Path
from typing import Any

from forcebeam.emulator.bulk.columns import field_not_found_message, unknown_column
from forcebeam.emulator.bulk.jobs import ABORTED, IngestJob
from forcebeam.emulator.bulk.results import COLUMN_DELIMITERS, LINE_ENDINGS, csv_line

#: Largest accepted body of one upload request (Salesforce: 150 MB).
MAX_UPLOAD_BYTES = 150 * 1024 * 1024
#: Rows handed to one `RecordStore.write` call (Salesforce splits jobs into 10,000-row batches).
WRITE_BATCH_ROWS = 10_000
NULL_MARKER = "#N/A"
_SUCCESS = attrgetter("success")
DELETE_OPERATIONS = frozenset({"delete", "hardDelete"})


class IngestDataError(ValueError):
    """Uploaded data the job cannot process (the job fails with this message)."""


def process_ingest_job(job: IngestJob, store: Any,
                       fail_row: Callable[[int], Any] | None = None) -> None:
    """Apply every uploaded row through `store.write` and write the three result files.

    Runs on an executor thread. Counts go into the job as rows finish, so a client polling
    job info sees progress. When the job is aborted, or fails part way (bad header, a store
    error), every row not yet applied goes to `unprocessedrecords` before the error is
    raised, so the user can re-submit exactly those rows.
    """
    assert job.work_dir is not None  # noqa: S101 - set by BulkJobs.add
    delimiter = COLUMN_DELIMITERS[job.column_delimiter]
    line_ending = LINE_ENDINGS[job.line_ending]
    job.successful_results = job.work_dir / "successfulResults.csv"
    job.failed_results = job.work_dir / "failedResults.csv"
    job.unprocessed_records = job.work_dir / "unprocessedrecords.csv"
    rows = _iter_uploaded_rows(job.uploads, delimiter)
    header = next(rows, None)
    with (collector_paused(),
          job.successful_results.open("wb") as ok_file,
          job.failed_results.open("wb") as failed_file,
          job.unprocessed_records.open("wb") as unprocessed_file):
        if header is None:
            raise IngestDataError("InvalidBatch : no CSV data was uploaded for this job")
        original = _raw_header(header, delimiter, line_ending)
        separator = delimiter.encode()
        ok_file.write(csv_line(["sf__Id", "sf__Created"], delimiter, "") + separator + original)
        failed_file.write(csv_line(["sf__Id", "sf__Error"], delimiter, "") + separator + original)
        unprocessed_file.write(original)
        ok = _ResultWriter(ok_file, delimiter, line_ending, csv.QUOTE_ALL)
        failed = _ResultWriter(failed_file, delimiter, line_ending, csv.QUOTE_ALL)
        # Unprocessed rows are meant to be uploaded again: written back as plainly as sent.
        unprocessed = _ResultWriter(unprocessed_file, delimiter, line_ending, csv.QUOTE_MINIMAL)
        batches = _batches(rows, WRITE_BATCH_ROWS)
        inserting = job.operation == "insert"
        try:
            _check_header(job, header)
            unknown = unknown_column(getattr(store, "schema", None), job.object,
                                     [[name.strip() for name in header]])
            if unknown is not None:
                raise IngestDataError(field_not_found_message(unknown))
            for batch in batches:
                if job.state == ABORTED:
                    unprocessed.writerows(batch)
                    continue
                try:
                    results = store.write(job.object, job.operation, _records(header, batch),
                                          external_id_field=job.external_id_field,
                                          fail_row=fail_row, user_id=job.created_by_id)
                except Exception:
                    unprocessed.writerows(batch)
                    raise
                if len(results) != len(batch):
                    raise ValueError("the store returned one result per record: "
                                     f"{len(results)} for {len(batch)}")
                # Result rows are the result's two cells chained to the row as uploaded,
                # handed to the csv module as iterators: no list per row.
                prefixes = [(result.id or "", "true" if result.created is not False and (
                    inserting or bool(result.created)) else "false") if result.success
                    else (result.id or "", format_error(result.errors)) for result in results]
                succeeded = list(map(_SUCCESS, results))
                failures = len(batch) - sum(succeeded)
                if failures == 0:
                    ok.write_results(prefixes, batch)
                else:
                    failed_flags = [not flag for flag in succeeded]
                    ok.write_results(list(compress(prefixes, succeeded)),
                                     list(compress(batch, succeeded)))
                    failed.write_results(list(compress(prefixes, failed_flags)),
                                         list(compress(batch, failed_flags)))
                ok.flush()
                failed.flush()
                # Counts move per batch, as a polling client sees them on a real org.
                job.number_records_failed += failures
                job.number_records_processed += len(batch)
        except Exception:
            for batch in batches:
                unprocessed.writerows(batch)
            raise
        finally:
            unprocessed.flush()
            ok.flush()
            failed.flush()


_paused_lock = threading.Lock()
_paused_by = 0
_resume_collector = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a job is processed.

    Why: every row allocates a few containers that stay alive until its batch is written
    (10,000 rows at a time); the collector would traverse them again and again, ~10% of a
    job's time, although reference counting frees them all. Jobs on several threads share
    one pause; the collector resumes (if it was on) when the last of them ends.
    """
    global _paused_by, _resume_collector
    with _paused_lock:
        if _paused_by == 0:
            _resume_collector = gc.isenabled()
            gc.disable()
        _paused_by += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused_by -= 1
            if _paused_by == 0 and _resume_collector:
                gc.enable()


def format_error(errors: list[Any]) -> str:
    """`CODE:message:fields --` as Bulk 2.0 writes `sf__Error` (first error wins)."""
    if not errors:
        return "UNKNOWN_EXCEPTION:unknown error:--"
    error = errors[0]
    fields = ",".join(getattr(error, "fields", None) or [])
    suffix = f"{fields} --" if fields else "--"
    return f"{error.status_code}:{error.message}:{suffix}"


def _check_header(job: IngestJob, header: list[str]) -> None:
    if not header or any(not name.strip() for name in header):
        raise IngestDataError("InvalidBatch : Field name not provided (empty column header)")
    if job.operation in DELETE_OPERATIONS and [name.strip() for name in header] != ["Id"]:
        raise IngestDataError(
            f"InvalidBatch : The '{job.operation}' batch must contain only the 'Id' column, "
            f"got {header}")
    if job.operation == "upsert" and job.external_id_field not in header:
        raise IngestDataError(
            f"InvalidBatch : Field name not found : {job.external_id_field} (the upsert "
            "external id field must be a column of the CSV)")


def _records(header: list[str], rows: list[list[str]]) -> list[dict[str, Any]]:
    """One store record per CSV row (see the module docstring for the cell rules); a row
    with no empty and no `#N/A` cell (the usual one) is zipped with the header in C."""
    cells = set(chain.from_iterable(rows))
    if "" not in cells and NULL_MARKER not in cells:
        return list(map(dict, map(zip, repeat(header), rows)))
    return [dict(zip(header, row, strict=False)) if "" not in row and NULL_MARKER not in row
            else {name: None if value == NULL_MARKER else value
                  for name, value in zip(header, row, strict=False) if value != ""}
            for row in rows]


def _iter_uploaded_rows(uploads: list[Path], delimiter: str) -> Iterator[list[str]]:
    """Header (once), then every data row of every upload; later uploads repeat the header."""
    return chain.from_iterable(_uploaded_parts(uploads, delimiter))


def _uploaded_parts(uploads: list[Path], delimiter: str) -> Iterator[Iterable[list[str]]]:
    """`_iter_uploaded_rows` in parts: [header], then each upload's rows as the csv reader
    gives them (chained in C, not passed on one by one by a generator). Every upload has the
    first one's header (`upload_header_problem` refused any other when it was uploaded)."""
    header: list[str] | None = None
    for path in uploads:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            first = next(reader, None)
            if first is None:
                continue
            if header is None:
                header = first
                yield [header]
            yield filter(None, reader)   # blank lines are no rows


def _upload_header(path: Path, delimiter: str) -> list[str] | None:
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle, delimiter=delimiter), None)


def upload_header_problem(job: IngestJob, upload: Path) -> str | None:
    """Why ``upload`` cannot join ``job``'s earlier uploads, or None.

    Checked when the data arrives, not when the job runs: a later upload whose header row
    differs would otherwise fail the job part way, with rows of the earlier uploads in no
    result file. Refused at once, the client knows exactly which data was not taken.
    """
    delimiter = COLUMN_DELIMITERS[job.column_delimiter]
    new = _upload_header(upload, delimiter)
    earlier = next((header for header in (_upload_header(path, delimiter)
                                          for path in job.uploads) if header is not None), None)
    if new is None or earlier is None or new == earlier:
        return None
    return (f"Every upload of a job must have the same header row: this upload has "
            f"{new}, the job's first has {earlier}. This upload was not kept; send its rows "
            f"with the first header, or in a job of their own")


def _batches(rows: Iterator[list[str]], size: int) -> Iterator[list[list[str]]]:
    while batch := list(islice(rows, size)):
        yield batch


def _raw_header(header: list[str], delimiter: str, line_ending: str) -> bytes:
    """The uploaded header line, echoed unquoted (as observed on real orgs)."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=line_ending).writerow(header)
    return buffer.getvalue().encode("utf-8")


class _ResultWriter:
    """csv.writer over a binary file that encodes and writes a whole batch at once
    (`flush`), not one row at a time; `flush` also flushes the file, so a client reading
    results of a finished batch sees all of it."""

    def __init__(self, handle: Any, delimiter: str, line_ending: str, quoting: int) -> None:
        self._handle = handle
        self._buffer = io.StringIO()
        self._quote_all = quoting == csv.QUOTE_ALL
        self._between_fields = '"' + delimiter + '"'
        self._between_lines = '"' + line_ending + '"'
        self._line_ending = line_ending
        self._csv = csv.writer(self._buffer, delimiter=delimiter, lineterminator=line_ending,
                               quoting=quoting)

    def writerows(self, rows: Iterable[list[str]]) -> None:
        self._csv.writerows(rows)
        if self._buffer.tell() >= _RESULT_BUFFER_CHARS:
            self.flush()

    def write_results(self, prefixes: list[tuple[str, str]], rows: list[list[str]]) -> None:
        """`writerows` of each prefix's cells followed by its row's. A QUOTE_ALL line whose
        cells hold no quote character is `"` + the cells joined by `","` + `"`, exactly what
        the csv module writes: a batch is then joined in C, and the quotes counted to know
        no cell held one (else the csv module writes the batch)."""
        if self._quote_all and rows:
            lines = list(map(self._between_fields.join, map(chain, prefixes, rows)))
            text = '"' + self._between_lines.join(lines) + '"' + self._line_ending
            cells = sum(map(len, rows)) + sum(map(len, prefixes))
            if text.count('"') == 2 * cells:
                self._buffer.write(text)
                if self._buffer.tell() >= _RESULT_BUFFER_CHARS:
                    self.flush()
                return
        self.writerows(map(chain, prefixes, rows))

    def flush(self) -> None:
        text = self._buffer.getvalue()
        if text:
            self._handle.write(text.encode("utf-8"))
            self._buffer.seek(0)
            self._buffer.truncate()
        self._handle.flush()


#: Characters buffered before a result file is written (one 10k-row batch fits well).
_RESULT_BUFFER_CHARS = 4 * 1024 * 1024
