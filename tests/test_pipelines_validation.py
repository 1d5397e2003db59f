"""`forcebeam validate`: every kind of mistake is reported with file:line, field path and the
closest valid name, exits 2, and nothing runs. Examples shipped with forcebeam all validate."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from forcebeam.auth.exit_codes import EXIT_INVALID
from forcebeam.pipelines.cli import main
from tests.support.pipelines import OFFLINE_CONNECTIONS as GOOD_CONNECTION

EXAMPLES = Path(__file__).resolve().parents[1] / "pipelines" / "examples"

GOOD_PIPELINE = """\
pipeline:
  transforms:
    - type: ReadFromSalesforce
      name: ReadAccounts
      config:
        connection: prod
        sobject: Account
    - type: WriteToParquet
      input: ReadAccounts
      config:
        path: out/accounts
"""


def write(tmp_path: Path, text: str, name: str = "pipeline.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def test_a_good_file_validates(tmp_path, capsys):
    path = write(tmp_path, GOOD_CONNECTION + GOOD_PIPELINE)
    code, output = validate(path, capsys)
    assert code == 0, output
    assert "OK (2 transforms, 1 connections" in output


def test_yaml_syntax_error_names_the_line(tmp_path, capsys):
    path = write(tmp_path, GOOD_CONNECTION + "pipeline:\n  transforms: [\n    {type: X\n")
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    assert f"{path}:" in output and "YAML syntax error" in output


def test_unknown_transform_type_suggests_the_closest(tmp_path, capsys):
    path = write(tmp_path, GOOD_CONNECTION + GOOD_PIPELINE.replace("WriteToParquet",
                                                                   "WriteToParqet"))
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    expected_line = line_of(path, "WriteToParqet")
    assert (f"{path}:{expected_line}: pipeline.transforms[1].type: unknown transform type "
            "'WriteToParqet' (did you mean 'WriteToParquet'?)") in output


def test_unknown_config_field_suggests_the_closest(tmp_path, capsys):
    path = write(tmp_path, GOOD_CONNECTION + GOOD_PIPELINE.replace("sobject:", "sobjct:"))
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    expected_line = line_of(path, "sobjct")
    assert (f"{path}:{expected_line}: pipeline.transforms[0].config.sobjct: unknown field "
            "'sobjct' (did you mean 'sobject'?)") in output


def test_missing_required_config_field(tmp_path, capsys):
    text = GOOD_CONNECTION + GOOD_PIPELINE + """\
    - type: WriteToSalesforce
      name: Load
      input: ReadAccounts
      config:
        connection: prod
        operation: insert
