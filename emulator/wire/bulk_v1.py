"""Bulk API 1.0 on the wire (`/services/async/XX.X/job…`), as tap-salesforce, simple-salesforce's
`sf.bulk` and other long-lived clients call it.

Resources: create a job (`POST job`, 201), get it (`GET job/{id}`), close or abort it
(`POST job/{id}` with state Closed/Aborted), add a batch (`POST job/{id}/batch`, 201; CSV,
JSON or XML data, or the SOQL text of a query job), list batches, get one, its request
(`…/request`), its results (`…/result`: ingest results, or a query's result-list) and a
query result file (`…/result/{resultId}`). The session id comes in `X-SFDC-Session`;
an expired or unknown session is `400 InvalidSessionId`. Query jobs accept PK chunking
(`Sforce-Enable-PKChunking`). Formats follow `emulator.wire.bulk_v1_formats`; processing
(delay, Serial mode, lock-row faults) follows `emulator.bulk.v1_jobs`.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from forcebeam.emulator.bulk.jobs import JobNotFoundError
from forcebeam.emulator.bulk.v1_data import MAX_BATCH_BYTES
from forcebeam.emulator.bulk.v1_ingest import run_ingest_batch
from forcebeam.emulator.bulk.v1_jobs import (
    ABORTED,
    CLOSED,
    COMPLETED,
    CONTENT_TYPES,
    FAILED,
    INGEST_OPERATIONS,
    NOT_PROCESSED,
    OPEN,
    QUERY_OPERATIONS,
    BatchNotFoundError,
    InvalidJobStateError,
    V1Batch,
    V1Job,
)
from forcebeam.emulator.bulk.v1_query import parse_pk_chunking, plan_chunks, run_query_batch
from forcebeam.emulator.state import EmulatorState
from forcebeam.emulator.state.identity import Session
from forcebeam.emulator.wire.bulk_query import send_file
from forcebeam.emulator.wire.bulk_v1_formats import (
    JSON_TYPE,
    XML_TYPE,
    batch_format,
    batch_list_response,
    batch_response,
    is_json,
    job_format,
    job_response,
    parse_job_request,
    result_list_response,
    v1_error,
)
from forcebeam.emulator.wire.errors import SalesforceError
from forcebeam.emulator.wire.http import (
    MAX_API_VERSION,
    MIN_API_VERSION,
    require_session,
    state_of,
)

ASYNC_PREFIX = "/services/async/{version:\\d+\\.\\d+}"
PK_CHUNKING_HEADER = "Sforce-Enable-PKChunking"
CONCURRENCY_MODES = {"parallel": "Parallel", "serial": "Serial", "0": "Parallel", "1": "Serial"}
#: Content types of batch data and result files (UTF-8 said explicitly: clients such as
#: requests decode a bare text/csv as ISO-8859-1).
DATA_TYPES = {"CSV": "text/csv; charset=UTF-8", "JSON": JSON_TYPE,
              "XML": f"{XML_TYPE}; charset=UTF-8"}
#: Content types of ingest results, exactly as a real org sends them: salesforce-bulk's
#: `get_batch_results` picks its parser by comparing the header to these strings.
INGEST_RESULT_TYPES = {"CSV": "text/csv", "JSON": JSON_TYPE, "XML": XML_TYPE}
_SESSION_ERRORS = frozenset({"INVALID_SESSION_ID", "InvalidSessionId", "INVALID_AUTH_HEADER"})


def register(app: web.Application, state: EmulatorState) -> None:
    async def stop_jobs(_app: web.Application) -> None:
        state.bulk_v1.shutdown()

    app.on_shutdown.append(stop_jobs)
    router = app.router
    router.add_post(f"{ASYNC_PREFIX}/job", create_job)
    router.add_get(f"{ASYNC_PREFIX}/job/{{job_id}}", get_job)
    router.add_post(f"{ASYNC_PREFIX}/job/{{job_id}}", update_job)
    router.add_post(f"{ASYNC_PREFIX}/job/{{job_id}}/batch", add_batch)
    router.add_get(f"{ASYNC_PREFIX}/job/{{job_id}}/batch", list_batches)
    router.add_get(f"{ASYNC_PREFIX}/job/{{job_id}}/batch/{{batch_id}}", get_batch)
    router.add_get(f"{ASYNC_PREFIX}/job/{{job_id}}/batch/{{batch_id}}/request", get_request)
    router.add_get(f"{ASYNC_PREFIX}/job/{{job_id}}/batch/{{batch_id}}/result", get_result)
    router.add_get(f"{ASYNC_PREFIX}/job/{{job_id}}/batch/{{batch_id}}/result/{{result_id}}",
                   get_result_file)


# ----- request checks ------------------------------------------------------------------------
def authenticate(request: web.Request, fmt: str) -> Session:
    """The request's session (X-SFDC-Session), errors re-rendered in Bulk 1.0's shape."""
    version = request.match_info.get("version", "0")
    major = int(float(version))
    oldest = max(MIN_API_VERSION, state_of(request).org.oldest_api_version)
    if major < oldest:
        # a retired version (help 000354473): Bulk API answers 400 InvalidVersion
        raise v1_error(400, "InvalidVersion", f"API version {version} has been retired and is "
                       f"no longer available; use {oldest}.0 to {MAX_API_VERSION}.0", fmt)
    if major > MAX_API_VERSION:
        raise v1_error(404, "InvalidUrl", f"Bulk API version {version} is not supported: use "
                       f"{oldest}.0 to {MAX_API_VERSION}.0", fmt)
    try:
        return require_session(request, api="bulk_v1", kind="bulk_v1")
    except SalesforceError as error:  # the REST-shaped error, re-rendered for Bulk 1.0
        code, message = error.code, error.message
        if code in _SESSION_ERRORS:
            raise v1_error(400, "InvalidSessionId", "Invalid session id", fmt) from None
        if code == "REQUEST_LIMIT_EXCEEDED":
            raise v1_error(403, "ExceededQuota", message, fmt) from None
        raise v1_error(error.status, code, message, fmt) from None


def error_format(request: web.Request, job: V1Job | None = None) -> str:
    content_type = request.headers.get("Content-Type", "")
    if is_json(content_type) or (job is not None and not content_type
                                 and job.content_type == "JSON"):
        return "JSON"
    return "XML"


def find_job(request: web.Request, fmt: str) -> V1Job:
    job_id = request.match_info["job_id"]
    try:
        return state_of(request).bulk_v1.get(job_id)
    except JobNotFoundError:
        raise v1_error(400, "InvalidJob", f"Invalid job id: {job_id}", fmt) from None


def find_batch(request: web.Request, job: V1Job, fmt: str) -> V1Batch:
    batch_id = request.match_info["batch_id"]
    try:
        return state_of(request).bulk_v1.batch(job, batch_id)
    except BatchNotFoundError:
        raise v1_error(400, "InvalidBatch", f"Invalid batch id: {batch_id}", fmt) from None


# ----- jobs ----------------------------------------------------------------------------------
async def create_job(request: web.Request) -> web.Response:
    fmt = job_format(request)
    session = authenticate(request, fmt)
    state = state_of(request)
    try:
        fields = parse_job_request(await request.read(), fmt)
    except ValueError as error:
        raise v1_error(400, "InvalidJob" if fmt == "JSON" else "InvalidXML", str(error),
                       fmt) from None
    operation = str(fields.get("operation") or "")
    if operation not in (*QUERY_OPERATIONS, *INGEST_OPERATIONS):
        raise v1_error(400, "InvalidJob", f"Invalid operation {operation!r}: use one of "
                       f"{', '.join((*INGEST_OPERATIONS, *QUERY_OPERATIONS))}", fmt)
    sobject = str(fields.get("object") or "")
    found = state.records.schema.object(sobject) if sobject else None
    if found is None:
        raise v1_error(400, "InvalidJob", f"Unable to find object: {sobject}", fmt)
    content_type = str(fields.get("contentType") or "XML")
    if content_type not in CONTENT_TYPES:
        raise v1_error(400, "InvalidJob", f"Invalid contentType {content_type!r}: the emulated "
                       f"org accepts {', '.join(CONTENT_TYPES)}", fmt)
    mode = CONCURRENCY_MODES.get(str(fields.get("concurrencyMode", "Parallel")).lower())
    if mode is None:
        raise v1_error(400, "InvalidJob", "Invalid concurrencyMode: use Parallel or Serial",
                       fmt)
    external_id = fields.get("externalIdFieldName") or None
    if operation == "upsert" and not external_id:
        raise v1_error(400, "InvalidJob", "External ID was blank for upsert: set "
                       "externalIdFieldName (an External ID field of the object, or Id)", fmt)
    if operation == "upsert":
        key_field = found.field(str(external_id))
        if key_field is None or not (key_field.external_id or key_field.type == "id"):
            raise v1_error(400, "InvalidJob", f"Field name provided, {external_id} does not "
                           "match an External ID, Salesforce Id, or indexed field for "
                           f"{found.name}", fmt)
        external_id = key_field.name
    try:
        pk_chunking = parse_pk_chunking(request.headers.get(PK_CHUNKING_HEADER))
    except ValueError as error:
        raise v1_error(400, "InvalidJob", str(error), fmt) from None
    job = state.bulk_v1.create(
        operation=operation, object=found.name, content_type=content_type,
        api_version=request.match_info["version"], created_by_id=session.user_id,
        concurrency_mode=mode,
        external_id_field=str(external_id) if operation == "upsert" else None,
        pk_chunking=pk_chunking if operation in QUERY_OPERATIONS else None)
    return job_response(job, fmt, status=201)


async def get_job(request: web.Request) -> web.Response:
    fmt = error_format(request)
    authenticate(request, fmt)
    job = find_job(request, fmt)
    content_type = request.headers.get("Content-Type", "")
    if not is_json(content_type) and "xml" not in content_type.lower():
        fmt = batch_format(job)
    return job_response(job, fmt)


async def update_job(request: web.Request) -> web.Response:
    """Close (`state: Closed`) or abort (`state: Aborted`) a job."""
    fmt = job_format(request)
    authenticate(request, fmt)
    job = find_job(request, fmt)
    try:
        fields = parse_job_request(await request.read(), fmt)
    except ValueError as error:
        raise v1_error(400, "InvalidJob" if fmt == "JSON" else "InvalidXML", str(error),
                       fmt) from None
    jobs = state_of(request).bulk_v1
    target = fields.get("state")
    try:
        if target == CLOSED:
            jobs.close(job)
        elif target == ABORTED:
            jobs.abort(job)
        else:
            raise v1_error(400, "InvalidJobState", f"Invalid state {target!r}: a job can be "
                           "set to Closed or Aborted", fmt)
    except InvalidJobStateError as error:
        raise v1_error(400, "InvalidJobState", str(error), fmt) from None
    return job_response(job, fmt)


# ----- batches -------------------------------------------------------------------------------
async def add_batch(request: web.Request) -> web.Response:
    fmt = error_format(request)
    authenticate(request, fmt)
    state = state_of(request)
    job = find_job(request, fmt)
    if job.state != OPEN:
        raise v1_error(400, "InvalidJobState", f"Job {job.id} is {job.state}: batches can be "
                       "added to Open jobs only", fmt)
    data = await request.read()
    if len(data) > MAX_BATCH_BYTES:
        # a real org's words (the upload is refused; no batch is created)
        raise v1_error(400, "ClientInputError", "Failed to read request. Exceeded max size "
                       f"limit of {MAX_BATCH_BYTES}", fmt)
    jobs = state.bulk_v1
    if job.is_query:
        soql = data.decode("utf-8", errors="replace").strip()
        batch = jobs.add_batch(job, soql=soql)
    else:
        batch = jobs.add_batch(job)
    assert job.work_dir is not None  # noqa: S101 - set by BulkV1Jobs.create
    batch.request_path = job.work_dir / f"{batch.id}.request"
    await asyncio.get_running_loop().run_in_executor(None, batch.request_path.write_bytes, data)
    store = state.records
    if job.is_query:
        def query_work(running_job: V1Job, running: V1Batch) -> None:
            run_query_batch(running_job, running, store, jobs.new_result_id)

        if job.pk_chunking is not None:
            jobs.start_chunked(job, batch, lambda: plan_chunks(job, soql, store), query_work)
        else:
            jobs.start(job, batch, query_work)
    else:
        fail_row = state.faults.lock_failure_hook()

        def ingest_work(running_job: V1Job, running: V1Batch) -> None:
            run_ingest_batch(running_job, running, store, fail_row)

        jobs.start(job, batch, ingest_work)
    return batch_response(job, batch, status=201)


async def list_batches(request: web.Request) -> web.Response:
    fmt = error_format(request)
    authenticate(request, fmt)
    return batch_list_response(find_job(request, fmt))


async def get_batch(request: web.Request) -> web.Response:
    fmt = error_format(request)
    authenticate(request, fmt)
    job = find_job(request, fmt)
    return batch_response(job, find_batch(request, job, fmt))


async def get_request(request: web.Request) -> web.StreamResponse:
    """The batch's uploaded data (a PK chunk's request is its generated SOQL)."""
    fmt = error_format(request)
    authenticate(request, fmt)
    job = find_job(request, fmt)
    batch = find_batch(request, job, fmt)
    if batch.request_path is None:
        return web.Response(body=(batch.soql or "").encode(), content_type="text/plain")
    return await send_file(request, batch.request_path,
                           "text/plain" if job.is_query else DATA_TYPES[job.content_type])


async def get_result(request: web.Request) -> web.StreamResponse:
    """Ingest: the results file. Query: the list of result ids."""
    fmt = error_format(request)
    authenticate(request, fmt)
    job = find_job(request, fmt)
    batch = find_batch(request, job, fmt)
    if batch.state in (FAILED, NOT_PROCESSED):
        # what a real org answers for a batch that wrote no results (its stateMessage says why)
        raise v1_error(400, "InvalidBatch", "Records not processed", fmt)
    if batch.state != COMPLETED:
        raise v1_error(400, "InvalidBatch", f"Batch not completed: it is {batch.state}"
                       + (f" ({batch.state_message})" if batch.state_message else ""), fmt)
    if job.is_query:
        return result_list_response(job, list(batch.result_paths))
    return await send_file(request, batch.result_paths["result"],
                           INGEST_RESULT_TYPES[job.content_type])


async def get_result_file(request: web.Request) -> web.StreamResponse:
    fmt = error_format(request)
    authenticate(request, fmt)
    job = find_job(request, fmt)
    batch = find_batch(request, job, fmt)
    path = batch.result_paths.get(request.match_info["result_id"]) if job.is_query else None
    if path is None or batch.state != COMPLETED:
        raise v1_error(400, "InvalidBatch", f"Invalid result id {request.match_info['result_id']}"
                       f" for batch {batch.id}: list them with GET …/batch/{batch.id}/result",
                       fmt)
    return await send_file(request, path, DATA_TYPES[job.content_type])
