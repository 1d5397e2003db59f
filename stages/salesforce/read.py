"""ReadFromSalesforce: plan -> Reshuffle -> read units (Bulk 2.0 jobs or REST queries).

Usage::

    import apache_beam as beam
    from forcebeam.stages.salesforce.read import ReadFromSalesforce

    with beam.Pipeline() as p:
        accounts = p | ReadFromSalesforce(
            connection={"login_url": "https://acme.my.salesforce.com",
                        "auth": {"type": "jwt_bearer", "username": "etl@acme.com",
                                 "consumer_key": "3MVG9...",
                                 "private_key": "gcp-sm://projects/p/secrets/k/versions/latest"}},
            sobject="Account")

Shape: ``Create([spec]) | plan (one worker: COUNT + Id-range boundaries) | Reshuffle |
read units``. Every DoFn gets its client from ``auth.get_client`` in ``setup()`` (one
login per worker process); the transform itself holds a ``Connection`` (references only).

The row schema is fixed when the transform is expanded (Beam YAML needs it downstream):
it comes from a describe, cached on disk (see ``stages.salesforce.describe``) so that a run
with a warm cache makes no launcher login. ``fields=None`` means every field except the
compound address/location fields, whose components (BillingCity, ...) are read anyway; this
keeps REST, Bulk and auto row-for-row identical. A compound field named explicitly is read
as JSON text through REST (auto mode) or dropped with one warning (bulk mode).

Auto mode: a unit with at least ``BULK_MIN_ROWS`` rows is a Bulk 2.0 job, smaller units are
REST queries (fewer calls), and a unit Bulk refuses is read through REST.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import apache_beam as beam

from forcebeam.stages.salesforce import bulk_query, incremental, planner, rest_query, soql
from forcebeam.stages.salesforce.config import ReadConfig, as_connection
from forcebeam.stages.salesforce.metrics import ProgressLog, StageCounters
from forcebeam.stages.salesforce.schema import (
    COMPOUND_TYPES,
    RowSchema,
    converters,
    schema_from_describe,
)

__all__ = ["ReadFromSalesforce"]

LOG = logging.getLogger(__name__)
BULK_MIN_ROWS = 2000
_OBSERVED = "observed"


@dataclass(frozen=True)
class _ReadSpec:
    """Everything a worker needs to plan and read (picklable; no secrets)."""

    query: soql.BaseQuery
    schema: RowSchema
    mode: Literal["auto", "bulk", "rest"]
    include_deleted: bool
    split: int | str
    incremental: incremental.IncrementalSpec | None
    bulk_timeout_seconds: float
    bulk_page_size: int


class ReadFromSalesforce(beam.PTransform):
    """Read an SObject (or a SOQL query) as schema'd ``beam.Row`` s.

    Args:
      connection: A ``auth.Connection`` or its mapping (login_url, auth, ...).
      sobject: SObject API name, e.g. ``Account``. Give this or ``soql``.
      soql: A SOQL query; a plain ``SELECT ... FROM X [WHERE ...]`` is split like an
        sobject read, queries with LIMIT/ORDER BY/OFFSET are read as one REST query.
      fields: Field names (or relationship paths like ``Owner.Name``); default all fields.
      mode: ``auto`` (Bulk 2.0 for volume, REST otherwise), ``bulk`` or ``rest``.
      include_deleted: Also read soft-deleted rows (queryAll); ``IsDeleted`` tells them apart.
      incremental: ``{field, start, lookback, state}``; see ``stages.salesforce.incremental``.
      split: ``auto`` (one unit per ~50k rows), ``none``, or a number of units.
      types: ``portable`` (ISO strings, decimal strings: any file sink) or ``native``.
      bulk_timeout_seconds: How long to wait for one Bulk job to complete.
      bulk_page_size: Rows per Bulk result page (``maxRecords``); pages are streamed.
    """

    config_model = ReadConfig

    def __init__(self, connection: Any, sobject: str | None = None, soql: str | None = None,
                 fields: Sequence[str] | None = None, mode: str = "auto",
                 include_deleted: bool = False, incremental: Mapping[str, Any] | None = None,
                 split: int | str = "auto", types: str = "portable",
                 bulk_timeout_seconds: float = 3600.0,
                 bulk_page_size: int = bulk_query.PAGE_MAX_RECORDS) -> None:
        super().__init__()
        self._config = ReadConfig(connection=connection, sobject=sobject, soql=soql,
                                  fields=list(fields) if fields is not None else None,
                                  mode=mode, include_deleted=include_deleted,
                                  incremental=incremental, split=split, types=types,
                                  bulk_timeout_seconds=bulk_timeout_seconds,
                                  bulk_page_size=bulk_page_size)
        self._connection = as_connection(connection)
        self._incremental = (_incremental_spec(incremental) if incremental else None)

    def default_label(self) -> str:
        return f"ReadFromSalesforce({self._config.sobject or 'soql'})"

    def display_data(self) -> dict[str, Any]:
        cfg = self._config
        return {"sobject": cfg.sobject or "", "soql": cfg.soql or "", "mode": cfg.mode,
                "split": str(cfg.split), "types": cfg.types,
                "login_url": self._connection.login_url}

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        spec = self._spec()
        row_class = spec.schema.row_class()
        read = (pbegin
                | "Start" >> beam.Create([spec])
                | "Plan" >> beam.ParDo(_PlanUnits(self._connection))
                | "Distribute" >> beam.Reshuffle()
                | "ReadUnits" >> beam.ParDo(_ReadUnit(self._connection, row_class))
                .with_output_types(row_class)      # the main output only
                .with_outputs(_OBSERVED, main="rows"))
        rows = read.rows
        if spec.incremental and spec.incremental.state:
            state_path = spec.incremental.state
            inc = spec.incremental
            _ = (read[_OBSERVED]
                 | "Watermark" >> beam.CombineGlobally(
                     incremental.WatermarkFn(inc.lookback_seconds))
                 | "WritePending" >> beam.Map(
                     lambda observed: incremental.write_pending(state_path, inc, observed)))
        return rows

    # ----------------------------------------------------------------- construction

    def _spec(self) -> _ReadSpec:
        from forcebeam.stages.salesforce.describe import cached_describe

        cfg = self._config
        if cfg.soql:
            sobject, paths, where, splittable = soql.parse_custom_soql(cfg.soql)
            fields: list[str] | None = paths
        else:
            sobject, where, splittable = cfg.sobject or "", None, True
            fields = list(cfg.fields) if cfg.fields is not None else None
        inc = self._incremental
        if inc and fields is not None:
            fields += [f for f in ("Id", inc.field) if f.lower() not in
                       {x.lower() for x in fields}]
        describe = cached_describe(self._connection, sobject)
        mode = cfg.mode
        schema = schema_from_describe(describe, fields=fields, mode=cfg.types)
        if inc and (schema.field(inc.field) is None or schema.field("Id") is None):
            raise ValueError(f"incremental.field: {sobject} has no field {inc.field!r} (or no "
                             "Id); use a timestamp field such as SystemModstamp or "
                             "LastModifiedDate")
        if fields is None:
            skipped = [f["name"] for f in describe.get("fields", [])
                       if f.get("type") in COMPOUND_TYPES]
            if skipped:
                LOG.info("reading %s without its compound fields %s: their components "
                         "(e.g. BillingCity) are read instead", sobject, ", ".join(skipped))
        compound = [f.path for f in schema.fields if f.compound]
        if compound and mode == "bulk":
            LOG.warning("Bulk API 2.0 cannot read compound fields; dropping %s from the %s "
                        "read (their component fields, e.g. BillingCity, are kept)",
                        ", ".join(compound), sobject)
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
        return _ReadSpec(query=query, schema=schema, mode=mode,
                         include_deleted=cfg.include_deleted, split=cfg.split,
                         incremental=inc, bulk_timeout_seconds=cfg.bulk_timeout_seconds,
                         bulk_page_size=cfg.bulk_page_size)


def _incremental_spec(value: Any) -> incremental.IncrementalSpec:
    return incremental.IncrementalSpec.from_mapping(value)


class _ClientDoFn(beam.DoFn):
    """Shared ``setup()``: one client per worker process from ``auth.get_client``."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._client: Any = None
        self._counters: StageCounters | None = None

    def setup(self) -> None:
        from forcebeam.auth import get_client

        self._client = get_client(self._connection)
        self._counters = StageCounters()

    def _sync(self) -> None:
        if self._counters is not None:
            self._counters.sync_client(self._client)


