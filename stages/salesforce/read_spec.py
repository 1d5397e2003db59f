"""What a read will query: its ``ReadSpec`` (query, row schema, mode) and each unit's SOQL.

Kept apart from ``stages.salesforce.read`` (the Beam transform) and free of Beam, because two
places must compute exactly the same query: the transform, when it is expanded, and
``forcebeam run``, which starts a local read's Bulk job before Beam is even imported
(``stages.salesforce.head_start``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Literal

from forcebeam.stages.salesforce import incremental, planner, soql
from forcebeam.stages.salesforce.config import ReadConfig
from forcebeam.stages.salesforce.schema import (
    COMPOUND_TYPES,
    RowSchema,
    bulk_dropped_compounds,
    schema_from_describe,
)

__all__ = ["BULK_MIN_ROWS", "ReadSpec", "read_spec", "unit_mode", "unit_text"]

LOG = logging.getLogger(__name__)
#: Auto mode reads a unit of at least this many rows through Bulk 2.0, smaller ones by REST.
BULK_MIN_ROWS = 2000


@dataclass(frozen=True)
class ReadSpec:
    """Everything a worker needs to plan and read (picklable; no secrets)."""

    query: soql.BaseQuery
    schema: RowSchema
    mode: Literal["auto", "bulk", "rest"]
    include_deleted: bool
    split: int | str
    incremental: incremental.IncrementalSpec | None
    bulk_timeout_seconds: float
    bulk_page_size: int
    #: Workers of a local runner (each reads one share of a job's pages); None: a remote
    #: runner, whose workers come and go.
    readers: int | None = None


def read_spec(cfg: ReadConfig, connection: Any, *, announce: bool = True) -> ReadSpec:
    """The spec of a read configured as ``cfg``; its schema comes from the cached describe.

    ``announce``: log what the read leaves out (compound fields); off for a second
    computation of the same spec, so the user reads each note once.
    """
    from forcebeam.stages.salesforce.describe import cached_describe

    if cfg.soql:
        sobject, paths, where, splittable = soql.parse_custom_soql(cfg.soql)
        fields: list[str] | None = paths
    else:
        sobject, where, splittable = cfg.sobject or "", None, True
        fields = list(cfg.fields) if cfg.fields is not None else None
    inc = cfg.incremental
    if inc and fields is not None:
        fields += [f for f in ("Id", inc.field) if f.lower() not in
                   {x.lower() for x in fields}]
    describe = cached_describe(connection, sobject)
    mode = cfg.mode
    schema = schema_from_describe(describe, fields=fields, mode=cfg.types)
    if inc and (schema.field(inc.field) is None or schema.field("Id") is None):
        raise ValueError(f"incremental.field: {sobject} has no field {inc.field!r} (or no "
                         "Id); use a timestamp field such as SystemModstamp or "
                         "LastModifiedDate")
    if fields is None and announce:
        skipped = [f["name"] for f in describe.get("fields", [])
                   if f.get("type") in COMPOUND_TYPES]
        if skipped:
            LOG.info("reading %s without its compound fields %s: their components "
                     "(e.g. BillingCity) are read instead", sobject, ", ".join(skipped))
    compound = [f.path for f in schema.fields if f.compound]
    if compound and mode == "bulk":
        for dropped in bulk_dropped_compounds(describe, fields or ()) if announce else ():
            LOG.warning("reading %s: %s (%s)", sobject, dropped.consequence, dropped.fix)
        schema = replace(schema, fields=tuple(f for f in schema.fields if not f.compound))
    elif compound and mode == "auto":
        mode = "rest"
    if not splittable:
        if inc:
            raise ValueError("incremental: cannot be combined with a custom SOQL that has "
                             "LIMIT/ORDER BY/OFFSET/GROUP BY; remove those clauses")
        query = soql.BaseQuery(sobject=sobject, columns=tuple(f.path for f in schema.fields),
                               raw=cfg.soql, splittable=False)
    else:
        query = soql.BaseQuery(sobject=describe.get("name", sobject),
                               columns=tuple(f.path for f in schema.fields), where=where)
    return ReadSpec(query=query, schema=schema, mode=mode,
                    include_deleted=cfg.include_deleted, split=cfg.split,
                    incremental=inc, bulk_timeout_seconds=cfg.bulk_timeout_seconds,
                    bulk_page_size=cfg.bulk_page_size)


def unit_text(spec: ReadSpec, unit: planner.ReadUnit) -> str:
    """The SOQL of one unit: the base query bounded to the unit's Id range."""
    if not spec.query.splittable:
        return spec.query.text()
    return spec.query.text(id_from=unit.id_from, id_to=unit.id_to, extra=unit.extra)


def unit_mode(spec: ReadSpec, rows: int) -> str:
    """How a unit of ``rows`` rows is read: the spec's mode, or auto's choice by size."""
    if spec.mode != "auto":
        return spec.mode
    if not spec.query.splittable:
        return "rest"
    return "bulk" if rows >= BULK_MIN_ROWS else "rest"
