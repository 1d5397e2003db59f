"""The write cell: the same N new Accounts inserted through collections and through Bulk ingest.

Both modes read one CSV with `ReadFromCsv` and send it with `WriteToSalesforce` through
`forcebeam run`; the org's own row count before and after proves every row arrived (a write
benchmark that silently drops rows would look fast).
"""

from __future__ import annotations

import csv
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from bench.forcebeam_run import count_json_lines, run_pipeline
from bench.measure import Measurement, measure
from bench.org import Login, login, session_for
from bench.pipeline_files import save, write_pipeline
from bench.profiles import NetworkProfile
from tests.support.org import EmulatedOrg

WRITE_MODES = {"collections": "rest", "Bulk ingest": "bulk"}


def write_accounts_csv(path: Path, rows: int, tag: str) -> Path:
    """`rows` valid new Accounts; names carry `tag` so each run's rows can be counted."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Name", "Phone", "NumberOfEmployees", "Description"])
        for index in range(rows):
            writer.writerow([f"{tag} {index:07d}", f"+1 555 {index:07d}", index % 5000,
                             f"benchmark row {index} for {tag}"])
    return path


def count_accounts(session: requests.Session, auth: Login, name_prefix: str) -> int:
    soql = f"SELECT COUNT() FROM Account WHERE Name LIKE '{name_prefix}%'"  # noqa: S608 - SOQL
    response = session.get(auth.data_url("query"), params={"q": soql},
                           headers=auth.headers(), timeout=120)
    response.raise_for_status()
    return int(response.json()["totalSize"])


def forcebeam_write(org: EmulatedOrg, workdir: Path, csv_path: Path, mode: str,
                    beam_args: tuple[str, ...]) -> tuple[int, dict[str, Any]]:
    dead_dir = workdir / f"dead-letter-{mode}"
    shutil.rmtree(dead_dir, ignore_errors=True)
    dead_dir.mkdir(parents=True)
    pipeline = save(write_pipeline(org.info, csv_path, dead_dir / "rejected", mode=mode),
                    workdir / f"write-{mode}.yaml")
    facts = run_pipeline(pipeline, workdir, beam_args)
    facts["rejected"] = count_json_lines(dead_dir / "rejected")
    return -1, {**facts, "expect_all_rows": False}


def run_write_cell(org: EmulatedOrg, profile: NetworkProfile, rows: int, workdir: Path,
                   beam_args: tuple[str, ...] = (),
                   log: Callable[[str], None] = print) -> list[Measurement]:
    """Insert `rows` Accounts with each write mode into `org`; verify counts server-side."""
    workdir.mkdir(parents=True, exist_ok=True)
    profile.apply_to(org)
    session = session_for(org)
    auth = login(org, session)
    results = []
    run_id = uuid.uuid4().hex[:8].upper()   # the org may keep rows of earlier runs
    for label, mode in WRITE_MODES.items():
        tag = f"BENCH{profile.name.upper()}{mode.upper()}{run_id}"
        csv_path = write_accounts_csv(workdir / f"accounts-{mode}.csv", rows, tag)
        log(f"  {profile.name:9} {rows:>9,} rows  write via {label} ...")
        result = measure(org, f"forcebeam write: {label}", profile.name, rows,
                         lambda m=mode, p=csv_path: forcebeam_write(org, workdir, p, m,
                                                                    beam_args))
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
