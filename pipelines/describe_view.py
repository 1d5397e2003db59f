"""`forcebeam describe FILE CONNECTION SOBJECT`: what a writer (and a reader) needs to know.

One line per field: name, type (with length), then what decides whether a write works -
required on insert, external id / unique (upsert keys), read-only, picklist values (and
whether Salesforce refuses others) - and, for lookups, the relationship name with the column
a relationship path becomes in the rows (`Account.Name` -> `Account_Name`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_VALUES = 8


def render(describe: Mapping[str, Any]) -> str:
    fields = list(describe.get("fields", []))
    width = max((len(str(f.get("name"))) for f in fields), default=4)
    kinds = [_type(f) for f in fields]
    kind_width = max((len(k) for k in kinds), default=4)
    lines = [f"{describe.get('name')}: {len(fields)} fields "
             "(required = needed on insert; a relationship path X.Field becomes the column "
             "X_Field)"]
    for field, kind in zip(fields, kinds, strict=True):
        notes = _notes(field)
        text = f"{str(field.get('name')).ljust(width)}  {kind.ljust(kind_width)}"
        lines.append(f"{text}  {'; '.join(notes)}".rstrip())
    return "\n".join(lines)


def _type(field: Mapping[str, Any]) -> str:
    kind = str(field.get("type") or "?")
    length = field.get("length")
    if kind in ("string", "textarea", "phone", "url", "email", "encryptedstring") and length:
        return f"{kind}({length})"
    if kind in ("currency", "double", "percent") and field.get("precision"):
        return f"{kind}({field.get('precision')},{field.get('scale') or 0})"
    return kind


def _notes(field: Mapping[str, Any]) -> list[str]:
    notes = []
    if (field.get("createable") and not field.get("nillable", True)
            and not field.get("defaultedOnCreate") and field.get("type") != "boolean"):
        notes.append("required")
    if field.get("externalId"):
        notes.append("external id (upsert key)")
    if field.get("unique"):
        notes.append("unique")
    if field.get("calculated"):
        notes.append("formula (read-only)")
    elif not field.get("createable", True) and not field.get("updateable", True):
        notes.append("read-only")
    values = [str(v.get("value")) for v in field.get("picklistValues") or []
              if v.get("active", True)]
    if values:
        shown = ", ".join(values[:MAX_VALUES]) + (", ..." if len(values) > MAX_VALUES else "")
        rule = ("restricted: other values are rejected" if field.get("restrictedPicklist")
                else "not restricted: other values are accepted")
        notes.append(f"values ({rule}): {shown}")
    relationship = field.get("relationshipName")
    if relationship:
        targets = "/".join(field.get("referenceTo") or []) or "?"
        notes.append(f"lookup to {targets} via {relationship} "
                     f"({relationship}.Name -> column {relationship}_Name)")
    return notes