"""
    path = write(tmp_path, text)
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    assert f"{path}:{line_of(path, 'operation: insert') - 2}: " \
           "pipeline.transforms[2].config.sobject: missing required field 'sobject'" in output


def test_unknown_connection_name_suggests_the_closest(tmp_path, capsys):
    path = write(tmp_path, GOOD_CONNECTION + GOOD_PIPELINE.replace("connection: prod",
                                                                   "connection: prd"))
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    assert (f"{path}:{line_of(path, 'connection: prd')}: pipeline.transforms[0].config."
            "connection: unknown connection 'prd' (did you mean 'prod'?)") in output


def test_inline_secret_is_refused_without_echoing_it(tmp_path, capsys):
    secret = "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkq"
    text = GOOD_CONNECTION.replace(
        "gcp-sm://projects/acme/secrets/sf-jwt-key/versions/latest", f'"{secret}"')
    path = write(tmp_path, text + GOOD_PIPELINE)
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    assert (f"{path}:{line_of(path, 'private_key:')}: connections.prod.auth.private_key: "
            "must be a secret reference") in output
    assert "gcp-sm://projects/PROJECT/secrets/NAME/versions/latest" in output  # the fix
    assert "MIIEvQIBADANBgkq" not in output


def test_malformed_secret_reference_scheme(tmp_path, capsys):
    text = GOOD_CONNECTION.replace("gcp-sm://projects/acme/secrets/sf-jwt-key/versions/latest",
                                   "gcpsm://projects/acme/secrets/sf-jwt-key/versions/latest")
    path = write(tmp_path, text + GOOD_PIPELINE)
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    assert f"{path}:{line_of(path, 'private_key:')}: connections.prod.auth.private_key" in output


def test_unknown_auth_field_suggests_the_closest(tmp_path, capsys):
    path = write(tmp_path, GOOD_CONNECTION.replace("username:", "usernme:") + GOOD_PIPELINE)
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    assert (f"{path}:{line_of(path, 'usernme')}: connections.prod.auth.usernme: unknown "
            "field 'usernme' (did you mean 'username'?)") in output


def test_unknown_auth_type_suggests_the_closest(tmp_path, capsys):
    path = write(tmp_path, GOOD_CONNECTION.replace("type: jwt_bearer", "type: jwt_barer")
                 + GOOD_PIPELINE)
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    assert (f"{path}:{line_of(path, 'jwt_barer')}: connections.prod.auth.type: unknown auth "
            "type 'jwt_barer' (did you mean 'jwt_bearer'?)") in output


def test_unset_environment_variable_names_its_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FORCEBEAM_TEST_UNSET_URL", raising=False)
    text = GOOD_CONNECTION.replace("https://acme.my.salesforce.com",
                                   "${FORCEBEAM_TEST_UNSET_URL}")
    path = write(tmp_path, text + GOOD_PIPELINE)
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    assert (f"{path}:{line_of(path, 'login_url')}: connections.prod.login_url: environment "
            "variable FORCEBEAM_TEST_UNSET_URL is not set") in output


def test_environment_variables_fill_values(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FORCEBEAM_TEST_URL", "https://acme.my.salesforce.com")
    text = GOOD_CONNECTION.replace("https://acme.my.salesforce.com", "${FORCEBEAM_TEST_URL}")
    path = write(tmp_path, text + GOOD_PIPELINE.replace("out/accounts",
                                                        "${FORCEBEAM_TEST_OUT:-out}/a"))
    code, output = validate(path, capsys)
    assert code == 0, output


def test_unknown_top_level_key(tmp_path, capsys):
    path = write(tmp_path, GOOD_CONNECTION.replace("connections:", "conections:") + GOOD_PIPELINE)
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    assert (f"{path}:1: conections: unknown top-level key 'conections' "
            "(did you mean 'connections'?)") in output


def test_every_problem_is_reported_at_once(tmp_path, capsys):
    text = (GOOD_CONNECTION.replace("usernme", "username")
            + GOOD_PIPELINE.replace("sobject:", "sobjct:").replace("WriteToParquet",
                                                                   "WriteToParqet"))
    path = write(tmp_path, text)
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    assert "2 problems in the pipeline file" in output


def test_cli_exit_status_is_2_and_nothing_runs(tmp_path):
    out_dir = tmp_path / "out"
    path = write(tmp_path, GOOD_CONNECTION + GOOD_PIPELINE.replace("out/accounts",
                                                                   f"{out_dir}/accounts")
                 .replace("sobject:", "sobjct:"))
    command = [sys.executable, "-m", "forcebeam.pipelines.cli", "run", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "NO_GCE_CHECK": "true"})
    assert result.returncode == EXIT_INVALID, result.stderr
    assert "unknown field 'sobjct' (did you mean 'sobject'?)" in result.stderr
    assert not out_dir.exists()


EXAMPLE_ENV = {
    "FORCEBEAM_LOGIN_URL": "https://127.0.0.1:8443", "FORCEBEAM_INSTANCE_URL":
    "https://127.0.0.1:8443", "FORCEBEAM_CA_CERT": "/tmp/ca.pem",
    "FORCEBEAM_USERNAME": "integration@example.com",
    "FORCEBEAM_MTLS_USERNAME": "mtls@example.com", "FORCEBEAM_CONSUMER_KEY": "3MVG9example",
    "FORCEBEAM_PRIVATE_KEY_SECRET": "gcp-sm://projects/p/secrets/k/versions/latest",
    "FORCEBEAM_MTLS_PORT": "8443", "FORCEBEAM_CLIENT_CERT": "/tmp/client.pem",
    "FORCEBEAM_CLIENT_KEY": "/tmp/client.key",
    "FORCEBEAM_CLIENT_KEY_SECRET": "gcp-sm://projects/p/secrets/c/versions/latest",
    "FORCEBEAM_TOKEN_EXCHANGE_CONSUMER_KEY": "3MVG9eca",
    "FORCEBEAM_TOKEN_EXCHANGE_AUDIENCE": "https://127.0.0.1:8443",
}


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_validates(example, capsys, monkeypatch, tmp_path):
    for name, value in EXAMPLE_ENV.items():
        if value.startswith("/tmp/"):  # files the connection names must exist
            value = str(tmp_path / value.rsplit("/", 1)[1])
            Path(value).write_text("-----BEGIN CERTIFICATE-----\n")
        monkeypatch.setenv(name, value)
    code, output = validate(EXAMPLES / example, capsys)
    assert code == 0, output


def test_there_is_an_example_per_auth_type():
    from forcebeam.auth.flows import known_types

    texts = "\n".join(p.read_text() for p in EXAMPLES.glob("*.yaml"))
    for auth_type in known_types():
        assert f"type: {auth_type}" in texts, f"no example uses auth type {auth_type}"
    assert "mutual_tls:" in texts


def test_unknown_input_suggests_the_closest(tmp_path, capsys):
    path = write(tmp_path, GOOD_CONNECTION + GOOD_PIPELINE.replace("input: ReadAccounts",
                                                                   "input: ReadAcounts"))
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    assert (f"{path}:{line_of(path, 'ReadAcounts')}: pipeline.transforms[1].input: input "
            "'ReadAcounts' names no transform (did you mean 'ReadAccounts'?)") in output


def test_chain_source_and_sink_are_checked(tmp_path, capsys):
    text = GOOD_CONNECTION + """\
