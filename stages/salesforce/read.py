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

Shape: ``Create([spec]) | plan (one worker: at most one COUNT, the read's Bulk job, its
result pages) | Reshuffle | read units (pages) | rows or Arrow batches`` (see
``stages.salesforce.batches``). Every DoFn that calls Salesforce is a ``ClientDoFn``: its
client comes from ``auth.get_client`` in ``setup()`` (one login per worker process); the
transform itself holds a ``Connection`` (references only).

The row schema is fixed when the transform is expanded (Beam YAML needs it downstream):
it comes from a describe, cached on disk (see ``stages.salesforce.describe``) so that a run
with a warm cache makes no launcher login. ``fields=None`` means every field except the
compound address/location fields, whose components (BillingCity, ...) are read anyway; this
keeps REST, Bulk and auto row-for-row identical. A compound field named explicitly is read
as JSON text through REST (auto mode) or dropped with one warning (bulk mode).

Auto mode: a unit with at least ``read_spec.BULK_MIN_ROWS`` rows is a Bulk 2.0 job, smaller
units are REST queries (fewer calls), and a unit Bulk refuses is read through REST.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import pickle
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from forcebeam.auth import responses
from forcebeam.auth.retry import DEFAULT_RETRY, RetryPolicy
from forcebeam.stages.files.arrow_coder import table_from_ipc, table_to_ipc
from forcebeam.stages.runners import is_local_runner
from forcebeam.stages.salesforce import (
    bulk_query,
    head_start,
    incremental,
    planner,
    rest_query,
    soql,
)
from forcebeam.stages.salesforce.client_dofn import ClientDoFn
from forcebeam.stages.salesforce.config import ReadConfig, as_connection
from forcebeam.stages.salesforce.metrics import NAMESPACE, PlannedRows, ProgressLog
from forcebeam.stages.salesforce.read_spec import ReadSpec, read_spec, unit_mode, unit_text
from forcebeam.stages.salesforce.schema import RowSchema
from forcebeam.stages.salesforce.watermark import WatermarkFn

__all__ = ["ReadFromSalesforce"]

