"""A write whose `written` output nobody reads does not build it: no row per success and no
successful-results file downloaded, while every record still arrives, every rejection still
comes out with Salesforce's code, and the counts (summary, progress) stay exact."""

from __future__ import annotations

import io
import re
import typing
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from forcebeam.pipelines.run import run_file
from forcebeam.stages.salesforce.write import WriteToSalesforce
from forcebeam.stages.salesforce.written_unread import skip_unread_written
from tests.support.pipelines import (  # the fixture is autouse
    forget_org_afterwards,  # noqa: F401
    jwt_connections,
    point_env_at,
)
from tests.support.stages import connection_mapping, result_files_fetched
from tests.support.truth import org_query

RECORDS = 1500    # a Bulk job in mode auto (>= 1,000 records)


class Invoice(typing.NamedTuple):
    Name: typing.Optional[str]  # noqa: UP045 - Beam's schema inference wants Optional
    External_Id__c: str


def _invoices(tag: str) -> list[Invoice]:
    rows = [Invoice(Name=f"{tag} {i:05d}", External_Id__c=f"{tag}-{i:05d}")
            for i in range(RECORDS)]
    rows[7] = Invoice(Name=None, External_Id__c=f"{tag}-NONAME")   # Name is required
    return rows


def _counter(result: Any, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
    return sum(c.committed or c.attempted or 0 for c in found)


#: What the pipelines' outputs held (the in-process runner calls these module functions).
_KEPT: dict[str, list[Any]] = {"failed": [], "written": []}


def _keep_failed(row: Any) -> None:
    _KEPT["failed"].append(row)


def _keep_written(row: Any) -> None:
    _KEPT["written"].append(row)


def _write(org, tag: str, read_written: bool) -> tuple[Any, int, list[Any], list[Any]]:
    for kept in _KEPT.values():
        kept.clear()
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    result = (pipeline
              | beam.Create(_invoices(tag)).with_output_types(Invoice)
              | WriteToSalesforce(connection_mapping(org), sobject="Invoice__c",
                                  operation="upsert", external_id_field="External_Id__c"))
    _ = result["failed"] | "KeepFailed" >> beam.Map(_keep_failed)
    if read_written:
        _ = result["written"] | "KeepWritten" >> beam.Map(_keep_written)
    skipped = skip_unread_written(pipeline)
    outcome = pipeline.run()
    outcome.wait_until_finish()
    return outcome, skipped, list(_KEPT["failed"]), list(_KEPT["written"])


def test_an_unread_written_output_downloads_no_successes_and_loses_nothing(org_factory):
    org = org_factory(records=10)
    _, fetched = result_files_fetched(org)
    outcome, skipped, failed, _ = _write(org, "UNREAD", read_written=False)
    assert skipped == 1
    assert fetched == ["failedResults"], "the successes' file is not downloaded"
    stored = org_query(org, "SELECT Name FROM Invoice__c WHERE External_Id__c LIKE 'UNREAD-%'")
    assert len(stored) == RECORDS - 1
    assert [(f.element.External_Id__c, f.status_code) for f in failed] == [
        ("UNREAD-NONAME", "REQUIRED_FIELD_MISSING")]
    assert _counter(outcome, "records_written") == RECORDS - 1
    assert _counter(outcome, "records_failed") == 1


def test_a_read_written_output_still_has_every_new_id(org_factory):
    org = org_factory(records=10)
    _, fetched = result_files_fetched(org)
    _, skipped, failed, written = _write(org, "READ", read_written=True)
    assert skipped == 0
    assert sorted(fetched) == ["failedResults", "successfulResults"]
    ids = {r["External_Id__c"]: r["Id"] for r in org_query(
        org, "SELECT Id, External_Id__c FROM Invoice__c WHERE External_Id__c LIKE 'READ-%'")}
    assert {w.element.External_Id__c: w.id for w in written} == ids
    assert len(ids) == RECORDS - 1 and all(w.created for w in written)
    assert len(failed) == 1


def test_forcebeam_run_counts_what_an_unread_written_output_wrote(org_factory, tmp_path,
                                                                    monkeypatch):
    org = org_factory(records=10)
    out = point_env_at(org, tmp_path, monkeypatch)
    lines = ["Name,External_Id__c"] + [f"Run {i:05d},RUN-{i:05d}" for i in range(RECORDS)]
    (out / "invoices.csv").write_text("\n".join(lines) + "\n")
    path = tmp_path / "write.yaml"
    path.write_text(jwt_connections() + """pipeline:
  transforms:
    - type: ReadFromCsv
      name: ReadInvoices
      config: {path: "${FORCEBEAM_OUT}/invoices.csv", dtype: str}
    - type: WriteToSalesforce
      name: Write
      input: ReadInvoices
      config:
        connection: emulated
        sobject: Invoice__c
        operation: upsert
        external_id_field: External_Id__c
        error_handling: {output: rejected}
    - type: WriteToJson
      input: Write.rejected
      config: {path: "${FORCEBEAM_OUT}/rejected"}
""")
    stream = io.StringIO()
    assert run_file(str(path), [], progress_seconds=0.2, stream=stream) == 0
    report = stream.getvalue()
    assert re.search(rf"\n\s*Write\s+0\s+{RECORDS:,}\s+0\s", report), report
    assert len(org_query(org, "SELECT Id FROM Invoice__c WHERE External_Id__c LIKE 'RUN-%'")
               ) == RECORDS


def test_a_rejection_that_matches_no_record_fetches_the_successes_after_all(org_factory):
    """Without the new Ids, successes are whatever the failures do not name; if a failure
    row names no record sent (an org echoing a value differently), the successes' file is
    fetched after all, so a rejected record never passes for a written one."""
    from forcebeam.stages.salesforce.write_apis import write_bulk

    client, fetched = result_files_fetched(org_factory(records=10))
    send = client.request

    def echoing_differently(method, path, *args, **kwargs):
        response = send(method, path, *args, **kwargs)
        if path.rstrip("/").endswith("failedResults"):
            response._content = response.content.replace(b"ECHO-BAD", b"ECHO-B\xc3\x80D")
        return response

    client.request = echoing_differently
    records = [{"Name": f"Echo {i}", "External_Id__c": f"ECHO-{i}"} for i in range(5)]
    records.append({"Name": None, "External_Id__c": "ECHO-BAD"})   # Name is required
    results = write_bulk(client, "Invoice__c", "upsert", records,
                         external_id_field="External_Id__c", ids_wanted=False)
    assert sorted(fetched) == ["failedResults", "successfulResults"]
    assert [r.success for r in results] == [True] * 5 + [False]
    assert results[-1].errors[0].status_code == "UNPROCESSED_RECORD"
    assert all(r.id for r in results[:5]), "the successes' file was read"
