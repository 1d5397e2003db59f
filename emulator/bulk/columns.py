"""Ingest columns a real org refuses before writing anything, shared by Bulk API 1.0 and 2.0.

A column naming a field the object does not have fails the whole batch (1.0) or job (2.0)
with `InvalidBatch : Field name not found : X` before any record is written; values are then
checked per record, as REST does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def field_not_found_message(column: str) -> str:
    return f"InvalidBatch : Field name not found : {column}"


def unknown_column(schema: Any, sobject: str,
                   columns: Iterable[Iterable[str]]) -> str | None:
    """The first column (in upload order) that names no field of `sobject`: a plain field
    name, or `Relationship.Field` whose relationship or parent field does not exist.
    `columns` is one iterable of names per record (or a single header)."""
    obj = schema.object(sobject) if schema is not None else None
    if obj is None:
        return None
    seen: set[str] = set()
    for names in columns:
        for name in names:
            if name in seen or name == "attributes":
                continue
            seen.add(name)
            relationship, dot, parent_field = name.partition(".")
            if not dot:
                if obj.field(name) is None:
                    return name
                continue
            reference = obj.relationships.get(relationship.lower())
            parent = schema.object(reference.reference_to[0]) if reference is not None else None
            if parent is None or parent.field(parent_field) is None:
                return name
    return None
