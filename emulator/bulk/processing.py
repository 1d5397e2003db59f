"""How long a Bulk 2.0 query job takes on the org's side: queue, chunks, QUERY_TIMEOUT.

A model of what Salesforce documents (Bulk API 2.0 and Bulk API Developer Guide, "Bulk API
2.0 query" / "Limits"), each number a setting (fault spec key, see `emulator.state.faults`)
whose `realistic` value the README lists with its source:

* a job waits in a queue before it turns InProgress (`bulk_queue_seconds`; a peer measured
  ~14 s of fixed overhead per job on real orgs, the realistic profile uses 10 s);
* a query job is split server-side into chunks of up to `bulk_chunk_rows` rows (Salesforce:
  100k-250k) processed in parallel, at most `bulk_chunks_per_job` at once per job, from an
  org-wide pool of `bulk_chunk_workers` shared by concurrent jobs, each chunk at
  `bulk_chunk_rows_per_second` (assumptions: 4, 16 and 25k rows/s; Salesforce publishes no
  figures). ORDER BY or LIMIT disables chunking (documented): the whole job is one chunk;
* a chunk that would run longer than `bulk_query_timeout_seconds` (2 minutes, documented)
  fails the job with QUERY_TIMEOUT.

With `bulk_chunk_rows_per_second` unset (the default) a job takes no modeled time at all, as
before: only the file rendering and `bulk_job_delay_seconds` count.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass

__all__ = ["QueryProcessing", "QueryTimeoutError", "run_chunks", "chunking_allowed"]

QUERY_TIMEOUT_MESSAGE = "QUERY_TIMEOUT: Your query request was running for too long."
_UNCHUNKABLE = re.compile(r"\b(ORDER\s+BY|LIMIT)\b", re.IGNORECASE)


class QueryTimeoutError(Exception):
    """A chunk of the job ran past the query timeout (the job ends Failed)."""


@dataclass(frozen=True)
class QueryProcessing:
    """The modeled server-side processing of query jobs (see the module docstring)."""

    queue_seconds: float = 0.0
    chunk_rows: int = 250_000
    chunks_per_job: int = 4
    chunk_workers: int = 16
    chunk_rows_per_second: float | None = None
    query_timeout_seconds: float = 120.0

    def chunk_seconds(self, rows: int, chunked: bool) -> list[float]:
        """Processing time of each chunk of a job of `rows` rows."""
        if not self.chunk_rows_per_second or rows <= 0:
            return []
        if not chunked:
            return [rows / self.chunk_rows_per_second]
        sizes = [self.chunk_rows] * (rows // self.chunk_rows)
        if rows % self.chunk_rows:
            sizes.append(rows % self.chunk_rows)
        return [size / self.chunk_rows_per_second for size in sizes]


def chunking_allowed(soql: str) -> bool:
    """ORDER BY and LIMIT make Salesforce process a query job as one chunk."""
    return not _UNCHUNKABLE.search(soql)


async def run_chunks(seconds: list[float], model: QueryProcessing,
                     pool: asyncio.Semaphore) -> None:
    """Wait as the org would process these chunks; QueryTimeoutError past the timeout."""
    if not seconds:
        return
    per_job = asyncio.Semaphore(max(1, model.chunks_per_job))

    async def one(duration: float) -> None:
        async with per_job, pool:
            if duration > model.query_timeout_seconds:
                await asyncio.sleep(model.query_timeout_seconds)
                raise QueryTimeoutError(QUERY_TIMEOUT_MESSAGE)
            await asyncio.sleep(duration)

    await asyncio.gather(*(one(duration) for duration in seconds))


def pool_for(model: QueryProcessing, current: tuple[int, asyncio.Semaphore] | None
             ) -> tuple[int, asyncio.Semaphore]:
    """The org-wide chunk worker pool (recreated when its size setting changes)."""
    size = max(1, model.chunk_workers)
    if current is None or current[0] != size:
        return size, asyncio.Semaphore(size)
    return current


def job_chunks(rows: int, model: QueryProcessing) -> int:
    """How many chunks a chunked job of `rows` rows has (for job info / logs)."""
    return max(1, math.ceil(rows / max(1, model.chunk_rows)))
