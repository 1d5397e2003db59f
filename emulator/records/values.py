"""How each field type is stored in SQLite and read back as a Python value.

Storage: datetimes as UTC epoch milliseconds (so ordering and ranges are integer compares),
dates as ISO `YYYY-MM-DD` text (sorts correctly), booleans 0/1, numbers as INTEGER/REAL,
everything else as TEXT.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

SQL_TYPES = {"boolean": "INTEGER", "int": "INTEGER", "double": "REAL", "currency": "REAL",
             "percent": "REAL", "datetime": "INTEGER"}


def sql_type(field_type: str) -> str:
    return SQL_TYPES.get(field_type, "TEXT")


def datetime_to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    # Integer floor division of whole microseconds: what the days/seconds/microseconds
    # sum gives, in one C call.
    return (value - EPOCH) // _ONE_MS


_ONE_MS = timedelta(milliseconds=1)


def datetimes_to_ms(values: list[datetime]) -> list[int]:
    """`datetime_to_ms` of each value (a run of inserts' clock readings), without a call
    per aware value."""
    return [(value - EPOCH) // _ONE_MS if value.tzinfo is not None else datetime_to_ms(value)
            for value in values]


def ms_to_datetime(ms: int) -> datetime:
    """Exact for every stored millisecond: `fromtimestamp(ms / 1000)` goes through a float
    and turned 9999-12-31T23:59:59.999 into .998."""
    return EPOCH + timedelta(milliseconds=ms)


def _date(raw: str) -> date:
    return date.fromisoformat(raw)


def _bool(raw: int) -> bool:
    return bool(raw)


def _float(raw: float) -> float:
    return float(raw)


def _identity(raw: Any) -> Any:
    return raw


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": ms_to_datetime, "date": _date, "boolean": _bool, "double": _float,
    "currency": _float, "percent": _float, "int": int,
}


def decoder(field_type: str) -> Callable[[Any], Any]:
    """raw SQLite value (not None) -> Python value for `field_type`."""
    return _DECODERS.get(field_type, _identity)


def needs_decoding(field_type: str) -> bool:
    """False when SQLite already holds `field_type`'s Python value (text, ids, ...): a
    streamed row can then hand that column on without a call per value."""
    return field_type in _DECODERS


def decode(field_type: str, raw: Any) -> Any:
    return None if raw is None else decoder(field_type)(raw)
