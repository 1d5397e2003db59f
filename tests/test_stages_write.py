"""WriteToSalesforce: every operation through Collections and Bulk 2.0, rejects never dropped.

Each run feeds 10% invalid records; written + failed must equal the input, every failed
row must carry its input record and Salesforce's code and message, and the org (asked
through plain REST) must hold exactly the written effect.
"""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from forcebeam.stages.salesforce.write import WriteToSalesforce
from tests.support.stages import FNAPI, connection_mapping
from tests.support.truth import rest_records
from tests.support.writes import run_write, tagged_accounts


def _assert_failures(failed, bad_inputs, code):
    assert len(failed) == len(bad_inputs)
    for row in failed:
        assert row["status_code"] == code, row
        assert row["msg"] and code in row["msg"]
    assert sorted(str(r["element"]) for r in failed) == sorted(str(b) for b in bad_inputs)


@pytest.mark.parametrize("mode", ["rest", "bulk"])
def test_every_operation_with_ten_percent_invalid_rows(org_factory, tmp_path, mode):
    org = org_factory(records=100)
    conn = connection_mapping(org)
    tag = f"W{mode}"

    # insert: every 10th record lacks its required Name.
    records = [{"Name": f"{tag} {i:03d}" if i % 10 else None, "NumberOfEmployees": i,
                "Description": f"d{i}", "External_Id__c": f"{tag}-{i}"} for i in range(60)]
    bad = [r for r in records if r["Name"] is None]
    written, failed = run_write(tmp_path, conn, records, sobject="Account", mode=mode)
    assert len(written) + len(failed) == len(records)
    _assert_failures(failed, bad, "REQUIRED_FIELD_MISSING")
    in_org = tagged_accounts(org, tag)
    assert {w["id"] for w in written} == set(in_org) and len(in_org) == 54
    assert all(w["created"] in (True, None) for w in written)

    # update: 10% point at a record that does not exist; explicit None clears a field.
    ids = sorted(in_org)
    updates = [{"Id": i, "NumberOfEmployees": 7000 + n, "Description": None}
               for n, i in enumerate(ids[:45])]
    missing = [{"Id": "001" + "0" * 9 + "ZZZ", "NumberOfEmployees": 1, "Description": None}
               for _ in range(5)]
    written, failed = run_write(tmp_path, conn, updates + missing, sobject="Account",
                                operation="update", mode=mode, nulls="set")
    assert len(written) == 45 and len(failed) == 5
    assert all(f["status_code"] and f["msg"] for f in failed)
    in_org = tagged_accounts(org, tag)
    for n, i in enumerate(ids[:45]):
        assert int(in_org[i]["NumberOfEmployees"]) == 7000 + n
        assert in_org[i]["Description"] is None
    assert in_org[ids[50]]["Description"] is not None       # untouched rows keep theirs

    # upsert by external id: existing ids update, new ones insert, 10% too long to store.
    upserts = [{"External_Id__c": f"{tag}-{i}", "Name": f"{tag} up {i:03d}"}
               for i in range(1, 10)]
    upserts += [{"External_Id__c": f"{tag}-new-{i}", "Name": f"{tag} new {i}"} for i in range(9)]
    too_long = [{"External_Id__c": f"{tag}-long", "Name": "x" * 300}, {
        "External_Id__c": f"{tag}-long2", "Name": "y" * 300}]
    written, failed = run_write(tmp_path, conn, upserts + too_long, as_rows=True,
                                sobject="Account", operation="upsert",
                                external_id_field="External_Id__c", mode=mode)
    assert len(written) == 18 and len(failed) == 2
    assert {f["status_code"] for f in failed} == {"STRING_TOO_LONG"}
    assert all(f["fields"] == ["Name"] for f in failed)
    created = sorted(w["element"]["External_Id__c"] for w in written if w["created"])
    assert created == sorted(f"{tag}-new-{i}" for i in range(9))
    in_org = tagged_accounts(org, tag)
    assert sum(1 for r in in_org.values() if " up " in r["Name"]) == 9

    # delete (soft) then hard_delete (Bulk only), each with 10% unknown ids.
    ids = sorted(in_org)
    soft, hard = ids[:20], ids[20:40]
    unknown = [{"Id": "001" + "0" * 9 + "ZZY"}, {"Id": "001" + "0" * 9 + "ZZX"}]
    written, failed = run_write(tmp_path, conn, [{"Id": i} for i in soft] + unknown,
                                sobject="Account", operation="delete", mode=mode)
    assert len(written) == 20 and len(failed) == 2
    operation_mode = "bulk" if mode == "bulk" else "auto"
    written, failed = run_write(tmp_path, conn, [{"Id": i} for i in hard] + unknown,
                                sobject="Account", operation="hard_delete", mode=operation_mode)
    assert len(written) == 20 and len(failed) == 2
    everything = tagged_accounts(org, tag, include_deleted=True)
    assert all(everything[i]["IsDeleted"] for i in soft)
    assert not set(hard) & set(everything), "hard-deleted rows must be gone from queryAll"


