"""REQUEST_LIMIT_EXCEEDED in the middle of an incremental extract run by `forcebeam run`.

When the org's daily limit runs out mid-run the right outcome is a clean stop: a message that
says what happened and what to do, no traceback wall, and the incremental state exactly where
the last successful run left it — so the next run reads every row this one did not deliver
(never a gap), and nothing this one did deliver is counted twice by a later run's state.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from bench.forcebeam_run import forcebeam_command
from bench.pipeline_files import connection_for
from tests.support.faults import assert_exact, read_jsonl, set_faults
from tests.support.truth import rest_records

RECORDS = 3000
TOUCHED = 600
FIELDS = ["Id", "Name", "SystemModstamp"]


def _pipeline(org, state: Path, out: Path) -> dict:
    return {
        "connections": {"org": connection_for(org.info)},
        "pipeline": {"type": "chain", "transforms": [
            {"type": "ReadFromSalesforce", "name": "Accounts",
             "config": {"connection": "org", "sobject": "Account", "fields": FIELDS,
                        "mode": "bulk", "split": 4,
                        "incremental": {"field": "SystemModstamp", "state": str(state)}}},
            {"type": "WriteToJson", "name": "Save", "config": {"path": str(out / "accounts")}},
        ]},
    }


def _run(org, workdir: Path, name: str, state: Path) -> tuple[int, str, list[dict]]:
    out = workdir / name
    out.mkdir(parents=True)
    file = workdir / f"{name}.yaml"
    file.write_text(yaml.safe_dump(_pipeline(org, state, out), sort_keys=False))
    done = subprocess.run([*forcebeam_command(), "run", str(file)], capture_output=True,
                          text=True, timeout=600, cwd=workdir)
    return done.returncode, done.stdout + done.stderr, read_jsonl(out, "accounts")


def test_request_limit_mid_run_stops_cleanly_and_leaves_the_state_where_it_was(org_factory,
                                                                               tmp_path):
    org = org_factory(records=RECORDS)
    state = tmp_path / "state" / "accounts.json"
    state.parent.mkdir()

    code, output, rows = _run(org, tmp_path, "first", state)
    assert code == 0, output
    assert_exact(rows, rest_records(org, "SELECT Id, Name FROM Account"))
    committed = state.read_bytes()

    touched = set(org.admin("POST", "records/Account/touch", json={"count": TOUCHED})
                  .json()["ids"])
    assert len(touched) == TOUCHED

    # How many calls the incremental run makes, measured on a throwaway copy of the state.
    rehearsal_state = tmp_path / "rehearsal-state" / "accounts.json"
    rehearsal_state.parent.mkdir()
    rehearsal_state.write_bytes(committed)
    org.reset_counters()
    code, output, rows = _run(org, tmp_path, "rehearsal", rehearsal_state)
    assert code == 0, output
    assert {row["Id"] for row in rows} == touched
    calls = org.counters()["api_calls"]["total"]
    assert calls >= 6, f"planning + {TOUCHED} rows in 4 units: {calls} calls"

    set_faults(org, request_limit_after_calls=calls // 2)
    code, output, _ = _run(org, tmp_path, "limited", state)
    assert code != 0, "a run cut off by the API limit must fail"
    assert "REQUEST_LIMIT_EXCEEDED" in output, output[-3000:]
    assert "Traceback (most recent call last)" not in output, (
        f"a clean stop, not a traceback wall:\n{output[-3000:]}")
    assert state.read_bytes() == committed, "state advanced past what was written"

    set_faults(org)
    code, output, rows = _run(org, tmp_path, "resumed", state)
    assert code == 0, output
    truth = [r for r in rest_records(org, "SELECT Id, Name FROM Account") if r["Id"] in touched]
    assert_exact(rows, truth)
    assert json.loads(state.read_bytes()) != json.loads(committed), "state advanced after success"
