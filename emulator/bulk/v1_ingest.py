"""Bulk API 1.0 ingest batches: apply one batch's records through the org's record store
(the same writes and validation as REST and Bulk 2.0) and write the batch's result file.

A column naming a field the object does not have fails the whole batch before any record is
written (`InvalidBatch : Field name not found : X`), as a real org checks the batch's
columns first; values are then checked per record, as REST does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forcebeam.emulator.bulk.v1_data import invalid_batch, parse_records, write_ingest_results
from forcebeam.emulator.bulk.v1_jobs import V1Batch, V1Job
from forcebeam.emulator.records.store import StoreError

_RESULT_EXTENSIONS = {"CSV": "csv", "JSON": "json", "XML": "xml"}


def run_ingest_batch(job: V1Job, batch: V1Batch, store: Any,
                     fail_row: Callable[[int], Any] | None = None) -> None:
    """Runs on an executor thread; BatchFailedError when the batch as a whole is refused."""
    assert batch.request_path is not None and job.work_dir is not None  # noqa: S101
    records = parse_records(job.content_type, batch.request_path.read_bytes())
    unknown = unknown_column(getattr(store, "schema", None), job.object, records)
    if unknown is not None:
        raise invalid_batch(f"Field name not found : {unknown}")
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


def unknown_column(schema: Any, sobject: str, records: list[dict[str, Any]]) -> str | None:
    """The first column (in upload order) that names no field of `sobject`: a plain field
    name, or `Relationship.Field` whose relationship or parent field does not exist."""
    obj = schema.object(sobject) if schema is not None else None
    if obj is None:
        return None
    seen: set[str] = set()
    for record in records:
        for name in record:
            if name in seen or name == "attributes":
                continue
            seen.add(name)
            relationship, dot, parent_field = name.partition(".")
            if not dot:
                if obj.field(name) is None:
                    return name
                continue
            reference = obj.relationships.get(relationship.lower())
            parent = schema.object(reference.reference_to[0]) if reference is not None else None
            if parent is None or parent.field(parent_field) is None:
                return name
    return None
