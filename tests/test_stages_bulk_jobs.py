"""Bulk 2.0 jobs of a split read: submitted at planning, resubmitted if an attempt lost them.

Units are read one after another on a worker; the org prepares every unit's results while
earlier units are read only if all jobs were submitted up front. A retried unit whose job an
earlier attempt already read and deleted must still read its rows, from a fresh job.
"""

from __future__ import annotations

import pytest

from forcebeam.auth import Connection, get_client
from forcebeam.stages.salesforce import bulk_query
from forcebeam.stages.salesforce.read import (
    ReadFromSalesforce,
    _PagesAsRows,
    _PlanUnits,
    _ReadUnit,
)
from forcebeam.stages.salesforce.read_spec import read_spec
from tests.support.stages import connection_mapping
from tests.support.truth import rest_records


@pytest.fixture(autouse=True)
def _private_describe_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))


def _planned_units(org, split: int):
    read = ReadFromSalesforce(connection_mapping(org), sobject="Account",
                              fields=["Id", "Name"], mode="bulk", split=split)
    spec = read_spec(read._config, read._connection)
    plan = _PlanUnits(Connection.from_mapping(connection_mapping(org)))
    plan.setup()
    return spec, [unit for _, unit in plan.process(spec)]


def test_every_unit_job_exists_before_any_unit_is_read(org):
    _, units = _planned_units(org, split=4)
    client = get_client(Connection.from_mapping(connection_mapping(org)))
    assert len(units) >= 4
    assert all(unit.job_id for unit in units)
    assert len({unit.job_id for unit in units}) == len(units)
    for unit in units:
        job = client.request("GET", f"jobs/query/{unit.job_id}").json()
        assert (job["object"], job["operation"]) == ("Account", "query")
        assert job["state"] in ("UploadComplete", "InProgress", "JobComplete")
        bulk_query.delete_query_job(client, unit.job_id)


def test_a_unit_whose_job_was_deleted_reads_from_a_new_job(org):
    spec, units = _planned_units(org, split=2)
    connection = Connection.from_mapping(connection_mapping(org))
    client = get_client(connection)
    first = units[0]
    for unit in units[1:]:
        bulk_query.delete_query_job(client, unit.job_id)
    bulk_query.delete_query_job(client, first.job_id)   # as a finished earlier attempt does
    reader = _ReadUnit(connection, spec.schema)
    reader.setup()
    to_rows = _PagesAsRows(spec.schema, spec.schema.row_class())
    to_rows.setup()
    rows = [row for chunk in reader.process((spec, first)) if hasattr(chunk, "raw")
            for row in to_rows.process(chunk)]
    bound = f" WHERE Id < '{first.id_to}'" if first.id_to else ""
    truth = rest_records(org, f"SELECT Id FROM Account{bound}")  # noqa: S608 - an Id we planned
    assert sorted(row.Id for row in rows) == sorted(record["Id"] for record in truth)
    assert len(rows) == first.expected_rows
