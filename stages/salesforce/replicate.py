"""ReplicateSalesforce: a whole org (or chosen objects) into a lake, in one Beam pipeline.

Usage (Beam YAML / ``forcebeam run``)::

    - type: ReplicateSalesforce
      config:
        connection: prod
        objects: [Account, Contact, "*__c"]     # or all
        exclude: ["*History", "*Share"]
        path: gs://acme-lake/salesforce
        format: parquet                          # parquet | jsonl | csv
        deletes: true
        formula_refresh: 24h

Shape: when the pipeline is built, the launcher resolves the objects (describeGlobal),
describes each one afresh (schema drift, field-level security: ``drift``) and loads each
object's state. Then, per object and all in the same pipeline: one incremental read
(``ReadFromSalesforce``, queryAll when deletes are on) split into live rows and soft
deletes; getDeleted windows for hard deletes (``tombstones``); a formula re-read when due;
each written through Beam's file sinks into a staging folder. The last step waits for all
of it and publishes the files, the manifest and the states (``replicate_manifest``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from forcebeam.stages.salesforce import (
    drift,
    incremental,
    lake_files,
    replicate_manifest,
    replicate_objects,
    replicate_state,
    tombstones,
)
from forcebeam.stages.salesforce.config import as_connection
from forcebeam.stages.salesforce.metrics import NAMESPACE, StatsLedger
from forcebeam.stages.salesforce.read import ReadFromSalesforce
from forcebeam.stages.salesforce.replicate_config import ReplicateConfig
from forcebeam.stages.salesforce.replicate_manifest import ObjectPlan, RunPlan
from forcebeam.stages.salesforce.timestamps import format_datetime, parse_datetime
from forcebeam.stages.salesforce.watermark import WatermarkFn

__all__ = ["ReplicateSalesforce"]

LOG = logging.getLogger(__name__)
# The first run's getDeleted cursor starts a little before the run: clocks differ.
FIRST_CURSOR_SLACK = dt.timedelta(seconds=60)
RECENT_TOMBSTONES = dt.timedelta(hours=1)


class ReplicateSalesforce(beam.PTransform):
    """Replicate Salesforce objects into files: rows, tombstones and formula refreshes.

    Args:
      connection: A ``auth.Connection`` or its mapping (login_url, auth, ...).
      objects: Object names and globs (``[Account, "*__c"]``), or ``all``: every object
        describe marks queryable and replicateable that Bulk/REST can read in full.
      exclude: Names and globs to leave out (``["*History", "*Share"]``).
      path: The lake folder (local or ``gs://``); see the README for its layout.
      format: ``parquet`` (default), ``jsonl`` or ``csv``.
      state: Folder of the per-object watermarks (default ``{path}/_state``).
      deletes: Write tombstones for soft and hard deletes (default true).
      formula_refresh: Re-read ``Id`` + formula fields of every row at most this often
        (``24h``, ``30m``); default never (formulas are read with changed rows only).
      mode: ``auto`` (Bulk for volume, REST otherwise), ``bulk`` or ``rest``.
    """

    config_model = ReplicateConfig

    def __init__(self, connection: Any, path: str, objects: Sequence[str] | str = "all",
                 exclude: Sequence[str] | None = None, format: str = "parquet",  # noqa: A002
                 state: str | None = None, deletes: bool = True,
                 formula_refresh: str | float | None = None, mode: str = "auto") -> None:
        super().__init__()
        self._config = ReplicateConfig(
            connection=connection, path=path,
            objects=objects if isinstance(objects, str) else list(objects),  # "all", a name
            exclude=list(exclude or []), format=format, state=state, deletes=deletes,
            formula_refresh=formula_refresh, mode=mode)
        self._connection = as_connection(connection)
        self.run_plan: RunPlan | None = None

    def default_label(self) -> str:
        return "ReplicateSalesforce"

    # ----------------------------------------------------------------- launcher side

    def plan(self) -> RunPlan:
        """Resolve objects, describe each afresh and load its state (launcher, API calls)."""
        from forcebeam.auth import get_client
        from forcebeam.auth.errors import SalesforceApiError
        from forcebeam.stages.salesforce.describe import warm_describe_cache

        cfg = self._config
        started = dt.datetime.now(dt.timezone.utc)
        client = get_client(self._connection)
        run_calls_before = _api_calls(client)
        selection = replicate_objects.select_objects(
            client.request("GET", "sobjects").json(), cfg.objects, cfg.exclude)
        skipped = dict(selection.skipped)
        plans = []
        for name in selection.objects:
            calls_before = _api_calls(client)
            try:
                describe = warm_describe_cache(self._connection, name)  # fresh, shared cache
                all_fields = drift.field_definitions(client, name)
            except SalesforceApiError as error:
                skipped[name] = f"cannot describe it as the integration user: {error}"
                LOG.warning("%s: skipped (%s)", name, error)
                continue
            state = replicate_state.load_object_state(cfg.state_path, name)
            fields = drift.plan_fields(name, describe, all_fields,
                                       previous=state.get("fields") or ())
            if fields.watermark_field is None:
                LOG.warning("%s has no SystemModstamp/LastModifiedDate: every run reads all "
                            "of it", name)
            deletes = cfg.deletes and fields.has_is_deleted
            since = state.get("deleted_until") if deletes else None
            reconcile = False
            if deletes and state.get("watermark") and not since:
                LOG.warning("%s: earlier runs kept no deletions (deletes were off); "
                            "reconciling Ids with the lake's earlier files instead (a Bulk "
                            "SELECT Id) so records deleted since then are not missed", name)
                reconcile = True
            elif since and not tombstones.deleted_available(client, name,
                                                            parse_datetime(since)):
                LOG.warning("%s: the org no longer keeps deletions as far back as %s (before "
                            "earliestDateAvailable); reconciling Ids with the lake's earlier "
                            "files instead (a Bulk SELECT Id)", name, since)
                reconcile = True
            plans.append(ObjectPlan(
                name=name, fields=fields, state_before=state, deletes=deletes,
                deleted_since=None if reconcile else since,
                deleted_until=format_datetime(started - FIRST_CURSOR_SLACK if not state
                                              else started),
                reconcile=reconcile, formula_due=_formula_due(cfg, fields, state, started),
                launcher_api_calls=_api_calls(client) - calls_before))
        # What the pipeline's claims count starts here: the launcher's calls are counted
        # above (and anything this process did before the run is not the run's).
        PIPELINE_CALLS.claim(client)
        return RunPlan(run_id=replicate_state.new_run_id(started),
                       started_at=format_datetime(started), path=cfg.path,
                       state_path=cfg.state_path, format=cfg.format, objects=tuple(plans),
                       skipped=skipped, launcher_api_calls=_api_calls(client) - run_calls_before)

    # ----------------------------------------------------------------- pipeline

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        plan = self.run_plan = self.plan()
        LOG.info("replication run %s: %d object(s), %d skipped", plan.run_id,
                 len(plan.objects), len(plan.skipped))
        facts: list[beam.PCollection] = [pbegin | "NoFacts" >> beam.Create([])]
        self._reads: list[beam.PCollection] = []
        for obj in plan.objects:
            facts += self._replicate(pbegin, plan, obj)
        return (facts
                | "AllFacts" >> beam.Flatten()
                | "Gather" >> beam.combiners.ToList()
                | "Commit" >> beam.Map(_commit, plan, self._connection)
                | "Result" >> beam.Map(lambda manifest, run_id=plan.run_id:
                                       beam.Row(run_id=run_id, manifest=manifest)))

    def _replicate(self, pbegin: beam.pvalue.PBegin, plan: RunPlan, obj: ObjectPlan
                   ) -> list[beam.PCollection]:
        cfg, name, fields = self._config, obj.name, obj.fields
        watermark = obj.watermark_before
        rows = pbegin | f"{name}/Read" >> ReadFromSalesforce(
            self._connection, sobject=name, fields=list(fields.fields), mode=cfg.mode,
            include_deleted=obj.deletes,
            incremental=({"field": fields.watermark_field, "start": watermark}
                         if watermark and fields.watermark_field else None))
        self._reads.append(rows)
        split = (rows
                 | f"{name}/Split" >> beam.ParDo(_SplitChanges(
                     fields.watermark_field, obj.deletes,
                     dict(obj.state_before.get("seen") or {}) if watermark else {},
                     self._connection, name))
                 .with_output_types(rows.element_type)
                 .with_outputs(_SOFT, _OBSERVED, _CALLS, main="live"))
        facts = _written(split.live, plan, name, "rows", self._connection)
        facts.append(split[_CALLS])
        facts.append(split[_OBSERVED]
                     | f"{name}/Watermark" >> beam.CombineGlobally(WatermarkFn(0))
                     | f"{name}/WatermarkFact" >> beam.Map(lambda v, n=name: (n, "observed", v)))
        if obj.deletes:
            facts += self._tombstones(pbegin, plan, obj, split[_SOFT])
        if obj.formula_due and fields.formula_fields:
            formulas = pbegin | f"{name}/Formulas" >> ReadFromSalesforce(
                self._connection, sobject=name, fields=["Id", *fields.formula_fields],
                mode=cfg.mode)
            facts += _written(formulas, plan, name, "formula_rows", self._connection)
        return facts

    @property
    def reads(self) -> list[beam.PCollection]:
        """Once expanded: the rows each object's read returned (``forcebeam run`` counts
        them for progress lines and the summary of a stopped run)."""
        return list(getattr(self, "_reads", ()))

    def _tombstones(self, pbegin: beam.pvalue.PBegin, plan: RunPlan, obj: ObjectPlan,
                    soft: beam.PCollection) -> list[beam.PCollection]:
        name = obj.name
        parts = [soft]
        facts: list[beam.PCollection] = []
        if obj.deleted_since:
            hard = (pbegin
                    | f"{name}/DeletedWindow" >> beam.Create(
                        [(name, obj.deleted_since, obj.deleted_until)])
                    | f"{name}/GetDeleted" >> beam.ParDo(
                        tombstones.GetDeletedFn(self._connection))
                    .with_outputs(tombstones.COVERED, main="hard"))
            parts.append(hard.hard)
            facts.append(hard[tombstones.COVERED]
                         | f"{name}/CoveredFact" >> beam.Map(lambda v, n=name: (n, "covered", v)))
        if obj.reconcile:
            parts.append(self._reconciled(pbegin, plan, obj))
        already = frozenset(obj.state_before.get("tombstoned") or ())
        merged = (parts
                  | f"{name}/AllDeletes" >> beam.Flatten()
                  | f"{name}/ById" >> beam.GroupByKey()
                  | f"{name}/Pick" >> beam.Map(tombstones.pick_tombstone)
                  | f"{name}/New" >> beam.Filter(lambda t, seen=already: t["Id"] not in seen))
        facts += _written(merged, plan, name, "tombstones", self._connection,
                          lake_files.TOMBSTONE_COLUMNS)
        # Only deletions near this run can come back (window edges, a delete racing the
        # read): remembering those keeps the state small on a first run's full Recycle Bin.
        floor = format_datetime(parse_datetime(plan.started_at) - RECENT_TOMBSTONES)
        facts.append(merged
                     | f"{name}/Recent" >> beam.Filter(
                         lambda t, floor=floor: (t["deleted_at"] or floor) >= floor)
                     | f"{name}/TombstoneIds" >> beam.Map(lambda t: t["Id"])
                     | f"{name}/IdList" >> beam.combiners.ToList()
                     | f"{name}/IdsFact" >> beam.Map(lambda v, n=name: (n, "tombstone_ids", v)))
        return facts

    def _reconciled(self, pbegin: beam.pvalue.PBegin, plan: RunPlan, obj: ObjectPlan
                    ) -> beam.PCollection:
        """Ids in earlier runs' files that the org no longer has: hard tombstones."""
        name = obj.name
        row_files, tombstone_files = replicate_manifest.previous_files(plan.path, name)
        current = (pbegin
                   | f"{name}/OrgIds" >> ReadFromSalesforce(
                       self._connection, sobject=name, fields=["Id"],
                       mode="rest" if self._config.mode == "rest" else "bulk")
                   | f"{name}/OrgIdKeys" >> beam.Map(lambda r: (r.Id, "org")))
        lake = (pbegin
                | f"{name}/LakeFiles" >> beam.Create(row_files)
                | f"{name}/LakeIds" >> beam.FlatMap(lake_files.read_ids)
                | f"{name}/LakeIdKeys" >> beam.Map(lambda i: (i, "lake")))
        gone = (pbegin
                | f"{name}/TombstoneFiles" >> beam.Create(tombstone_files)
                | f"{name}/GoneIds" >> beam.FlatMap(lake_files.read_ids)
                | f"{name}/GoneIdKeys" >> beam.Map(lambda i: (i, "gone")))
        return ((current, lake, gone)
                | f"{name}/AllIds" >> beam.Flatten()
                | f"{name}/IdsById" >> beam.GroupByKey()
                | f"{name}/Missing" >> beam.FlatMap(_missing, plan.started_at))


