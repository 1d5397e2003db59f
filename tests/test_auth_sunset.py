"""Sunset dates: `password` (20 Feb 2027) and `basic` (SOAP login(), Summer '27) warn with the
date and the replacement in validate, check and run; after the date the warning says what
Salesforce answers. A `basic` connection on API 65.0 still logs in (through SOAP 64.0)."""

from __future__ import annotations

import io
import textwrap
from datetime import date

import pytest

from forcebeam.auth import get_client
from forcebeam.auth.commands import check_connection
from forcebeam.auth.sunset import TODAY_VARIABLE, today, warning_for
from forcebeam.pipelines.cli import main
from forcebeam.pipelines.spec import PipelineSpec
from forcebeam.pipelines.validation import sunset_warnings, validate_or_raise
from tests.test_auth_fixtures import (
    auth_section,
    clean_auth_state,  # noqa: F401 - fixture
    connection_for,
)

PIPELINE = textwrap.dedent("""\
    connections:
      modern:
        login_url: https://acme.my.salesforce.com
        auth: {type: jwt_bearer, username: u@acme.com, consumer_key: K, private_key: env://KEY}
      legacy_password:
        login_url: https://acme.my.salesforce.com
        auth:
          type: password
          username: u@acme.com
          password: env://SF_PASSWORD
          consumer_key: K
          consumer_secret: env://SF_SECRET
      legacy_basic:
        login_url: https://acme.my.salesforce.com
        api_version: "65.0"
        auth:
          type: basic
          username: u@acme.com
          password: env://SF_PASSWORD
    pipeline:
      transforms:
        - type: ReadFromSalesforce
          config: {connection: modern, sobject: Account, fields: [Id]}
        - type: WriteToJson
          input: ReadFromSalesforce
          config: {path: out/accounts}
    """)


@pytest.mark.parametrize(("flow", "last_day", "retirement"), [
    ("password", date(2027, 2, 19), date(2027, 2, 20)),
    ("basic", date(2027, 5, 31), date(2027, 6, 1)),
])
def test_warning_names_the_date_and_replacement_then_what_salesforce_answers(
        flow, last_day, retirement):
    before, after = warning_for(flow, last_day), warning_for(flow, retirement)
    assert before and after
    for text in (before, after):
        assert "jwt_bearer or client_credentials" in text and "README.md#" in text
    assert "retires on" in before and "retired on" in after
    if flow == "password":
        assert "20 Feb 2027" in before and "never works with an External Client App" in before
        assert "invalid_grant 'authentication failure'" in after
    else:
        assert "Summer '27" in before and "API 65.0" in before and "64.0" in before
        assert "UNSUPPORTED_API_VERSION" in after


def test_flows_salesforce_keeps_do_not_warn():
    for flow in ("jwt_bearer", "client_credentials", "refresh_token", "token_exchange",
                 "access_token"):
        assert warning_for(flow, date(2030, 1, 1)) is None


def test_today_can_be_injected_for_a_preview(monkeypatch):
    monkeypatch.setenv(TODAY_VARIABLE, "2027-03-01")
    assert today() == date(2027, 3, 1)
    assert "retired on 20 Feb 2027" in warning_for("password")
    monkeypatch.setenv(TODAY_VARIABLE, "not a date")
    assert today() == date.today()  # a malformed preview never breaks a run


def test_validate_prints_each_warning_at_its_line_and_still_passes(tmp_path, capsys,
                                                                   monkeypatch):
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    monkeypatch.setenv(TODAY_VARIABLE, "2026-12-01")

    assert main(["validate", str(path)]) == 0

    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, out
    assert f"{path}:8: connections.legacy_password.auth.type" in warnings[0]
    assert "20 Feb 2027" in warnings[0]
    assert f"{path}:17: connections.legacy_basic.auth.type" in warnings[1]
    assert "Summer '27" in warnings[1]
    assert out.rstrip().endswith("connections)")  # the OK line comes last


def test_run_gets_the_same_warnings_on_stderr_after_the_date(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    spec = PipelineSpec.load(str(path))
    stream = io.StringIO()

    validate_or_raise(spec, warn_to=stream, today=date(2027, 7, 1))  # what `run` calls

    text = stream.getvalue()
    assert text.count("warning:") == 2 and text.count("retired on") == 2
    assert [w.path for w in sunset_warnings(spec)] == [
        ("connections", "legacy_password", "auth", "type"),
        ("connections", "legacy_basic", "auth", "type")]


@pytest.mark.usefixtures("clean_auth_state")
def test_basic_on_api_65_logs_in_through_soap_64_and_check_warns(org, monkeypatch, tmp_path):
    connection = connection_for(org, auth_section(org, "basic", monkeypatch, tmp_path),
                                api_version="65.0")
    org.reset_counters()

    client = get_client(connection)  # the emulator refuses SOAP login() on 65.0, as Salesforce
    assert client.api_version == "65.0"
    assert client.sf.query("SELECT Id FROM Account LIMIT 2")["totalSize"] == 2
    assert org.counters()["logins"] == {"total": 1, "soap": 1}

    out = io.StringIO()
    assert check_connection(connection, out) == 0
    first = out.getvalue().splitlines()[0]
    assert first.startswith("warning: auth type 'basic'") and "Summer '27" in first


@pytest.mark.usefixtures("clean_auth_state")
def test_check_says_the_sunset_warning_once(org, monkeypatch, tmp_path, caplog):
    """`check` prints the warning first; its own login does not log the same text again."""
    import logging

    from forcebeam.auth import credentials

    credentials._warned_legacy.discard("basic")
    connection = connection_for(org, auth_section(org, "basic", monkeypatch, tmp_path))
    out = io.StringIO()
    with caplog.at_level(logging.WARNING):
        assert check_connection(connection, out) == 0
    said = out.getvalue() + "".join(record.getMessage() for record in caplog.records)
    assert said.count("Summer '27") == 1


@pytest.mark.usefixtures("clean_auth_state")
def test_run_says_the_sunset_warning_once(org, monkeypatch, tmp_path, caplog):
    """`run` prints the warning when it validates the file; the run's logins in the same
    process do not log the same text a second time."""
    import logging

    from forcebeam.auth import credentials

    credentials._warned_legacy.discard("basic")
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    printed = io.StringIO()
    with caplog.at_level(logging.WARNING):
        validate_or_raise(PipelineSpec.load(str(path)), warn_to=printed)  # what `run` calls
        connection = connection_for(org, auth_section(org, "basic", monkeypatch, tmp_path))
        assert get_client(connection).sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"]
    said = printed.getvalue() + "".join(record.getMessage() for record in caplog.records)
    assert said.count("Summer '27") == 1
