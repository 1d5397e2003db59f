"""The user's record inside an output row: keys and values as the user wrote them.

Why a type of its own: both outputs of ``WriteToSalesforce`` carry the input record as
``element`` (``written``: with the new Id; ``failed``: with Salesforce's code and message),
and Beam's file sinks write a nested row by what it is in Python. Beam's ``WriteToJson``
and ``WriteToCsv`` go through pandas, which writes a tuple (every generated Beam row type is
a ``NamedTuple``) as a JSON array and a CSV cell as its ``repr``: the field names were lost.
``Record`` is a dataclass *and* a dict holding the same fields, so

* ``WriteToJson`` writes ``"element": {"Name": ..., "Amount__c": ...}`` (a dict);
* ``WriteToCsv`` writes the element as JSON text in one cell (``str()``);
* ``WriteToParquet`` writes a struct column (pyarrow takes the dict);
* ``MapToFields`` reads ``element.Name`` (an attribute), as before.

Instances pickle through ``_rebuild`` (the class is made per input schema), so they cross
worker boundaries as themselves.
"""

from __future__ import annotations

import dataclasses
import json
import keyword
import threading
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["record_type", "as_output_record"]

Columns = Sequence[tuple[str, Any]]

_TYPES: dict[str, type] = {}
_LOCK = threading.Lock()


def _json_default(value: Any) -> Any:
    """Values JSON has no type for (Decimal, dates, Beam timestamps) as their text."""
    return str(value)


class _RecordBase(dict):
    """What every per-schema ``Record`` class shares (see the module docstring)."""

    _columns: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        dict.update(self, {name: getattr(self, name) for name, _ in self._columns})

    def __str__(self) -> str:
        return json.dumps(dict(self), default=_json_default, ensure_ascii=False)

    def __repr__(self) -> str:
        return f"Record({dict(self)!r})"

    def __reduce__(self) -> Any:
        return _rebuild, (self._columns, tuple(dict(self).values()))


def record_type(columns: Columns) -> type | None:
    """The ``Record`` dataclass for rows with these (name, Beam type) columns.

    None when a column name cannot be a Python attribute distinct from dict's own (e.g. a
    CSV header ``Amount (USD)`` or ``items``): the element then stays a plain Beam row.
    """
    columns = tuple((str(name), hint) for name, hint in columns)
    names = [name for name, _ in columns]
    if not names or any(not name.isidentifier() or keyword.iskeyword(name)
                        or name.startswith("_") or hasattr(dict, name) for name in names):
        return None
    key = repr(columns)
    with _LOCK:
        made = _TYPES.get(key)
        if made is None:
            made = dataclasses.make_dataclass(
                "Record", list(columns), bases=(_RecordBase,), eq=False,
                namespace={"_columns": columns, "__module__": __name__})
            _TYPES[key] = made
    return made


def as_output_record(element: Any, kind: type) -> Any:
    """``element`` (a Beam row or a dict) as an instance of ``kind`` (from ``record_type``)."""
    names = [name for name, _ in kind._columns]  # type: ignore[attr-defined]
    if isinstance(element, Mapping):
        return kind(*(element.get(name) for name in names))
    return kind(*(getattr(element, name, None) for name in names))


def _rebuild(columns: Columns, values: tuple[Any, ...]) -> Any:
    kind = record_type(columns)
    assert kind is not None     # these columns made a type in the pickling process
    return kind(*values)