def _missing(element: tuple[str, Any], at: str) -> Iterator[tuple[str, tuple[str, str]]]:
    record_id, where = element
    where = set(where)
    if "lake" in where and not where & {"org", "gone"}:
        yield record_id, (at, "hard")


_SOFT = "soft"
_OBSERVED = "observed"
_CALLS = "api_calls"
# API calls made by the pipeline's steps (reads, getDeleted), claimed as manifest facts: the
# client is shared per process, so each claim takes the growth since the last one.
PIPELINE_CALLS = StatsLedger()


def _claimed_calls(connection: Any) -> int:
    """The API calls this process made since the last claim (0 if it cannot tell)."""
    from forcebeam.auth import get_client

    try:
        return PIPELINE_CALLS.claim(get_client(connection))
    except Exception as error:  # noqa: BLE001 - a count never stops a run from publishing
        LOG.warning("this worker's API calls are not in the manifest's api_calls (%s)",
                    type(error).__name__)
        return 0


def _commit(facts: list[tuple[str, str, Any]], plan: RunPlan, connection: Any) -> str:
    """Publish the run; calls this process made since the last claim count for the run."""
    return replicate_manifest.commit_run(
        [*facts, (replicate_manifest.RUN_FACTS, "api_calls", _claimed_calls(connection))],
        plan)


