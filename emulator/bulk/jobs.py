"""Bulk API 2.0 job state: what a job is, which state changes are legal, and the registry.

Query jobs go UploadComplete -> InProgress -> JobComplete | Failed | Aborted; ingest jobs
start Open (accepting uploads) and then follow the same path. Work runs asynchronously, as on
a real org: `BulkJobs.start` moves the job to InProgress, runs the blocking work in a thread
pool (SQLite and CSV work must not stall the event loop serving other clients) and completes
the job no sooner than the configured delay, so clients exercise their polling loops.

This module knows nothing of HTTP: the wire modules render jobs as JSON and map the
exceptions below to Salesforce's error bodies.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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

log = logging.getLogger(__name__)

OPEN = "Open"
UPLOAD_COMPLETE = "UploadComplete"
IN_PROGRESS = "InProgress"
JOB_COMPLETE = "JobComplete"
FAILED = "Failed"
ABORTED = "Aborted"
TERMINAL_STATES = frozenset({JOB_COMPLETE, FAILED, ABORTED})

QUERY = "query"
INGEST = "ingest"

#: Bulk jobs keep the `750` key prefix of AsyncApexJob/Bulk jobs on a real org.
JOB_ID_PREFIX = "750"


class JobNotFoundError(LookupError):
    """Unknown or deleted job (404 NOT_FOUND on the wire)."""


class InvalidJobStateError(ValueError):
    """A state change or request the job's current state does not allow."""


@dataclass
class BulkJob:
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
    created_date: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    system_modstamp: dt.datetime = field(
        default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    number_records_processed: int = 0
    number_records_failed: int = 0
    retries: int = 0
    processing_ms: int = 0
    error_message: str | None = None
    work_dir: Path | None = None
    discarded: bool = False        # deleted, or the server is stopping: stop background work

    def set_state(self, state: str) -> None:
        self.state = state
        self.system_modstamp = dt.datetime.now(dt.timezone.utc)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass
class QueryJob(BulkJob):
    query: str = ""
    result: ResultFile | None = None


@dataclass
class IngestJob(BulkJob):
    external_id_field: str | None = None
    uploads: list[Path] = field(default_factory=list)
    upload_bytes: int = 0
    successful_results: Path | None = None
    failed_results: Path | None = None
    unprocessed_records: Path | None = None


class BulkJobs:
    """Registry of every Bulk 2.0 job of the org, and the runner that completes them.

    `delay_seconds` is read at each job start (a callable) so an admin change to the org's
    `bulk_job_delay_seconds` takes effect for the next job.
    """

    def __init__(self, data_dir: Path, delay_seconds: Callable[[], float] = lambda: 0.0,
                 workers: int = 2,
                 processing: Callable[[], QueryProcessing] = QueryProcessing) -> None:
        self.root = Path(data_dir) / "bulk"
        # Jobs live in memory, so files of a previous run are orphans (a 1M-row result file
        # is hundreds of MB): start from an empty directory.
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self._delay_seconds = delay_seconds
        self._jobs: dict[str, BulkJob] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bulk")
        self._tasks: set[asyncio.Task] = set()
        self._processing = processing
        self._chunk_pool: tuple[int, asyncio.Semaphore] | None = None

    def new_id(self) -> str:
        return f"{JOB_ID_PREFIX}{next(self._ids):012d}AAA"

    def add(self, job: BulkJob) -> BulkJob:
        job.work_dir = self.root / job.id
        job.work_dir.mkdir(parents=True, exist_ok=True)
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
        task = asyncio.get_running_loop().create_task(self._run(job, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: BulkJob, work: Callable[[BulkJob], None]) -> None:
        model = self._processing() if job.kind == QUERY else QueryProcessing()
        if model.queue_seconds:
            await asyncio.sleep(model.queue_seconds)     # queued: still UploadComplete
        started = time.monotonic()
        delay = max(0.0, float(self._delay_seconds() or 0.0))
        if job.state == ABORTED:
            return
        job.set_state(IN_PROGRESS)
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, work, job)
            if isinstance(job, QueryJob) and model.chunk_rows_per_second:
                self._chunk_pool = pool_for(model, self._chunk_pool)
                await run_chunks(model.chunk_seconds(job.number_records_processed,
                                                     chunking_allowed(job.query)),
                                 model, self._chunk_pool[1])
        except Exception as error:  # noqa: BLE001 - any failure is the job's Failed state
            if not isinstance(error, QueryTimeoutError):
                log.exception("bulk job %s failed", job.id)
            if job.state != ABORTED:
                job.error_message = str(error) or type(error).__name__
                job.set_state(FAILED)
            return
        remaining = delay - (time.monotonic() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)
        job.processing_ms = int((time.monotonic() - started) * 1000)
        if job.state == IN_PROGRESS:
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
        for task in list(self._tasks):
            task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _past(state: str) -> str:
    return {JOB_COMPLETE: "Completed", FAILED: "Failed", ABORTED: "Aborted"}.get(state, state)


def _remove_tree(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)