pipeline:
  type: chain
  source:
    type: ReadFromSalesforce
    config: {connection: prod, sobject: Account, feilds: [Id]}
  transforms:
    - type: Filter
      config: {language: python, keep: "Id is not None"}
  sink:
    type: WriteToJsn
    config: {path: out/a}
"""
    path = write(tmp_path, text)
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    assert (f"{path}:{line_of(path, 'feilds')}: pipeline.source.config.feilds: unknown field "
            "'feilds' (did you mean 'fields'?)") in output
    assert (f"{path}:{line_of(path, 'WriteToJsn')}: pipeline.sink.type: unknown transform "
            "type 'WriteToJsn' (did you mean 'WriteToJson'?)") in output


def test_inline_secrets_allowed_when_the_connection_opts_in(tmp_path, capsys):
    text = GOOD_CONNECTION.replace(
        "    auth:\n", "    allow_inline_secrets: true\n    auth:\n").replace(
        "gcp-sm://projects/acme/secrets/sf-jwt-key/versions/latest", '"literal-key-text"')
    path = write(tmp_path, text + GOOD_PIPELINE)
    code, output = validate(path, capsys)
    assert code == 0, output


def test_inline_secret_switch_must_be_a_boolean(tmp_path, capsys):
    text = GOOD_CONNECTION.replace("    auth:\n", "    allow_inline_secrets: sure\n    auth:\n")
    path = write(tmp_path, text + GOOD_PIPELINE)
    code, output = validate(path, capsys)
    assert code == EXIT_INVALID
    assert (f"{path}:{line_of(path, 'allow_inline_secrets')}: connections.prod."
            "allow_inline_secrets: must be true or false") in output


def test_a_file_without_ml_or_enrichment_starts_without_their_cloud_clients(tmp_path):
    """Beam's catalogue imports the Vertex AI and Bigtable clients for MLTransform,
    RunInference and Enrichment (seconds per start with the [dataflow] extra): a file that
    uses none of them is checked without importing them, and a later file of the same
    process that uses Enrichment still gets those types with their handlers."""
    plain = tmp_path / "plain.yaml"
    plain.write_text(textwrap.dedent("""\
        pipeline:
          transforms:
            - type: Create
              config: {elements: [{a: 1}]}
            - type: WriteToJson
              input: Create
              config: {path: out}
        """))
    enrich = tmp_path / "enrich.yaml"
    enrich.write_text(plain.read_text().replace(
        "    - type: WriteToJson\n      input: Create\n",
        "    - type: Enrichment\n      input: Create\n"
        "      config: {enrichment_handler: BigQuery, handler_config: {}}\n"
        "    - type: WriteToJson\n      input: Enrichment\n"))
    script = textwrap.dedent(f"""\
        import sys
        from forcebeam.pipelines.spec import PipelineSpec
        from forcebeam.pipelines.validation import validate
        heavy = ("vertexai", "google.cloud.aiplatform", "google.cloud.bigtable")
        print(validate(PipelineSpec.load({str(plain)!r})))
        print([name for name in heavy if name in sys.modules])
        print(validate(PipelineSpec.load({str(enrich)!r})))
        from apache_beam.yaml import yaml_enrichment
        print(yaml_enrichment.Enrichment is not None)
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "NO_GCE_CHECK": "true"})
    assert result.returncode == 0, result.stderr
    plain_problems, imported, enrich_problems, enrichment = result.stdout.splitlines()[-4:]
    assert plain_problems == "[]"
    assert imported == "[]"
    assert enrich_problems == "[]"
    assert enrichment == "True"