class _SplitChanges(beam.DoFn):
    """Changed rows -> live rows, soft deletes (``soft``) and watermark observations.

    Rows read again because of ``>=`` on the watermark are dropped when the previous run
    saw them with the same value (as ``incremental`` does for ``ReadFromSalesforce``).
    """

    def __init__(self, watermark_field: str | None, deletes: bool,
                 seen: dict[str, str], connection: Any = None, sobject: str = "") -> None:
        self._field = watermark_field
        self._deletes = deletes
        self._seen = seen
        self._connection = connection
        self._sobject = sobject

    def finish_bundle(self) -> Iterator[Any]:
        """The calls of the read (fused before this step) and whatever ran before it in this
        process since the last claim: a manifest fact (``api_calls``)."""
        if self._connection is None:
            return
        calls = _claimed_calls(self._connection)
        if calls:
            yield beam.pvalue.TaggedOutput(_CALLS, WindowedValue(
                (self._sobject, "api_calls", calls), MIN_TIMESTAMP, [GlobalWindow()]))

    def process(self, row: Any) -> Iterator[Any]:
        record_id = row.Id
        stamp = getattr(row, self._field) if self._field else None
        if self._field:
            yield beam.pvalue.TaggedOutput(_OBSERVED, (record_id,
                                                       incremental.observed_value(stamp)))
            if self._seen and incremental.unchanged(self._seen, record_id, stamp):
                return
        if self._deletes and getattr(row, "IsDeleted", False):
            deleted_at = incremental.observed_value(stamp) if stamp is not None else None
            yield beam.pvalue.TaggedOutput(_SOFT, (record_id, (deleted_at, "soft")))
            return
        yield row


