"""The end of a replication run: publish its files, write the manifest, move the state.

Runs as the last step of the pipeline, on one worker, only once every write of every object
has finalized its files (it consumes all of their outputs), so a run that fails anywhere
before it publishes nothing, writes no manifest and leaves every object's state unchanged:
the next run reads the same changes again.

Order inside the step: (1) staged files are renamed from ``{path}/_staging/{run_id}/``
into ``{path}/X/``, ``{path}/X__deleted/``, ``{path}/X__formulas/`` (empty files are
deleted instead); (2) ``{path}/_manifests/{run_id}.json`` is written; (3) each object's
state. A crash between (2) and (3) can only make the next run repeat work (at-least-once),
never skip it. Every step is idempotent, so a runner retrying the step is safe.

Manifest (a contract; file paths relative to ``path``)::

    {"run_id": ..., "objects": {"Account": {"rows": N, "tombstones": N, "formula_rows": N,
      "files": [...], "tombstone_files": [...], "formula_files": [...],
      "watermark_before": ..., "watermark_after": ..., "fields": [...],
      "dropped_fields": {"F": "why"}, "hidden_fields": [...], "api_calls": N}, ...},
     "skipped": {"X": "why"}, "api_calls": N}

The run's ``api_calls`` is every API call the replication made, as the org counts them:
the launcher's (describeGlobal, describes, field definitions, the deletion log's range) and
the pipeline's (counts, Bulk jobs created, polled, read and deleted, REST pages,
getDeleted), claimed by the pipeline's steps as facts (``api_calls``; see
``metrics.StatsLedger``). An object's ``api_calls`` is the part claimed for it: its
launcher calls plus the calls claimed after its read (with several objects read at once on
one worker, a claim may include another object's calls). The run's total is exact on one
worker process; on several, calls a worker makes after its last claiming step are missing.
Calls made through the same connection by other stages of the pipeline count too.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import posixpath
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from forcebeam.stages.salesforce import replicate_state
from forcebeam.stages.salesforce.drift import FieldPlan
from forcebeam.stages.salesforce.timestamps import format_datetime, parse_datetime

__all__ = ["ObjectPlan", "RunPlan", "commit_run", "manifest_path", "FOLDER_SUFFIXES",
           "RUN_FACTS"]

LOG = logging.getLogger(__name__)
# kind of files -> (folder suffix, manifest key of the list, manifest key of the count)
FOLDER_SUFFIXES = {"rows": ("", "files"), "tombstones": ("__deleted", "tombstone_files"),
                   "formula_rows": ("__formulas", "formula_files")}
RUN_FACTS = ""      # the "object" of facts about the whole run (api_calls claimed at commit)


@dataclass(frozen=True)
class ObjectPlan:
    """What the launcher decided for one object (picklable, no secrets)."""

    name: str
    fields: FieldPlan
    state_before: Mapping[str, Any]
    deletes: bool
    deleted_since: str | None          # getDeleted from here (None: first run, or no deletes)
    deleted_until: str                 # ... to here (the run's start)
    reconcile: bool = False            # deletion log too short: compare Ids instead
    formula_due: bool = False
    launcher_api_calls: int = 0

    @property
    def watermark_before(self) -> str | None:
        return self.state_before.get("watermark")


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    started_at: str
    path: str
    state_path: str
    format: str
    objects: tuple[ObjectPlan, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)
    launcher_api_calls: int = 0        # every call of the launcher (objects, describes, ...)

    @property
    def staging(self) -> str:
        return f"{self.path}/_staging/{self.run_id}"

    def staged_prefix(self, sobject: str, kind: str) -> str:
        return f"{self.staging}/{sobject}{FOLDER_SUFFIXES[kind][0]}/{self.run_id}"


def manifest_path(path: str, run_id: str) -> str:
    return f"{path}/_manifests/{run_id}.json"


def _publish(plan: RunPlan, sobject: str, kind: str, staged: Iterable[str], keep: bool
             ) -> list[str]:
    """Move staged files into the object's folder; returns paths relative to ``path``."""
    from apache_beam.io.filesystems import FileSystems

    folder = f"{sobject}{FOLDER_SUFFIXES[kind][0]}"
    target_dir = f"{plan.path}/{folder}"
    published = []
    for source in sorted(set(staged)):
        name = posixpath.basename(source)
        target = f"{target_dir}/{name}"
        if not keep:
            if FileSystems.exists(source):
                FileSystems.delete([source])
            continue
        if FileSystems.exists(source):
            if not FileSystems.exists(target_dir):
                FileSystems.mkdirs(target_dir)
            FileSystems.rename([source], [target])
        published.append(f"{folder}/{name}")
    return published


def _write_json(path: str, data: Mapping[str, Any]) -> None:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path) as handle:
        handle.write(json.dumps(data, indent=1, sort_keys=False).encode("utf-8"))


def _next_state(plan: RunPlan, obj: ObjectPlan, facts: Mapping[str, list[Any]]
                ) -> dict[str, Any]:
    before = obj.state_before
    observed = [o for o in facts.get("observed", []) if o and o[0] is not None]
    if observed:
        mark = max((o[0] for o in observed), key=parse_datetime)
        seen = {k: v for o in observed for k, v in o[1].items()}
        watermark = format_datetime(parse_datetime(mark))
    else:
        watermark, seen = before.get("watermark"), dict(before.get("seen") or {})
    covered = facts.get("covered") or [obj.deleted_until]
    deleted_until = max(covered, key=parse_datetime) if obj.deletes else None
    formulas_at = before.get("formulas_at")
    if not before or obj.formula_due:   # a first run reads formulas with every row
        formulas_at = plan.started_at
    return {"watermark": watermark, "seen": seen, "deleted_until": deleted_until,
            "tombstoned": sorted({i for ids in facts.get("tombstone_ids", []) for i in ids}),
            "formulas_at": formulas_at, "fields": list(obj.fields.fields),
            "watermark_field": obj.fields.watermark_field, "run_id": plan.run_id,
            "updated_at": format_datetime(dt.datetime.now(dt.timezone.utc))}


