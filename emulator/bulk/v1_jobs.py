"""Bulk API 1.0 state: jobs that collect batches, and the runner that processes each batch.

Unlike Bulk 2.0, a 1.0 job is only a container: the client adds batches while the job is
Open, and every batch is processed on its own as soon as it is added (Queued -> InProgress ->
Completed | Failed). Closing a job only stops new batches; aborting it leaves its queued
batches NotProcessed. A PK-chunked query job turns its batch into one batch per chunk of
record ids and leaves the original batch NotProcessed.

Processing is Bulk 2.0's, from the shared runner (`emulator.bulk.runner`): blocking work
runs on a thread pool and a batch finishes no sooner than the org's
`bulk_job_delay_seconds` (so clients exercise their polling loops); Serial jobs process one
batch at a time. This module knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from forcebeam.emulator.bulk.jobs import JobNotFoundError
from forcebeam.emulator.bulk.runner import ABORTED, FAILED, OPEN, Tracked, WorkRunner

log = logging.getLogger(__name__)

# Job states: OPEN, ABORTED (shared with Bulk 2.0) and
CLOSED = "Closed"
# Batch states: IN_PROGRESS (set by the shared runner), FAILED and
QUEUED = "Queued"
COMPLETED = "Completed"
NOT_PROCESSED = "NotProcessed"
BATCH_TERMINAL = frozenset({COMPLETED, FAILED, NOT_PROCESSED})

QUERY_OPERATIONS = ("query", "queryAll")
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
CONTENT_TYPES = ("CSV", "JSON", "XML")

#: What an aborted job's queued batches and a PK-chunked job's original batch say.
ABORTED_MESSAGE = "The job was aborted before this batch was processed"
CHUNKED_MESSAGE = ("Original batch of a PK-chunked job: its query runs as one batch per "
                   "chunk of record ids (list the job's batches for their results)")


class BatchNotFoundError(LookupError):
    """Unknown batch id for this job (400 InvalidBatch on the wire)."""


class InvalidJobStateError(ValueError):
    """A request the job's current state does not allow (400 InvalidJobState)."""


class BatchFailedError(Exception):
    """Raised by batch work: the batch ends Failed with this message as `stateMessage`."""


@dataclass
class PkChunking:
    """Parsed `Sforce-Enable-PKChunking` header of a query job."""

    chunk_size: int = 100_000
    parent: str | None = None
    start_row: str | None = None


@dataclass(kw_only=True)
class V1Batch(Tracked):
    id: str
    job_id: str
    state: str = QUEUED
    state_message: str | None = None
    number_records_processed: int = 0
    number_records_failed: int = 0
    processing_ms: int = 0
    request_path: Path | None = None  # the uploaded batch data (GET …/request)
    soql: str | None = None  # query batches
    result_paths: dict[str, Path] = field(default_factory=dict)  # result id -> file

    def set_state(self, state: str, message: str | None = None) -> None:
        if message is not None:
            self.state_message = message
        super().set_state(state)

    @property
    def terminal(self) -> bool:
        return self.state in BATCH_TERMINAL


@dataclass(kw_only=True)
class V1Job(Tracked):
    """A Bulk 1.0 job (field names follow jobInfo)."""

    id: str
    operation: str
    object: str
    content_type: str
    api_version: str
    created_by_id: str
    concurrency_mode: str = "Parallel"
    external_id_field: str | None = None
    pk_chunking: PkChunking | None = None
    state: str = OPEN
    batches: list[V1Batch] = field(default_factory=list)
    work_dir: Path | None = None
    serial_lock: asyncio.Lock | None = None

    @property
    def is_query(self) -> bool:
        return self.operation in QUERY_OPERATIONS

    def count(self, state: str) -> int:
        return sum(1 for batch in self.batches if batch.state == state)

    @property
    def number_records_processed(self) -> int:
        return sum(batch.number_records_processed for batch in self.batches)

    @property
    def number_records_failed(self) -> int:
        return sum(batch.number_records_failed for batch in self.batches)

    @property
    def processing_ms(self) -> int:
        return sum(batch.processing_ms for batch in self.batches)


BatchWork = Callable[[V1Job, V1Batch], None]