LOG = logging.getLogger(__name__)
#: Rows of a ``QUERY_TIMEOUT``'d job per Id-range job it is replanned into (one Salesforce
#: server-side chunk).
TIMEOUT_SPLIT_ROWS = 250_000
#: REST rows handed on together (a REST page is at most 2,000 rows).
REST_CHUNK_ROWS = 2000
#: Result pages per read unit of a fanned-out job, and downloads in flight per unit. One
#: download stream is bounded by its TCP window and the org's latency, and a body waiting
#: ahead is small (gzip'd, ~7 MB per 100k rows of 24 fields): realistic 1M rows took 33 s
#: with 2 downloads of 4-page units and 30.3 s with 4 of 8-page units (+30 MB peak RSS).
PAGES_PER_UNIT = 8
PAGE_DOWNLOADS = 4
#: Downloads in flight for a reader alone in its process (one local worker: the unit owns
#: its job), which also parses the next page ahead. Realistic 1M rows, the time after
#: JobComplete: 4.2 s before, then 3.1 s with 8 downloads, 3.6 s with 6 (with 8 and no
#: parse-ahead, 4.0-4.9 s). Peak RSS at 1M rows loopback: 430 -> 472-505 MB.
PAGE_DOWNLOADS_ALONE = 8
#: What one reader held at most, per read unit (Beam distributions: their max is the
#: read's): parsed pages (one, or two for a reader alone that parses ahead; each is ~40 MB
#: of Arrow for 100k rows of 24 fields) and result bodies downloading or downloaded ahead
#: (gzip'd, ~1/5 of that).
_PAGES_PARSED_AT_ONCE = Metrics.distribution(NAMESPACE, "result_pages_parsed_at_once")
_PAGE_BODIES_AHEAD = Metrics.distribution(NAMESPACE, "result_page_bodies_ahead")
_OBSERVED = "observed"
_JOBS = "jobs"


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
      split: ``auto`` (one Bulk job; its result pages read in parallel), ``none`` (one job,
        pages read in order by one worker) or N (N Id-range jobs: N of the org's daily
        query jobs for time).
      types: ``portable`` (ISO strings, decimal strings: any file sink) or ``native``.
      bulk_timeout_seconds: How long to wait for one Bulk job to complete.
      bulk_page_size: Rows per Bulk result page (``maxRecords``); each page is downloaded
        whole, parsed with Arrow and handed on as one batch.
    """

    config_model = ReadConfig
    #: How cut result pages are re-read; set another RetryPolicy on the instance to change it.
    retry: RetryPolicy = DEFAULT_RETRY
    #: The name the planned row count is kept under (``metrics.PlannedRows``): a runner's
    #: progress line shows "rows of N" for it. Set before the transform is applied.
    progress_name: str | None = None

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

    @property
    def arrow_ready(self) -> bool:
        """Once expanded: the rows have an Arrow form, so the read can hand on Arrow
        batches to batch-aware consumers (see ``stages.salesforce.batches``)."""
        return getattr(self, "_arrow_ready", False)

    def default_label(self) -> str:
        return f"ReadFromSalesforce({self._config.sobject or 'soql'})"

    def display_data(self) -> dict[str, Any]:
        cfg = self._config
        return {"sobject": cfg.sobject or "", "soql": cfg.soql or "", "mode": cfg.mode,
                "split": str(cfg.split), "types": cfg.types,
                "login_url": self._connection.login_url}

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        from forcebeam.stages.salesforce.columnar import arrow_schema

        spec = replace(read_spec(self._config, self._connection),
                       readers=_local_workers(pbegin.pipeline))
        row_class = spec.schema.row_class()
        self._arrow_ready = (spec.schema.mode == "portable"
                             and arrow_schema(row_class) is not None)
        units = (pbegin
                 | "Start" >> beam.Create([spec])
                 | "Plan" >> beam.ParDo(_PlanUnits(self._connection, self.progress_name)))
        if spec.readers != 1:
            # Units spread over workers. One local worker reads them all: a Reshuffle there
            # only made the read wait for a stage boundary (~0.2 s) after planning.
            units = units | "Distribute" >> beam.Reshuffle()
        read = (units
                | "ReadUnits" >> beam.ParDo(_ReadUnit(self._connection, spec.schema,
                                                      self.retry))
                .with_outputs(_OBSERVED, _JOBS, main="pages"))
        read.pages.element_type = _Chunk      # its coder sizes pages without pickling them
        # Rows unless every consumer takes Arrow batches (see stages.salesforce.batches).
        rows = (read.pages
                | "ToRows" >> beam.ParDo(_PagesAsRows(spec.schema, row_class))
                .with_output_types(row_class))
        # The read's job is deleted once every one of its pages was read.
        _ = (read[_JOBS]
             | "JobsRead" >> beam.Distinct()
             | "DeleteJobs" >> beam.ParDo(_DeleteJob(self._connection)))
        if spec.incremental and spec.incremental.state:
            state_path = spec.incremental.state
            inc = spec.incremental
            _ = (read[_OBSERVED]
                 | "Watermark" >> beam.CombineGlobally(
                     WatermarkFn(inc.lookback_seconds))
                 | "WritePending" >> beam.Map(
                     lambda observed: incremental.write_pending(state_path, inc, observed)))
        return rows

class _PlanUnits(ClientDoFn):
    """One read spec -> read units (runs on one worker).

    Default (``split: auto``): at most one ``COUNT()`` (auto mode: Bulk or REST), then ONE
    Bulk job for the whole read; once it completes, its result pages are enumerated
    (``resultPages``) and each page becomes a unit, so workers download pages in parallel
    after the Reshuffle. ``split: N`` plans N Id ranges (one job each, submitted now);
    a job failing with ``QUERY_TIMEOUT`` is replanned that way automatically.
    """

    def __init__(self, connection: Any, progress_name: str | None = None) -> None:
        super().__init__(connection)
        self._progress_name = progress_name

    def process(self, spec: ReadSpec) -> Iterator[tuple[ReadSpec, planner.ReadUnit]]:
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
        id_ranges = (query.splittable and isinstance(spec.split, int)
                     and not isinstance(spec.split, bool) and spec.split > 1)
        # What `forcebeam run` began before Beam was imported (a local run's reads).
        started = head_start.take(self._connection, spec)
        total = -1
        if started is not None and started.total >= 0:
            total = started.total
        elif query.splittable and (spec.mode == "auto" or id_ranges):
            # The count picks auto's path (and sizes Id ranges); a bulk read learns its
            # size from the job instead.
            total = rest_query.count_rows(client, query.count_text(extra=extra),
                                          include_deleted=spec.include_deleted)
        if id_ranges:
            units = self._id_range_units(spec, total, planner.unit_count(total, spec.split),
                                         extra, seen)
        else:
            unit = planner.ReadUnit(index=0, id_from=None, id_to=None, expected_rows=total,
                                    mode=unit_mode(spec, total), extra=tuple(extra),
                                    seen=incremental.seen_in_range(seen, None, None))
            units = [unit]
            if unit.mode == "bulk" and spec.split == "auto":
                units = self._page_units(spec, unit, extra, seen, started)
        self._sync()
        planned = sum(max(u.expected_rows, 0) for u in units)
        if self._progress_name and all(u.expected_rows >= 0 for u in units):
            PlannedRows.record(self._progress_name, planned)
        LOG.info("planned %d read unit(s) for ~%d %s rows", len(units), planned, query.sobject)
        for unit in units:
            yield spec, unit

    def _id_range_units(self, spec: ReadSpec, total: int, wanted: int, extra: list[str],
                        seen: dict[str, str]) -> list[planner.ReadUnit]:
        client, query = self._client, spec.query
        ranges: list[tuple[str | None, str | None, int]] = [(None, None, total)]
        if wanted > 1 and total > 1:
            low = rest_query.edge_id(client, query.edge_id_text(descending=False, extra=extra),
                                     include_deleted=spec.include_deleted)
            high = rest_query.edge_id(client, query.edge_id_text(descending=True, extra=extra),
                                      include_deleted=spec.include_deleted)
            if low and high:
                count = functools.partial(_count_range, client, query, extra,
                                          spec.include_deleted)
                ranges = planner.plan_id_ranges(total=total, wanted=wanted, min_id=low,
                                                max_id=high, count=count)
        units = [planner.ReadUnit(index=index, id_from=id_from, id_to=id_to,
                                  expected_rows=rows, mode=unit_mode(spec, rows),
                                  extra=tuple(extra),
                                  seen=incremental.seen_in_range(seen, id_from, id_to))
                 for index, (id_from, id_to, rows) in enumerate(ranges)]
        if len(units) > 1:
            units = [self._submitted(spec, unit) for unit in units]
        return units

    def _page_units(self, spec: ReadSpec, unit: planner.ReadUnit, extra: list[str],
                    seen: dict[str, str], started: head_start.StartedRead | None = None
                    ) -> list[planner.ReadUnit]:
        """The read's one job (created now, or by the run's head start), completed, as one
        unit per result page.

        A refused job leaves the unit to the reader (REST fallback, or the explanation in
        bulk mode); an API version without ``resultPages`` reads the job page after page.
        """
        client = self._client
        if started is not None and started.refused is not None:
            return [unit]
        job = started.job if started is not None else None
        if job is None:
            try:
                job = bulk_query.create_query_job(client, unit_text(spec, unit),
                                                  include_deleted=spec.include_deleted)
            except bulk_query.BulkQueryRefusedError:
                return [unit]
        path = f"jobs/query/{job['id']}"
        try:
            info = bulk_query.wait_for_job(client, path, job, spec.bulk_timeout_seconds)
        except bulk_query.BulkJobFailedError as failure:
            if not responses.job_timed_out(failure) or not spec.query.splittable:
                raise
            bulk_query.delete_query_job(client, job["id"])
            total = unit.expected_rows
            if total < 0:
                total = rest_query.count_rows(client, spec.query.count_text(extra=extra),
                                              include_deleted=spec.include_deleted)
            wanted = max(2, math.ceil(total / TIMEOUT_SPLIT_ROWS))
            LOG.warning("the Bulk job for %s hit QUERY_TIMEOUT on the org; reading it as %d "
                        "Id-range jobs instead", spec.query.sobject, wanted)
            return self._id_range_units(spec, total, wanted, extra, seen)
        rows = int(info.get("numberRecordsProcessed") or max(unit.expected_rows, 0))
        urls = bulk_query.result_page_urls(client, job["id"], max_records=spec.bulk_page_size)
        if urls is None:
            return [replace(unit, job_id=job["id"], expected_rows=rows)]
        groups = _page_groups(urls, spec.readers)
        # One local reader holding every page deletes the job itself, as soon as the last
        # page parsed, while it is still written out: the job's delete (a round trip) then
        # no longer waits for the end of the read step. Remote runners may retry a unit
        # after it read its pages: there the job is deleted once every unit is done.
        owned = len(groups) == 1 and bool(spec.readers)
        return [replace(unit, index=index, job_id=job["id"], pages=group,
                        expected_rows=rows if index == 0 else 0, owns_job=owned)
                for index, group in enumerate(groups)]

    def _submitted(self, spec: ReadSpec, unit: planner.ReadUnit) -> planner.ReadUnit:
        """Submit a Bulk unit's job now, so the org prepares every unit's results at once.

        Read units run one after another on each worker; without this, each would wait for
        its own job to complete (seconds on a real org) while nothing else happens. A refusal
        is left to the reader, which falls back to REST (or explains, in bulk mode).
        """
        if unit.mode != "bulk":
            return unit
        try:
            job = bulk_query.create_query_job(self._client, unit_text(spec, unit),
                                              include_deleted=spec.include_deleted)
        except bulk_query.BulkQueryRefusedError:
            return unit
        return replace(unit, job_id=job["id"])


def _local_workers(pipeline: beam.Pipeline) -> int | None:
    """How many workers read in parallel under a local runner (DirectRunner, FnApiRunner),
    None under any other runner."""
    from apache_beam.options.pipeline_options import DirectOptions

    if not is_local_runner(pipeline.runner):
        return None
    workers = pipeline.options.view_as(DirectOptions).direct_num_workers
    return workers if workers and workers > 0 else (os.cpu_count() or 1)


def _page_groups(urls: list[str], readers: int | None = None) -> list[tuple[str, ...]]:
    """Pages per read unit.

    A local runner's ``readers`` workers each get one unit: a worker reads its units one
    after another, and each new unit waits for its first download with nothing to parse
    (~1 s a unit on a realistic org), while inside a unit the next pages download as one is
    parsed. A remote runner (workers scale) gets at least two units when there are two
    pages and at most ``PAGES_PER_UNIT`` pages per unit, to spread over its workers.
    """
    if not urls:
        return [()]
    if readers:
        units = min(len(urls), readers)
    else:
        units = min(len(urls), max(2, math.ceil(len(urls) / PAGES_PER_UNIT)))
    size = math.ceil(len(urls) / units)
    return [tuple(urls[start:start + size]) for start in range(0, len(urls), size)]


class _DeleteJob(ClientDoFn):
    """Delete a fanned-out job once all its pages were read (results stay in the org until
    then; Salesforce keeps them 7 days otherwise)."""

    def process(self, job_id: str) -> Iterator[Any]:
        bulk_query.delete_query_job(self._client, job_id)
        self._sync()
        return iter(())


def _count_range(client: Any, query: soql.BaseQuery, extra: list[str], include_deleted: bool,
                 id_from: str | None, id_to: str | None) -> int:
    return rest_query.count_rows(client, query.count_text(id_from=id_from, id_to=id_to,
                                                          extra=extra),
                                 include_deleted=include_deleted)


@dataclass(frozen=True)
class _Chunk:
    """What a read unit hands on: a parsed Bulk page (string columns) or typed REST values."""

    raw: Any = None                               # pyarrow.Table of Bulk CSV text, or None
    values: list[Sequence[Any]] | None = None     # typed value tuples (REST)

    @property
    def num_rows(self) -> int:
        return self.raw.num_rows if self.raw is not None else len(self.values or ())


class _ChunkCoder(beam.coders.Coder):
    """A page as Arrow IPC (REST values pickled), sized without encoding it (see
    ``stages.files.arrow_coder``: Beam's fallback pickled whole pages to size them)."""

    _ARROW, _PICKLED = b"A", b"P"

    def encode(self, chunk: _Chunk) -> bytes:
        if chunk.raw is None:
            return self._PICKLED + pickle.dumps(chunk.values, pickle.HIGHEST_PROTOCOL)
        return self._ARROW + table_to_ipc(chunk.raw)

    def decode(self, encoded: bytes) -> _Chunk:
        if encoded[:1] == self._PICKLED:
            return _Chunk(values=pickle.loads(encoded[1:]))  # noqa: S301 - our own bytes
        return _Chunk(raw=table_from_ipc(memoryview(encoded)[1:]))

    def estimate_size(self, chunk: _Chunk) -> int:
        if chunk.raw is not None:
            return int(chunk.raw.nbytes)
        return 64 * len(chunk.values or ())     # a rough figure: only a metric uses it

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self) -> Any:
        return _Chunk