class _PlanUnits(_ClientDoFn):
    """One read spec -> balanced read units (runs on a worker, O(units) API calls)."""

    def process(self, spec: _ReadSpec) -> Iterator[tuple[_ReadSpec, planner.ReadUnit]]:
        client = self._client
        extra: list[str] = []
        seen: dict[str, str] = {}
        if spec.incremental:
            state = incremental.load_state(spec.incremental.state)
            bound = spec.incremental.lower_bound(state)
            if bound is not None:
                extra.append(f"{spec.incremental.field} >= {soql.datetime_literal(bound)}")
            seen = dict((state or {}).get("seen") or {})
        query = spec.query
        if not query.splittable or spec.split in ("none", 1):
            # The count only sizes progress logs and picks auto's path: skip it otherwise.
            total = -1 if not query.splittable or spec.mode != "auto" else \
                rest_query.count_rows(client, query.count_text(extra=extra),
                                      include_deleted=spec.include_deleted)
            ranges = [(None, None, total)]
        else:
            total = rest_query.count_rows(client, query.count_text(extra=extra),
                                          include_deleted=spec.include_deleted)
            wanted = planner.unit_count(total, spec.split)
            ranges = [(None, None, total)]
            if wanted > 1 and total > 1:
                low = rest_query.edge_id(client, query.edge_id_text(descending=False,
                                                                    extra=extra),
                                         include_deleted=spec.include_deleted)
                high = rest_query.edge_id(client, query.edge_id_text(descending=True,
                                                                     extra=extra),
                                          include_deleted=spec.include_deleted)
                if low and high:
                    count = functools.partial(_count_range, client, query, extra,
                                              spec.include_deleted)
                    ranges = planner.plan_id_ranges(total=total, wanted=wanted, min_id=low,
                                                    max_id=high, count=count)
        self._sync()
        LOG.info("planned %d read unit(s) for ~%d %s rows", len(ranges), max(total, 0),
                 query.sobject)
        units = [planner.ReadUnit(index=index, id_from=id_from, id_to=id_to,
                                  expected_rows=rows, mode=_unit_mode(spec, rows),
                                  extra=tuple(extra),
                                  seen=incremental.seen_in_range(seen, id_from, id_to))
                 for index, (id_from, id_to, rows) in enumerate(ranges)]
        if len(units) > 1:
            units = [self._submitted(spec, unit) for unit in units]
            self._sync()
        for unit in units:
            yield spec, unit

    def _submitted(self, spec: _ReadSpec, unit: planner.ReadUnit) -> planner.ReadUnit:
        """Submit a Bulk unit's job now, so the org prepares every unit's results at once.

        Read units run one after another on each worker; without this, each would wait for
        its own job to complete (seconds on a real org) while nothing else happens. A refusal
        is left to the reader, which falls back to REST (or explains, in bulk mode).
        """
        if unit.mode != "bulk":
            return unit
        try:
            job = bulk_query.create_query_job(self._client, _unit_text(spec, unit),
                                              include_deleted=spec.include_deleted)
        except bulk_query.BulkQueryRefusedError:
            return unit
        return replace(unit, job_id=job["id"])


