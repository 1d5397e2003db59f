"""Interrupted and failed runs: nothing of ours left behind, a summary of what was done.

SIGTERM is what schedulers and `timeout` send: the run must clean up as for Ctrl-C (the
mutual-TLS key file, the CA copy, the progress folder), say what it wrote and what a rerun
does. Output prefixes keep only a successful run's complete files.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from forcebeam.pipelines.cli import main
from forcebeam.pipelines.emulator_env import use_org
from tests.support.org import EmulatedOrg, start_org
from tests.support.truth import org_query

MTLS_CONNECTION = """\
connections:
  org:
    login_url: ${FORCEBEAM_LOGIN_URL}
    ca_bundle: ${FORCEBEAM_CA_CERT}
    auth:
      type: jwt_bearer
      username: ${FORCEBEAM_MTLS_USERNAME}
      consumer_key: ${FORCEBEAM_CONSUMER_KEY}
      private_key: ${FORCEBEAM_PRIVATE_KEY_SECRET}
    mutual_tls:
      certificate: file://${FORCEBEAM_CLIENT_CERT}
      private_key: ${FORCEBEAM_CLIENT_KEY_SECRET}
      port: ${FORCEBEAM_MTLS_PORT}
"""


@pytest.fixture(scope="module")
def slow_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    running = start_org(tmp_path_factory.mktemp("interrupted-org"), records=20)
    try:
        yield running
    finally:
        running.stop()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # noqa: S603
    child.wait()
    return child.pid


def test_sigterm_mid_insert_cleans_up_and_says_what_a_rerun_does(slow_org, tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    orphan = temp / f"forcebeam-mtls-{_dead_pid()}-x1y2"   # left by a killed process
    orphan.mkdir()
    (orphan / "client-key.pem").write_text("old key")
    rows = ["Name,External_Id__c"] + [f"Sigterm {i:04d},ST-{i:04d}" for i in range(600)]
    (tmp_path / "rows.csv").write_text("\n".join(rows) + "\n")
    path = tmp_path / "insert.yaml"
    path.write_text(MTLS_CONNECTION + textwrap.dedent(f"""\
        pipeline:
          transforms:
            - type: ReadFromCsv
              name: Rows
              config: {{path: "{tmp_path}/rows.csv", dtype: str}}
            - type: WriteToSalesforce
              name: Insert
              input: Rows
              config: {{connection: org, sobject: Account, mode: rest, batch_size: 20}}
        """))
    env = {**os.environ, **use_org(slow_org.info, environ={}), "TMPDIR": str(temp),
           "FORCEBEAM_CACHE_DIR": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    slow_org.admin("PUT", "faults", json={"latency_ms": 150})
    try:
        run = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "forcebeam.pipelines.cli", "run", str(path),
             "--progress-seconds", "0.5"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        assert run.stdout is not None
        seen = []
        deadline = time.monotonic() + 120
        for line in run.stdout:
            seen.append(line)
            if "Insert written:" in line or time.monotonic() > deadline:
                break
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=120)
    finally:
        slow_org.admin("PUT", "faults", json={"latency_ms": 0})
    report = "".join(seen) + out
    assert run.returncode == 143, report + err
    assert "the run stopped (terminated)" in report, report
    inserted = len(org_query(slow_org, "SELECT Id FROM Account WHERE Name LIKE 'Sigterm %'"))
    assert 0 < inserted < 600
    assert "a rerun inserts them AGAIN (duplicates)" in report
    assert "operation: upsert with external_id_field" in report
    assert "Traceback" not in err
    # Nothing of ours is left in the temp directory: key files, CA copy, progress folder,
    # and the orphan of the dead process were all removed.
    assert sorted(p.name for p in temp.iterdir() if p.name.startswith("forcebeam-")) == []


def test_a_finished_run_exits_at_once_with_its_output_and_nothing_of_ours_left(slow_org,
                                                                                tmp_path):
    """The command leaves without finalizing the interpreter (`cli.console_main`): its
    report, its files and its exit code are complete, and the exit handlers still removed the
    mutual-TLS key files, the CA copy and the progress folder."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    path = tmp_path / "read.yaml"
    path.write_text(MTLS_CONNECTION + textwrap.dedent(f"""\
        pipeline:
          transforms:
            - type: ReadFromSalesforce
              name: Accounts
              config: {{connection: org, sobject: Account, fields: [Id, Name]}}
            - type: WriteToJson
              input: Accounts
              config: {{path: "{tmp_path}/out/accounts"}}
        """))
    env = {**os.environ, **use_org(slow_org.info, environ={}), "TMPDIR": str(temp),
           "FORCEBEAM_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "forcebeam.pipelines.cli", "run",  # noqa: S603
                           str(path)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    accounts = len(org_query(slow_org, "SELECT Id FROM Account"))   # other tests add some
    assert re.search(rf"Accounts\s+{accounts:,}\s", done.stdout), done.stdout  # the summary
    written = [line for shard in sorted((tmp_path / "out").glob("accounts*"))
               for line in shard.read_text().splitlines()]
    assert len(written) == accounts >= 20
    assert sorted(p.name for p in temp.iterdir() if p.name.startswith("forcebeam-")) == []


def _csv_to_json(tmp_path: Path, fail: bool = False) -> Path:
    (tmp_path / "in.csv").write_text("a,b\n" + "".join(f"{i},x{i}\n" for i in range(1, 40)))
    path = tmp_path / "files.yaml"
    broken = textwrap.indent(textwrap.dedent("""\
        - type: MapToFields
          name: Broken
          input: Csv
          config: {language: python, fields: {c: "1 // (a - 39)"}}
        - type: WriteToJson
          input: Broken
          config: {path: "OUT/broken"}
        """).replace("OUT", str(tmp_path / "out")), "    ") if fail else ""
    path.write_text(textwrap.dedent(f"""\
        pipeline:
          transforms:
            - type: ReadFromCsv
              name: Csv
              config: {{path: "{tmp_path}/in.csv"}}
            - type: WriteToJson
              input: Csv
              config: {{path: "{tmp_path}/out/rows"}}
        """) + broken)
    return path


def test_output_prefixes_hold_only_one_successful_runs_files(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    # What earlier runs left: shards of another shard count, a failed run's staging folder.
    for index in range(3):
        (out / f"rows-0000{index}-of-00003").write_text('{"a": 0, "b": "old"}\n')
    (out / "beam-temp-rows-0123abcd").mkdir()
    (out / "beam-temp-rows-0123abcd" / "part").write_text('{"a": 0, "b": "partial"}\n')
    old = time.time() - 3600
    for stale in out.iterdir():
        os.utime(stale, (old, old))
    assert main(["run", str(_csv_to_json(tmp_path))]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["rows-00000-of-00001"]  # no .temp*
    assert len((out / "rows-00000-of-00001").read_text().splitlines()) == 39
    # A failed run leaves no row data behind: no beam-temp-*, no .temp*, no shards of its own;
    # the last successful run's files are what stays.
    before = {p.name: p.read_text() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["run", str(_csv_to_json(tmp_path, fail=True))]) == 1
    report = capsys.readouterr()
    assert "the run stopped (failed: " in report.out
    assert "division or modulo by zero" in report.err
    left = {p.name: p.read_text() for p in out.iterdir()}
    assert left == before, sorted(left)


def test_an_unreachable_org_is_one_clear_message(tmp_path, capsys, monkeypatch):
    with socket.socket() as probe:       # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("SF_TOKEN", "00Dx!not-a-real-token")
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "unreachable.yaml"
    path.write_text(textwrap.dedent(f"""\
        connections:
          org:
            login_url: https://127.0.0.1:{port}
            auth: {{type: access_token, instance_url: "https://127.0.0.1:{port}",
                    access_token: env://SF_TOKEN}}
        pipeline:
          transforms:
            - type: ReadFromSalesforce
              config: {{connection: org, sobject: Account}}
            - type: WriteToJson
              input: ReadFromSalesforce
              config: {{path: "{tmp_path}/out/x"}}
        """))
    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the org at 127.0.0.1:{port} (connection refused) after 6 " \
           "attempts" in err
    assert "login_url" in err and "status.salesforce.com" in err
    assert "Traceback" not in err and "Retrying" not in err and "not-a-real-token" not in err


@pytest.mark.parametrize(("signum", "code", "why"), [(signal.SIGTERM, 143, "terminated"),
                                                     (signal.SIGINT, 130, "interrupted")])
def test_a_stopped_replication_leaves_no_staged_rows_and_says_what_a_rerun_does(
        slow_org, tmp_path, signum, code, why):
    temp = tmp_path / "tmp"
    temp.mkdir()
    lake = tmp_path / "lake"
    path = tmp_path / "lake.yaml"
    path.write_text(MTLS_CONNECTION + textwrap.dedent(f"""\
        pipeline:
          transforms:
            - type: ReplicateSalesforce
              name: Lake
              config: {{connection: org, objects: [Account, Contact, Case], path: "{lake}",
                        format: jsonl, mode: rest}}
        """))
    env = {**os.environ, **use_org(slow_org.info, environ={}), "TMPDIR": str(temp),
           "FORCEBEAM_CACHE_DIR": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "forcebeam.pipelines.cli", "run", str(path)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (lake / "_staging").exists() and run.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        # Staging exists: the pipeline runs; slow answers keep it running a while.
        slow_org.admin("PUT", "faults", json={"latency_ms": 800})
        time.sleep(0.5)
        run.send_signal(signum)
        out, err = run.communicate(timeout=120)
    finally:
        slow_org.admin("PUT", "faults", json={"latency_ms": 0})
    assert run.returncode == code, out + err
    assert f"the run stopped ({why})" in out, out
    assert "Traceback" not in err, err
    assert "Lake " in out and "read" in out
    assert "no manifest written and no watermark moved" in out, out
    # Nothing published, no row data staged in the lake, nothing of ours in the temp dir.
    assert not (lake / "_staging").exists(), sorted(str(p) for p in lake.rglob("*"))
    assert not (lake / "_manifests").exists() and not (lake / "_state").exists()
    assert not lake.exists(), sorted(str(p) for p in lake.rglob("*"))   # a first run's lake
    assert sorted(p.name for p in temp.iterdir()
                  if p.name.startswith(("forcebeam-", "beam-pipeline-temp"))) == []


def test_validate_online_leaves_no_beam_temp_folder(tmp_path, monkeypatch):
    import tempfile

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert main(["validate", "--online", str(_csv_to_json(tmp_path))]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(_csv_to_json(tmp_path).read_text().replace(
        '{path: "' + str(tmp_path / "out/rows") + '"}', "{}"))
    assert main(["validate", "--online", str(bad)]) == 2
    assert sorted(p.name for p in temp.iterdir()) == []
