"""``types: portable`` rows go straight into Beam YAML's WriteToParquet/Json/Csv, exactly.

apache-beam 2.77's WriteToParquet refuses Beam logical types and WriteToJson mangles them,
so the default typing uses ISO strings and decimal strings; this test writes one extract
through all three sinks from a Beam YAML pipeline and compares the files with the org.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json

import pyarrow.parquet as pq
import yaml
from apache_beam.yaml import main as yaml_main

from tests.support.stages import connection_mapping
from tests.support.truth import rest_records

FIELDS = ["Id", "Name", "Amount", "Probability", "CloseDate", "CreatedDate", "IsWon"]


def _expected(org) -> dict[str, dict]:
    soql = f"SELECT {', '.join(FIELDS)} FROM Opportunity"  # noqa: S608 - SOQL
    out = {}
    for r in rest_records(org, soql):
        created = dt.datetime.strptime(r["CreatedDate"], "%Y-%m-%dT%H:%M:%S.%f%z")
        out[r["Id"]] = {
            "Name": r["Name"],
            "Amount": None if r["Amount"] is None else f"{decimal.Decimal(r['Amount']):.2f}",
            "Probability": None if r["Probability"] is None else float(r["Probability"]),
            "CloseDate": r["CloseDate"],
            "CreatedDate": created.astimezone(dt.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "IsWon": r["IsWon"]}
    return out


def test_portable_rows_write_exactly_to_parquet_json_and_csv(org, tmp_path, monkeypatch):
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    expected = _expected(org)
    assert len(expected) > 100
    read = {"type": "ReadFromSalesforce", "name": "Read",
            "config": {"connection": connection_mapping(org), "sobject": "Opportunity",
                       "fields": FIELDS, "split": 2}}
    pipeline = {"pipeline": {"transforms": [
        read,
        {"type": "WriteToParquet", "input": "Read",
         "config": {"path": str(tmp_path / "out" / "opps"), "file_name_suffix": ".parquet"}},
        {"type": "WriteToJson", "input": "Read", "config": {"path": str(tmp_path / "json")}},
        {"type": "WriteToCsv", "input": "Read", "config": {"path": str(tmp_path / "csv")}},
    ]}, "providers": [{"type": "python", "config": {},
                       "transforms": {"ReadFromSalesforce":
                                      "forcebeam.stages.salesforce.read.ReadFromSalesforce"}}]}
    yaml_main.run(argv=[f"--yaml_pipeline={yaml.safe_dump(pipeline)}",
                        "--runner=FnApiRunner"])

    parquet = [row for f in sorted((tmp_path / "out").glob("opps*"))
               for row in pq.read_table(f).to_pylist()]
    jsons = [json.loads(line) for f in sorted(tmp_path.glob("json*"))
             for line in f.read_text().splitlines() if line]
    csvs = [row for f in sorted(tmp_path.glob("csv*"))
            for row in csv.DictReader(f.open(newline=""))]
    for label, rows in (("parquet", parquet), ("json", jsons)):
        got = {r["Id"]: {k: v for k, v in r.items() if k != "Id"} for r in rows}
        assert got == expected, f"{label} differs from the org"
    # CSV is text: every value must read back as the same text (exact, readable).
    got = {r["Id"]: r for r in csvs}
    assert set(got) == set(expected)
    for record_id, values in expected.items():
        row = got[record_id]
        assert row["Amount"] == (values["Amount"] or "")
        assert row["CreatedDate"] == values["CreatedDate"]
        assert row["CloseDate"] == values["CloseDate"]
        assert row["IsWon"].lower() == str(values["IsWon"]).lower()
