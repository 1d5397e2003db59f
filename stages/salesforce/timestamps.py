"""Salesforce dateTime text, in one place: read the forms Salesforce sends, write one form.

Salesforce sends ``2026-01-15T09:30:00.000+0000`` (REST JSON) or ``...000Z`` (Bulk CSV) and
accepts UTC with milliseconds, ``2026-01-15T09:30:00.000Z``, in SOQL literals, REST bodies
and Bulk CSV. Our state files use that same form, so watermarks compare as text too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["format_datetime", "parse_datetime", "time_text"]


def parse_datetime(text: str) -> dt.datetime:
    """A Salesforce dateTime string (``Z``, ``+0000`` or ``+00:00``) as an aware UTC datetime."""
    cleaned = text[:-1] + "+00:00" if text.endswith("Z") else text
    if len(cleaned) > 5 and cleaned[-5] in "+-" and cleaned[-3] != ":":
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]
    parsed = dt.datetime.fromisoformat(cleaned)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def format_datetime(value: dt.datetime) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (milliseconds, truncated): what Salesforce accepts."""
    utc = value.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def time_text(value: Any) -> str | None:
    """A date, dateTime (naive = UTC) or Beam ``Timestamp`` as the text a write sends
    (``YYYY-MM-DD``, ``format_datetime``); None for any other value."""
    if hasattr(value, "to_utc_datetime"):           # apache_beam Timestamp
        value = value.to_utc_datetime(has_tz=True)
    if isinstance(value, dt.datetime):
        return format_datetime(value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc))
    if isinstance(value, dt.date):
        return value.isoformat()
    return None