beam.coders.registry.register_coder(_Chunk, _ChunkCoder)


class _ReadUnit(ClientDoFn):
    """Read one unit and hand on its pages (plus watermark observations when incremental).

    Conversion to rows or Arrow batches happens in the next, fused step (``_PagesAsRows``
    or ``_PagesAsBatches``), chosen by what consumes the read.
    """

    def __init__(self, connection: Any, schema: RowSchema,
                 retry: RetryPolicy = DEFAULT_RETRY) -> None:
        super().__init__(connection)
        self._schema = schema
        self._retry = retry

    def process(self, element: tuple[ReadSpec, planner.ReadUnit]) -> Iterator[Any]:
        spec, unit = element
        ProgressLog.expect(max(unit.expected_rows, 0))
        chunks = _explained(self._chunks(spec, unit, unit_text(spec, unit)))
        assert self._counters is not None
        for chunk in chunks:
            if spec.incremental:
                chunk = yield from _observed(spec, unit, chunk)
            if chunk.num_rows:
                self._counters.records_read.inc(chunk.num_rows)
                ProgressLog.add(chunk.num_rows)
                yield chunk
            del chunk                 # not held while the next page is read
        self._counters.read_units.inc()
        if unit.pages and unit.job_id and not unit.owns_job:
            yield beam.pvalue.TaggedOutput(_JOBS, unit.job_id)
        self._sync()

    def _chunks(self, spec: ReadSpec, unit: planner.ReadUnit, text: str) -> Iterator[_Chunk]:
        if unit.mode == "bulk":
            if unit.pages:
                held = bulk_query.PagesHeld()
                alone = unit.owns_job    # the process's one reader: its cores are its own
                pages = bulk_query.fetch_pages(
                    self._client, unit.pages, label=f"of unit {unit.index + 1} of job "
                                                    f"{unit.job_id}",
                    parallel=PAGE_DOWNLOADS_ALONE if alone else PAGE_DOWNLOADS,
                    parse_ahead=alone, retry=self._retry, held=held)
                if unit.owns_job and unit.job_id:
                    pages = bulk_query.deleting_after(pages, len(unit.pages), self._client,
                                                      unit.job_id)
                yield from _blocks_of(pages)
                _PAGES_PARSED_AT_ONCE.update(held.most_parsed)
                _PAGE_BODIES_AHEAD.update(held.most_bodies)
                return
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
                yield from _blocks_of(bulk_query.iter_pages(self._client, job_id,
                                                            max_records=spec.bulk_page_size,
                                                            retry=self._retry))
                bulk_query.delete_query_job(self._client, job_id)
                return
        values: list[Sequence[Any]] = []
        for row in rest_query.iter_rest_rows(self._client, text, spec.schema,
                                             include_deleted=spec.include_deleted):
            values.append(row)
            if len(values) == REST_CHUNK_ROWS:
                yield _Chunk(values=values)
                values = []
        if values:
            yield _Chunk(values=values)