@pytest.mark.parametrize("mode", ["rest", "bulk"])
def test_empty_values_leave_fields_unchanged_unless_nulls_set(org_factory, tmp_path, mode):
    org = org_factory(records=10)
    conn = connection_mapping(org)
    tag = f"Nulls{mode}"
    records = [{"Name": f"{tag} {i}", "Description": f"kept {i}", "NumberOfEmployees": i}
               for i in range(6)]
    written, failed = run_write(tmp_path, conn, records, sobject="Account", mode=mode)
    assert len(written) == 6 and not failed
    ids = sorted(w["id"] for w in written)
    # Rows with an empty cell (None), as ReadFromCsv gives them: the default keeps the field.
    blank = [{"Id": i, "Description": None, "NumberOfEmployees": 100} for i in ids]
    written, failed = run_write(tmp_path, conn, blank, as_rows=True, sobject="Account",
                                operation="update", mode=mode)
    assert len(written) == 6 and not failed
    in_org = tagged_accounts(org, tag)
    assert all(r["Description"].startswith("kept ") for r in in_org.values())
    assert all(r["NumberOfEmployees"] == 100 for r in in_org.values())
    # nulls: set clears them.
    written, failed = run_write(tmp_path, conn, blank[:3], as_rows=True, sobject="Account",
                                operation="update", mode=mode, nulls="set")
    assert len(written) == 3 and not failed
    in_org = tagged_accounts(org, tag)
    assert [in_org[i]["Description"] is None for i in ids] == [True] * 3 + [False] * 3


def test_auto_mode_uses_bulk_for_volume_and_collections_for_small_batches(org_factory,
                                                                          tmp_path):
    org = org_factory(records=10)
    conn = connection_mapping(org)
    org.reset_counters()
    small = [{"Name": f"Small {i}"} for i in range(150)]
    written, failed = run_write(tmp_path, conn, small, sobject="Account")
    assert len(written) == 150 and not failed
    calls = org.counters()["api_calls"]
    assert calls.get("composite", 0) == 1 and not calls.get("bulk_ingest")
    org.reset_counters()
    big = [{"Name": f"Big {i}"} for i in range(3000)]
    written, failed = run_write(tmp_path, conn, big, sobject="Account")
    assert len(written) == 3000 and not failed
    calls = org.counters()["api_calls"]
    assert calls.get("bulk_ingest", 0) >= 4 and not calls.get("composite")
    assert len(tagged_accounts(org, "Big ")) == 3000


def test_error_handling_output_name_carries_the_rejects(org_factory, tmp_path):
    org = org_factory(records=10)
    records = [{"Name": f"EH {i}"} for i in range(9)] + [{"Name": "z" * 300}]
    with beam.Pipeline(options=PipelineOptions(FNAPI)) as pipeline:
        outputs = (pipeline | beam.Create(records)
                   | WriteToSalesforce(connection_mapping(org), sobject="Account",
                                       error_handling={"output": "rejected"}))
        assert set(outputs) == {"written", "rejected"}
        _ = (outputs["rejected"]
             | beam.Map(lambda r: f"{r.status_code}|{len(r.element['Name'])}")
             | beam.io.WriteToText(str(tmp_path / "rejected")))
    lines = [x for f in tmp_path.glob("rejected*") for x in f.read_text().split()]
    assert lines == ["STRING_TOO_LONG|300"]


