"""Both outputs of a write, saved straight to Beam YAML's file sinks, keep the record as
it was written.

A user of `error_handling: {output: rejected}` writes `Write.rejected` to WriteToJson,
WriteToCsv or WriteToParquet and expects each rejected record with its field names and
values, beside Salesforce's code and message (not a JSON array of bare values); the
`written` output's record keeps its field names the same way, beside its new Id.
"""

from __future__ import annotations

import csv
import glob
import json
from pathlib import Path

import pyarrow.parquet as pq

from tests.support.pipelines import (  # the fixture is autouse
    forget_org_afterwards,  # noqa: F401
    jwt_connections,
    point_env_at,
    run_ok,
)

PIPELINE = jwt_connections() + """pipeline:
  transforms:
    - type: ReadFromCsv
      name: ReadInvoices
      config:
        path: ${FORCEBEAM_OUT}/invoices.csv
    - type: WriteToSalesforce
      name: Write
      input: ReadInvoices
      config:
        connection: emulated
        sobject: Invoice__c
        operation: upsert
        external_id_field: External_Id__c
        error_handling:
          output: rejected
    - type: WriteToJson
      input: Write.rejected
      config:
        path: ${FORCEBEAM_OUT}/rejected_json
    - type: WriteToCsv
      input: Write.rejected
      config:
        path: ${FORCEBEAM_OUT}/rejected_csv
    - type: WriteToParquet
      input: Write.rejected
      config:
        path: ${FORCEBEAM_OUT}/rejected_parquet
    - type: WriteToJson
      input: Write.written
      config:
        path: ${FORCEBEAM_OUT}/written_json
"""

GOOD = {"External_Id__c": "DL-1", "Name": "Good one", "Status__c": "Draft", "Amount__c": 10.5}
BAD = {"External_Id__c": "DL-2", "Name": "Bad status", "Status__c": "Lost", "Amount__c": 12.5}
CODE = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def _files(out: Path, prefix: str) -> list[str]:
    return sorted(glob.glob(str(out / f"{prefix}-*")))


def test_rejected_records_keep_their_field_names_in_json_csv_and_parquet(
        org_factory, tmp_path, monkeypatch):
    out = point_env_at(org_factory(records=50), tmp_path, monkeypatch)
    (out / "invoices.csv").write_text(
        "External_Id__c,Name,Status__c,Amount__c\n"
        f"{GOOD['External_Id__c']},{GOOD['Name']},{GOOD['Status__c']},{GOOD['Amount__c']}\n"
        f"{BAD['External_Id__c']},{BAD['Name']},{BAD['Status__c']},{BAD['Amount__c']}\n")
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    run_ok(path)

    # JSON: the element is an object with the user's keys and values, unchanged.
    (line,) = [json.loads(text) for f in _files(out, "rejected_json")
               for text in Path(f).read_text().splitlines() if text]
    assert line["element"] == BAD
    assert line["status_code"] == CODE
    assert "Lost" in line["msg"] and line["fields"] == ["Status__c"]

    # CSV cannot nest: the element is one cell holding the record as JSON text.
    (row,) = [r for f in _files(out, "rejected_csv") for r in csv.DictReader(open(f))]
    assert json.loads(row["element"]) == BAD
    assert row["status_code"] == CODE

    # Parquet: the element is a struct column with the record's fields.
    (record,) = [r for f in _files(out, "rejected_parquet") for r in pq.read_table(f).to_pylist()]
    assert record["element"] == BAD
    assert record["status_code"] == CODE

    # The written output: the record with its field names, beside the new Id.
    (done,) = [json.loads(text) for f in _files(out, "written_json")
               for text in Path(f).read_text().splitlines() if text]
    assert done["element"] == GOOD
    assert done["id"].startswith("a") and done["created"] is True
