"""A CSV written to Salesforce reaches the write as the pandas frames `ReadFromCsv` reads.

Beam YAML's `ReadFromCsv` hands on pandas DataFrames; a row-wise write made Beam explode every
frame into rows first. The write now takes the frames whole (`frame_records`): Beam exploding
one (its `DataFrameBatchConverter.explode_batch`, or a rebatch with
`InefficientExecutionWarning`) fails these tests. What a user sees must not change: every
value arrives as written, a rejected record's dead letter holds the row as it was in the file,
and the `written` output holds every input row beside its new Id.
"""

from __future__ import annotations

import csv
import glob
import json
import warnings
from pathlib import Path

import pytest
from apache_beam.runners.worker.operations import InefficientExecutionWarning
from apache_beam.typehints.pandas_type_compatibility import DataFrameBatchConverter

from tests.support.pipelines import (  # the fixture is autouse
    forget_org_afterwards,  # noqa: F401
    jwt_connections,
    point_env_at,
    run_ok,
)
from tests.support.writes import tagged_accounts

TAG = "FRAMES"
ROWS = 2_500


def _pipeline(batch_size: int, read_written: bool) -> str:
    written = """    - type: WriteToJson
      input: Write.written
      config:
        path: ${FORCEBEAM_OUT}/written
""" if read_written else ""
    return jwt_connections() + f"""pipeline:
  transforms:
    - type: ReadFromCsv
      name: Load
      config:
        path: ${{FORCEBEAM_OUT}}/accounts.csv
        dtype: {{External_Id__c: str}}
    - type: WriteToSalesforce
      name: Write
      input: Load
      config:
        connection: emulated
        sobject: Account
        operation: upsert
        external_id_field: External_Id__c
        mode: bulk
        batch_size: {batch_size}
        error_handling:
          output: rejected
    - type: WriteToJson
      input: Write.rejected
      config:
        path: ${{FORCEBEAM_OUT}}/rejected
{written}"""


def _accounts(count: int) -> list[dict]:
    """Names, zero-padded external ids (text: dtype str), integers, and empty cells; one
    name too long for Account.Name (255), which Salesforce rejects."""
    rows = []
    for index in range(count):
        rows.append({"Name": f"{TAG} {index:05d}" + ("x" * 300 if index == 7 else ""),
                     "External_Id__c": f"{index:07d}",
                     "NumberOfEmployees": index * 3,
                     "Description": "" if index % 4 == 0 else f"row {index}, \"quoted\"\nline 2"})
    return rows


@pytest.fixture
def no_explode(monkeypatch):
    def exploded(self, batch):
        raise AssertionError("Beam exploded a pandas frame into rows")

    monkeypatch.setattr(DataFrameBatchConverter, "explode_batch", exploded)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InefficientExecutionWarning)
        yield


def _lines(out: Path, prefix: str) -> list[dict]:
    return [json.loads(text) for name in sorted(glob.glob(str(out / f"{prefix}-*")))
            for text in Path(name).read_text().splitlines() if text]


@pytest.mark.parametrize("read_written", [False, True])
def test_a_csv_reaches_the_write_as_frames_and_arrives_as_written(
        org_factory, tmp_path, monkeypatch, no_explode, read_written):
    org = org_factory(records=20)
    out = point_env_at(org, tmp_path, monkeypatch)
    given = _accounts(ROWS)
    with (out / "accounts.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(given[0]))
        writer.writeheader()
        writer.writerows(given)
    path = tmp_path / "pipeline.yaml"
    # 1,000 records per Bulk job: frames are cut across batches and the last is smaller.
    path.write_text(_pipeline(batch_size=1000, read_written=read_written))
    report = run_ok(path)

    stored = {row["External_Id__c"]: row for row in tagged_accounts(org, TAG).values()}
    bad = given[7]
    assert len(stored) == ROWS - 1 and bad["External_Id__c"] not in stored
    for row in given:
        if row is bad:
            continue
        saved = stored[row["External_Id__c"]]
        assert saved["Name"] == row["Name"]
        assert saved["NumberOfEmployees"] == row["NumberOfEmployees"]
        assert saved["Description"] == (row["Description"] or None)   # empty: unchanged
    (rejected,) = _lines(out, "rejected")
    assert rejected["status_code"] == "STRING_TOO_LONG"
    assert rejected["element"] == {**bad, "Description": bad["Description"] or None}
    assert f"{ROWS - 1:,}" in report                    # the summary counts every success
    if read_written:
        written = {line["element"]["External_Id__c"]: line for line in _lines(out, "written")}
        assert len(written) == ROWS - 1
        for key, line in written.items():
            assert line["id"] == stored[key]["Id"] and line["created"] is True
            row = given[int(key)]
            assert line["element"] == {**row, "Description": row["Description"] or None}



def test_frame_records_are_exactly_what_beams_explode_gives():
    """Every dtype pandas gives a CSV column (and a few it can hold otherwise): the records and
    rows made from frames equal, value for value and type for type, Beam's own explode."""
    import datetime as dt
    import decimal
    import io
    import typing

    import numpy as np
    import pandas as pd
    from apache_beam.typehints.batch import BatchConverter
    from apache_beam.typehints.row_type import RowTypeConstraint

    from forcebeam.stages.salesforce.frame_records import FrameRecords

    text = ("a,b,c,d,e,f,g\n1,x,1.5,true,2024-01-02,,007\n2,,NaN,false,2024-01-03,,\n"
            "3,z,2.0,true,,,08\n")
    frames = [pd.read_csv(io.StringIO(text)), pd.read_csv(io.StringIO(text), dtype=str),
              pd.read_csv(io.StringIO(text), dtype={"a": "Int64", "b": "string"},
                          parse_dates=["e"])]
    odd = pd.DataFrame({"a": [decimal.Decimal("1.10"), None, dt.date(2024, 1, 1)],
                        "b": pd.array(["a", None, "c"], dtype="string"),
                        "c": [np.nan, 1e16, -0.0], "d": np.array([1, 2, 3], dtype="uint8"),
                        "e": pd.Categorical(["a", None, "a"]), "f": [True, False, True],
                        "g": [None, None, None]})
    row_type = RowTypeConstraint.from_fields([(name, typing.Any) for name in "abcdefg"])
    converter = BatchConverter.from_typehints(element_type=row_type, batch_type=pd.DataFrame)
    for frame in [*frames, odd]:
        beams = [row._asdict() for row in converter.explode_batch(frame)]
        ours = FrameRecords([frame.iloc[:2], frame.iloc[2:]], row_type)   # two chunks
        assert list(ours) == beams and [ours[i] for i in range(len(ours))] == beams
        assert [[type(v) for v in r.values()] for r in ours] == \
            [[type(v) for v in r.values()] for r in beams]
        assert [ours.element(i) for i in range(len(ours))] == list(converter.explode_batch(frame))
        assert ours[1:] == beams[1:] and len(ours) == len(beams)
