"""Bulk API 2.0 ingest on the wire (`/services/data/vXX.X/jobs/ingest…`, wire reference §6).

Create (200, `state: "Open"`, `contentUrl` without a leading slash) / upload CSV
(`PUT …/batches` -> 201, streamed to disk, 150 MB cap) / close or abort (`PATCH`) / info /
list / delete (204) / result files (streamed like query pages: gzip on request, paced by the
bandwidth cap). Result paths are matched case-insensitively with an
optional trailing slash (simple-salesforce asks for `unprocessedRecords`, jsforce for
`unprocessedrecords`). A multipart create (`job` JSON + `content` CSV of at most 100,000
characters) starts processing at once, as on a real org.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import BodyPartReader, web

from forcebeam.emulator.bulk.ingest import (
    MAX_UPLOAD_BYTES,
    process_ingest_job,
    upload_header_problem,
)
from forcebeam.emulator.bulk.jobs import (
    ABORTED,
    INGEST,
    OPEN,
    UPLOAD_COMPLETE,
    IngestJob,
    InvalidJobStateError,
)
from forcebeam.emulator.records.schema import Schema
from forcebeam.emulator.state import EmulatorState
from forcebeam.emulator.wire.bulk_query import (
    bulk_error,
    find_job,
    job_format,
    job_info,
    list_body,
    read_json_object,
    send_file,
)
from forcebeam.emulator.wire.http import (
    api_version_from,
    data_path,
    require_session,
    sf_json,
    state_of,
)

INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
RESULT_FILES = {"successfulresults": "successful_results", "failedresults": "failed_results",
                "unprocessedrecords": "unprocessed_records"}
UPLOAD_CHUNK_BYTES = 1024 * 1024
MULTIPART_MAX_CHARACTERS = 100_000


def register(app: web.Application, state: EmulatorState) -> None:
    app.router.add_post(data_path("jobs/ingest"), create_job)
    app.router.add_get(data_path("jobs/ingest"), list_jobs)
    app.router.add_get(data_path("jobs/ingest/{job_id}"), get_job)
    app.router.add_patch(data_path("jobs/ingest/{job_id}"), change_state)
    app.router.add_delete(data_path("jobs/ingest/{job_id}"), delete_job)
    app.router.add_put(data_path("jobs/ingest/{job_id}/batches"), upload)
    app.router.add_get(data_path("jobs/ingest/{job_id}/{result:[A-Za-z]+}{slash:/?}"),
                       get_result_file)


def ingest_info(job: IngestJob, *, full: bool) -> dict[str, Any]:
    info = job_info(job, full=False)
    if job.external_id_field:
        info["externalIdFieldName"] = job.external_id_field
    if job.state == OPEN:
        info["contentUrl"] = (f"services/data/v{job.api_version}/jobs/ingest/{job.id}/"
                              "batches")
    if full:
        info.update({"jobType": "V2Ingest",
                     "numberRecordsProcessed": job.number_records_processed,
                     "numberRecordsFailed": job.number_records_failed,
                     "retries": job.retries, "totalProcessingTime": job.processing_ms,
                     "apiActiveProcessingTime": job.processing_ms,
                     "apexProcessingTime": 0})
        if job.error_message:
            info["errorMessage"] = job.error_message
    return info


def ingest_job(request: web.Request) -> IngestJob:
    job = find_job(request, INGEST)
    assert isinstance(job, IngestJob)  # noqa: S101 - kind checked by find_job
    return job


async def create_job(request: web.Request) -> web.Response:
    session = require_session(request, api="bulk", kind="bulk_ingest")
    state = state_of(request)
    version = api_version_from(request)
    content: bytes | None = None
    if request.content_type.startswith("multipart/"):
        body, content = await read_multipart_job(request)
    else:
        body = await read_json_object(request)
    operation = body.get("operation")
    if operation not in INGEST_OPERATIONS:
        raise bulk_error(400, "InvalidJob", f"Invalid operation {operation!r}: use one of "
                         f"{', '.join(INGEST_OPERATIONS)}")
    sobject = body.get("object")
    schema = state.records.schema
    known = _object_name(schema, sobject) if isinstance(sobject, str) else None
    if known is None:
        raise bulk_error(400, "InvalidJob", f"Invalid object {sobject!r}: name an sObject "
                         "the org has (see GET /services/data/vXX.X/sobjects)")
    external_id = body.get("externalIdFieldName")
    if operation == "upsert" and not external_id:
        raise bulk_error(400, "InvalidJob", "externalIdFieldName is required for upsert "
                         "(an External ID field of the object, or Id)")
    if operation == "upsert":
        key_field = schema.object(known).field(str(external_id))
        if key_field is None or not (key_field.external_id or key_field.type == "id"):
            raise bulk_error(400, "InvalidJob", f"InvalidJob : Field name provided, "
                             f"{external_id} does not match an External ID, Salesforce Id, or "
                             f"indexed field for {known}")
    delimiter, line_ending = job_format(body)
    jobs = state.bulk
    job = jobs.add(IngestJob(id=jobs.new_id(), kind=INGEST, operation=operation,
                             object=known, api_version=version,
                             created_by_id=session.user_id, column_delimiter=delimiter,
                             line_ending=line_ending, state=OPEN,
                             external_id_field=external_id if operation == "upsert" else None))
    state.counters.bulk_job("ingest")
    if content is not None:
        assert job.work_dir is not None  # noqa: S101 - set by BulkJobs.add
        path = job.work_dir / "upload-1.csv"
        await asyncio.get_running_loop().run_in_executor(None, path.write_bytes, content)
        job.uploads.append(path)
        job.upload_bytes = len(content)
        start_processing(state, job)
    return sf_json(ingest_info(job, full=False))


async def read_multipart_job(request: web.Request) -> tuple[dict[str, Any], bytes]:
    """The `job` (JSON) and `content` (CSV, at most 100,000 characters) parts."""
    job: dict[str, Any] | None = None
    content: bytes | None = None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "job":
            try:
                job = await part.json()
            except ValueError:
                job = None
        elif part.name == "content":
            content = await part.read(decode=True)
    if not isinstance(job, dict) or content is None:
        raise bulk_error(400, "InvalidJob", "A multipart job needs a JSON part named 'job' and "
                         "a CSV part named 'content'")
    if len(content.decode("utf-8", errors="replace")) > MULTIPART_MAX_CHARACTERS:
        raise bulk_error(400, "ClientInputError", "Multipart job data is limited to 100,000 "
                         "characters: create the job with JSON and PUT the CSV instead")
    return job, content


def start_processing(state: EmulatorState, job: IngestJob) -> None:
    """UploadComplete: hand the job to the runner (lock-row faults come with it)."""
    job.set_state(UPLOAD_COMPLETE)
    fail_row = state.faults.lock_failure_hook()
    usage = state.usage

    def process(running: IngestJob) -> None:
        try:
            process_ingest_job(running, state.records, fail_row)
        finally:  # /limits: one DailyBulkApiBatches per 10,000 records processed
            usage.bulk_v2_ingest_processed(running.number_records_processed)

    state.bulk.start(job, process)


def _object_name(schema: Schema, name: str) -> str | None:
    """Canonical object name from the org's schema (case-insensitive), None when unknown."""
    found = schema.object(name)
    return found.name if found is not None else None


