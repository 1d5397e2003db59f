"""Live progress of long extracts: rows so far (of expected), rows/s, every few seconds.

Beam's local runners only report metrics when a pipeline ends, and with
`direct_running_mode=multi_processing` the rows are read in other processes. So each
Salesforce stage gets a small side branch, `_CountRows`, that keeps its count in a file under
a progress directory (one file per worker process and stage, replaced atomically about twice
a second); the driver sums the files on a timer. The directory comes from an environment
variable the runner sets for local runs only: on remote workers the tap does nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import apache_beam as beam
import pyarrow as pa

PROGRESS_DIR_VARIABLE = "FORCEBEAM_PROGRESS_DIR"
_WRITE_EVERY_SECONDS = 0.5
_CHECK_EVERY_ROWS = 512


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "stage"


class RowCount:
    """The rows of one stage counted into `<dir>/<stage>.<process>.<id>.json` (the files the
    printer sums). The tap DoFns count with one; a stage that counts rows it does not emit
    (a write whose `written` output nobody reads) is handed one in their place. Picklable
    until `setup()`."""

    def __init__(self, stage: str, directory: str | None) -> None:
        self.stage = stage
        self.directory = directory

    def setup(self) -> None:
        self._rows = 0
        self._first: float | None = None
        self._written_at = 0.0
        self._file: Path | None = None
        if self.directory and os.path.isdir(self.directory):
            name = f"{_slug(self.stage)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.json"
            self._file = Path(self.directory) / name

    def start_bundle(self) -> None:
        # The clock of a stage starts with its work, not with its first counted row: a read
        # handing on 100k-row pages would otherwise show a page counted in no time.
        if self._first is None:
            self._first = time.time()

    def add_one(self) -> None:
        """One row (the clock is read every few hundred rows only)."""
        if self._file is None:
            return
        self._rows += 1
        if self._rows % _CHECK_EVERY_ROWS == 0:
            self._save_if_due()

    def add(self, rows: int) -> None:
        if self._file is None:
            return
        self._rows += rows
        self._save_if_due()

    def finish_bundle(self) -> None:
        if self._file is not None and self._rows:
            self._save()

    def _save_if_due(self) -> None:
        now = time.monotonic()
        if now - self._written_at >= _WRITE_EVERY_SECONDS:
            self._written_at = now
            self._save()

    def _save(self) -> None:
        assert self._file is not None
        payload = {"stage": self.stage, "rows": self._rows, "first": self._first,
                   "last": time.time()}
        temporary = self._file.with_suffix(".tmp")
        temporary.write_text(json.dumps(payload))
        os.replace(temporary, self._file)


class _CountRows(beam.DoFn):
    """Counts the rows of one stage (`RowCount`); emits nothing."""

    def __init__(self, stage: str, directory: str | None) -> None:
        self.count = RowCount(stage, directory)

    def setup(self) -> None:
        self.count.setup()

    def start_bundle(self) -> None:
        self.count.start_bundle()

    def process(self, element: Any):
        self.count.add_one()
        return
        yield  # a generator that never yields: a leaf branch

    def finish_bundle(self) -> None:
        self.count.finish_bundle()


def counter_for(fn: Any) -> RowCount | None:
    """A fresh `RowCount` for the stage a progress tap counts; None for any other DoFn."""
    if isinstance(fn, _CountRows):
        return RowCount(fn.count.stage, fn.count.directory)
    return None


@contextmanager
def collecting(enabled: bool = True) -> Iterator[str | None]:
    """A progress directory for one local run, announced to taps built inside the block."""
    if not enabled:
        yield None
        return
    from forcebeam.auth import tempfiles

    directory = tempfiles.make_dir("progress")  # swept by the next run if we are killed
    previous = os.environ.get(PROGRESS_DIR_VARIABLE)
    os.environ[PROGRESS_DIR_VARIABLE] = directory
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if previous is None:
            os.environ.pop(PROGRESS_DIR_VARIABLE, None)
        else:
            os.environ[PROGRESS_DIR_VARIABLE] = previous


def enabled() -> bool:
    """Whether a run announced a progress directory (taps are added only then)."""
    return bool(os.environ.get(PROGRESS_DIR_VARIABLE))


class _CountRowsOrBatches(_CountRows):
    """Also counts Arrow batches as they are, so a read handing its pages to a batch-aware
    sink as tables is not exploded into rows for the sake of a progress line."""

    def get_input_batch_type(self, input_element_type: Any) -> Any:
        return pa.Table     # the annotation below is a string (postponed evaluation)

    @beam.DoFn.yields_elements
    def process_batch(self, batch: Any) -> Iterator[Any]:
        self.count.add(len(batch))      # a table's or a frame's rows
        return iter(())


class _CountRowsOrFrames(_CountRowsOrBatches):
    """Counts pandas frames as they are (`ReadFromCsv`'s), so a write's input is not
    exploded into rows for the sake of a progress line (the write takes the frames too)."""

    def get_input_batch_type(self, input_element_type: Any) -> Any:
        import pandas as pd

        return pd.DataFrame


def tap(pcoll: beam.PCollection, stage: str, *, batches: bool = False) -> None:
    """Attach a row counter to `pcoll` (a no-op branch unless a local run asked for it).

    ``batches``: `pcoll` has a schema with an Arrow form, and may carry Arrow batches.
    Otherwise a schema'd `pcoll` may carry pandas frames, which are counted as they are.
    """
    directory = os.environ.get(PROGRESS_DIR_VARIABLE)
    if not directory:
        return
    from apache_beam.typehints.row_type import RowTypeConstraint

    kind = (_CountRowsOrBatches if batches
            else _CountRowsOrFrames if isinstance(pcoll.element_type, RowTypeConstraint)
            else _CountRows)
    counter = kind(stage, directory)
    _ = pcoll | f"ProgressOf{_slug(stage)}" >> beam.ParDo(counter)


@dataclass
class StageProgress:
    rows: int = 0
    first: float | None = None
    last: float | None = None

    @property
    def seconds(self) -> float:
        if self.first is None or self.last is None:
            return 0.0
        return max(self.last - self.first, 1e-6)


def read_progress(directory: str) -> dict[str, StageProgress]:
    """Sum the counter files of every process, per stage."""
    totals: dict[str, StageProgress] = {}
    for path in Path(directory).glob("*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # replaced while we read it; next tick will see it
        stage = totals.setdefault(record["stage"], StageProgress())
        stage.rows += int(record["rows"])
        if record.get("first") is not None:
            stage.first = min(filter(None, (stage.first, record["first"])))
        stage.last = max(filter(None, (stage.last, record.get("last"))), default=None)
    return totals


class ProgressPrinter(threading.Thread):
    """Prints `stage: N rows [of M] (R rows/s)` every `interval` seconds while a run lasts."""

    def __init__(self, directory: str, interval: float = 3.0, stream: TextIO | None = None,
                 expected: Callable[[str], int | None] | None = None) -> None:
        super().__init__(name="forcebeam-progress", daemon=True)
        self._directory = directory
        self._interval = interval
        self._stream = stream or sys.stderr
        self._expected = expected or (lambda _stage: None)
        self._stop_event = threading.Event()
        self._began = time.time()

    def run(self) -> None:
        while not self._stop_event.wait(self._interval):
            self.print_once()

    def print_once(self) -> None:
        elapsed = time.time() - self._began
        for stage, progress in sorted(read_progress(self._directory).items()):
            expected = self._expected(stage)
            of = f" of {expected:,}" if expected else ""
            percent = f" {100 * progress.rows / expected:.0f}%" if expected else ""
            rate = progress.rows / progress.seconds if progress.rows > 1 else 0.0
            print(f"[{elapsed:6.1f}s] {stage}: {progress.rows:,} rows{of}{percent}"
                  f" ({rate:,.0f} rows/s)", file=self._stream, flush=True)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)
