"""Waiting for an emulated Bulk 2.0 job, shared by the query and ingest wire tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

TERMINAL = ("JobComplete", "Failed", "Aborted")


def wait_until_terminal(job_info: Callable[[], dict[str, Any]], job_id: str,
                        timeout: float = 120) -> dict[str, Any]:
    """Poll ``job_info()`` until the job ends; the tests then assert on the final state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = job_info()
        if info["state"] in TERMINAL:
            return info
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not finished after {timeout}s")
