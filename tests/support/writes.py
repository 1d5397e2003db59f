"""Running WriteToSalesforce in a real pipeline and reading both of its outputs back."""

from __future__ import annotations

import pickle
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from forcebeam.stages.salesforce.write import WriteToSalesforce
from tests.support.stages import FNAPI
from tests.support.truth import rest_records


def _plain(value: Any) -> Any:
    return value._asdict() if hasattr(value, "_asdict") else value


def run_write(tmp_path, conn, records, as_rows: bool = False, **kwargs):
    """Write ``records`` with WriteToSalesforce; its written and failed rows as dicts."""
    out = tmp_path / f"w{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    with beam.Pipeline(options=PipelineOptions(FNAPI)) as pipeline:
        source = pipeline | beam.Create(records)
        if as_rows:
            source = source | beam.Map(lambda d: beam.Row(**d))
        outputs = source | WriteToSalesforce(connection=conn, **kwargs)
        for name in ("written", "failed"):
            _ = (outputs[name]
                 | f"{name}Plain" >> beam.Map(
                     lambda r: pickle.dumps({k: _plain(v) for k, v in r._asdict().items()}).hex())
                 | f"{name}Save" >> beam.io.WriteToText(str(out / name)))
    result = {}
    for name in ("written", "failed"):
        rows = []
        for shard in sorted(out.glob(f"{name}*")):
            rows += [pickle.loads(bytes.fromhex(x)) for x in shard.read_text().split()]  # noqa: S301
        result[name] = rows
    return result["written"], result["failed"]


def tagged_accounts(org, tag, include_deleted=False):
    """The org's Accounts whose Name starts with ``tag``, by Id (plain REST)."""
    fields = "Id, Name, NumberOfEmployees, Description, External_Id__c, IsDeleted"
    soql = f"SELECT {fields} FROM Account WHERE Name LIKE '{tag}%'"  # noqa: S608 - SOQL
    return {r["Id"]: r for r in rest_records(org, soql, include_deleted=include_deleted)}
