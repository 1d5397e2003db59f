"""Leaving the laptop: a Dataflow job built offline (`--dry_run`) holds secret references and
never a secret value, for every auth type; and a pipeline runs through Beam's own portable
job service with its SDK worker in another process, whose environment holds no secret.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2

from forcebeam.auth import factory
from forcebeam.pipelines.cli import main
from forcebeam.pipelines.dataflow_dry_run import pipeline_file_for
from forcebeam.pipelines.emulator_env import OFFLINE_GOOGLE_ENV, use_org
from tests.support.pipelines import (
    JWT_CONNECTION,
    forget_org_afterwards,  # noqa: F401 - autouse fixture
)
from tests.test_auth_fixtures import AUTH_TYPES, auth_section, clean_auth_state  # noqa: F401
from tests.test_auth_token_exchange import (
    ACCESS_TOKEN_LIKE,
    JWT_LIKE,
    keyless_connection,
    worker_env,
)

DATAFLOW_FLAGS = ["--runner", "DataflowRunner", "--project", "acme-data",
                  "--region", "europe-west1", "--temp_location", "gs://acme-dataflow/tmp",
                  "--dry_run"]


def _pipeline_text(connection_yaml: str, transforms: str) -> str:
    """A pipeline file with one connection named `org` and the given transforms."""
    return (f"connections:\n  org:\n{textwrap.indent(connection_yaml, '    ')}"
            f"pipeline:\n  transforms:\n{textwrap.indent(textwrap.dedent(transforms), '    ')}")


# Read, write to GCS, write back: both our DoFns and Beam's sinks are pickled into the job.
DRY_RUN_TRANSFORMS = """\
    - type: ReadFromSalesforce
      name: ReadContacts
      config: {connection: org, sobject: Contact, fields: [Id, LastName]}
    - type: WriteToJson
      input: ReadContacts
      config: {path: gs://acme-lake/contacts}
    - type: WriteToSalesforce
      name: TouchContacts
      input: ReadContacts
      config: {connection: org, sobject: Contact, operation: update}
"""


def _pem_body_lines(path: str) -> list[bytes]:
    return [line.encode() for line in Path(path).read_text().splitlines()
            if line and not line.startswith("-----")]


def _unpickled_payloads(pipeline: beam_runner_api_pb2.Pipeline) -> list[bytes]:
    """Every function payload of the graph, undone from Beam's base64 and zlib wrapping."""
    payloads: list[bytes] = []
    for transform in pipeline.components.transforms.values():
        payloads.append(transform.spec.payload)
        if transform.spec.urn == common_urns.primitives.PAR_DO.urn:
            par_do = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
            payloads.append(_undo_wrapping(par_do.do_fn.payload))
    return payloads


def _undo_wrapping(payload: bytes) -> bytes:
    """Beam pickles a DoFn, compresses it (bz2 by default, zlib if asked), base64-encodes it."""
    try:
        payload = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return payload
    for decompress in (bz2.decompress, zlib.decompress):
        try:
            return decompress(payload)
        except (OSError, ValueError, zlib.error):
            continue
    return payload


def _token_shaped(blobs: list[bytes]) -> list[bytes]:
    """Anything shaped like a JWT (assertions, ID tokens) or a Salesforce session id."""
    return [match[:8] + b"..." for blob in blobs
            for pattern in (JWT_LIKE, ACCESS_TOKEN_LIKE) for match in pattern.findall(blob)]


def _dry_run(path: Path, job_file: Path, env: dict[str, str] | None = None) -> list[bytes]:
    """`forcebeam run PATH` for Dataflow with --dry_run in its own process: the job's files,
    and every payload of the graph undone from Beam's wrapping."""
    result = subprocess.run([sys.executable, "-m", "forcebeam.pipelines.cli", "run", str(path),
                             *DATAFLOW_FLAGS, "--dataflow_job_file", str(job_file)],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the job was built and not submitted (--dry_run)" in result.stdout
    graph = beam_runner_api_pb2.Pipeline.FromString(
        Path(pipeline_file_for(str(job_file))).read_bytes())
    return [job_file.read_bytes(), graph.SerializeToString(), *_unpickled_payloads(graph)]


def test_dataflow_dry_run_with_keyless_token_exchange_holds_no_token(org, tmp_path):
    """On Google Cloud the launcher exchanges its own ID token: neither that token nor the
    session it buys may travel in the job."""
    env = {**worker_env(org), "FORCEBEAM_CACHE_DIR": str(tmp_path / "cache")}
    path = tmp_path / "keyless.yaml"
    path.write_text(_pipeline_text(yaml.safe_dump(keyless_connection(org), sort_keys=False),
                                   DRY_RUN_TRANSFORMS))
    before = org.counters()["logins"].get("token_exchange", 0)

    blobs = _dry_run(path, tmp_path / "job.json", env)

    assert org.counters()["logins"].get("token_exchange", 0) > before  # a real exchange
    assert not _token_shaped(blobs), "a token in the Dataflow job"
    consumer_key = org.info["token_exchange"]["consumer_key"].encode()
    assert any(consumer_key in blob for blob in blobs[2:])  # the connection travels


def _launcher_tokens() -> list[bytes]:
    """Access tokens the launcher got while building the graph (describe at construction)."""
    clients = list(factory._clients.values())  # noqa: SLF001 - test looks at what it holds
    return [client.auth.current_token().encode() for client in clients]


# Every auth type; mutual TLS combines with any of them, two cover its key file.
CASES = [(auth_type, False) for auth_type in AUTH_TYPES] + [("jwt_bearer", True),
                                                           ("basic", True)]


@pytest.mark.parametrize(("auth_type", "mtls"), CASES,
                         ids=[f"{auth_type}{'-mtls' if mtls else ''}" for auth_type, mtls in CASES])
def test_dataflow_dry_run_builds_the_job_with_references_only(org, tmp_path, monkeypatch,
                                                              capsys, clean_auth_state,  # noqa: F811
                                                              auth_type, mtls):
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    auth = auth_section(org, auth_type, monkeypatch, tmp_path, mtls=mtls)
    connection = {"login_url": org.info["login_url"], "api_version": org.info["api_version"],
                  "ca_bundle": org.ca_cert, "auth": auth}
    if mtls:
        client_tls = org.info["client_tls"]
        connection["mutual_tls"] = {"certificate": f"file://{client_tls['certificate']}",
                                    "private_key": client_tls["private_key_secret"],
                                    "port": int(org.info["mtls_url"].rsplit(":", 1)[1])}
    path = tmp_path / "to_dataflow.yaml"
    path.write_text(_pipeline_text(yaml.safe_dump(connection, sort_keys=False),
                                   DRY_RUN_TRANSFORMS))
    job_file = tmp_path / "job" / "dataflow_job.json"

    code = main(["run", str(path), *DATAFLOW_FLAGS, "--dataflow_job_file", str(job_file)])

    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    assert "the job was built and not submitted (--dry_run)" in out.out
    job = job_file.read_bytes()
    assert b'"workerPools"' in job and b"use_runner_v2" in job  # a real job description
    graph = beam_runner_api_pb2.Pipeline.FromString(
        Path(pipeline_file_for(str(job_file))).read_bytes())
    payloads = _unpickled_payloads(graph)
    everything = [job, graph.SerializeToString(), *payloads]

    info, app = org.info, org.info["connected_app"]
    user_password = info["mtls_password"] if mtls else info["password"]
    user_token = info["mtls_security_token"] if mtls else info["security_token"]
    secrets = [app["consumer_secret"].encode(), user_password.encode(), user_token.encode(),
               *_pem_body_lines(app["private_key"]), *_launcher_tokens()]
    if mtls:
        secrets += _pem_body_lines(info["client_tls"]["private_key"])
    if auth_type == "refresh_token":
        secrets.append((tmp_path / "refresh-token").read_bytes())
    if auth_type == "access_token":
        secrets.append(os.environ["FB_SF_ACCESS_TOKEN"].encode())
    leaked = [secret[:6] + b"..." for secret in secrets for blob in everything if secret in blob]
    assert not leaked, f"secret values in the Dataflow job: {leaked}"
    assert not _token_shaped(everything)

    references = [value for key, value in auth.items()
                  if isinstance(value, str) and "://" in value and key != "instance_url"]
    if mtls:
        references.append(info["client_tls"]["private_key_secret"])
    assert references, auth
    for reference in references:  # what the workers resolve for themselves
        assert any(reference.encode() in payload for payload in payloads), reference


# --- Beam's portable job service with an external SDK worker process ----------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {log.read_text()[-3000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}: {log.read_text()[-3000:]}")


@pytest.fixture
def portable_services(tmp_path, org) -> Iterator[tuple[int, int, Path]]:
    """A job service and a worker pool, each its own process; the pool's environment is
    stripped to what a cluster's worker would have: no secret, no Salesforce variable."""
    job_port, pool_port = _free_port(), _free_port()
    # The pool starts each SDK worker as `python` from PATH, as the SDK container does.
    worker_env = {"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin')}",
                  "HOME": str(tmp_path / "worker-home"), **OFFLINE_GOOGLE_ENV,
                  "SECRET_MANAGER_EMULATOR_HOST": org.info["secret_manager_host"],
                  "FORCEBEAM_CACHE_DIR": str(tmp_path / "worker-cache")}
    (tmp_path / "worker-home").mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    commands = {
        "jobservice": ([sys.executable, "-m",
                        "apache_beam.runners.portability.local_job_service_main",
                        "--port", str(job_port), "--staging_dir", str(tmp_path / "staging")],
                       {**os.environ}),
        "workerpool": ([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                        f"--service_port={pool_port}"], worker_env),
    }
    processes = {}
    try:
        for name, (command, env) in commands.items():
            with (logs / f"{name}.log").open("wb") as log:
                processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                                   env=env, cwd=tmp_path,
                                                   start_new_session=True)
        _wait_for_port(job_port, processes["jobservice"], logs / "jobservice.log")
        _wait_for_port(pool_port, processes["workerpool"], logs / "workerpool.log")
        yield job_port, pool_port, logs
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)