async def upload(request: web.Request) -> web.Response:
    require_session(request, api="bulk", kind="bulk_ingest")
    job = ingest_job(request)
    if job.state != OPEN:
        raise bulk_error(409, "INVALIDJOBSTATE", f"Data can only be uploaded to an Open job; "
                         f"this job is {job.state}. Create a new job.")
    assert job.work_dir is not None  # noqa: S101 - set by BulkJobs.add
    path = job.work_dir / f"upload-{len(job.uploads) + 1}.csv"
    size = 0
    loop = asyncio.get_running_loop()
    handle = await loop.run_in_executor(None, path.open, "wb")
    try:
        while True:
            chunk = await request.content.read(UPLOAD_CHUNK_BYTES)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise bulk_error(400, "ClientInputError", "The CSV upload exceeds 150 MB: split "
                                 "the data across several jobs")
            await loop.run_in_executor(None, handle.write, chunk)
    except web.HTTPException:
        handle.close()
        path.unlink(missing_ok=True)
        raise
    handle.close()
    if job.uploads:
        problem = await loop.run_in_executor(None, upload_header_problem, job, path)
        if problem is not None:
            path.unlink(missing_ok=True)
            raise bulk_error(400, "ClientInputError", problem)
    job.uploads.append(path)
    job.upload_bytes += size
    return web.Response(status=201)