def _written(rows: beam.PCollection, plan: RunPlan, name: str, kind: str, connection: Any,
             columns: Sequence[str] | None = None) -> list[beam.PCollection]:
    """Write ``rows`` to the staging folder; the facts the commit needs (files, count)."""
    files_key = replicate_manifest.FOLDER_SUFFIXES[kind][1]
    label = f"{name}/{kind}"
    files = lake_files.write_files(rows, plan.staged_prefix(name, kind), plan.format,
                                   columns=columns, label=label)
    return [files | f"{label}/FilesFact" >> beam.Map(lambda f, n=name, k=files_key: (n, k, f)),
            rows
            | f"{label}/Count" >> beam.combiners.Count.Globally()
            | f"{label}/CountFact" >> beam.FlatMap(_count_facts, name, kind, connection)]


def _count_facts(count: int, name: str, kind: str, connection: Any
                 ) -> Iterator[tuple[str, str, int]]:
    """The count of one kind of file rows, for the manifest and for the stage's
    ``records_written`` metric (the run summary): both from the same number. A late step
    on its worker, it also claims the API calls made there since the last claim."""
    Metrics.counter(NAMESPACE, "records_written").inc(count)
    yield name, kind, count
    calls = _claimed_calls(connection)
    if calls:
        yield name, "api_calls", calls


def _formula_due(cfg: ReplicateConfig, fields: drift.FieldPlan, state: dict[str, Any],
                 now: dt.datetime) -> bool:
    refresh = cfg.formula_refresh_seconds
    if refresh is None or not fields.formula_fields or not state.get("formulas_at"):
        return False
    return (now - parse_datetime(state["formulas_at"])).total_seconds() >= refresh


def _api_calls(client: Any) -> int:
    return client.stats.api_calls
