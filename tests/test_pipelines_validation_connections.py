"""A connection is validated once per run, by auth, which reports all of its problems at
once; the pipeline layer only places each problem at its line of the file."""

from __future__ import annotations

import pytest

from forcebeam.auth import connection as auth_connection
from forcebeam.auth.connection import ConnectionConfigError
from forcebeam.pipelines import beam_yaml, connections, validation
from forcebeam.pipelines.spec import PipelineSpec
from forcebeam.stages.salesforce.read import ReadFromSalesforce
from tests.test_pipelines_validation import GOOD_PIPELINE, line_of, validate, write

THREE_MISTAKES = """\
connections:
  prod:
    login_url: https://acme.my.salesforce.com/services
    api_version: latest
    auth:
      type: jwt_bearer
      username: integration@acme.com
      consumer_key: 3MVG9example
      private_key: "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkq"
"""


def test_three_mistakes_in_one_connection_are_three_located_messages_in_one_run(
        tmp_path, capsys):
    path = write(tmp_path, THREE_MISTAKES + GOOD_PIPELINE)
    code, output = validate(path, capsys)
    assert code == 2, output
    located = [line for line in output.splitlines() if ": connections.prod." in line]
    assert len(located) == 3, output
    assert (f"{path}:{line_of(path, 'private_key')}: connections.prod.auth.private_key: must "
            "be a secret reference, not a literal value (put the value in a secret store") \
        in output
    assert (f"{path}:{line_of(path, 'login_url')}: connections.prod.login_url: must be just "
            "scheme://host[:port] without a path") in output
    assert (f"{path}:{line_of(path, 'api_version')}: connections.prod.api_version: must be a "
            "Salesforce API version") in output
    assert "MIIEvQ" not in output


def test_a_connection_is_validated_once_from_validate_to_the_stage(tmp_path, monkeypatch):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    text = THREE_MISTAKES.replace("/services", "").replace("api_version: latest",
                                                           "ca_bundle: ca.pem")
    text = text.replace('"-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkq"',
                        "gcp-sm://projects/acme/secrets/sf-jwt-key/versions/latest")
    path = write(tmp_path, text + GOOD_PIPELINE)
    checks = []
    original = auth_connection._check

    def counting(fields):
        checks.append(fields.get("login_url"))
        return original(fields)

    monkeypatch.setattr(auth_connection, "_validated", {})
    monkeypatch.setattr(auth_connection, "_check", counting)
    spec = PipelineSpec.load(str(path))
    assert validation.validate(spec) == []
    described = connections.build(spec.connections["prod"], source=spec.path, name="prod")
    stage = ReadFromSalesforce(connection=beam_yaml.inline_connection(spec, "prod"),
                               sobject="Account")
    assert checks == ["https://acme.my.salesforce.com"]   # one validation, three uses
    assert stage._connection == described
    assert described.ca_bundle == str(tmp_path / "ca.pem")
    # A validated Connection handed to a stage is used as it is.
    assert ReadFromSalesforce(connection=described, sobject="Account")._connection is described
    assert len(checks) == 1


def test_a_raw_mapping_from_python_gets_every_problem_in_one_error():
    with pytest.raises(ConnectionConfigError) as caught:
        ReadFromSalesforce(connection={"login_url": "http://acme.my.salesforce.com",
                                       "auth": {"type": "client_credentials",
                                                "consumer_key": "k",
                                                "consumer_secret": "s3cr3t-literal"},
                                       "max_api_usage": "150%"},
                           sobject="Account")
    error = caught.value
    assert [problem.path for problem in error.problems] == [
        ("auth", "consumer_secret"), ("login_url",), ("max_api_usage",)]
    assert all(problem.fix or "must" in problem.message for problem in error.problems)
    text = str(error)
    assert "connection.auth.consumer_secret" in text and "connection.max_api_usage" in text
    assert "s3cr3t-literal" not in text