async def change_state(request: web.Request) -> web.Response:
    require_session(request, api="bulk", kind="bulk_ingest")
    state = state_of(request)
    job = ingest_job(request)
    body = await read_json_object(request)
    target = body.get("state")
    jobs = state.bulk
    if target == UPLOAD_COMPLETE:
        if job.state != OPEN:
            raise bulk_error(400, "INVALIDJOBSTATE", f"Closing a job that is {job.state} is not "
                             "allowed: only Open jobs can be set to UploadComplete")
        start_processing(state, job)
    elif target == ABORTED:
        try:
            jobs.abort(job)
        except InvalidJobStateError as error:
            raise bulk_error(400, "INVALIDJOBSTATE", str(error)) from None
    else:
        raise bulk_error(400, "InvalidJob", f"Invalid state {target!r}: use UploadComplete or "
                         "Aborted")
    return sf_json(ingest_info(job, full=False))


async def get_job(request: web.Request) -> web.Response:
    require_session(request, api="bulk", kind="bulk_ingest")
    return sf_json(ingest_info(ingest_job(request), full=True))


async def list_jobs(request: web.Request) -> web.Response:
    require_session(request, api="bulk", kind="bulk_ingest")
    jobs = state_of(request).bulk.list(INGEST)
    return sf_json(list_body(jobs, lambda job: ingest_info(job, full=False)))


async def delete_job(request: web.Request) -> web.Response:
    require_session(request, api="bulk", kind="bulk_ingest")
    job = ingest_job(request)
    try:
        await asyncio.get_running_loop().run_in_executor(
            None, state_of(request).bulk.delete, job)
    except InvalidJobStateError as error:
        raise bulk_error(400, "INVALIDJOBSTATE", str(error)) from None
    return web.Response(status=204)


async def get_result_file(request: web.Request) -> web.StreamResponse:
    require_session(request, api="bulk", kind="bulk_ingest")
    state = state_of(request)
    attribute = RESULT_FILES.get(request.match_info["result"].lower())
    if attribute is None:
        raise web.HTTPNotFound()
    job = ingest_job(request)
    if job.state == ABORTED and job.unprocessed_records is None:
        # Aborted before processing: every uploaded row is unprocessed.
        await asyncio.get_running_loop().run_in_executor(
            None, _render_unprocessed, job, state.records)
    if not job.terminal or getattr(job, attribute) is None:
        raise bulk_error(400, "INVALIDJOBSTATE", f"Results are available once the job is "
                         f"JobComplete, Failed or Aborted; it is {job.state}")
    return await send_file(request, getattr(job, attribute), "text/csv; charset=UTF-8",
                           {"Sforce-Limit-Info": state.org.limit_info()})


def _render_unprocessed(job: IngestJob, store: Any) -> None:
    """An aborted job's rows all go to unprocessedrecords (nothing is written to the store)."""
    with contextlib.suppress(ValueError):  # bad data: still every row is unprocessed
        process_ingest_job(job, store)
