"""Bulk API 2.0 result files: written once, served as byte ranges.

A query job's result set is rendered to one CSV file (the expensive part, done on a thread
that keeps running after the job is JobComplete: pages are served as soon as their rows are
on disk), together with a row index: the byte offset at which every row starts.
A results page is then just `header + file[offset(first) : offset(last + 1)]`, streamed from
disk in fixed-size chunks, so serving a 1M-row extract never holds a page in memory and never
re-runs the query. Locators are base64 of the first row number, the same shape as Salesforce's
(`MTAwMDAw` is base64 of "100000"), so they are stable and can be re-fetched.

Formatting follows Bulk 2.0 CSV (wire reference §5): every value double-quoted, null as an
empty field, booleans `true`/`false`, dates `YYYY-MM-DD`, datetimes `2019-01-05T03:41:05.000Z`,
relationship columns flattened with dotted headers (`Account.Name`).
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

#: Bulk 2.0 `columnDelimiter` names and the character each stands for.
COLUMN_DELIMITERS: dict[str, str] = {
    "BACKQUOTE": "`", "CARET": "^", "COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "TAB": "\t",
}
#: Bulk 2.0 `lineEnding` names.
LINE_ENDINGS: dict[str, str] = {"LF": "\n", "CRLF": "\r\n"}

#: Size of each disk read while streaming a page: large enough for few syscalls, small
#: enough that many concurrent downloads stay cheap.
READ_CHUNK_BYTES = 256 * 1024


def format_value(value: Any) -> str:
    """Render one Python value as Salesforce writes it in Bulk CSV (None -> empty field)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text or "E" in text:
            text = format(Decimal(text), "f")
        return text
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return str(value)


def _format_bool(value: Any) -> Any:
    return value if value is None else ("true" if value else "false")


def _format_optional(value: Any) -> Any:
    return value if value is None else format_value(value)


class _DatetimeFormatter:
    """Datetime -> `2019-01-05T03:41:05.000Z`, remembering the last value it formatted.

    One instance serves all datetime columns of one result file: LastModifiedDate and
    SystemModstamp are usually the same instant, so every other call is a comparison.
    """

    __slots__ = ("_last", "_text")

    def __init__(self) -> None:
        self._last: Any = None
        self._text: Any = None

    def __call__(self, value: Any) -> Any:
        if value is None:
            return None
        if value == self._last:
            return self._text
        if not isinstance(value, dt.datetime):
            return format_value(value)
        utc = value if value.tzinfo is dt.timezone.utc or value.tzinfo is None else (
            value.astimezone(dt.timezone.utc))
        text = "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031 - fastest form
            utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second,
            utc.microsecond // 1000)
        self._last, self._text = value, text
        return text


