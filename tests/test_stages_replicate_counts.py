"""What a replication reports about itself matches what it did.

* The manifest's ``api_calls`` is every API call of the run (launcher and pipeline: describes,
  counts, Bulk jobs created/polled/read/deleted, REST pages, getDeleted), the figure the
  org's own counter shows (the emulator's ``/__emulator/counters``).
* The summary `forcebeam run` prints names the rows the replication read and wrote, the
  manifest's numbers (it said "written 0").
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from forcebeam.stages.salesforce.replicate import ReplicateSalesforce
from tests.support.pipelines import jwt_connections
from tests.support.stages import FNAPI, connection_mapping
from tests.support.truth import Rest

RECORDS = 120
OBJECTS = ["Account", "Contact", "Lead"]


def _manifests(lake: Path) -> set[Path]:
    folder = lake / "_manifests"
    return set(folder.glob("*.json")) if folder.exists() else set()


def _counted_run(org, lake: Path, **config: Any) -> tuple[dict[str, Any], int]:
    """One run through the Python API; (its manifest, the API calls the org counted)."""
    before = _manifests(lake)
    org.reset_counters()
    pipeline = beam.Pipeline(options=PipelineOptions(FNAPI))
    _ = pipeline | ReplicateSalesforce(connection_mapping(org), path=str(lake),
                                       objects=OBJECTS, format="jsonl", **config)
    assert pipeline.run().wait_until_finish() == "DONE"
    calls = org.counters()["api_calls"]["total"]
    (manifest,) = _manifests(lake) - before
    return json.loads(manifest.read_text()), calls


def test_manifest_api_calls_are_every_call_the_org_counted(org_factory, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    org = org_factory(records=RECORDS)
    lake = tmp_path / "lake"

    # First run over Bulk 2.0: describes, counts, query jobs created, polled, read, deleted.
    manifest, counted = _counted_run(org, lake, mode="bulk")
    assert counted > 3 * len(OBJECTS)
    assert manifest["api_calls"] == counted
    assert all(manifest["objects"][name]["api_calls"] > 0 for name in OBJECTS)
    assert sum(e["api_calls"] for e in manifest["objects"].values()) <= counted

    # A second, incremental run over REST with a deletion: getDeleted windows too.
    rest = Rest(org)
    (gone,) = rest.ids("SELECT Id FROM Lead LIMIT 1")
    rest.call("DELETE", f"sobjects/Lead/{gone}")
    manifest, counted = _counted_run(org, lake, mode="rest")
    assert manifest["objects"]["Lead"]["tombstones"] == 1
    assert manifest["api_calls"] == counted


def test_run_summary_shows_the_rows_the_replication_read_and_wrote(org_factory, tmp_path,
                                                                   monkeypatch):
    from forcebeam.pipelines.emulator_env import forget_org, use_org
    from forcebeam.pipelines.run import run_file

    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    org = org_factory(records=RECORDS)
    lake = tmp_path / "lake"
    path = tmp_path / "lake.yaml"
    path.write_text(jwt_connections("prod") + textwrap.dedent(f"""\
        pipeline:
          transforms:
            - type: ReplicateSalesforce
              name: Lake
              config:
                connection: prod
                objects: [{", ".join(OBJECTS)}]
                path: {lake}
                format: jsonl
        """))
    try:
        for name, value in use_org(org.info, environ={}).items():
            monkeypatch.setenv(name, value)
        stream = io.StringIO()
        assert run_file(str(path), [], stream=stream) == 0, stream.getvalue()
    finally:
        forget_org()
    (manifest_file,) = _manifests(lake)
    entries = json.loads(manifest_file.read_text())["objects"].values()
    written = sum(e["rows"] + e["tombstones"] + e["formula_rows"] for e in entries)
    # A first run has no deletion log to read: its tombstones are the Recycle Bin's rows
    # the read returned (queryAll), so every row read became a row or a tombstone.
    read = sum(e["rows"] + e["tombstones"] for e in entries)
    assert written >= RECORDS
    (line,) = [line.split() for line in stream.getvalue().splitlines()
               if line.strip().startswith("Lake ")]
    read_column, written_column = (int(text.replace(",", "")) for text in line[1:3])
    assert written_column == written
    assert read_column == read
