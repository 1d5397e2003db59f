"""Metrics users see in PipelineResult.metrics(), and no secret inside the pickled pipeline."""

from __future__ import annotations

import base64
import bz2
import zlib

import apache_beam as beam
from apache_beam.internal import pickler
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from forcebeam.stages.salesforce.read import ReadFromSalesforce
from forcebeam.stages.salesforce.write import WriteToSalesforce
from tests.support.stages import FNAPI, connection_mapping


def _counters(result) -> dict[str, int]:
    found = result.metrics().query(MetricsFilter().with_namespace("forcebeam"))["counters"]
    totals: dict[str, int] = {}
    for counter in found:
        name = counter.key.metric.name
        totals[name] = totals.get(name, 0) + (counter.committed or 0)
    return totals


def test_read_and_write_metrics_match_what_the_org_counted(org_factory, tmp_path, monkeypatch):
    org = org_factory(records=3000)
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    conn = connection_mapping(org)
    org.reset_counters()

    pipeline = beam.Pipeline(options=PipelineOptions(FNAPI))
    rows = pipeline | ReadFromSalesforce(conn, sobject="Account", fields=["Id", "Name"],
                                         mode="bulk", split=2)
    updates = rows | beam.Map(lambda r: {"Id": r.Id, "Name": r.Name if r.Id[-4] != "1" else ""})
    _ = updates | WriteToSalesforce(conn, sobject="Account", operation="update", mode="rest")
    result = pipeline.run()
    result.wait_until_finish()

    totals = _counters(result)
    emulator = org.counters()
    assert totals["records_read"] == 3000
    assert totals["records_written"] + totals.get("records_failed", 0) == 3000
    assert totals.get("records_failed", 0) > 0        # blank Names are refused, and counted
    assert totals["api_calls"] == emulator["api_calls"]["total"]
    assert totals["logins"] == emulator["logins"]["total"] >= 1
    assert totals["cumulativeThrottlingSeconds"] == 0       # no 429/limit sleeps here


def _secret_fragments(org) -> list[bytes]:
    """Byte strings that must never appear: key material, secrets, passwords, tokens."""
    app = org.info["connected_app"]
    key_lines = [line for line in open(app["private_key"], encoding="ascii").read().splitlines()
                 if line and not line.startswith("-----")]
    fragments = [line.encode() for line in key_lines[1:4]]
    for value in (app["consumer_secret"], org.info["password"], org.info["security_token"]):
        fragments.append(value.encode())
    return fragments


def test_pickled_pipeline_holds_no_secret_bytes(org, tmp_path, monkeypatch):
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    conn = connection_mapping(org)
    pipeline = beam.Pipeline(options=PipelineOptions(FNAPI))
    rows = pipeline | ReadFromSalesforce(conn, sobject="Account", fields=["Id", "Name"])
    _ = rows | beam.Map(lambda r: {"Id": r.Id}) | WriteToSalesforce(
        conn, sobject="Account", operation="update")

    blobs = _pickled_payloads(pipeline.to_runner_api())
    blobs.append(_unpack(pickler.dumps(ReadFromSalesforce(conn, sobject="Account",
                                                          fields=["Id"]))))
    blobs.append(_unpack(pickler.dumps(WriteToSalesforce(conn, sobject="Account"))))
    for blob in blobs:
        for fragment in _secret_fragments(org):
            assert fragment not in blob, "a secret value was pickled into the pipeline"
    # The DoFns carry the connection by reference - which is what lets workers log in - so
    # the check above looked at the right bytes.
    reference = f"file://{org.info['connected_app']['private_key']}".encode()
    assert sum(reference in blob for blob in blobs) >= 3


def _unpack(payload: bytes) -> bytes:
    """Beam pickles are base64 of bz2/zlib-compressed pickles: look at the real bytes."""
    raw = base64.b64decode(payload)
    for decompress in (bz2.decompress, zlib.decompress):
        try:
            return decompress(raw)
        except (OSError, ValueError, zlib.error):
            continue
    return raw


def _pickled_payloads(proto) -> list[bytes]:
    from apache_beam.portability.api import beam_runner_api_pb2

    blobs = []
    for transform in proto.components.transforms.values():
        if transform.spec.urn == "beam:transform:pardo:v1":
            payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
            blobs.append(_unpack(payload.do_fn.payload))
        elif transform.spec.payload:
            blobs.append(transform.spec.payload)
    return blobs