def _blocks_of(pages: Iterator[bulk_query.ResultPage]) -> Iterator[_Chunk]:
    """Each page handed on as the blocks it was parsed in (~8 MB of CSV text each, see
    ``columnar.parse_page``), each block let go as soon as it is handed on.

    Why: a block's columns have buffers of their own, while a converted page shares its
    text buffers with the whole parsed page. Handed on whole, pages outlived their writing:
    measured on a 1M-row read into Parquet, ~150 MB of Arrow memory (~3 pages) was still
    allocated each time the next page was parsed, and the run's Arrow peak was 178 MB;
    handed on by blocks, that peak is 87 MB (one page being parsed, ~70 MB, and a block).
    A page still counts only once it parsed whole and complete (``bulk_query.fetch_page``).
    """
    for blocks in map(_page_blocks, pages):     # the page itself is not held past this call
        blocks.reverse()
        while blocks:
            yield _Chunk(raw=pa.Table.from_batches([blocks.pop()]))


def _page_blocks(page: bulk_query.ResultPage) -> list[pa.RecordBatch]:
    return page.table.to_batches()


def _observed(spec: ReadSpec, unit: planner.ReadUnit, chunk: _Chunk
              ) -> Generator[Any, None, _Chunk]:
    """Yield ``(Id, watermark)`` observations; return the chunk without rows already read.

    Rows whose Id and watermark value equal the state's ``seen`` pairs (the lookback window
    of the previous run) were emitted then and are dropped.
    """
    inc = spec.incremental
    assert inc is not None
    seen = dict(unit.seen) if unit.seen else {}
    id_field, mark_field = spec.schema.field("Id"), spec.schema.field(inc.field)
    assert id_field is not None and mark_field is not None
    if chunk.raw is not None:
        ids = _csv_values(chunk.raw, id_field, spec.schema)
        marks = _csv_values(chunk.raw, mark_field, spec.schema)
    else:
        lowered = [f.path.lower() for f in spec.schema.fields]
        id_pos, mark_pos = lowered.index("id"), lowered.index(inc.field.lower())
        ids = [row[id_pos] for row in chunk.values or ()]
        marks = [row[mark_pos] for row in chunk.values or ()]
    keep = []
    for record_id, mark in zip(ids, marks, strict=True):
        yield beam.pvalue.TaggedOutput(_OBSERVED, (record_id, incremental.observed_value(mark)))
        keep.append(not (seen and incremental.unchanged(seen, record_id, mark)))
    if all(keep):
        return chunk
    if chunk.raw is not None:
        return _Chunk(raw=chunk.raw.filter(pa.array(keep, pa.bool_())))
    return _Chunk(values=[row for row, kept in zip(chunk.values or (), keep, strict=True)
                          if kept])


