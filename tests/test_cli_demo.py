"""`forcebeam demo` (what `make demo` runs): starts its own emulated org, runs the example
pipeline, writes the files and a summary, keeps the bad row as a dead letter, exits 0, and
leaves no emulator behind."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pyarrow.parquet as pq


def test_forcebeam_demo_end_to_end(tmp_path):
    out = tmp_path / "out"
    # The demo's temp dir under this test's own folder: its emulator is told apart from any
    # other demo running at the same time (the wheel test runs one too).
    demo_tmp = tmp_path / "tmp"
    demo_tmp.mkdir()
    env = {**os.environ, "FORCEBEAM_CACHE_DIR": str(tmp_path / "cache"), "TMPDIR": str(demo_tmp)}
    for name in ("NO_GCE_CHECK", "GCE_METADATA_HOST", "GCE_METADATA_IP"):
        env.pop(name, None)  # the demo must set these itself
    result = subprocess.run([sys.executable, "-m", "forcebeam.pipelines.cli", "demo",
                             "--out", str(out),
                             "--records", "500"],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = result.stdout

    summary = {line.split()[0]: line.split() for line in report.splitlines()
               if line.strip().startswith(("Read", "Upsert"))}
    assert summary["ReadAccounts"][1] == "500"
    assert summary["UpsertInvoices"][2:4] == ["4", "1"]   # written, failed

    accounts = pq.read_table(glob.glob(str(out / "accounts*"))).to_pylist()
    assert len(accounts) == 500 and all(row["Id"].startswith("001") for row in accounts)
    contacts = [json.loads(line) for path in glob.glob(str(out / "contacts*"))
                for line in Path(path).read_text().splitlines()]
    assert contacts and all(row["Id"].startswith("003") for row in contacts)
    opportunities = Path(glob.glob(str(out / "opportunities*"))[0]).read_text().splitlines()
    assert opportunities[0].split(",")[:4] == ["Id", "AccountId", "Name", "Stage"]
    assert len(opportunities) > 1

    rejected = [json.loads(line) for path in glob.glob(str(out / "rejected_invoices*"))
                for line in Path(path).read_text().splitlines()]
    assert [row["element"]["External_Id__c"] for row in rejected] == ["INV-DEMO-0004"]
    assert rejected[0]["status_code"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    # The rejected row as the CSV has it: every column, names and values.
    assert rejected[0]["element"] == {"External_Id__c": "INV-DEMO-0004",
                                      "Name": "Demo invoice 4 (bad status)",
                                      "Status__c": "Lost", "Amount__c": 10.0}
    assert rejected[0]["fields"] == ["Status__c"] and "Lost" in rejected[0]["msg"]

    # The demo's emulator is gone (its data dir was a forcebeam-demo-* temp dir).
    leftovers = [proc for proc in psutil.process_iter(["cmdline"])
                 if any(str(demo_tmp) in part for part in (proc.info["cmdline"] or []))]
    assert leftovers == []
    assert not list(demo_tmp.iterdir())  # and so is its temp dir