@pytest.mark.parametrize("mode", ["rest", "bulk"])
def test_row_lock_contention_is_retried_not_dead_lettered(org_factory, tmp_path, mode):
    org = org_factory(records=10)
    org.admin("PUT", "faults", json={"seed": 5, "unable_to_lock_row_rate": 0.1})
    tag = f"Lock{mode}"
    records = [{"Name": f"{tag} {i:04d}"} for i in range(400)]
    written, failed = run_write(tmp_path, connection_mapping(org), records, sobject="Account",
                                mode=mode)
    injected = org.admin("GET", "faults").json().get("injected", {})
    assert injected.get("lock_row", 0) >= 20, injected
    assert failed == [] and len(written) == 400
    assert sorted(r["Name"] for r in tagged_accounts(org, tag).values()) == \
        [r["Name"] for r in records]


@pytest.mark.parametrize("mode", ["rest", "bulk"])
def test_rows_read_in_portable_types_write_back_unchanged(org_factory, tmp_path, mode):
    from forcebeam.stages.salesforce.read import ReadFromSalesforce

    org = org_factory(records=50)
    conn = connection_mapping(org)
    fields = "Id, AnnualRevenue, NumberOfEmployees, Description"
    before = {r["Id"]: r for r in rest_records(org, f"SELECT {fields} FROM Account")}  # noqa: S608
    with beam.Pipeline(options=PipelineOptions(FNAPI)) as pipeline:
        _ = (pipeline
             | ReadFromSalesforce(conn, sobject="Account",
                                  fields=["Id", "AnnualRevenue", "NumberOfEmployees"])
             | beam.Map(lambda r: r._replace(NumberOfEmployees=(r.NumberOfEmployees or 0) + 1))
             | WriteToSalesforce(conn, sobject="Account", operation="update", mode=mode))
    after = {r["Id"]: r for r in rest_records(org, f"SELECT {fields} FROM Account")}  # noqa: S608
    assert set(after) == set(before)
    for record_id, old in before.items():
        new = after[record_id]
        assert new["AnnualRevenue"] == old["AnnualRevenue"]          # exact round trip
        assert new["NumberOfEmployees"] == (old["NumberOfEmployees"] or 0) + 1
        assert new["Description"] == old["Description"]              # absent = unchanged


def test_bulk_writes_one_job_per_batch_and_split_a_batch_past_the_upload_limit(
        org_factory, tmp_path, monkeypatch):
    """A Bulk write sends one ingest job per batch (100k records by default); a batch whose
    CSV is larger than the upload limit (100 MB on a real org) is sent as several jobs, and
    every record still arrives exactly once."""
    from forcebeam.stages.salesforce import write_apis

    org = org_factory(records=10)
    conn = connection_mapping(org)
    records = [{"Name": f"BIG {i:04d}", "Description": "x" * 200,
                "External_Id__c": f"BIG-{i}"} for i in range(300)]
    org.reset_counters()
    written, failed = run_write(tmp_path, conn, records[:100], sobject="Account", mode="bulk")
    assert (len(written), failed) == (100, [])
    assert org.counters()["bulk_jobs"].get("ingest") == 1

    monkeypatch.setattr(write_apis, "MAX_UPLOAD_BYTES", 20_000)   # ~85 of these records
    org.reset_counters()
    written, failed = run_write(tmp_path, conn, records[100:], sobject="Account",
                                mode="bulk", operation="upsert",
                                external_id_field="External_Id__c")
    assert (len(written), failed) == (200, [])
    assert org.counters()["bulk_jobs"].get("ingest") == 4     # 200 -> 100 + 100 -> 4 x 50
    in_org = tagged_accounts(org, "BIG")
    assert sorted(r["External_Id__c"] for r in in_org.values()) == \
        sorted(r["External_Id__c"] for r in records)
