"""Schema drift of one object between runs: what to read now, what went away and why.

Every run describes each object afresh (no cache), so a field added in the org is in this
run's files. A field the previous run read that describe no longer shows is either deleted
from the org or hidden from the integration user by field-level security: FieldDefinition
(which lists an object's fields whatever the caller's FLS) tells the two apart. A hidden
field is listed as hidden - never read as nulls - and a deleted one is dropped with a
warning; both go to the manifest.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FieldPlan", "plan_fields", "field_definitions"]

LOG = logging.getLogger(__name__)
COMPOUND_TYPES = frozenset({"address", "location"})
WATERMARK_FIELDS = ("SystemModstamp", "LastModifiedDate")


@dataclass(frozen=True)
class FieldPlan:
    """The fields of one object's read this run (picklable)."""

    fields: tuple[str, ...]                      # read with every row, describe order
    formula_fields: tuple[str, ...]              # calculated fields among them
    hidden: tuple[str, ...] = ()                 # FLS hides them from the integration user
    dropped: Mapping[str, str] = field(default_factory=dict)   # field -> why not read
    watermark_field: str | None = None           # SystemModstamp (or LastModifiedDate)
    has_is_deleted: bool = False


def field_definitions(client: Any, sobject: str) -> list[str] | None:
    """Every field name of ``sobject`` regardless of FLS, or None if the org refuses."""
    from forcebeam.auth.errors import ForcebeamError

    soql = ("SELECT QualifiedApiName FROM FieldDefinition WHERE "  # noqa: S608 - quoted name
            f"EntityDefinition.QualifiedApiName = '{sobject}'")
    try:
        body = client.request("GET", "query", params={"q": soql}).json()
    except ForcebeamError as error:
        LOG.warning("%s: cannot list fields through FieldDefinition (%s); fields hidden by "
                    "field-level security cannot be told from deleted ones", sobject, error)
        return None
    return [r["QualifiedApiName"] for r in body.get("records", [])]


def plan_fields(sobject: str, describe: Mapping[str, Any], all_fields: Sequence[str] | None,
                previous: Sequence[str] = ()) -> FieldPlan:
    """The read plan from a fresh describe, FieldDefinition names and the last run's fields."""
    described = [f for f in describe.get("fields", []) if isinstance(f, Mapping)]
    names = {f["name"].lower() for f in described}
    dropped: dict[str, str] = {}
    fields: list[str] = []
    formulas: list[str] = []
    for f in described:
        kind = f.get("type")
        if kind in COMPOUND_TYPES:
            parts = [g["name"] for g in described if g.get("compoundFieldName") == f["name"]]
            dropped[f["name"]] = (f"compound {kind} field: its components "
                                  f"({', '.join(parts) or 'none readable'}) are replicated")
            continue
        if kind == "base64":
            dropped[f["name"]] = "base64 (binary) field: Bulk API 2.0 cannot read it"
            continue
        fields.append(f["name"])
        if f.get("calculated"):
            formulas.append(f["name"])
    hidden: list[str] = []
    if all_fields is not None:
        compound = {f["name"].lower() for f in described if f.get("type") in COMPOUND_TYPES}
        hidden = [n for n in all_fields if n.lower() not in names and n.lower() not in compound]
    hidden_lower = {n.lower() for n in hidden}
    for name in previous:
        lowered = name.lower()
        if lowered in names or lowered in hidden_lower or name in dropped:
            continue
        dropped[name] = "deleted from the org since the previous run (no longer in describe)"
        LOG.warning("%s.%s was read by the previous run and is no longer in the org: "
                    "dropped from this run's files", sobject, name)
    for name in hidden:
        LOG.warning("%s.%s is hidden from the integration user by field-level security: "
                    "not read (listed as hidden in the manifest); grant read access in its "
                    "permission set to replicate it", sobject, name)
    watermark = next((w for w in WATERMARK_FIELDS if w.lower() in names), None)
    return FieldPlan(fields=tuple(fields), formula_fields=tuple(formulas),
                     hidden=tuple(hidden), dropped=dropped, watermark_field=watermark,
                     has_is_deleted="isdeleted" in names)
