"""Reads hand whole Arrow pages to batch-aware sinks; Beam never explodes them into rows.

A read consumed only by batch-aware transforms (Beam YAML's WriteToParquet, the progress
counter of `forcebeam run`) emits `pyarrow.Table` batches; a read with a row-wise consumer
(MapToFields) emits rows itself. Beam exploding a table (its `PyarrowBatchConverter`
`explode_batch`, or a rebatch with `InefficientExecutionWarning`) fails the test. Both
branches must write the same Parquet values.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from apache_beam.runners.worker.operations import InefficientExecutionWarning
from apache_beam.typehints.arrow_type_compatibility import PyarrowBatchConverter

from forcebeam.pipelines.build import construct
from forcebeam.pipelines.emulator_env import use_org
from forcebeam.pipelines.run import run_file
from forcebeam.pipelines.spec import PipelineSpec
from forcebeam.stages.salesforce.columnar import PageConverter
from forcebeam.stages.salesforce.read import _PagesAsBatches
from tests.support.pipelines import (  # the fixture is autouse
    JWT_CONNECTION,
    forget_org_afterwards,  # noqa: F401
)

FIELDS = "[Id, Name, AnnualRevenue, NumberOfEmployees, CreatedDate, IsDeleted, Description]"
PIPELINE = """\
connections:
  emulated:
""" + JWT_CONNECTION + f"""pipeline:
  transforms:
    - type: ReadFromSalesforce
      name: ReadDirect
      config: {{connection: emulated, sobject: Account, fields: {FIELDS}}}
    - type: WriteToParquet
      name: WriteDirect
      input: ReadDirect
      config: {{path: "${{FORCEBEAM_OUT}}/direct"}}
    - type: ReadFromSalesforce
      name: ReadForText
      config: {{connection: emulated, sobject: Account, fields: {FIELDS}}}
    - type: WriteToJsonLines
      name: WriteJson
      input: ReadForText
      config: {{path: "${{FORCEBEAM_OUT}}/lines"}}
    - type: WriteToCsvFiles
      name: WriteCsv
      input: ReadForText
      config: {{path: "${{FORCEBEAM_OUT}}/table"}}
    - type: ReadFromSalesforce
      name: ReadShaped
      config: {{connection: emulated, sobject: Account, fields: {FIELDS}}}
    - type: MapToFields
      name: Shape
      input: ReadShaped
      config:
        language: python
        append: true
        fields: {{NameLength: "len(Name or '')"}}
    - type: WriteToParquet
      name: WriteShaped
      input: Shape
      config: {{path: "${{FORCEBEAM_OUT}}/shaped"}}
"""


@pytest.fixture
def pipeline_file(org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in use_org(org.info, environ={}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FORCEBEAM_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    return path


def _batch_reads(pipeline) -> list[str]:
    from apache_beam.pipeline import PipelineVisitor

    found: list[str] = []

    class Visitor(PipelineVisitor):
        def visit_transform(self, node):
            if isinstance(getattr(node.transform, "fn", None), _PagesAsBatches):
                found.append(node.full_label)

    pipeline.visit(Visitor())
    return found


def test_only_the_read_feeding_a_batch_sink_emits_batches(pipeline_file):
    from apache_beam.options.pipeline_options import PipelineOptions

    from forcebeam.pipelines import beam_yaml

    spec = PipelineSpec.load(str(pipeline_file))
    pipeline = construct(spec, beam_yaml.to_beam_spec(spec),
                         PipelineOptions(["--runner=FnApiRunner"]))
    batch_reads = _batch_reads(pipeline)
    assert sorted(label.split("/")[0] for label in batch_reads) == ["ReadDirect",
                                                                    "ReadForText"]


def test_batches_reach_parquet_whole_and_equal_the_row_path(pipeline_file, tmp_path,
                                                             monkeypatch):
    def beam_exploded(self, batch):
        raise AssertionError("Beam exploded an Arrow batch into rows")

    monkeypatch.setattr(PyarrowBatchConverter, "explode_batch", beam_exploded)
    calls = {"to_arrow": 0, "to_rows": 0}
    for name in calls:
        original = getattr(PageConverter, name)

        def counted(self, raw, _original=original, _name=name):
            calls[_name] += 1
            return _original(self, raw)
        monkeypatch.setattr(PageConverter, name, counted)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InefficientExecutionWarning)
        assert run_file(str(pipeline_file), ["--runner=FnApiRunner"]) == 0

    def rows(prefix: str) -> list[dict]:
        files = sorted((tmp_path / "out").glob(f"{prefix}*"))
        assert files, prefix
        table = [row for f in files for row in pq.read_table(f).to_pylist()]
        return sorted(table, key=lambda row: row["Id"])

    assert calls["to_arrow"] >= 1 and calls["to_rows"] >= 1, calls   # one branch each
    direct, shaped = rows("direct"), rows("shaped")
    assert len(direct) == 5000
    assert direct == [{k: v for k, v in row.items() if k != "NameLength"} for row in shaped]
    lines = [json.loads(line) for f in sorted((tmp_path / "out").glob("lines*"))
             for line in f.read_text(encoding="utf-8").splitlines()]
    assert sorted(lines, key=lambda row: row["Id"]) == direct
    with_header = [row for f in sorted((tmp_path / "out").glob("table*"))
                   for row in csv.DictReader(f.open(encoding="utf-8", newline=""))]
    assert len(with_header) == len(direct)
    by_id = {row["Id"]: row for row in with_header}
    for row in direct:
        text = by_id[row["Id"]]
        for name, value in row.items():
            if value is None:
                assert text[name] == "", (name, row["Id"])
            elif isinstance(value, bool):
                assert text[name] == ("true" if value else "false"), (name, row["Id"])
            elif isinstance(value, float):
                assert float(text[name]) == value, (name, row["Id"])
            else:
                assert text[name] == str(value), (name, row["Id"])
    schema = pq.read_schema(sorted((tmp_path / "out").glob("direct*"))[0])
    assert str(schema.field("AnnualRevenue").type) == "string"       # decimal text, exact
    assert str(schema.field("NumberOfEmployees").type) == "int64"
