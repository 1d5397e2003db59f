"""What Bulk API 2.0 jobs and Bulk API 1.0 batches share: a tracked state, a registry
directory, and the runner that processes one unit of work the way a real org does.

Processing, for either API: the unit moves to InProgress, its blocking work runs on a thread
pool (SQLite and CSV work must not stall the event loop serving other clients), and it
finishes no sooner than the org's `bulk_job_delay_seconds` (read at each start, so an admin
change applies to the next unit), so clients exercise their polling loops. What a failure
means (the unit's Failed state and message) is each API's own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
#: States both APIs name the same (each module adds its own).
OPEN = "Open"
IN_PROGRESS = "InProgress"
FAILED = "Failed"
ABORTED = "Aborted"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(kw_only=True)
class Tracked:
    """A job or batch: its state, CreatedDate and SystemModstamp (every state change moves
    it, as on a real org)."""

    state: str
    created_date: dt.datetime = field(default_factory=_now)
    system_modstamp: dt.datetime = field(default_factory=_now)

    def set_state(self, state: str) -> None:
        self.state = state
        self.system_modstamp = _now()


class WorkRunner:
    """A Bulk API's directory of job files, thread pool and background tasks.

    The directory starts empty: jobs live in memory, so files of a previous run are orphans
    (a 1M-row result file is hundreds of MB).
    """

    def __init__(self, root: Path, delay_seconds: Callable[[], float], workers: int,
                 thread_name_prefix: str) -> None:
        self.root = root
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self._delay_seconds = delay_seconds
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers,
                                            thread_name_prefix=thread_name_prefix)
        self._tasks: set[asyncio.Task[None]] = set()

    def work_dir(self, unit_id: str) -> Path:
        """A fresh directory for one job's files."""
        path = self.root / unit_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run `coroutine` in the background (kept referenced until it ends)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _in_pool(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking `func(*args)` on this API's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def _process_unit(self, unit: Any, work: Callable[[], Awaitable[None]],
                       failed: Callable[[Exception], None]) -> bool:
        """InProgress, `work()`, then wait out the org's minimum delay; sets the unit's
        `processing_ms` and returns True, or calls `failed(error)` and returns False."""
        started = time.monotonic()
        delay = max(0.0, float(self._delay_seconds() or 0.0))
        unit.set_state(IN_PROGRESS)
        try:
            await work()
        except Exception as error:  # noqa: BLE001 - any failure is the unit's Failed state
            failed(error)
            return False
        remaining = delay - (time.monotonic() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)
        unit.processing_ms = int((time.monotonic() - started) * 1000)
        return True

    def _stop(self) -> None:
        """Cancel background work and the pool's queued calls (server shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
