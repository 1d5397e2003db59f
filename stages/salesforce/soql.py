"""SOQL text building: select lists, unit filters, literals, and reading a custom query.

Why here: every read unit (a Bulk 2.0 job or a REST query) is the same base query plus an
Id range and/or a watermark filter; building that text in one place keeps REST and Bulk
asking for exactly the same rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from forcebeam.stages.salesforce.timestamps import format_datetime

__all__ = [
    "BaseQuery",
    "datetime_literal",
    "parse_custom_soql",
    "quote",
]

_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"'}

_CUSTOM = re.compile(r"^\s*select\s+(?P<select>.+?)\s+from\s+(?P<sobject>[A-Za-z0-9_]+)"
                     r"(?P<rest>\s.*)?$", re.IGNORECASE | re.DOTALL)
_SPLITTABLE_REST = re.compile(r"^\s*(where\s+(?P<where>.*))?$", re.IGNORECASE | re.DOTALL)
_UNSPLITTABLE = re.compile(r"\b(limit|offset|order\s+by|group\s+by|having)\b", re.IGNORECASE)


def quote(value: str) -> str:
    """A SOQL string literal with SOQL's backslash escapes."""
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in value) + "'"


def datetime_literal(value: dt.datetime) -> str:
    """An unquoted SOQL dateTime literal in UTC (``2026-01-15T09:30:00.000Z``)."""
    return format_datetime(value)


@dataclass(frozen=True)
class BaseQuery:
    """What a read asks for before splitting: object, columns and an optional filter.

    ``splittable`` is False for custom SOQL with LIMIT/ORDER BY/OFFSET/GROUP BY: such a
    query is read as one unit, exactly as written.
    """

    sobject: str
    columns: tuple[str, ...]
    where: str | None = None
    raw: str | None = None          # the user's SOQL when it cannot be split
    splittable: bool = True

    def text(self, *, id_from: str | None = None, id_to: str | None = None,
             extra: Sequence[str] = ()) -> str:
        """SOQL for one unit: ``Id >= id_from AND Id < id_to`` plus ``extra`` conditions."""
        if not self.splittable:
            if id_from or id_to or extra:
                raise ValueError("this custom SOQL cannot be split or filtered")
            return self.raw or ""
        conditions = [f"({self.where})"] if self.where else []
        if id_from:
            conditions.append(f"Id >= {quote(id_from)}")
        if id_to:
            conditions.append(f"Id < {quote(id_to)}")
        conditions.extend(extra)
        soql = f"SELECT {', '.join(self.columns)} FROM {self.sobject}"  # noqa: S608 - SOQL
        if conditions:
            soql += " WHERE " + " AND ".join(conditions)
        return soql

    def count_text(self, *, id_from: str | None = None, id_to: str | None = None,
                   extra: Sequence[str] = ()) -> str:
        return self.text(id_from=id_from, id_to=id_to, extra=extra).replace(
            f"SELECT {', '.join(self.columns)} ", "SELECT COUNT() ", 1)

    def edge_id_text(self, *, descending: bool, extra: Sequence[str] = ()) -> str:
        """The smallest (or largest) Id matching the query: one row, cheap on an index."""
        conditions = [f"({self.where})"] if self.where else []
        conditions.extend(extra)
        soql = f"SELECT Id FROM {self.sobject}"  # noqa: S608 - SOQL; values go through quote()
        if conditions:
            soql += " WHERE " + " AND ".join(conditions)
        return soql + f" ORDER BY Id {'DESC' if descending else 'ASC'} LIMIT 1"


def parse_custom_soql(soql: str) -> tuple[str, list[str], str | None, bool]:
    """``(sobject, select paths, where, splittable)`` of a user's SOQL.

    Only the outer shape is read (the server parses the rest): the select list decides the
    row schema; a plain ``WHERE`` lets the planner add Id ranges; anything else means the
    query is run as written.
    """
    match = _CUSTOM.match(soql)
    if not match:
        raise ValueError(f"soql: not of the form 'SELECT fields FROM object': {soql!r}")  # noqa: S608
    select = match.group("select")
    if "(" in select:
        raise ValueError("soql: subqueries and functions (FIELDS(), COUNT(), TYPEOF) are not "
                         "supported in the select list; name the fields you want")
    paths = [p.strip() for p in select.split(",") if p.strip()]
    rest = match.group("rest") or ""
    plain = _SPLITTABLE_REST.match(rest)
    splittable = bool(plain) and not _UNSPLITTABLE.search(rest)
    where = plain.group("where").strip() if plain and plain.group("where") else None
    return match.group("sobject"), paths, where, splittable
