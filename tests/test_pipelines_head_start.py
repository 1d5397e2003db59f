"""`forcebeam run`'s head start: a local run's reads start their Bulk job before Beam is
imported, the read takes that job over, and nothing is left in the org on any way out.

The org's own records say what happened: the query jobs it created (its daily budget), the
jobs still listed afterwards, its token requests. Runs go through the real command in a
process of its own, as a user runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from forcebeam.pipelines.emulator_env import use_org
from forcebeam.pipelines.head_start import runs_in_this_process
from forcebeam.pipelines.spec import PipelineSpec
from tests.support.org import EmulatedOrg, start_org
from tests.support.pipelines import jwt_connections
from tests.support.truth import org_query

# Over auto mode's Bulk threshold (2,000 rows): every read here is one Bulk job.
RECORDS = 2500


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    with start_org(tmp_path_factory.mktemp("head-start-org"), records=RECORDS) as running:
        yield running


def _pipeline(tmp_path: Path, reads: int = 1, shape: str = "len(Name)") -> Path:
    steps = ""
    for number in range(reads):
        steps += textwrap.indent(textwrap.dedent(f"""\
            - type: ReadFromSalesforce
              name: Accounts{number}
              config: {{connection: emulated, sobject: Account, fields: [Id, Name]}}
            - type: MapToFields
              name: Shape{number}
              input: Accounts{number}
              config: {{language: python, fields: {{Id: Id, NameLength: "{shape}"}}}}
            - type: WriteToJson
              input: Shape{number}
              config: {{path: "{tmp_path}/out/accounts{number}"}}
            """), "    ")
    path = tmp_path / "pipeline.yaml"
    path.write_text(jwt_connections() + "pipeline:\n  transforms:\n" + steps)
    return path


def _run(org: EmulatedOrg, tmp_path: Path, path: Path, *args: str, verbose: bool = True,
         merged: bool = False) -> subprocess.CompletedProcess[str]:
    """`forcebeam run` in a process of its own; ``merged``: its stderr (the log) into its
    stdout, in the order written."""
    env = {**os.environ, **use_org(org.info, environ={}),
           "FORCEBEAM_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "forcebeam.pipelines.cli", *(["-v"] if verbose else []),
               "run", str(path), *args]
    return subprocess.run(command, env=env, stdout=subprocess.PIPE,  # noqa: S603
                          stderr=subprocess.STDOUT if merged else subprocess.PIPE,
                          text=True, timeout=300)


def _jobs_left(org: EmulatedOrg) -> list[dict]:
    from forcebeam.auth import Connection, get_client
    from tests.support.stages import connection_mapping

    client = get_client(Connection.from_mapping(connection_mapping(org)))
    return client.request("GET", "jobs/query").json().get("records") or []


def _rows(tmp_path: Path, name: str) -> int:
    return sum(len(shard.read_text().splitlines())
               for shard in (tmp_path / "out").glob(f"{name}*"))


def test_a_local_read_starts_its_job_before_the_pipeline_and_reads_it_once(org, tmp_path):
    org.reset_counters()
    done = _run(org, tmp_path, _pipeline(tmp_path), merged=True)
    assert done.returncode == 0, done.stdout
    accounts = len(org_query(org, "SELECT Id FROM Account"))
    assert _rows(tmp_path, "accounts0") == accounts >= RECORDS
    # The job was on the org before Beam built the pipeline ("running ..." is printed once
    # it is built), and the read took it over: one job, deleted once read.
    log = done.stdout
    created = log.index('"POST /services/data/v62.0/jobs/query HTTP')
    assert created < log.index(f"running {tmp_path}"), log
    assert org.counters()["bulk_jobs"]["query"] == 1
    assert _jobs_left(org) == []


def test_two_reads_of_the_same_query_each_read_all_rows_with_a_job_each(org, tmp_path):
    org.reset_counters()
    done = _run(org, tmp_path, _pipeline(tmp_path, reads=2))
    assert done.returncode == 0, done.stdout + done.stderr
    accounts = len(org_query(org, "SELECT Id FROM Account"))
    assert _rows(tmp_path, "accounts0") == _rows(tmp_path, "accounts1") == accounts
    assert org.counters()["bulk_jobs"]["query"] == 2
    assert _jobs_left(org) == []


@pytest.mark.parametrize("queued_seconds", [0, 30], ids=["completed", "still-queued"])
def test_a_file_beam_refuses_leaves_no_job_in_the_org(org, tmp_path, queued_seconds):
    """Beam's own checks come after the head start: the job it began (complete by then, or
    still in the org's queue) is aborted and deleted, and the run still exits 2 at the
    file's line."""
    org.reset_counters()
    org.admin("PUT", "faults", json={"bulk_queue_seconds": queued_seconds})
    try:
        done = _run(org, tmp_path, _pipeline(tmp_path, shape="len(Name"))
    finally:
        org.admin("DELETE", "faults")
    assert done.returncode == 2, done.stdout + done.stderr
    assert org.counters()["bulk_jobs"]["query"] == 1
    assert "Beam cannot build this: SyntaxError" in done.stderr
    assert _jobs_left(org) == []
    assert _rows(tmp_path, "accounts0") == 0


