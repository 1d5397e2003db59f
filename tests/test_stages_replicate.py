"""ReplicateSalesforce against the emulated org: whole-org runs, deletes, drift, failures.

Truth comes from plain REST calls (``rest_truth``/``Rest``), never from forcebeam; files
are read back with pyarrow/json/csv as a lake user would.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from bench.org import login
from forcebeam.stages.salesforce.replicate import ReplicateSalesforce
from tests.support.bulk import wait_until_terminal
from tests.test_stages_support import FNAPI, connection_mapping, rest_truth

RECORDS = 200


@pytest.fixture(autouse=True)
def _private_describe_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))


class Rest:
    """Plain REST/Bulk calls as the integration user's org admin would make them."""

    def __init__(self, org):
        self.org = org
        self.session = org.session()
        self.auth = login(org, self.session)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, self.auth.data_url(path),
                                        headers=self.auth.headers(), timeout=60, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def count(self, sobject: str) -> int:
        return self.call("GET", "query", params={"q": f"SELECT COUNT() FROM {sobject}"}
                         )["totalSize"]

    def ids(self, soql: str, include_deleted: bool = False) -> list[str]:
        return [r["Id"] for r in rest_truth(self.org, soql, include_deleted=include_deleted)]

    def hard_delete(self, sobject: str, ids: list[str]) -> None:
        job = self.call("POST", "jobs/ingest", json={"object": sobject,
                                                      "operation": "hardDelete"})
        response = self.session.put(self.auth.data_url(f"jobs/ingest/{job['id']}/batches"),
                                    data="Id\n" + "\n".join(ids) + "\n",
                                    headers={**self.auth.headers(), "Content-Type": "text/csv"},
                                    timeout=60)
        response.raise_for_status()
        self.call("PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
        done = wait_until_terminal(lambda: self.call("GET", f"jobs/ingest/{job['id']}"),
                                   job["id"])
        assert done["state"] == "JobComplete" and done["numberRecordsProcessed"] == len(ids)


def _replicate(org, lake: Path, **config: Any) -> dict[str, Any]:
    """One run; returns its manifest (read from the lake, as a user would)."""
    before = set((lake / "_manifests").glob("*.json")) if (lake / "_manifests").exists() \
        else set()
    pipeline = beam.Pipeline(options=PipelineOptions(FNAPI))
    _ = pipeline | ReplicateSalesforce(connection_mapping(org), path=str(lake), **config)
    result = pipeline.run()
    assert result.wait_until_finish() == "DONE"
    (manifest,) = set((lake / "_manifests").glob("*.json")) - before
    return json.loads(manifest.read_text())


def _parquet_rows(lake: Path, files: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in files:
        rows += pq.read_table(lake / name).to_pylist()
    return rows


def test_all_objects_to_parquet_rows_match_the_org_and_the_manifest_lists_every_file(
        org_factory, tmp_path):
    org = org_factory(records=RECORDS)
    rest = Rest(org)
    lake = tmp_path / "lake"
    manifest = _replicate(org, lake, objects="all", format="parquet")

    sobjects = [s["name"] for s in rest.call("GET", "sobjects")["sobjects"]
                if s["queryable"] and s["replicateable"]]
    assert sorted(manifest["objects"]) == sorted(sobjects)
    assert manifest["skipped"] == {}
    run_id = manifest["run_id"]
    on_disk = {str(p.relative_to(lake)) for p in lake.rglob("*.parquet")}
    listed = set()
    for name, entry in manifest["objects"].items():
        truth = rest.count(name)
        assert entry["rows"] == truth, name
        rows = _parquet_rows(lake, entry["files"])
        assert len(rows) == truth, name
        assert len({r["Id"] for r in rows}) == truth
        assert all(f.startswith(f"{name}/") and run_id in f for f in entry["files"])
        assert set(entry["fields"]) == set(rows[0]) if rows else True
        assert entry["formula_rows"] == 0 and entry["formula_files"] == []
        assert entry["watermark_before"] is None and entry["watermark_after"]
        assert entry["api_calls"] > 0
        listed |= set(entry["files"]) | set(entry["tombstone_files"])
        # The first run reads queryAll: rows already in the Recycle Bin are soft tombstones.
        tombs = _parquet_rows(lake, entry["tombstone_files"])
        assert entry["tombstones"] == len(tombs)
        assert {t["Id"] for t in tombs} == set(rest.ids(
            f"SELECT Id FROM {name} WHERE IsDeleted = true", include_deleted=True)) if tombs else True
        assert all(t["kind"] == "soft" for t in tombs)
    assert listed == on_disk
    assert not (lake / "_staging" / run_id).exists()
    contact = manifest["objects"]["Contact"]
    assert "Account_Name__c" in contact["fields"]
    account = manifest["objects"]["Account"]
    assert account["dropped_fields"]["BillingAddress"].startswith("compound address field")
    assert "BillingCity" in account["fields"]
    assert (lake / "_state" / "Account.json").exists()
