"""Bulk API 1.0 ingest batches: apply one batch's records through the org's record store
(the same writes and validation as REST and Bulk 2.0) and write the batch's result file.

A column naming a field the object does not have fails the whole batch before any record is
written (`emulator.bulk.columns`); values are then checked per record, as REST does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forcebeam.emulator.bulk.columns import field_not_found_message, unknown_column
from forcebeam.emulator.bulk.v1_data import invalid_batch, parse_records, write_ingest_results
from forcebeam.emulator.bulk.v1_jobs import BatchFailedError, V1Batch, V1Job
from forcebeam.emulator.records.store import StoreError

_RESULT_EXTENSIONS = {"CSV": "csv", "JSON": "json", "XML": "xml"}


def run_ingest_batch(job: V1Job, batch: V1Batch, store: Any,
                     fail_row: Callable[[int], Any] | None = None) -> None:
    """Runs on an executor thread; BatchFailedError when the batch as a whole is refused."""
    assert batch.request_path is not None and job.work_dir is not None  # noqa: S101
    records = parse_records(job.content_type, batch.request_path.read_bytes())
    unknown = unknown_column(getattr(store, "schema", None), job.object, records)
    if unknown is not None:
        raise BatchFailedError(field_not_found_message(unknown))
    try:
        results = store.write(job.object, job.operation, records,
                              external_id_field=job.external_id_field, fail_row=fail_row,
                              user_id=job.created_by_id)
    except StoreError as error:
        raise invalid_batch(f"{error.code}: {error.message}") from None
    path = job.work_dir / f"{batch.id}-result.{_RESULT_EXTENSIONS[job.content_type]}"
    write_ingest_results(path, job.content_type, job.operation, results)
    batch.number_records_processed = len(results)
    batch.number_records_failed = sum(1 for result in results if not result.success)
    batch.result_paths["result"] = path

