"""Shared pieces of the fault suite (tests/test_faults_*.py): run real pipelines, prove outputs.

Every fault test has the same shape: take the truth from the org through a different path
(plain REST through requests, before any fault is switched on), run a pipeline through
ReadFromSalesforce/WriteToSalesforce on FnApiRunner while the emulator injects the fault, then
prove the output is exactly the truth: same count, no Id twice, no Id missing, same checksum.
`assert_exact` is the one place that decides "exact", so every test fails the same, readable
way when a row is lost or duplicated.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import requests

from bench.org import Login, login
from tests.support.org import EmulatedOrg
from tests.support.truth import rest_records

#: Fields compared in extracts: the key and a value that differs per row.
CHECKED_FIELDS = ("Id", "Name")


def rest_session(org: EmulatedOrg) -> tuple[requests.Session, Login]:
    session = org.session()
    return session, login(org, session)


def api_usage(org: EmulatedOrg) -> tuple[int, int]:
    """(used, daily max) as the org reports it in `Sforce-Limit-Info`, this call included."""
    session, auth = rest_session(org)
    response = session.get(auth.data_url("limits"), headers=auth.headers(), timeout=60)
    response.raise_for_status()
    match = re.search(r"api-usage=(\d+)/(\d+)", response.headers["Sforce-Limit-Info"])
    assert match, response.headers["Sforce-Limit-Info"]
    return int(match.group(1)), int(match.group(2))


def set_faults(org: EmulatedOrg, **spec: Any) -> dict[str, Any]:
    """Replace the org's fault spec (restarts its seeded streams and counters)."""
    return org.admin("PUT", "faults", json=spec).json()


def injected(org: EmulatedOrg) -> dict[str, int]:
    """How many faults of each kind the emulator injected since the spec was set."""
    return org.admin("GET", "faults").json().get("injected", {})


def _row_to_json(row: Any) -> str:
    values = row._asdict() if hasattr(row, "_asdict") else dict(row)
    return json.dumps(values, sort_keys=True, default=str)


def beam_options(*extra: str) -> Any:
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(["--runner=FnApiRunner", *extra])


def run_read(out_dir: Path, connection: Mapping[str, Any], **read_args: Any) -> list[dict]:
    """ReadFromSalesforce -> JSON lines on disk (as a user's pipeline would), read back."""
    import apache_beam as beam

    from forcebeam.stages.salesforce.read import ReadFromSalesforce

    out_dir.mkdir(parents=True, exist_ok=True)
    with beam.Pipeline(options=beam_options()) as pipeline:
        _ = (pipeline
             | "Read" >> ReadFromSalesforce(connection=dict(connection), **read_args)
             | "ToJson" >> beam.Map(_row_to_json)
             | "Save" >> beam.io.WriteToText(str(out_dir / "rows"), file_name_suffix=".jsonl"))
    return read_jsonl(out_dir, "rows")


def run_write(out_dir: Path, connection: Mapping[str, Any], records: list[dict[str, Any]],
              **write_args: Any) -> tuple[list[dict], list[dict]]:
    """Create(records) -> WriteToSalesforce; its `written` and `failed` outputs, read back."""
    import apache_beam as beam

    from forcebeam.stages.salesforce.write import WriteToSalesforce

    out_dir.mkdir(parents=True, exist_ok=True)
    with beam.Pipeline(options=beam_options()) as pipeline:
        outputs = (pipeline
                   | "Records" >> beam.Create(records)
                   | "Write" >> WriteToSalesforce(connection=dict(connection), **write_args))
        for name in ("written", "failed"):
            _ = (outputs[name]
                 | f"{name}ToJson" >> beam.Map(_row_to_json)
                 | f"Save{name}" >> beam.io.WriteToText(str(out_dir / name),
                                                        file_name_suffix=".jsonl"))
    return read_jsonl(out_dir, "written"), read_jsonl(out_dir, "failed")


def new_accounts(tag: str, count: int) -> list[dict[str, Any]]:
    """`count` valid new Accounts whose Names start with `tag` (so the org can be asked)."""
    return [{"Name": f"{tag} {index:06d}", "External_Id__c": f"{tag}-{index}",
             "NumberOfEmployees": index} for index in range(count)]


def accounts_tagged(org: EmulatedOrg, tag: str) -> list[dict[str, Any]]:
    soql = f"SELECT Id, Name FROM Account WHERE Name LIKE '{tag} %'"  # noqa: S608 - SOQL
    return rest_records(org, soql)


def assert_written_exactly(org: EmulatedOrg, tag: str, records: list[dict[str, Any]],
                           written: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The org holds each input row exactly once, and `written` reports exactly those rows."""
    in_org = accounts_tagged(org, tag)
    names = Counter(row["Name"] for row in in_org)
    duplicated = [name for name, n in names.items() if n > 1]
    missing = {row["Name"] for row in records} - set(names)
    assert not duplicated, f"{len(duplicated)} rows written twice, e.g. {duplicated[:5]}"
    assert not missing, f"{len(missing)} rows never written, e.g. {sorted(missing)[:5]}"
    assert len(in_org) == len(records)
    assert checksum(in_org, ("Name",)) == checksum(records, ("Name",))
    written_ids = Counter(_written_id(row) for row in written)
    assert sum(written_ids.values()) == len(records), (
        f"`written` has {sum(written_ids.values())} rows for {len(records)} inputs")
    assert set(written_ids) == {row["Id"] for row in in_org}, "`written` ids != the org's rows"
    return in_org


def _written_id(row: Mapping[str, Any]) -> Any:
    for key in ("id", "Id", "sf__Id"):
        if row.get(key):
            return row[key]
    return None


def read_jsonl(directory: Path, prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for shard in sorted(directory.glob(f"{prefix}*")):
        with shard.open(encoding="utf-8") as handle:
            rows += [json.loads(line) for line in handle if line.strip()]
    return rows


def checksum(rows: Iterable[Mapping[str, Any]], fields: Iterable[str] = CHECKED_FIELDS) -> str:
    """Order-independent digest of the given fields of every row (duplicates change it)."""
    fields = tuple(fields)
    lines = sorted("\x1f".join(str(row.get(f)) for f in fields) for row in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def assert_exact(rows: list[Mapping[str, Any]], truth: list[Mapping[str, Any]], *,
                 key: str = "Id", fields: Iterable[str] = CHECKED_FIELDS) -> None:
    """The output holds every truth row exactly once, with the same values."""
    keys = Counter(row.get(key) for row in rows)
    duplicated = {k: n for k, n in keys.items() if n > 1}
    expected = {row[key] for row in truth}
    lost = expected - set(keys)
    unexpected = set(keys) - expected
    assert not duplicated, f"{len(duplicated)} {key}s duplicated, e.g. {list(duplicated)[:5]}"
    assert not lost, f"{len(lost)} rows lost, e.g. {sorted(lost)[:5]}"
    assert not unexpected, f"{len(unexpected)} rows not in the org, e.g. {sorted(unexpected)[:5]}"
    assert len(rows) == len(truth), f"{len(rows)} rows, expected {len(truth)}"
    assert checksum(rows, fields) == checksum(truth, fields), "values differ from the org's"