PORTABLE_TRANSFORMS = """\
    - type: ReadFromSalesforce
      name: ReadAccounts
      config: {connection: org, sobject: Account, fields: [Id, Name, AnnualRevenue]}
    - type: WriteToJson
      input: ReadAccounts
      config: {path: OUT/accounts}
"""


def test_portable_runner_with_an_external_worker_process(org, tmp_path, monkeypatch, capsys,
                                                         portable_services):
    job_port, pool_port, logs = portable_services
    for name, value in use_org(org.info, environ={}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "launcher-cache"))
    out = tmp_path / "out"
    path = tmp_path / "portable.yaml"
    path.write_text(_pipeline_text(textwrap.dedent(JWT_CONNECTION),
                                   PORTABLE_TRANSFORMS.replace("OUT", str(out))))

    logins_before = org.counters()["logins"].get("jwt_bearer", 0)

    code = main(["run", str(path), "--runner=PortableRunner",
                 f"--job_endpoint=localhost:{job_port}", "--environment_type=EXTERNAL",
                 f"--environment_config=localhost:{pool_port}"])

    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:] + (logs / "workerpool.log").read_text()[-3000:]
    rows = sum(len(part.read_text().splitlines()) for part in out.glob("accounts*"))
    assert rows == org.info["records"]
    # The rows were read by the pool's SDK worker, which logged in with the key it fetched
    # from Secret Manager itself: logins beyond the launcher's own came from that process.
    launcher_logins = sum(client.stats.logins
                          for client in factory._clients.values())  # noqa: SLF001
    worker_logins = (org.counters()["logins"].get("jwt_bearer", 0) - logins_before
                     - launcher_logins)
    assert worker_logins >= 1
    assert "Starting worker with command" in (logs / "workerpool.log").read_text()
