"""tap-salesforce (singer.io, from PyPI, unmodified) in BULK mode against the emulated org.

What a user would notice: the tap logs in with its refresh token at login.salesforce.com,
discovers the org, and its BULK sync of Account (Bulk API 1.0: a CSV queryAll job, one
batch, XML batch infos, result-list, CSV result) emits exactly the org's Account rows,
deleted ones included as queryAll returns them. The tap runs in its own virtualenv (its pins
clash with ours, see tests/peers/tap-salesforce.txt) and reaches the emulator by host name:
`tests/support/host_routing/sitecustomize.py` answers login.salesforce.com with the
emulator's loopback port and refuses every other non-loopback name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.org import login, session_for
from tests.support.org import EmulatedOrg

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "tests" / "peers" / "tap-salesforce.txt"
ROUTING = REPO / "tests" / "support" / "host_routing"
CACHE = Path(os.environ.get("FORCEBEAM_PEERS_CACHE", REPO / ".peers-cache"))
RECORDS = 300
PIP_OFFLINE_HINTS = ("No matching distribution", "Could not find a version",
                     "Network is unreachable", "Temporary failure in name resolution")


@pytest.fixture(scope="session")
def tap_salesforce() -> Path:
    """The `tap-salesforce` executable of a virtualenv built from the pinned versions (built
    once, reused while the constraints file is unchanged)."""
    digest = hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()[:12]
    home = CACHE / f"tap-salesforce-{digest}"
    executable = home / "bin" / "tap-salesforce"
    complete = home / ".complete"  # written last: a half-built venv is rebuilt
    if complete.exists():
        return executable
    shutil.rmtree(home, ignore_errors=True)
    venv.EnvBuilder(with_pip=True).create(home)  # in place: scripts name their interpreter
    pins = [line.strip() for line in CONSTRAINTS.read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    installed = subprocess.run(
        [str(home / "bin" / "python"), "-m", "pip", "install", "--no-input",
         "--disable-pip-version-check", "--no-deps", *pins],
        capture_output=True, text=True, timeout=900)
    if installed.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        output = (installed.stdout + installed.stderr)[-3000:]
        if any(hint in output for hint in PIP_OFFLINE_HINTS):
            pytest.skip(f"tap-salesforce cannot be installed from the package index here:\n"
                        f"{output}")
        pytest.fail(f"installing tap-salesforce failed:\n{output}")
    complete.write_text(CONSTRAINTS.read_text())
    return executable


def run_tap(tap: Path, org: EmulatedOrg, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update({
        "PYTHONPATH": str(ROUTING),
        "FORCEBEAM_ROUTE_SALESFORCE_PORT": str(org.info["instance_url"].rsplit(":", 1)[1]),
        "REQUESTS_CA_BUNDLE": org.ca_cert, "SSL_CERT_FILE": org.ca_cert,
        "CURL_CA_BUNDLE": org.ca_cert,
    })
    result = subprocess.run([str(tap), *args], capture_output=True, text=True, env=env,
                            cwd=cwd, timeout=600)
    assert result.returncode == 0, f"tap-salesforce {' '.join(args)} failed:\n" \
                                   f"{result.stderr[-4000:]}"
    return result


def refresh_token_config(org: EmulatedOrg, path: Path) -> Path:
    """The tap's own config: OAuth refresh token of the org's connected app, BULK mode."""
    app = org.info["connected_app"]
    token = org.admin("POST", "refresh-tokens", json={
        "username": org.info["username"], "consumer_key": app["consumer_key"]}
    ).json()["refresh_token"]
    path.write_text(json.dumps({
        "client_id": app["consumer_key"], "client_secret": app["consumer_secret"],
        "refresh_token": token, "start_date": "2000-01-01T00:00:00Z", "api_type": "BULK",
        "select_fields_by_default": True, "is_sandbox": False}))
    path.chmod(0o600)
    return path


def select_account(catalog: dict[str, Any]) -> dict[str, Any]:
    """What a user does to the discovered catalog: select Account, replicate by its key."""
    streams = [stream for stream in catalog["streams"] if stream["stream"] == "Account"]
    assert len(streams) == 1, "discovery did not find Account"
    for entry in streams[0]["metadata"]:
        if entry["breadcrumb"] == []:
            entry["metadata"]["selected"] = True
            entry["metadata"]["replication-method"] = "INCREMENTAL"
            entry["metadata"]["replication-key"] = entry["metadata"][
                "valid-replication-keys"][0]
    return {"streams": streams}


def rest_count(org: EmulatedOrg, resource: str) -> int:
    session = session_for(org)
    auth = login(org, session)
    response = session.get(auth.data_url(resource), headers=auth.headers(), timeout=60,
                           params={"q": "SELECT COUNT() FROM Account"})
    response.raise_for_status()
    return response.json()["totalSize"]


@pytest.mark.slow
def test_tap_salesforce_bulk_discover_and_sync_account(
        tap_salesforce: Path, org_factory: Callable[..., EmulatedOrg], tmp_path: Path) -> None:
    private = org_factory(records=RECORDS)
    config = refresh_token_config(private, tmp_path / "config.json")

    discovered = run_tap(tap_salesforce, private, "--config", str(config), "--discover",
                         cwd=tmp_path)
    catalog = json.loads(discovered.stdout)
    account = next(s for s in catalog["streams"] if s["stream"] == "Account")
    assert {"Id", "Name", "SystemModstamp", "IsDeleted"} <= set(account["schema"]["properties"])
    inclusion = {tuple(entry["breadcrumb"]): entry["metadata"].get("inclusion")
                 for entry in account["metadata"]}
    # compound fields cannot be read through Bulk: the tap leaves them out of the sync
    assert inclusion[("properties", "BillingAddress")] == "unsupported"
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(json.dumps(select_account(catalog)))

    synced = run_tap(tap_salesforce, private, "--config", str(config), "--properties",
                     str(catalog_file), cwd=tmp_path)
    messages = [json.loads(line) for line in synced.stdout.splitlines() if line.strip()]
    records = [m["record"] for m in messages if m["type"] == "RECORD"]
    assert {m["stream"] for m in messages if m["type"] == "RECORD"} == {"Account"}
    assert "/services/async/61.0/job" in synced.stderr  # it really went through Bulk 1.0

    # queryAll: every row, deleted ones too; exactly the org's rows, each once.
    assert len(records) == rest_count(private, "queryAll")
    assert len({record["Id"] for record in records}) == len(records)
    live = [record for record in records if record["IsDeleted"] is False]
    assert len(live) == rest_count(private, "query")
    assert all(isinstance(record["Name"], str) and record["Name"] for record in records)
    state = [m for m in messages if m["type"] == "STATE"][-1]["value"]
    assert state["bookmarks"]["Account"]["SystemModstamp"] == max(
        record["SystemModstamp"] for record in records)
    assert sys.executable not in str(tap_salesforce)  # the tap's own environment