def commit_run(facts: Iterable[tuple[str, str, Any]], plan: RunPlan) -> str:
    """Publish, write the manifest, then the states; returns the manifest's path."""
    from apache_beam.io.filesystems import FileSystems

    by_object: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for sobject, kind, value in facts:
        by_object[sobject][kind].append(value)
    entries: dict[str, Any] = {}
    states: dict[str, dict[str, Any]] = {}
    for obj in plan.objects:
        got = by_object[obj.name]
        entry: dict[str, Any] = {}
        for kind, (_, files_key) in FOLDER_SUFFIXES.items():
            count = int(sum(got.get(kind, [])))
            entry[kind] = count
            entry[files_key] = _publish(plan, obj.name, kind, got.get(files_key, []),
                                        keep=count > 0)
        state = _next_state(plan, obj, got)
        states[obj.name] = state
        entry.update({
            "watermark_before": obj.watermark_before,
            "watermark_after": state["watermark"],
            "fields": list(obj.fields.fields),
            "dropped_fields": dict(obj.fields.dropped),
            "hidden_fields": list(obj.fields.hidden),
            "api_calls": obj.launcher_api_calls + int(sum(got.get("api_calls", []))),
        })
        entries[obj.name] = {key: entry[key] for key in (
            "rows", "tombstones", "formula_rows", "files", "tombstone_files", "formula_files",
            "watermark_before", "watermark_after", "fields", "dropped_fields",
            "hidden_fields", "api_calls")}
    api_calls = plan.launcher_api_calls + int(sum(
        value for calls in by_object.values() for value in calls.get("api_calls", [])))
    manifest = {"run_id": plan.run_id, "objects": entries, "skipped": dict(plan.skipped),
                "api_calls": api_calls}
    target = manifest_path(plan.path, plan.run_id)
    manifest_dir = posixpath.dirname(target)
    if not FileSystems.exists(manifest_dir):
        FileSystems.mkdirs(manifest_dir)
    _write_json(target, manifest)
    state_dir = plan.state_path
    if not FileSystems.exists(state_dir):
        FileSystems.mkdirs(state_dir)
    for sobject, state in states.items():
        replicate_state.write_object_state(plan.state_path, sobject, state)
    _remove_staging(plan)
    LOG.info("replication run %s committed: %s", plan.run_id, target)
    return target


def _remove_staging(plan: RunPlan) -> None:
    """Remove this run's staging folder and those of earlier runs that failed (no manifest).

    Later run ids are left alone: they may belong to a run still going.
    """
    from apache_beam.io.filesystems import FileSystems

    root = f"{plan.path}/_staging/"
    found: list[str] = [plan.staging]
    if "://" not in root:                       # a local folder: list its run folders
        import os

        found += [root + name for name in (os.listdir(root) if os.path.isdir(root) else [])]
    else:                                       # an object store: list the staged objects
        try:
            found += [m.path for m in FileSystems.match([root + "**"])[0].metadata_list]
        except Exception as error:  # noqa: BLE001 - nothing staged
            LOG.debug("no staged files under %s: %s", root, error)
    by_run: dict[str, list[str]] = defaultdict(list)
    for staged in found:
        if staged.startswith(root):
            by_run[staged[len(root):].split("/", 1)[0]].append(staged)
    for run_id in sorted(by_run):
        failed = run_id < plan.run_id and not FileSystems.exists(
            manifest_path(plan.path, run_id))
        if run_id != plan.run_id and not failed:
            continue
        folder = root + run_id
        try:
            if FileSystems.exists(folder):
                FileSystems.delete([folder])
            else:                               # object stores have no folders
                FileSystems.delete(sorted(set(by_run[run_id]) - {folder}))
        except Exception as error:  # noqa: BLE001 - leftovers are harmless, never fatal
            LOG.info("could not remove the staging folder %s: %s", folder, error)
        if failed:
            LOG.info("removed the staged files of failed run %s", run_id)
    if "://" not in root:                       # leave no empty folder in the lake
        import os

        try:
            if os.path.isdir(root) and not os.listdir(root):
                os.rmdir(root)
        except OSError:
            pass


def previous_files(path: str, sobject: str) -> tuple[list[str], list[str]]:
    """Absolute paths of ``sobject``'s row and tombstone files in every earlier manifest."""
    from apache_beam.io.filesystems import FileSystems

    rows: list[str] = []
    tombstones: list[str] = []
    try:
        matched = FileSystems.match([f"{path}/_manifests/*.json"])[0].metadata_list
    except Exception:  # noqa: BLE001 - no manifests folder yet
        return rows, tombstones
    for metadata in sorted(matched, key=lambda m: m.path):
        with FileSystems.open(metadata.path) as handle:
            entry = json.loads(handle.read().decode("utf-8")).get("objects", {}).get(sobject)
        if entry:
            rows += [f"{path}/{name}" for name in entry.get("files", [])]
            tombstones += [f"{path}/{name}" for name in entry.get("tombstone_files", [])]
    return rows, tombstones