def _format_date(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else _format_optional(value)


def _format_float(value: Any) -> Any:
    if isinstance(value, float):
        text = repr(value)
        return text if "e" not in text else format_value(value)
    return _format_optional(value)


_CONVERTERS_BY_TYPE: dict[str, Callable[[Any], Any]] = {
    "boolean": _format_bool, "date": _format_date, "time": _format_optional,
    "double": _format_float, "currency": _format_float, "percent": _format_float,
}


#: Types SQLite renders as Bulk CSV text itself (`QueryEngine.execute(text_sql=...)`), in C:
#: datetimes are stored as epoch milliseconds, booleans as 0/1. Exactly what
#: `format_value` writes (`2019-01-05T03:41:05.000Z`, `true`/`false`), without a Python
#: call per value: the render of a large query job is what every extract waits for.
TEXT_SQL = {
    "datetime": "strftime('%Y-%m-%dT%H:%M:%fZ', {} / 1000.0, 'unixepoch')",
    "boolean": "CASE WHEN {0} IS NULL THEN NULL WHEN {0} THEN 'true' ELSE 'false' END",
}


def converters_for(field_types: Sequence[str], rendered_by_sql: Collection[str] = ()
                   ) -> list[Callable[[Any], Any] | None]:
    """Per-column converters for one result file (None = written as is).

    Types absent here (text, ids, ints) go to the csv module untouched (None becomes an empty
    field), which is what keeps rendering fast, as do the types in `rendered_by_sql` (their
    values arrive as text, see `TEXT_SQL`). Datetime columns share one memoising formatter,
    so the list must not be shared between threads.
    """
    datetimes = _DatetimeFormatter()
    return [None if kind in rendered_by_sql
            else datetimes if kind == "datetime" else _CONVERTERS_BY_TYPE.get(kind)
            for kind in field_types]


def encode_locator(row: int) -> str:
    """Opaque page locator for the page starting at `row` (base64, padding stripped)."""
    return base64.b64encode(str(row).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int | None:
    """Row number behind a locator, or None if it is not one of ours."""
    padded = locator + "=" * (-len(locator) % 4)
    try:
        text = base64.b64decode(padded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class _OffsetRecorder:
    """File-like sink for csv.writer that buffers bytes and records where each row starts.

    csv.writer calls `write` exactly once per row, so the running byte count before each call
    is that row's offset. After each flush to disk, `on_flush(rows)` announces how many rows
    are complete on disk (readers may serve them while the rest is still rendering).
    """

    def __init__(self, target: BinaryIO, offsets: array, start: int,
                 on_flush: Callable[[int], None] | None = None) -> None:
        self._target = target
        self._offsets = offsets
        self._position = start
        self._pending: list[str] = []
        self._pending_size = 0
        self._on_flush = on_flush

    def write(self, text: str) -> None:
        self._offsets.append(self._position)
        # ASCII (the usual case) has as many bytes as characters: no per-row encode.
        self._position += len(text) if text.isascii() else len(text.encode("utf-8"))
        self._pending.append(text)
        self._pending_size += len(text)
        if self._pending_size >= READ_CHUNK_BYTES * 4:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._target.write("".join(self._pending).encode("utf-8"))
            self._pending.clear()
            self._pending_size = 0
            if self._on_flush is not None:
                self._target.flush()
                # The last row written has no end offset yet (the next row's start).
                self._on_flush(len(self._offsets) - 1)

    @property
    def position(self) -> int:
        return self._position


@dataclass
class ResultFile:
    """A CSV result set on disk plus its row index, possibly still being rendered.

    `offsets[i]` is the byte offset of row i; `offsets[row_count]` is the end of the data.
    The header line is kept in memory (it is small) because every page repeats it.

    Progressive rendering: a query job's file is written by a background thread while the
    job is already JobComplete (`total` rows, counted up front); `available` says how many
    leading rows are complete on disk, so a page is served as soon as its rows are there and
    the first page of a 1M-row job is ready in about a second instead of after the whole
    render. `error` is set if the render fails midway.
    """

    path: Path
    header: bytes
    offsets: array
    total: int | None = None
    available: int = 0
    complete: bool = True
    error: str | None = None

    @classmethod
    def pending(cls, path: Path, header: bytes, total: int) -> ResultFile:
        """An empty file announced with its final row count; rows arrive as it renders."""
        return cls(path=path, header=header, offsets=array("Q"), total=total, available=0,
                   complete=False)

    @property
    def row_count(self) -> int:
        if self.total is not None:
            return self.total
        return len(self.offsets) - 1

    def has_rows(self, end_row: int) -> bool:
        """True once rows [0, end_row) are on disk (or the render is over)."""
        return (self.complete and self.error is None) or self.available >= end_row

    def page_bounds(self, first_row: int, max_records: int) -> tuple[int, int, int | None]:
        """(start byte, end byte, next page's first row or None) of one results page."""
        last = min(first_row + max_records, self.row_count)
        next_row = last if last < self.row_count else None
        return self.offsets[first_row], self.offsets[last], next_row

    def page_size(self, first_row: int, max_records: int) -> int:
        start, end, _ = self.page_bounds(first_row, max_records)
        return len(self.header) + end - start

    def iter_page(self, first_row: int, max_records: int) -> Iterator[bytes]:
        """Yield a page as chunks: the header, then the rows read straight from disk."""
        start, end, _ = self.page_bounds(first_row, max_records)
        yield self.header
        with self.path.open("rb") as handle:
            handle.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = handle.read(min(READ_CHUNK_BYTES, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def write_result_file(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]], *,
                      delimiter: str = ",", line_ending: str = "\n",
                      should_stop: Any = None,
                      converters: Sequence[Callable[[Any], Any] | None] | None = None,
                      into: ResultFile | None = None,
                      ) -> ResultFile:
    """Stream `rows` into a CSV file at `path` and index its row boundaries.

    `converters` (one per column, None = write as is) replace the generic `format_value`
    when the column types are known: most columns then need no Python work per value.

    `should_stop` (a no-argument callable) is polled every few thousand rows so an aborted
    job stops rendering early; the partial file is still a valid ResultFile.

    `into`: a `ResultFile.pending` already handed to readers; its index and `available`
    grow as rows reach the disk, and it is marked complete at the end.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    offsets = into.offsets if into is not None else array("Q")
    header_line = csv_line(header, delimiter, line_ending)

    def published(rows_on_disk: int) -> None:
        if into is not None:
            into.available = rows_on_disk

    with path.open("wb") as handle:
        recorder = _OffsetRecorder(handle, offsets, 0,
                                   on_flush=published if into is not None else None)
        writer = csv.writer(recorder, delimiter=delimiter, lineterminator=line_ending,
                            quoting=csv.QUOTE_ALL)
        if converters is None:
            prepared: Iterable[Sequence[Any]] = (
                [format_value(value) for value in row] for row in rows)
        else:
            prepared = _convert(rows, converters)
        for index, row in enumerate(prepared):
            writer.writerow(row)
            if should_stop is not None and index % 4096 == 4095 and should_stop():
                break
        recorder.flush()
        offsets.append(recorder.position)
    if into is not None:
        into.total = len(offsets) - 1       # fewer if stopped early
        into.available = into.total
        into.complete = True
        return into
    return ResultFile(path=path, header=header_line, offsets=offsets)


def _convert(rows: Iterable[Sequence[Any]],
             converters: Sequence[Callable[[Any], Any] | None]) -> Iterator[Sequence[Any]]:
    active = [(index, convert) for index, convert in enumerate(converters) if convert]
    if not active:
        yield from rows
        return
    for row in rows:
        values = list(row)
        for index, convert in active:
            values[index] = convert(values[index])
        yield values


def csv_line(values: Sequence[str], delimiter: str = ",", line_ending: str = "\n") -> bytes:
    """One fully quoted CSV line (headers, which every page repeats)."""
    quoted = ['"' + value.replace('"', '""') + '"' for value in values]
    return (delimiter.join(quoted) + line_ending).encode("utf-8")
