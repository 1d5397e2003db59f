"""The write cell: N new Accounts written by each forcebeam write mode, and by the script.

forcebeam reads one CSV with `ReadFromCsv` and sends it with `WriteToSalesforce` through
`forcebeam run`: insert through collections, insert through Bulk ingest, and upsert on
External_Id__c through Bulk ingest. The yardstick is simple-salesforce's
`bulk2.Account.upsert(csv_file=...)` of an identical file (library defaults). The org's own
row count proves every row arrived (a write benchmark that silently drops rows would look
fast).
"""

from __future__ import annotations

import csv
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from bench.baselines import simple_salesforce_bulk2_upsert
from bench.forcebeam_run import count_json_lines, run_pipeline
from bench.measure import Measurement, measure
from bench.org import Login, login, session_for
from bench.pipeline_files import save, write_pipeline
from bench.profiles import NetworkProfile
from tests.support.org import EmulatedOrg

SS_UPSERT = "simple-salesforce bulk2 upsert"
#: label -> (forcebeam mode, operation); None: the simple-salesforce bulk2 upsert baseline.
WRITE_METHODS: dict[str, tuple[str, str] | None] = {
    "forcebeam write: collections": ("rest", "insert"),
    "forcebeam write: Bulk ingest": ("bulk", "insert"),
    "forcebeam write: Bulk upsert": ("bulk", "upsert"),
    SS_UPSERT: None,
}
EXTERNAL_ID = "External_Id__c"


def write_accounts_csv(path: Path, rows: int, tag: str) -> Path:
    """`rows` valid new Accounts; names carry `tag` so each run's rows can be counted."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Name", EXTERNAL_ID, "Phone", "NumberOfEmployees", "Description"])
        for index in range(rows):
            writer.writerow([f"{tag} {index:07d}", f"{tag}-{index:07d}", f"+1 555 {index:07d}",
                             index % 5000, f"benchmark row {index} for {tag}"])
    return path


def count_accounts(session: requests.Session, auth: Login, name_prefix: str) -> int:
    soql = f"SELECT COUNT() FROM Account WHERE Name LIKE '{name_prefix}%'"  # noqa: S608 - SOQL
    response = session.get(auth.data_url("query"), params={"q": soql},
                           headers=auth.headers(), timeout=120)
    response.raise_for_status()
    return int(response.json()["totalSize"])


def forcebeam_write(org: EmulatedOrg, workdir: Path, csv_path: Path, mode: str,
                    operation: str, beam_args: tuple[str, ...]) -> tuple[int, dict[str, Any]]:
    name = f"{mode}-{operation}"
    dead_dir = workdir / f"dead-letter-{name}"
    shutil.rmtree(dead_dir, ignore_errors=True)
    dead_dir.mkdir(parents=True)
    pipeline = save(write_pipeline(org.info, csv_path, dead_dir / "rejected", mode=mode,
                                   operation=operation,
                                   external_id_field=EXTERNAL_ID if operation == "upsert"
                                   else None),
                    workdir / f"write-{name}.yaml")
    facts = run_pipeline(pipeline, workdir, beam_args)
    facts["rejected"] = count_json_lines(dead_dir / "rejected")
    return -1, {**facts, "expect_all_rows": False}


def run_write_cell(org: EmulatedOrg, profile: NetworkProfile, rows: int, workdir: Path,
                   beam_args: tuple[str, ...] = (),
                   log: Callable[[str], None] = print) -> list[Measurement]:
    """Write `rows` new Accounts with each method into `org`; verify counts server-side."""
    workdir.mkdir(parents=True, exist_ok=True)
    profile.apply_to(org)
    session = session_for(org)
    auth = login(org, session)
    results = []
    run_id = uuid.uuid4().hex[:8].upper()   # the org may keep rows of earlier runs
    for number, (label, how) in enumerate(WRITE_METHODS.items()):
        tag = f"BENCH{profile.name.upper()}{number}{run_id}"
        csv_path = write_accounts_csv(workdir / f"accounts-{number}.csv", rows, tag)
        log(f"  {profile.name:9} {rows:>9,} rows  {label} ...")
        if how is None:
            def write(p: Path = csv_path) -> tuple[int, dict[str, Any]]:
                return simple_salesforce_bulk2_upsert(org, p, EXTERNAL_ID)
        else:
            def write(p: Path = csv_path, m: str = how[0], o: str = how[1]
                      ) -> tuple[int, dict[str, Any]]:
                return forcebeam_write(org, workdir, p, m, o, beam_args)
        result = measure(org, label, profile.name, rows, write)
        if result.error is None:
            result.rows = count_accounts(session, auth, tag)
            if result.rows != rows:
                result.error = (f"org holds {result.rows} new rows, expected {rows} "
                                f"({result.extra.get('rejected')} rejected)")
            result.peak_rss_bytes = result.extra.get("peak_rss_bytes")
        log(f"    -> {result.rows:,} rows in {result.seconds:.1f}s, "
            f"{result.api_calls} API calls{'; ' + result.error if result.error else ''}")
        results.append(result)
    return results
