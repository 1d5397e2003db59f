"""Bulk API 2.0 job state: what a job is, which state changes are legal, and the registry.

Query jobs go UploadComplete -> InProgress -> JobComplete | Failed | Aborted; ingest jobs
start Open (accepting uploads) and then follow the same path. Work runs asynchronously, as on
a real org: `BulkJobs.start` hands the job to the shared runner (`emulator.bulk.runner`:
InProgress, blocking work on a thread pool, the org's minimum delay), after the query
processing model's time in the queue and before its chunk timing.

This module knows nothing of HTTP: the wire modules render jobs as JSON and map the
exceptions below to Salesforce's error bodies.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from forcebeam.emulator.bulk.processing import (
    QueryProcessing,
    QueryTimeoutError,
    chunking_allowed,
    pool_for,
    run_chunks,
)
from forcebeam.emulator.bulk.results import ResultFile
from forcebeam.emulator.bulk.runner import ABORTED, FAILED, IN_PROGRESS, Tracked, WorkRunner
from forcebeam.emulator.bulk.runner import OPEN as OPEN

log = logging.getLogger(__name__)

UPLOAD_COMPLETE = "UploadComplete"
JOB_COMPLETE = "JobComplete"
TERMINAL_STATES = frozenset({JOB_COMPLETE, FAILED, ABORTED})

QUERY = "query"
INGEST = "ingest"

#: Bulk jobs keep the `750` key prefix of AsyncApexJob/Bulk jobs on a real org.
JOB_ID_PREFIX = "750"


class JobNotFoundError(LookupError):
    """Unknown or deleted job (404 NOT_FOUND on the wire)."""


class InvalidJobStateError(ValueError):
    """A state change or request the job's current state does not allow."""


@dataclass(kw_only=True)
class BulkJob(Tracked):
    """State shared by query and ingest jobs (field names follow the job-info JSON)."""

    id: str
    kind: str                      # QUERY or INGEST
    operation: str
    object: str
    api_version: str               # e.g. "62.0": results must be fetched with the same one
    created_by_id: str
    column_delimiter: str = "COMMA"
    line_ending: str = "LF"
    state: str = UPLOAD_COMPLETE
    number_records_processed: int = 0
    number_records_failed: int = 0
    retries: int = 0
    processing_ms: int = 0
    error_message: str | None = None
    work_dir: Path | None = None
    discarded: bool = False        # deleted, or the server is stopping: stop background work

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(kw_only=True)
class QueryJob(BulkJob):
    query: str = ""
    result: ResultFile | None = None


@dataclass(kw_only=True)
class IngestJob(BulkJob):
    external_id_field: str | None = None
    uploads: list[Path] = field(default_factory=list)
    upload_bytes: int = 0
    successful_results: Path | None = None
    failed_results: Path | None = None
    unprocessed_records: Path | None = None


class BulkJobs(WorkRunner):
    """Registry of every Bulk 2.0 job of the org, and the runner that completes them.

    `delay_seconds` is read at each job start (a callable) so an admin change to the org's
    `bulk_job_delay_seconds` takes effect for the next job.
    """

    def __init__(self, data_dir: Path, delay_seconds: Callable[[], float] = lambda: 0.0,
                 workers: int = 2,
                 processing: Callable[[], QueryProcessing] = QueryProcessing) -> None:
        super().__init__(Path(data_dir) / "bulk", delay_seconds, workers, "bulk")
        self._jobs: dict[str, BulkJob] = {}
        self._ids = itertools.count(1)
        self._processing = processing
        self._chunk_pool: tuple[int, asyncio.Semaphore] | None = None

    def new_id(self) -> str:
        return f"{JOB_ID_PREFIX}{next(self._ids):012d}AAA"

    def add(self, job: BulkJob) -> BulkJob:
        job.work_dir = self.work_dir(job.id)
        with self._lock:
            self._jobs[job.id] = job
        return job

    def get(self, kind: str, job_id: str) -> BulkJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.kind != kind:
            raise JobNotFoundError(job_id)
        return job

    def list(self, kind: str) -> list[BulkJob]:
        with self._lock:
            return [job for job in self._jobs.values() if job.kind == kind]

    def abort(self, job: BulkJob) -> None:
        if job.terminal:
            raise InvalidJobStateError(f"Aborting already {_past(job.state)} Job not allowed")
        job.set_state(ABORTED)

    def delete(self, job: BulkJob) -> None:
        """Forget a job and its files; only terminal (or, for ingest, uploaded) jobs."""
        deletable = job.terminal or (job.kind == INGEST and job.state == UPLOAD_COMPLETE)
        if not deletable:
            raise InvalidJobStateError(
                "Error encountered when deleting the job because the job is not terminated")
        job.discarded = True
        with self._lock:
            self._jobs.pop(job.id, None)
        _remove_tree(job.work_dir)

    def start(self, job: BulkJob, work: Callable[[BulkJob], None]) -> None:
        """Run `work(job)` in the pool and finish the job; returns at once."""
        self._spawn(self._run(job, work))

    async def _run(self, job: BulkJob, work: Callable[[BulkJob], None]) -> None:
        model = self._processing() if job.kind == QUERY else QueryProcessing()
        # The emulator's own rendering of the result file starts at once: it is our cost,
        # not the org's, so it runs under the modeled queue and chunk time instead of adding
        # to it (a real org's results are all there at JobComplete).
        rendering = asyncio.ensure_future(self._in_pool(work, job))
        if model.queue_seconds:
            await asyncio.sleep(model.queue_seconds)     # queued: still UploadComplete
        if job.state == ABORTED:
            await asyncio.gather(rendering, return_exceptions=True)
            return

        async def run() -> None:
            await rendering
            if isinstance(job, QueryJob) and model.chunk_rows_per_second:
                self._chunk_pool = pool_for(model, self._chunk_pool)
                await run_chunks(model.chunk_seconds(job.number_records_processed,
                                                     chunking_allowed(job.query)),
                                 model, self._chunk_pool[1])

        def failed(error: Exception) -> None:
            if not isinstance(error, QueryTimeoutError):
                log.exception("bulk job %s failed", job.id)
            if job.state != ABORTED:
                job.error_message = str(error) or type(error).__name__
                job.set_state(FAILED)

        if await self._process_unit(job, run, failed) and job.state == IN_PROGRESS:
            job.set_state(JOB_COMPLETE)

    def close(self) -> None:
        """Stop quickly at server shutdown: running jobs see Aborted and stop their loops
        (a 1M-row render would otherwise hold the process until it finishes)."""
        with self._lock:
            running = [job for job in self._jobs.values() if not job.terminal]
            for job in self._jobs.values():
                job.discarded = True
        for job in running:
            job.set_state(ABORTED)
        self._stop()


def _past(state: str) -> str:
    return {JOB_COMPLETE: "Completed", FAILED: "Failed", ABORTED: "Aborted"}.get(state, state)


def _remove_tree(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)

