"""ReplicateSalesforce against the emulated org: whole-org runs, deletes, drift, failures.

Truth comes from plain REST calls (``rest_records``/``Rest``), never from forcebeam; files
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

from forcebeam.stages.salesforce.replicate import ReplicateSalesforce
from tests.support.stages import FNAPI, connection_mapping
from tests.support.truth import Rest, rest_records

RECORDS = 200


@pytest.fixture(autouse=True)
def _private_describe_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))


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

    described = rest.call("GET", "sobjects")["sobjects"]
    sobjects = [s["name"] for s in described if s["queryable"] and s["replicateable"]]
    assert sorted(manifest["objects"]) == sorted(sobjects)
    # Organization is queryable but not replicateable (as in Salesforce): skipped, with why.
    assert manifest["skipped"] == {"Organization": "describe says it is not replicateable"}
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
        if "IsDeleted" in entry["fields"]:
            in_bin = f"SELECT Id FROM {name} WHERE IsDeleted = true"  # noqa: S608
            assert {t["Id"] for t in tombs} == set(rest.ids(in_bin, include_deleted=True))
        assert all(t["kind"] == "soft" for t in tombs)
    assert listed == on_disk
    assert not (lake / "_staging" / run_id).exists()
    contact = manifest["objects"]["Contact"]
    assert "Account_Name__c" in contact["fields"]
    account = manifest["objects"]["Account"]
    assert account["dropped_fields"]["BillingAddress"].startswith("compound address field")
    assert "BillingCity" in account["fields"]
    assert (lake / "_state" / "Account.json").exists()


def _entry(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    return manifest["objects"][name]


def _jsonl_rows(lake: Path, files: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for name in files
            for line in (lake / name).read_text().splitlines() if line.strip()]


def test_second_run_has_exactly_the_changes_and_tombstones_third_run_nothing(
        org_factory, tmp_path):
    org = org_factory(records=RECORDS)
    rest = Rest(org)
    lake = tmp_path / "lake"
    config = {"objects": ["Account", "Contact", "Lead"], "format": "jsonl",
              "formula_refresh": "0s"}
    first = _replicate(org, lake, **config)
    assert _entry(first, "Contact")["formula_rows"] == 0   # not due on a first run
    contacts_before = {r["Id"]: r for r in _jsonl_rows(lake, _entry(first, "Contact")["files"])}

    # 5 Accounts modified, one of them (a parent of Contacts) renamed.
    parent = rest_records(org, "SELECT AccountId FROM Contact WHERE AccountId != null "
                             "LIMIT 1")[0]["AccountId"]
    others = [i for i in rest.ids("SELECT Id FROM Account LIMIT 10") if i != parent][:4]
    rest.call("PATCH", f"sobjects/Account/{parent}", json={"Name": "Renamed Parent Ltd"})
    for account_id in others:
        rest.call("PATCH", f"sobjects/Account/{account_id}", json={"Phone": "555-0100"})
    children = {c for c, r in contacts_before.items() if r["AccountId"] == parent}
    assert children
    # 3 Contacts soft-deleted (not children of the renamed parent), 2 Leads hard-deleted.
    soft = [c for c in contacts_before if c not in children][:3]
    for contact_id in soft:
        rest.call("DELETE", f"sobjects/Contact/{contact_id}")
    hard = rest.ids("SELECT Id FROM Lead LIMIT 2")
    rest.hard_delete("Lead", hard)
    # getDeleted windows have whole-second ends (Salesforce: minutes) and the next window
    # starts at latestDateCovered: let the deletions fall inside this run's window.
    time.sleep(1.1)

    second = _replicate(org, lake, **config)
    account = _entry(second, "Account")
    assert {r["Id"] for r in _jsonl_rows(lake, account["files"])} == {parent, *others}
    assert account["rows"] == 5 and account["tombstones"] == 0
    assert account["watermark_before"] == _entry(first, "Account")["watermark_after"]
    assert account["watermark_after"] > account["watermark_before"]
    contact = _entry(second, "Contact")
    assert contact["rows"] == 0 and contact["files"] == []   # formulas changed, rows did not
    formulas = {r["Id"]: r for r in _jsonl_rows(lake, contact["formula_files"])}
    assert contact["formula_rows"] == rest.count("Contact") == len(formulas)
    assert all(f.startswith("Contact__formulas/") for f in contact["formula_files"])
    assert set(next(iter(formulas.values()))) == {"Id", "Account_Name__c"}
    assert {formulas[c]["Account_Name__c"] for c in children} == {"Renamed Parent Ltd"}
    assert all(formulas[c]["Account_Name__c"] == contacts_before[c]["Account_Name__c"]
               for c in formulas if c not in children)
    tombs = {t["Id"]: t for name in ("Contact", "Lead")
             for t in _jsonl_rows(lake, _entry(second, name)["tombstone_files"])}
    assert {i: t["kind"] for i, t in tombs.items()} == {
        **{i: "soft" for i in soft}, **{i: "hard" for i in hard}}
    assert all(t["deleted_at"] for t in tombs.values())
    assert _entry(second, "Contact")["tombstones"] == 3
    assert _entry(second, "Lead")["tombstones"] == 2
    assert all(f.startswith("Lead__deleted/") for f in _entry(second, "Lead")["tombstone_files"])

    third = _replicate(org, lake, **{**config, "formula_refresh": "24h"})
    for name in ("Account", "Contact", "Lead"):
        entry = _entry(third, name)
        assert (entry["rows"], entry["tombstones"], entry["formula_rows"]) == (0, 0, 0), name
        assert entry["files"] == entry["tombstone_files"] == entry["formula_files"] == []
        assert entry["watermark_after"] == entry["watermark_before"] \
            == _entry(second, name)["watermark_after"]
    assert len(list((lake / "_manifests").glob("*.json"))) == 3


def test_drift_new_field_appears_removed_field_dropped_hidden_field_listed(
        org_factory, tmp_path, caplog):
    org = org_factory(records=RECORDS)
    rest = Rest(org)
    lake = tmp_path / "lake"
    org.admin("POST", "schema/Account/fields", json={"name": "Region__c", "type": "string",
                                                      "label": "Region", "length": 40})
    first = _replicate(org, lake, objects=["Account"], format="csv")
    assert "Region__c" in _entry(first, "Account")["fields"]

    org.admin("POST", "schema/Account/fields", json={"name": "Tier__c", "type": "string",
                                                      "label": "Tier", "length": 20})
    org.admin("DELETE", "schema/Account/fields/Region__c")
    org.admin("PUT", f"users/{org.info['username']}/field-access/Account/Phone",
              json={"readable": False})
    account_id = rest.ids("SELECT Id FROM Account LIMIT 1")[0]
    rest.call("PATCH", f"sobjects/Account/{account_id}", json={"Tier__c": "Gold"})

    caplog.set_level("WARNING")
    second = _replicate(org, lake, objects=["Account"], format="csv")
    entry = _entry(second, "Account")
    assert "Tier__c" in entry["fields"] and "Region__c" not in entry["fields"]
    assert entry["dropped_fields"]["Region__c"].startswith("deleted from the org")
    assert entry["hidden_fields"] == ["Phone"] and "Phone" not in entry["fields"]
    assert "Account.Region__c" in caplog.text and "Account.Phone" in caplog.text
    with (lake / entry["files"][0]).open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["Id"] for r in rows] == [account_id]
    assert rows[0]["Tier__c"] == "Gold"
    assert "Phone" not in rows[0] and "Region__c" not in rows[0]


def test_a_failed_run_commits_nothing_and_the_rerun_is_exact(org_factory, tmp_path):
    org = org_factory(records=RECORDS)
    rest = Rest(org)
    lake = tmp_path / "lake"
    config = {"objects": ["Account", "Contact", "Case"], "format": "parquet"}
    _replicate(org, lake, **config)
    state_before = {p.name: p.read_text() for p in (lake / "_state").iterdir()}
    changed = rest.ids("SELECT Id FROM Account LIMIT 5")
    org.admin("POST", "records/Account/touch", json={"ids": changed})
    soft = rest.ids("SELECT Id FROM Case LIMIT 2")
    for case_id in soft:
        rest.call("DELETE", f"sobjects/Case/{case_id}")

    pipeline = beam.Pipeline(options=PipelineOptions(FNAPI))
    stage = ReplicateSalesforce(connection_mapping(org), path=str(lake), **config)
    _ = pipeline | stage                      # the launcher's describes happen here
    org.admin("PUT", "faults", json={"request_limit_after_calls": 4})   # then reads fail
    with pytest.raises(Exception, match="REQUEST_LIMIT_EXCEEDED|Limit exceeded"):
        pipeline.run().wait_until_finish()
    org.admin("DELETE", "faults")
    failed_run = stage.run_plan.run_id
    assert len(list((lake / "_manifests").glob("*.json"))) == 1
    assert {p.name: p.read_text() for p in (lake / "_state").iterdir()} == state_before
    assert not [p for p in lake.rglob("*.parquet")
                if failed_run in p.name and "_staging" not in p.parts]

    assert (lake / "_staging" / failed_run).exists()

    rerun = _replicate(org, lake, **config)
    assert not (lake / "_staging" / failed_run).exists()   # the failed run's leftovers
    assert {r["Id"] for r in _parquet_rows(lake, _entry(rerun, "Account")["files"])} \
        == set(changed)
    assert _entry(rerun, "Contact")["rows"] == 0
    tombs = _parquet_rows(lake, _entry(rerun, "Case")["tombstone_files"])
    assert sorted((t["Id"], t["kind"]) for t in tombs) == sorted((i, "soft") for i in soft)


def test_plain_beam_yaml_and_forcebeam_run_files_replicate(org_factory, tmp_path, monkeypatch):
    import textwrap

    import yaml
    from apache_beam.yaml import main as yaml_main

    from forcebeam.pipelines.catalog import PROVIDERS_FILE
    from forcebeam.pipelines.emulator_env import forget_org, use_org
    from tests.support.pipelines import jwt_connections, run_ok

    org = org_factory(records=RECORDS)
    rest = Rest(org)
    # Plain Beam YAML: our provider listing, a transform with no consumer (a sink).
    lake = tmp_path / "yaml-lake"
    pipeline = {"pipeline": {"transforms": [
        {"type": "ReplicateSalesforce", "name": "Lake",     # no `input: {}` needed
         "config": {"connection": connection_mapping(org), "objects": ["Acc*", "Lead"],
                    "exclude": ["Lead"], "path": str(lake), "format": "jsonl"}}]},
        "providers": [{"include": str(PROVIDERS_FILE)}]}
    yaml_main.run(argv=[f"--yaml_pipeline={yaml.safe_dump(pipeline)}",
                        "--runner=FnApiRunner"])
    (manifest,) = (lake / "_manifests").glob("*.json")
    assert not (lake / "_staging").exists()
    body = json.loads(manifest.read_text())
    assert list(body["objects"]) == ["Account"]
    assert body["skipped"] == {"Lead": "excluded by exclude: 'Lead'"}
    assert body["objects"]["Account"]["rows"] == rest.count("Account")

    # A `forcebeam run` file: connection by name, validated against the stage's model.
    try:
        for name, value in use_org(org.info, environ={}).items():
            monkeypatch.setenv(name, value)
        path = tmp_path / "lake.yaml"
        path.write_text(jwt_connections("prod") + textwrap.dedent(f"""\
            pipeline:
              transforms:
                - type: ReplicateSalesforce
                  name: Lake
                  config:
                    connection: prod
                    objects: [Case, Nope__c]
                    path: {tmp_path / "run-lake"}
                    format: csv
            """))
        run_ok(path)
    finally:
        forget_org()
    assert not (tmp_path / "run-lake" / "_staging").exists()   # nothing but the lake
    (manifest,) = (tmp_path / "run-lake" / "_manifests").glob("*.json")
    body = json.loads(manifest.read_text())
    assert body["objects"]["Case"]["rows"] == rest.count("Case")
    assert "no such object" in body["skipped"]["Nope__c"]


def test_deletion_log_too_short_falls_back_to_an_id_reconciliation(org_factory, tmp_path,
                                                                   caplog):
    org = org_factory(records=RECORDS)
    rest = Rest(org)
    lake = tmp_path / "lake"
    config = {"objects": ["Lead"], "format": "jsonl"}
    _replicate(org, lake, **config)
    gone = rest.ids("SELECT Id FROM Lead LIMIT 2")
    rest.hard_delete("Lead", gone)
    soft = [i for i in rest.ids("SELECT Id FROM Lead LIMIT 5") if i not in gone][:1]
    rest.call("DELETE", f"sobjects/Lead/{soft[0]}")
    # The org ages out its deletion log past the last run's cursor.
    org.admin("POST", "deleted-records/forget",
              json={"before": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    caplog.set_level("WARNING")
    second = _replicate(org, lake, **config)
    assert "reconciling Ids" in caplog.text
    tombs = {t["Id"]: t["kind"] for t in _jsonl_rows(lake, _entry(second, "Lead")
                                                      ["tombstone_files"])}
    assert tombs == {gone[0]: "hard", gone[1]: "hard", soft[0]: "soft"}
    third = _replicate(org, lake, **config)                 # back on getDeleted, nothing new
    assert _entry(third, "Lead")["tombstones"] == 0


def test_object_selection_names_globs_exclusions_and_what_cannot_be_read():
    from forcebeam.stages.salesforce.replicate_objects import select_objects

    def entry(name, queryable=True, replicateable=True):
        return {"name": name, "queryable": queryable, "replicateable": replicateable}

    described = {"sobjects": [
        entry("Account"), entry("AccountHistory"), entry("AccountChangeEvent"),
        entry("Invoice__c"), entry("Legacy__x"), entry("Archive__b"), entry("Alert__e"),
        entry("ContentDocumentLink"), entry("Organization", replicateable=False),
        entry("LoginEvent", queryable=False)]}
    every = select_objects(described, "all", exclude=["*History"])
    assert every.objects == ("Account", "Invoice__c")
    assert set(every.skipped) == {"AccountChangeEvent", "Legacy__x", "Archive__b", "Alert__e",
                                  "ContentDocumentLink", "Organization", "LoginEvent"}
    assert "change event" in every.skipped["AccountChangeEvent"]
    assert "Id" in every.skipped["ContentDocumentLink"]
    chosen = select_objects(described, ["account", "*__c", "Secret__c", "AccountHistory"],
                            exclude=["AccountHistory"])
    assert chosen.objects == ("Account", "Invoice__c")
    assert "no such object" in chosen.skipped["Secret__c"]
    assert chosen.skipped["AccountHistory"] == "excluded by exclude: 'AccountHistory'"


def test_get_deleted_windows_are_at_most_15_days():
    import datetime as dt

    from forcebeam.stages.salesforce.tombstones import deleted_windows

    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    windows = deleted_windows(start, start + dt.timedelta(days=40))
    assert [(b - a).days for a, b in windows] == [15, 15, 10]
    assert windows[0][0] == start and windows[-1][1] == start + dt.timedelta(days=40)
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))


def test_turning_deletes_on_later_reconciles_the_deletions_it_missed(org_factory, tmp_path,
                                                                     caplog):
    org = org_factory(records=RECORDS)
    rest = Rest(org)
    lake = tmp_path / "lake"
    _replicate(org, lake, objects=["Lead"], format="jsonl", deletes=False)
    assert not (lake / "Lead__deleted").exists()
    gone = rest.ids("SELECT Id FROM Lead LIMIT 1")
    rest.hard_delete("Lead", gone)

    caplog.set_level("WARNING")
    second = _replicate(org, lake, objects=["Lead"], format="jsonl", deletes=True)
    assert "deletes were off" in caplog.text and "reconciling Ids" in caplog.text
    tombs = {t["Id"]: t["kind"] for t in _jsonl_rows(lake, _entry(second, "Lead")
                                                      ["tombstone_files"])}
    assert tombs == {gone[0]: "hard"}