def _unit_text(spec: _ReadSpec, unit: planner.ReadUnit) -> str:
    """The SOQL of one unit: the base query bounded to the unit's Id range."""
    if not spec.query.splittable:
        return spec.query.text()
    return spec.query.text(id_from=unit.id_from, id_to=unit.id_to, extra=unit.extra)


def _count_range(client: Any, query: soql.BaseQuery, extra: list[str], include_deleted: bool,
                 id_from: str | None, id_to: str | None) -> int:
    return rest_query.count_rows(client, query.count_text(id_from=id_from, id_to=id_to,
                                                          extra=extra),
                                 include_deleted=include_deleted)


def _unit_mode(spec: _ReadSpec, rows: int) -> str:
    if spec.mode != "auto":
        return spec.mode
    if not spec.query.splittable:
        return "rest"
    return "bulk" if rows >= BULK_MIN_ROWS else "rest"


class _ReadUnit(_ClientDoFn):
    """Read one unit and emit typed rows (plus watermark observations when incremental)."""

    def __init__(self, connection: Any, row_class: type) -> None:
        super().__init__(connection)
        self._row_class = row_class

    def process(self, element: tuple[_ReadSpec, planner.ReadUnit]) -> Iterator[Any]:
        spec, unit = element
        ProgressLog.expect(max(unit.expected_rows, 0))
        values = _explained(self._values(spec, unit, _unit_text(spec, unit)))
        make_row = self._row_class._make
        inc = spec.incremental
        seen = dict(unit.seen) if unit.seen else {}
        id_pos = mark_pos = None
        if inc:
            lowered = [f.path.lower() for f in spec.schema.fields]
            id_pos, mark_pos = lowered.index("id"), lowered.index(inc.field.lower())
        assert self._counters is not None
        batch = 0
        for row in values:
            if inc:
                record_id, mark = row[id_pos], row[mark_pos]
                yield beam.pvalue.TaggedOutput(
                    _OBSERVED, (record_id, incremental.observed_value(mark)))
                if seen and incremental.unchanged(seen, record_id, mark):
                    continue
            yield make_row(row)
            batch += 1
            if batch == 1000:
                self._counters.records_read.inc(batch)
                ProgressLog.add(batch)
                batch = 0
        self._counters.records_read.inc(batch)
        self._counters.read_units.inc()
        ProgressLog.add(batch)
        self._sync()

    def _values(self, spec: _ReadSpec, unit: planner.ReadUnit, text: str
                ) -> Iterator[Sequence[Any]]:
        if unit.mode == "bulk":
            try:
                job_id = bulk_query.run_query_job(self._client, text,
                                                  include_deleted=spec.include_deleted,
                                                  timeout_seconds=spec.bulk_timeout_seconds,
                                                  job_id=unit.job_id)
            except bulk_query.BulkQueryRefusedError as refusal:
                if spec.mode == "bulk":
                    raise ValueError(
                        f"Bulk API 2.0 refused the {spec.query.sobject} query ({refusal}); "
                        "use mode: rest (or auto) for this object/fields") from refusal
                LOG.warning("Bulk API 2.0 refused unit %d of %s (%s); reading it through REST",
                            unit.index, spec.query.sobject, refusal)
            else:
                yield from _bulk_values(self._client, job_id, spec.schema,
                                        spec.bulk_page_size)
                bulk_query.delete_query_job(self._client, job_id)
                return
        yield from rest_query.iter_rest_rows(self._client, text, spec.schema,
                                             include_deleted=spec.include_deleted)


