"""The yardsticks forcebeam is measured against, each the plain way a user would do it.

(a) `raw_bulk_transfer`: one Bulk 2.0 query job, every result page streamed and thrown away
    (requests, no decoding; the download loop of bench/emulator_serving.py) — the serving
    limit: no client extracts faster than the org renders and hands out the pages. Timed from
    job creation to the last byte, like every other method; the transfer-only rate is kept
    in the JSON (`transfer_rows_per_second`).
(b) `simple_salesforce_bulk2_csv`: simple-salesforce's `bulk2.<Object>.download` (its
    documented memory-safe path: pages to files) followed by parsing every file with `csv`.
(c) `simple_salesforce_rest`: simple-salesforce's `query_all_iter` (REST, 2,000 rows a page).
(d) `simple_salesforce_bulk2_upsert`: simple-salesforce's `bulk2.<Object>.upsert(csv_file=)`
    (the write yardstick: one file uploaded through Bulk 2.0 ingest).

Each returns (rows, extra facts) for `bench.measure.measure`, which owns timing and counts.
Library defaults are kept on purpose (page size, polling): they are what users get.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from simple_salesforce import Salesforce

from bench.emulator_serving import download_all
from bench.org import login, session_for
from tests.support.org import EmulatedOrg

JOB_POLL_SECONDS = 0.25
JOB_TIMEOUT_SECONDS = 1800


def raw_bulk_transfer(org: EmulatedOrg, soql: str) -> tuple[int, dict[str, Any]]:
    """Create a Bulk 2.0 query job, wait for it, stream every page to nowhere."""
    session = session_for(org)
    auth = login(org, session)
    headers = {**auth.headers(), "Content-Type": "application/json"}
    created = session.post(auth.data_url("jobs/query"), headers=headers, timeout=120,
                           json={"operation": "query", "query": soql})
    created.raise_for_status()
    job_url = auth.data_url(f"jobs/query/{created.json()['id']}")
    job_started = time.perf_counter()
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while True:
        state = session.get(job_url, headers=headers, timeout=120).json()
        if state["state"] == "JobComplete":
            break
        if state["state"] in ("Failed", "Aborted") or time.monotonic() > deadline:
            raise RuntimeError(f"Bulk job ended {state['state']}: {state.get('errorMessage')}")
        time.sleep(JOB_POLL_SECONDS)
    transfer_started = time.perf_counter()
    pages = download_all(session, f"{job_url}/results", auth.headers(), max_records=None)
    return pages["rows"], {"pages": pages["pages"], "wire_mb": pages["wire_mb"],
                           "job_wait_seconds": round(transfer_started - job_started, 3),
                           "transfer_seconds": pages["seconds"],
                           "transfer_mb_per_second": pages["mb_per_second"],
                           "transfer_rows_per_second": pages["rows_per_second"]}


def _client(org: EmulatedOrg) -> Salesforce:
    session = session_for(org)
    auth = login(org, session)
    return Salesforce(instance_url=auth.instance_url, session_id=auth.access_token,
                      session=session, version=auth.api_version)


def simple_salesforce_bulk2_csv(org: EmulatedOrg, soql: str,
                                sobject: str = "Account") -> tuple[int, dict[str, Any]]:
    """`sf.bulk2.<sobject>.download(...)` then `csv.reader` over every downloaded page."""
    sf = _client(org)
    target = Path(tempfile.mkdtemp(prefix="bench-bulk2-"))
    try:
        pages = getattr(sf.bulk2, sobject).download(soql, path=str(target))
        rows = 0
        for page in pages:
            with open(page["file"], newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                next(reader, None)  # every page repeats the header
                for _ in reader:
                    rows += 1
        return rows, {"pages": len(pages)}
    finally:
        shutil.rmtree(target, ignore_errors=True)


def simple_salesforce_rest(org: EmulatedOrg, soql: str) -> tuple[int, dict[str, Any]]:
    """`sf.query_all_iter(soql)`: REST pages of up to 2,000 JSON records, consumed lazily."""
    sf = _client(org)
    rows = 0
    for _record in sf.query_all_iter(soql):
        rows += 1
    return rows, {}


def simple_salesforce_bulk2_upsert(org: EmulatedOrg, csv_path: Path, external_id_field: str,
                                   sobject: str = "Account") -> tuple[int, dict[str, Any]]:
    """`sf.bulk2.<sobject>.upsert(csv_file=...)`; rows it reports processed and failed."""
    sf = _client(org)
    results = getattr(sf.bulk2, sobject).upsert(csv_file=str(csv_path),
                                               external_id_field=external_id_field)
    processed = sum(int(r.get("numberRecordsProcessed", 0)) for r in results)
    failed = sum(int(r.get("numberRecordsFailed", 0)) for r in results)
    return processed - failed, {"jobs": len(results), "rejected": failed}
