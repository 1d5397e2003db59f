"""A 200k-row read (one Bulk job) whose pages two worker processes share: exact, one login per
process."""

from __future__ import annotations

import hashlib
import os

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from forcebeam.auth import Connection
from forcebeam.stages.salesforce.describe import warm_describe_cache
from forcebeam.stages.salesforce.read import ReadFromSalesforce
from tests.support.stages import connection_mapping
from tests.support.truth import rest_records

RECORDS = 200_000


def _digest(pairs) -> str:
    return hashlib.sha256("\n".join(sorted(f"{i}\x1f{n}" for i, n in pairs)).encode()).hexdigest()


def _counter(result, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
    return sum(c.committed or c.attempted or 0 for c in found)


def test_two_processes_read_200k_rows_exactly_with_two_logins(org_factory, tmp_path,
                                                               monkeypatch):
    org = org_factory(records=RECORDS)
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    conn = connection_mapping(org)
    truth = rest_records(org, "SELECT Id, Name FROM Account")
    assert len(truth) == RECORDS
    # The schema comes from a describe made before the run (as `forcebeam describe` or an
    # earlier run leaves it): the launcher then needs no login of its own.
    warm_describe_cache(Connection.from_mapping(conn, source="test", path="connection"),
                        "Account")
    org.reset_counters()

    out = tmp_path / "rows"
    pipeline = beam.Pipeline(options=PipelineOptions([
        "--runner=FnApiRunner", "--direct_running_mode=multi_processing",
        "--direct_num_workers=2"]))
    _ = (pipeline
         | ReadFromSalesforce(conn, sobject="Account", fields=["Id", "Name"])
         | "TagPid" >> beam.Map(lambda r: f"{os.getpid()}\t{r.Id}\t{r.Name}")
         | beam.io.WriteToText(str(out)))
    result = pipeline.run()
    result.wait_until_finish()

    lines = [line.split("\t") for shard in sorted(tmp_path.glob("rows*"))
             for line in shard.read_text(encoding="utf-8").splitlines()]
    pids = {pid for pid, _, _ in lines}
    assert len(lines) == RECORDS
    assert len({i for _, i, _ in lines}) == RECORDS, "no row twice"
    assert _digest((i, n) for _, i, n in lines) == _digest((r["Id"], r["Name"]) for r in truth)
    assert len(pids) == 2 and str(os.getpid()) not in pids, f"both workers read: {pids}"
    # One Bulk job for the read; its result pages were spread over both workers.
    assert _counter(result, "read_units") >= 2
    assert org.counters()["bulk_jobs"]["query"] == 1
    assert _counter(result, "records_read") == RECORDS
    logins = org.counters()["logins"]["total"]
    assert logins <= 2, f"one login per worker process, none in the launcher: {logins}"