class BulkV1Jobs(WorkRunner):
    """Registry of the org's Bulk 1.0 jobs and the runner that processes their batches.

    `delay_seconds` is read when each batch starts (an admin change applies to the next
    batch); `on_batch_processed` is called once per batch that starts processing (the
    org's DailyBulkApiBatches meter).
    """

    def __init__(self, data_dir: Path, delay_seconds: Callable[[], float] = lambda: 0.0,
                 on_batch_processed: Callable[[], None] = lambda: None,
                 workers: int = 2) -> None:
        super().__init__(Path(data_dir) / "bulk-v1", delay_seconds, workers, "bulk-v1")
        self._on_batch_processed = on_batch_processed
        self._jobs: dict[str, V1Job] = {}
        self._job_ids = itertools.count(1)
        self._batch_ids = itertools.count(1)
        self._result_ids = itertools.count(1)

    # Ids keep Salesforce's key prefixes (750 job, 751 batch, 752 result) and a 'V' so they
    # never collide with Bulk 2.0 job ids.
    def _job_id(self) -> str:
        return f"750V{next(self._job_ids):011d}AAA"

    def new_result_id(self) -> str:
        return f"752V{next(self._result_ids):011d}AAA"

    def create(self, **fields: object) -> V1Job:
        job = V1Job(id=self._job_id(), **fields)  # type: ignore[arg-type]
        job.work_dir = self.work_dir(job.id)
        with self._lock:
            self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> V1Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    def batch(self, job: V1Job, batch_id: str) -> V1Batch:
        for batch in job.batches:
            if batch.id == batch_id:
                return batch
        raise BatchNotFoundError(batch_id)

    def add_batch(self, job: V1Job, *, soql: str | None = None) -> V1Batch:
        """A new Queued batch of `job` (the caller writes its request data, then starts it)."""
        batch = V1Batch(id=f"751V{next(self._batch_ids):011d}AAA", job_id=job.id, soql=soql)
        job.batches.append(batch)
        return batch

    def close(self, job: V1Job) -> None:
        if job.state != OPEN:
            raise InvalidJobStateError(f"Closing already {job.state} Job not allowed")
        job.set_state(CLOSED)

    def abort(self, job: V1Job) -> None:
        if job.state == ABORTED:
            raise InvalidJobStateError("Aborting already Aborted Job not allowed")
        job.set_state(ABORTED)
        for batch in job.batches:
            if batch.state == QUEUED:
                batch.set_state(NOT_PROCESSED, ABORTED_MESSAGE)

    # ---------------------------------------------------------------- processing
    def start(self, job: V1Job, batch: V1Batch, work: BatchWork) -> None:
        """Process `batch` with `work(job, batch)` in the pool; returns at once."""
        self._spawn(self._run(job, batch, work))

    def start_chunked(self, job: V1Job, batch: V1Batch, plan: Callable[[], list[str]],
                      work: BatchWork) -> None:
        """PK chunking: `plan()` (on a thread) gives one SOQL per chunk; each becomes a
        batch processed by `work`, and the original batch ends NotProcessed. A plan that
        raises BatchFailedError fails the original batch instead."""
        self._spawn(self._chunk(job, batch, plan, work))

    async def _chunk(self, job: V1Job, batch: V1Batch, plan: Callable[[], list[str]],
                     work: BatchWork) -> None:
        try:
            chunks = await self._in_pool(plan)
        except BatchFailedError as error:
            batch.set_state(FAILED, str(error))
            return
        except Exception as error:  # noqa: BLE001 - any failure fails the batch
            log.exception("PK chunking of batch %s failed", batch.id)
            batch.set_state(FAILED, f"InvalidBatch : {error}")
            return
        for soql in chunks:
            if job.state == ABORTED:
                break
            self.start(job, self.add_batch(job, soql=soql), work)
        batch.set_state(NOT_PROCESSED, CHUNKED_MESSAGE)

    async def _run(self, job: V1Job, batch: V1Batch, work: BatchWork) -> None:
        if job.concurrency_mode == "Serial":
            if job.serial_lock is None:
                job.serial_lock = asyncio.Lock()
            async with job.serial_lock:
                await self._process(job, batch, work)
        else:
            await self._process(job, batch, work)

    async def _process(self, job: V1Job, batch: V1Batch, work: BatchWork) -> None:
        if batch.state != QUEUED:  # aborted while queued
            return

        async def run() -> None:
            self._on_batch_processed()
            await self._in_pool(work, job, batch)

        def failed(error: Exception) -> None:
            if isinstance(error, BatchFailedError):
                batch.set_state(FAILED, str(error))
                return
            log.exception("bulk 1.0 batch %s failed", batch.id)
            batch.set_state(FAILED, f"InvalidBatch : {error or type(error).__name__}")

        if await self._process_unit(batch, run, failed):
            batch.set_state(COMPLETED)

    def shutdown(self) -> None:
        """Stop quickly at server shutdown."""
        self._stop()