def _csv_values(raw: Any, spec: Any, schema: RowSchema) -> list[Any]:
    """One column of a parsed page through the per-value converter (few columns only)."""
    convert = spec.csv_converter(schema.mode)
    wanted = spec.path.lower()
    for index, name in enumerate(raw.column_names):
        if name.lower() == wanted:
            return [None if text is None else convert(text)
                    for text in raw.column(index).to_pylist()]
    return [None] * raw.num_rows


class _PagesAsRows(beam.DoFn):
    """Pages -> schema'd rows, exploded here (cheaply), for row-wise consumers.

    Beam must never be the one exploding Arrow batches (its generic path costs several
    times more per row), so a read whose consumers are not all batch-aware gets rows.
    """

    def __init__(self, schema: RowSchema, row_class: type) -> None:
        self._schema = schema
        self._row_class = row_class
        self._converter: Any = None

    def setup(self) -> None:
        from forcebeam.stages.salesforce.columnar import PageConverter, arrow_schema

        target = arrow_schema(self._row_class) if self._schema.mode == "portable" else None
        self._converter = PageConverter(self._schema, target)

    def process(self, chunk: _Chunk) -> Iterator[Any]:
        make = self._row_class._make
        values = chunk.values if chunk.raw is None else self._converter.to_rows(chunk.raw)
        for row in values:
            yield make(row)


class _PagesAsBatches(_PagesAsRows):
    """Pages -> ``pyarrow.Table`` batches of the read's row type, for batch-aware consumers
    (Beam YAML's WriteToParquet, our JSON lines/CSV sinks): no per-row work at all."""

    @beam.DoFn.yields_batches
    def process(self, chunk: _Chunk) -> Iterator[pa.Table]:
        if chunk.raw is not None:
            yield self._converter.to_arrow(chunk.raw)
        else:
            yield self._converter.values_to_arrow(chunk.values or [])

    def infer_output_type(self, input_type: Any) -> Any:
        return self._row_class

    def get_output_batch_type(self, input_element_type: Any) -> Any:
        return pa.Table     # the annotation above is a string (postponed evaluation)


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

