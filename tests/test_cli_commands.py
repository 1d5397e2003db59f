"""The small `forcebeam` subcommands against the emulated org: validate --online, check,
describe, keygen, and `forcebeam emulator` (the same CLI as `python -m forcebeam.emulator`)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forcebeam.pipelines.cli import main
from forcebeam.pipelines.emulator_env import use_org
from tests.support.pipelines import (  # the fixture is autouse
    JWT_CONNECTION,
    forget_org_afterwards,  # noqa: F401
)

PIPELINE = """\
connections:
  emulated:
""" + JWT_CONNECTION + """pipeline:
  transforms:
    - type: ReadFromSalesforce
      name: R1
      config: {connection: emulated, sobject: SOBJECT, fields: [Id]}
    - type: ReadFromSalesforce
      name: R2
      config: {connection: emulated, sobject: Account, fields: FIELDS}
"""


@pytest.fixture
def pipeline_file(org, tmp_path, monkeypatch):
    for name, value in use_org(org.info, environ={}).items():  # caches of other orgs gone
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))

    def make(sobject: str = "Account", fields: str = "[Id, Name, Owner.Name]") -> str:
        path = tmp_path / "pipeline.yaml"
        path.write_text(PIPELINE.replace("SOBJECT", sobject).replace("FIELDS", fields))
        return str(path)

    return make


def run_cli(capsys, *arguments: str) -> tuple[int, str, str]:
    code = main(list(arguments))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_validate_online_accepts_real_names(pipeline_file, capsys):
    code, out, err = run_cli(capsys, "validate", "--online", pipeline_file())
    assert code == 0, err
    assert "checked against the org" in out


def test_validate_online_names_unknown_sobjects_and_fields(pipeline_file, capsys):
    path = pipeline_file(sobject="Acount", fields="[Id, Nme, Ownr.Name]")
    code, _, err = run_cli(capsys, "validate", "--online", path)
    assert code == 2
    assert (f"{path}:14: pipeline.transforms[0].config.sobject: unknown sobject 'Acount' "
            "(did you mean 'Account'?)") in err
    assert (f"{path}:17: pipeline.transforms[1].config.fields[1]: 'Account' has no field "
            "'Nme' (did you mean 'Name'?)") in err
    assert (f"{path}:17: pipeline.transforms[1].config.fields[2]: 'Account' has no "
            "relationship 'Ownr' (did you mean 'Owner'?)") in err


def test_check_logs_in_and_reports_the_org(org, pipeline_file, capsys):
    code, out, err = run_cli(capsys, "check", pipeline_file(), "emulated")
    assert code == 0, out + err
    assert org.info["org_id"] in out
    assert org.info["username"] in out


def test_check_with_unknown_connection_suggests_one(pipeline_file, capsys):
    code, _, err = run_cli(capsys, "check", pipeline_file(), "emulatd")
    assert code == 2
    assert "no connection named 'emulatd' (did you mean 'emulated'?)" in err


def test_describe_lists_objects_and_fields_with_types(pipeline_file, capsys):
    code, out, _ = run_cli(capsys, "describe", pipeline_file(), "emulated")
    assert code == 0
    assert {"Account", "Contact", "Opportunity", "Invoice__c"} <= set(out.split())
    code, out, _ = run_cli(capsys, "describe", pipeline_file(), "emulated", "Account")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    types = {name: line.split()[1] for name, line in lines.items()}
    assert types["Id"] == "id" and types["Name"] == "string(255)"
    assert types["AnnualRevenue"] == "currency(18,0)" and types["OwnerId"] == "reference"
    # What a writer needs: required fields, upsert keys, picklist rules, relationship columns.
    assert "required" in lines["Name"] and "required" not in lines["Description"]
    assert "required" not in lines["OwnerId"]           # defaulted to the running user
    assert "external id (upsert key); unique" in lines["External_Id__c"]
    assert "values (not restricted: other values are accepted): " in lines["Industry"]
    assert "lookup to User via Owner (Owner.Name -> column Owner_Name)" in lines["OwnerId"]
    assert "read-only" in lines["CreatedDate"]
    code, out, _ = run_cli(capsys, "describe", pipeline_file(), "emulated", "Invoice__c")
    status = next(line for line in out.splitlines() if line.startswith("Status__c"))
    assert "values (restricted: other values are rejected): Draft, Sent, Paid, Void" in status
    code, _, err = run_cli(capsys, "describe", pipeline_file(), "emulated", "Acount")
    assert code == 2 and "did you mean 'Account'?" in err


def test_keygen_writes_a_private_key_and_certificate(tmp_path, capsys):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    code, out, err = run_cli(capsys, "keygen", "--out", str(tmp_path / "keys"))
    assert code == 0, out + err
    key_path, cert_path = tmp_path / "keys" / "server.key", tmp_path / "keys" / "server.crt"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = load_pem_private_key(key_path.read_bytes(), password=None)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()
    assert "BEGIN" not in out  # the key itself is never printed


def test_forcebeam_emulator_is_the_emulator_cli(tmp_path):
    info_file = tmp_path / "info.json"
    log = (tmp_path / "emulator.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "forcebeam.pipelines.cli", "emulator", "--port", "0",
         "--mtls-port", "0",
         "--secret-manager-port", "0", "--records", "50", "--data-dir", str(tmp_path / "d"),
         "--info-file", str(info_file)], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "NO_GCE_CHECK": "true"})
    try:
        deadline = time.monotonic() + 120
        while not info_file.exists() and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "emulator.log").read_text()[-2000:]
            time.sleep(0.1)
        info = json.loads(info_file.read_text())
        assert info["records"] == 50 and info["instance_url"].startswith("https://127.0.0.1:")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        log.close()
    assert Path(info["ca_cert"]).exists()


def test_validate_online_builds_the_pipeline_and_places_beam_errors(pipeline_file, capsys):
    path = pipeline_file()
    text = open(path).read() + """\
    - type: MapToFields
      name: Shape
      input: R2
      config: {language: python, fields: {Short: "Name[:3"}}
"""
    open(path, "w").write(text)
    code, _, err = run_cli(capsys, "validate", "--online", path)
    assert code == 2
    assert f"{path}:18: pipeline.transforms[2]: Beam cannot build this: " in err
    assert "SyntaxError" in err
    assert "at line" not in err  # Beam's line numbers are of its own text, not the file