def test_worker_processes_get_no_head_start_and_read_one_job(org, tmp_path):
    org.reset_counters()
    done = _run(org, tmp_path, _pipeline(tmp_path), "--direct_running_mode=multi_processing",
                "--direct_num_workers=2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _rows(tmp_path, "accounts0") == len(org_query(org, "SELECT Id FROM Account"))
    assert org.counters()["bulk_jobs"]["query"] == 1
    assert _jobs_left(org) == []


def test_a_login_the_org_refuses_is_tried_once_and_reported(org, tmp_path):
    """The head start's login fails: the run stops with Salesforce's reason before any
    worker tries again (repeated failed logins lock a user out)."""
    path = _pipeline(tmp_path)
    assert _run(org, tmp_path, path).returncode == 0      # the describe is cached now
    username = org.info["username"]
    org.admin("PATCH", f"users/{username}", json={"active": False})
    try:
        org.reset_counters()
        done = _run(org, tmp_path, path, verbose=False)
    finally:
        org.admin("PATCH", f"users/{username}", json={"active": True})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "login to" in done.stderr and "user is inactive" in done.stderr, done.stderr
    assert "Fix: activate the user" in done.stderr and "Traceback" not in done.stderr
    counters = org.counters()
    assert counters["token_requests"]["total"] == 1, counters["token_requests"]
    assert counters["bulk_jobs"].get("query", 0) == 0


@pytest.mark.parametrize(("options", "flags", "here"), [
    ({}, [], True),
    ({}, ["--runner=DirectRunner"], True),
    ({}, ["--runner", "FnApiRunner"], True),
    ({"runner": "DataflowRunner"}, [], False),
    ({"runner": "DataflowRunner"}, ["--runner=DirectRunner"], True),   # flags win
    ({}, ["--direct_running_mode=multi_processing"], False),
    ({"direct_running_mode": "multi_processing"}, ["--direct_running_mode", "in_memory"],
     True),
    ({}, ["--runner=FlinkRunner"], False),
])
def test_only_runs_whose_workers_are_this_process_get_a_head_start(tmp_path, options, flags,
                                                                    here):
    from forcebeam.pipelines.loader import LoadedFile

    spec = PipelineSpec(file=LoadedFile(path=str(tmp_path / "p.yaml"),
                                        data={"options": options, "pipeline": {}}))
    assert runs_in_this_process(spec, flags) is here


def _validate_in_a_fresh_process(path: Path, cache: Path) -> tuple[str, bool]:
    """`validate` of ``path`` in a new interpreter: (its problems, whether Beam got imported)."""
    script = textwrap.dedent(f"""\
        import sys
        from forcebeam.pipelines.problems import PipelineFileError
        from forcebeam.pipelines.spec import PipelineSpec
        from forcebeam.pipelines.validation import validate_or_raise
        try:
            validate_or_raise(PipelineSpec.load({str(path)!r}))
            print("valid")
        except PipelineFileError as error:
            print(error.report())
        print("beam imported:", "apache_beam" in sys.modules)
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,  # noqa: S603
                          timeout=120, env={**os.environ, "FORCEBEAM_CACHE_DIR": str(cache)})
    assert done.returncode == 0, done.stderr
    report, _, imported = done.stdout.rpartition("beam imported: ")
    return report, imported.strip() == "True"


def test_a_valid_file_is_validated_without_importing_beam_once_its_types_are_known(tmp_path):
    """So `forcebeam run` starts the reads before Beam's ~1.4 s import; Beam's transform
    names are kept on disk, and a name missing there is still checked against Beam."""
    from tests.support.pipelines import OFFLINE_CONNECTIONS

    def pipeline(sink: str) -> Path:
        path = tmp_path / f"{sink}.yaml"
        path.write_text(OFFLINE_CONNECTIONS + textwrap.dedent(f"""\
            pipeline:
              type: chain
              transforms:
                - type: ReadFromSalesforce
                  config: {{connection: prod, sobject: Account}}
                - type: {sink}
                  config: {{path: /tmp/out}}
            """))
        return path

    cache = tmp_path / "cache"
    assert _validate_in_a_fresh_process(pipeline("WriteToParquet"), cache) == ("valid\n", True)
    assert _validate_in_a_fresh_process(pipeline("WriteToParquet"), cache) == ("valid\n", False)
    # A copy that lacks a name (an older Beam, a damaged file) sends the check to Beam.
    for copy in (cache / "beam-yaml").glob("*.json"):
        copy.write_text("[]")
    assert _validate_in_a_fresh_process(pipeline("WriteToParquet"), cache) == ("valid\n", True)
    report, _ = _validate_in_a_fresh_process(pipeline("WriteToParqet"), cache)
    assert "unknown transform type 'WriteToParqet'" in report and "WriteToParquet" in report


def test_a_run_that_ends_while_its_read_logs_in_creates_no_job(org, tmp_path, monkeypatch):
    """Ctrl-C during Beam's import: the head start is discarded at once, without waiting for
    the login's round trips, and the job it had not yet requested is never created."""
    import time

    from forcebeam.auth import Connection, factory
    from forcebeam.stages.salesforce import head_start
    from forcebeam.stages.salesforce.config import ReadConfig
    from forcebeam.stages.salesforce.describe import warm_describe_cache
    from tests.support.stages import connection_mapping

    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    mapping = connection_mapping(org)
    connection = Connection.from_mapping(mapping)
    warm_describe_cache(connection, "Account")
    factory.reset()         # the next login is the head start's own
    org.reset_counters()
    org.admin("PUT", "faults", json={"latency_ms": 1500})
    try:
        config = ReadConfig(connection=mapping, sobject="Account", fields=["Id", "Name"])
        assert head_start.start_read(connection, config)
        began = time.monotonic()
        assert head_start.discard_untaken() == 0
        assert time.monotonic() - began < 1.0
        time.sleep(4.0)     # the login completes; the head start then stops short
    finally:
        org.admin("DELETE", "faults")
        org.admin("PUT", "faults", json={"latency_ms": 0})
    assert org.counters()["bulk_jobs"].get("query", 0) == 0
    assert _jobs_left(org) == []