def _bulk_values(client: Any, job_id: str, schema: RowSchema, page_size: int
                 ) -> Iterator[list[Any]]:
    header: list[str] | None = None
    plan: list[tuple[int, Any]] = []
    for page_header, row in bulk_query.iter_result_rows(client, job_id,
                                                         max_records=page_size):
        if page_header is not header:
            header = page_header
            position = {name.lower(): i for i, name in enumerate(header)}
            convert = converters(schema, [f.path for f in schema.fields], wire="csv")
            plan = [(position[f.path.lower()], fn) if f.path.lower() in position
                    else (0, _absent) for f, fn in zip(schema.fields, convert, strict=True)]
        yield [fn(row[i]) for i, fn in plan]


def _explained(values: Iterator[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    """Add the likely cause to a field error: a describe cached before the org changed."""
    from forcebeam.auth.errors import SalesforceApiError

    try:
        yield from values
    except SalesforceApiError as error:
        if error.error_code != "INVALID_FIELD":
            raise
        raise ValueError(
            f"{error} - the row schema comes from a describe cached for up to "
            "FORCEBEAM_DESCRIBE_TTL seconds (default 3600); if a field was removed from the "
            "org since, run again with FORCEBEAM_DESCRIBE_TTL=0") from error


def _absent(_: str) -> None:
    """A schema column the result file does not carry (reads as null)."""
    return None
