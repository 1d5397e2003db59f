"""Bad input caught before the run (exit 2 at the user's line), values never changed by a write.

Each test is one class of mistake a new user makes; the org (asked through simple-salesforce,
not our stages) proves nothing was written when the file was refused.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from forcebeam.pipelines.cli import main
from tests.support.org import EmulatedOrg, start_org
from tests.support.pipelines import (  # the fixture is autouse
    OFFLINE_CONNECTIONS,
    forget_org_afterwards,  # noqa: F401
    jwt_connections,
    point_env_at,
)
from tests.support.truth import org_query

HEAD = jwt_connections() + "pipeline:\n  transforms:\n"


@pytest.fixture(scope="module")
def small_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    with start_org(tmp_path_factory.mktemp("bad-input-org"), records=40) as running:
        yield running


@pytest.fixture
def out(small_org: EmulatedOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return point_env_at(small_org, tmp_path, monkeypatch)


def pipeline(tmp_path: Path, *transforms: str) -> Path:
    """A pipeline file on the small org: HEAD, then the transforms (each part dedented)."""
    path = tmp_path / "pipeline.yaml"
    path.write_text(HEAD + "".join(textwrap.indent(textwrap.dedent(part), "    ")
                                   for part in transforms))
    return path


def read_then_delete(soql: str, mode: str = "auto") -> str:
    """Transforms: delete the Accounts ``soql`` reads; what Salesforce refuses goes to
    ``Delete.failed``."""
    return f"""\
- type: ReadFromSalesforce
  name: Read
  config:
    connection: emulated
    soql: "{soql}"
- type: WriteToSalesforce
  name: Delete
  input: Read
  config:
    connection: emulated
    sobject: Account
    operation: delete
    mode: {mode}
    error_handling: {{output: failed}}
"""


def line_of(path: Path, needle: str, after: int = 0) -> int:
    return next(number for number, text in enumerate(path.read_text().splitlines(), 1)
                if needle in text and number > after)


def run(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main([*args, str(path)] if args else ["run", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


UPSERT = """\
- type: ReadFromCsv
  name: ReadRows
  config:
    path: ${FORCEBEAM_OUT}/rows.csv%s
- type: WriteToSalesforce
  name: Upsert
  input: ReadRows
  config:
    connection: emulated
    sobject: Account
    operation: upsert
    external_id_field: External_Id__c
"""


def test_a_number_into_a_text_external_id_is_refused_and_dtype_str_keeps_it(
        small_org, out, tmp_path, capsys):
    (out / "rows.csv").write_text("External_Id__c,Name,NumberOfEmployees,AnnualRevenue\n"
                                  "000777,Zero Seven,12,1000\n0044123456,Leading Zero,3,250\n")
    path = pipeline(tmp_path, UPSERT % "")
    code, report = run(path, capsys, "validate", "--online")
    assert code == 2 and "'External_Id__c' is an integer" in report, report
    code, report = run(path, capsys)
    assert code == 2, report
    assert "running" not in report     # refused while building: nothing ran
    assert f"{path}:{line_of(path, 'sobject: Account')}:" in report
    assert "'External_Id__c' is an integer" in report
    assert "is an external-id string field" in report and "dtype: str" in report
    assert not org_query(small_org, "SELECT Id FROM Account WHERE External_Id__c IN "
                                    "('777', '44123456', '000777', '0044123456')")
    # The fix the message names: every text exactly as written; an int into a currency passes.
    path = pipeline(tmp_path, UPSERT % "\n    dtype: {External_Id__c: str}")
    code, report = run(path, capsys)
    assert code == 0, report
    rows = org_query(small_org, "SELECT External_Id__c, NumberOfEmployees, AnnualRevenue "
                                "FROM Account WHERE Name IN ('Zero Seven', 'Leading Zero')")
    assert sorted(r["External_Id__c"] for r in rows) == ["000777", "0044123456"]
    assert sorted(r["AnnualRevenue"] for r in rows) == [250, 1000]


def test_a_float_into_an_integer_and_unknown_or_missing_columns_are_refused(
        small_org, out, tmp_path, capsys):
    (out / "rows.csv").write_text("External_Id__c,Name,NumberOfEmployes,NumberOfEmployees\n"
                                  "F-1,Float,1,7.5\n")
    path = pipeline(tmp_path, UPSERT % "\n    dtype: {External_Id__c: str}")
    code, report = run(path, capsys)
    assert code == 2, report
    assert "'NumberOfEmployees' is a floating-point number" in report and "int field" in report
    assert "'NumberOfEmployes' matches no field of Account" in report
    assert "did you mean 'NumberOfEmployees'" in report
    # An upsert whose input lacks the external id column: refused at external_id_field.
    (out / "rows.csv").write_text("Name\nNo Key\n")
    code, report = run(path, capsys)
    assert code == 2, report
    assert f"{path}:{line_of(path, 'external_id_field:')}:" in report
    assert "no column 'External_Id__c'" in report
    # An insert without the required Name.
    path.write_text(path.read_text().replace("operation: upsert", "operation: insert"))
    (out / "rows.csv").write_text("External_Id__c,Description\nR-1,no name\n")
    code, report = run(path, capsys)
    assert code == 2, report
    assert "required field(s) Name of Account" in report
    assert not org_query(small_org, "SELECT Id FROM Account WHERE External_Id__c IN "
                                    "('F-1', 'R-1')")


# A read the org or the sink cannot serve: (transforms, the line's needle, what follows
# "file:line:", what else the report says). Refused before anything runs: no output.
REFUSED_AT_A_LINE = {
    "unknown_sobject": ("""\
        - type: ReadFromSalesforce
          name: Read
          config: {connection: emulated, sobject: Acount, fields: [Id]}
        - type: WriteToJson
          input: Read
          config: {path: "${FORCEBEAM_OUT}/x"}
        """, "sobject: Acount", "", ["unknown sobject 'Acount'", "did you mean 'Account'"]),
    "relationship_paths": ("""\
        - type: ReadFromSalesforce
          name: Read
          config:
            connection: emulated
            sobject: Contact
            fields: [Id, Account.Nmae, Account.Owner.Emial, Acount.Name]
        - type: WriteToJson
          input: Read
          config: {path: "${FORCEBEAM_OUT}/x"}
        """, "fields:", " pipeline.transforms[0].config.fields[1]: 'Account' (reached by "
        "Account) has no field 'Nmae' (did you mean 'Name'?)",
        ["'User' (reached by Account.Owner) has no field 'Emial' (did you mean 'Email'?)",
         "'Contact' has no relationship 'Acount' (did you mean 'Account'?)"]),
    "native_types_into_parquet": ("""\
        - type: ReadFromSalesforce
          name: Read
          config:
            connection: emulated
            sobject: Account
            fields: [Id, AnnualRevenue, CreatedDate]
            types: native
        - type: WriteToParquet
          input: Read
          config: {path: "${FORCEBEAM_OUT}/accounts"}
        """, "type: WriteToParquet", " pipeline.transforms[1]", ["use `types: portable`"]),
}


@pytest.mark.parametrize(("case", "command"), [
    ("unknown_sobject", ("run",)),
    ("relationship_paths", ("run",)),
    ("relationship_paths", ("validate", "--online")),
    ("native_types_into_parquet", ("run",)),
])
def test_a_read_that_cannot_work_is_refused_at_its_line(small_org, out, tmp_path, capsys,
                                                        case, command):
    transforms, needle, at_line, words = REFUSED_AT_A_LINE[case]
    path = pipeline(tmp_path, transforms)
    code, report = run(path, capsys, *command)
    assert code == 2, report
    assert f"{path}:{line_of(path, needle)}:{at_line}" in report
    for text in words:
        assert text in report
    assert not list(out.iterdir())


def test_dead_letters_have_a_schema_when_fed_from_a_salesforce_read(small_org, out, tmp_path,
                                                                     capsys):
    path = pipeline(tmp_path, read_then_delete(
        "SELECT Id, Name FROM Account WHERE Name = 'nobody at all'"), """\
        - type: MapToFields
          name: Shape
          input: Delete.failed
          config:
            language: python
            fields: {Id: element.Id, code: status_code}
        - type: WriteToJson
          input: Shape
          config: {path: "${FORCEBEAM_OUT}/dead"}
        """)
    code, report = run(path, capsys, "validate", "--online")
    assert code == 0, report
    code, report = run(path, capsys)
    assert code == 0, report
    assert [json.loads(x) for p in out.glob("dead*") for x in p.read_text().splitlines()] == []


@pytest.mark.parametrize(("variant", "needle", "index"), [
    ("nopath", "- type: WriteToJson", 2),
    ("tag", "input: Csv.nosuch", 1),
    ("duplicate", "input: Out", 3),
])
def test_beam_yaml_errors_point_at_the_users_line(tmp_path, capsys, variant, needle, index):
    (tmp_path / "a.csv").write_text("a,b\n1,x\n")
    steps = {
        "nopath": """\
            - {type: WriteToJson, input: Csv, config: {path: "%s/o1"}}
            - type: WriteToJson
              input: Csv
              config: {}
            """,
        "tag": """\
            - type: WriteToJson
              input: Csv.nosuch
              config: {path: "%s/o1"}
            """,
        "duplicate": """\
            - {type: WriteToJson, name: Out, input: Csv, config: {path: "%s/o1"}}
            - {type: WriteToJson, name: Out, input: Csv, config: {path: "%s/o2"}}
            - type: LogForTesting
              input: Out
            """,
    }[variant].replace("%s", str(tmp_path))
    path = tmp_path / "p.yaml"
    path.write_text("pipeline:\n  transforms:\n    - type: ReadFromCsv\n      name: Csv\n"
                    f"      config: {{path: {tmp_path}/a.csv}}\n"
                    + textwrap.indent(textwrap.dedent(steps), "    "))
    code = main(["run", str(path)])
    report = capsys.readouterr().err
    assert code == 2, report
    assert f"{path}:{line_of(path, needle)}: pipeline.transforms[{index}]" in report, report
    assert " at line " not in report    # no line of Beam's own generated text


OFFLINE = OFFLINE_CONNECTIONS + """\
pipeline:
  transforms:
    - type: ReadFromSalesforce
      name: Read
      config:
        connection: prod
        sobject: Account
        bulk_timeout_seconds: 0
        bulk_page_size: -5
        incremental: {field: SystemModstamp, lookback: -60}
    - type: WriteToSalesforce
      input: Read
      config:
        connection: prod
        sobject: Account
        operation: update
        max_retries: -1
        batch_size: 0
        nulls: keep
"""


def test_numbers_that_cannot_work_are_refused_before_the_run(tmp_path, capsys):
    path = tmp_path / "numbers.yaml"
    path.write_text(OFFLINE)
    code, report = run(path, capsys, "validate")
    assert code == 2, report
    for needle, words in [("bulk_timeout_seconds:", "must be a number of seconds > 0"),
                          ("bulk_page_size:", "must be between 1 and"),
                          ("incremental:", "must be >= 0 seconds"),
                          ("max_retries:", "must be between 0 and 20"),
                          ("batch_size:", "must be between 1 and"),
                          ("nulls:", "'ignore' or 'set'")]:
        assert f"{path}:{line_of(path, needle)}:" in report, (needle, report)
        assert words in report, (words, report)


@pytest.mark.parametrize(("state_text", "words"), [
    ('{"field": "SystemModstamp", "watermark": "2026-01-0', "is not valid JSON"),
    ('["not", "a", "state"]', "is not a forcebeam state"),
    ('{"field": "LastModifiedDate", "watermark": "2026-01-01T00:00:00.000Z", "seen": {}}',
     "was written for field LastModifiedDate, not SystemModstamp"),
    ('{"field": "SystemModstamp", "watermark": "2026-01-01T00:00:00.000Z", "seen": {},'
     ' "source": "Contact (Id, SystemModstamp)"}', "was written for another query"),
], ids=["corrupt", "not_a_state", "other_field", "other_query"])
def test_an_unusable_incremental_state_is_refused_before_the_run(tmp_path, capsys,
                                                                 state_text, words):
    state = tmp_path / "accounts.state.json"
    state.write_text(state_text)
    text = OFFLINE.split("    - type: WriteToSalesforce")[0]
    text = text.replace("        bulk_timeout_seconds: 0\n        bulk_page_size: -5\n", "")
    text = text.replace("lookback: -60}", f"state: {state}}}\n        fields: [Id, SystemModstamp]")
    path = tmp_path / "incremental.yaml"
    path.write_text(text)
    code, report = run(path, capsys, "validate")
    assert code == 2, report
    assert f"{path}:{line_of(path, 'incremental:')}: pipeline.transforms[0].config." \
           f"incremental.state: incremental state {state}" in report
    assert words in report and "Fix:" in report


CONNECTION_ONLY = """\
connections:
  prod:
    login_url: http://acme.my.salesforce.com/path
    ca_bundle: %s
    auth:
      type: jwt_barer
      username: integration@acme.com
  other:
    login_url: https://acme.my.salesforce.com
    ca_bundle: ""
    auth:
      type: client_credentials
      consumer_key: 3MVG9example
      consumer_secret: vault://kv/sf
pipeline:
  transforms:
    - type: ReadFromSalesforce
      config: {connection: prod, sobject: Account}
    - type: WriteToJson
      input: ReadFromSalesforce
      config: {path: out/x}
"""


def test_every_connection_problem_is_reported_at_once(tmp_path, capsys):
    path = tmp_path / "connections.yaml"
    path.write_text(CONNECTION_ONLY % "certs/missing-ca.pem")
    code, report = run(path, capsys, "validate")
    assert code == 2, report
    # An unknown auth type no longer hides the connection's other mistakes.
    assert f"{path}:{line_of(path, 'type: jwt_barer')}: connections.prod.auth.type: " \
           "unknown auth type 'jwt_barer'" in report
    assert f"{path}:{line_of(path, 'login_url: http:')}: connections.prod.login_url" in report
    assert f"{path}:{line_of(path, 'ca_bundle: certs')}: connections.prod.ca_bundle: no such " \
           f"file: {tmp_path / 'certs' / 'missing-ca.pem'}" in report
    # An empty ca_bundle is refused, not read as the pipeline's folder.
    empty = line_of(path, 'ca_bundle: ""')
    assert f"{path}:{empty}: connections.other.ca_bundle: must be the path of a PEM file" \
        in report
    # A store we have no provider for is named as such, with how to add one.
    assert "connections.other.auth.consumer_secret: unknown secret scheme 'vault'" in report
    assert "forcebeam.secret_providers" in report
    assert "kv/sf" not in report


def test_check_and_run_explain_an_expired_access_token_alike(small_org, out, tmp_path, capsys,
                                                             monkeypatch):
    session = small_org.session()
    info = small_org.info
    token = session.post(f"{info['login_url']}/services/oauth2/token", data={
        "grant_type": "password", "client_id": info["connected_app"]["consumer_key"],
        "client_secret": info["connected_app"]["consumer_secret"],
        "username": info["username"],
        "password": info["password"] + info["security_token"]}, timeout=30).json()
    monkeypatch.setenv("SF_ACCESS_TOKEN", token["access_token"])
    path = tmp_path / "token.yaml"
    path.write_text(textwrap.dedent(f"""\
        connections:
          token:
            login_url: ${{FORCEBEAM_LOGIN_URL}}
            ca_bundle: ${{FORCEBEAM_CA_CERT}}
            auth: {{type: access_token, instance_url: "{token['instance_url']}",
                    access_token: env://SF_ACCESS_TOKEN}}
        pipeline:
          transforms:
            - type: ReadFromSalesforce
              config: {{connection: token, sobject: Account, fields: [Id]}}
            - type: WriteToJson
              input: ReadFromSalesforce
              config: {{path: "{out}/x"}}
        """))
    small_org.admin("POST", "sessions/expire")
    explained = "the configured access token was rejected (expired or revoked)"
    assert main(["check", str(path), "token"]) == 1
    checked = capsys.readouterr().out
    assert explained in checked and "store a fresh access token" in checked, checked
    assert "Bad_OAuth_Token" not in checked
    code, report = run(path, capsys)
    assert code == 1 and explained in report, report


@pytest.mark.parametrize("mode", ["rest", "bulk"])
def test_a_date_text_salesforce_cannot_parse_is_a_dead_letter_never_sent(
        small_org, out, tmp_path, capsys, mode):
    (out / "rows.csv").write_text("External_Id__c,Name,Due_Date__c\n"
                                  f"D-{mode}-1,Good date,2026-01-15\n"
                                  f"D-{mode}-2,Day first,15/01/2026\n")
    path = pipeline(tmp_path, f"""\
        - type: ReadFromCsv
          name: Rows
          config: {{path: "${{FORCEBEAM_OUT}}/rows.csv", dtype: str}}
        - type: WriteToSalesforce
          name: Upsert
          input: Rows
          config:
            connection: emulated
            sobject: Invoice__c
            operation: upsert
            external_id_field: External_Id__c
            mode: {mode}
            error_handling: {{output: rejected}}
        - type: MapToFields
          name: Shape
          input: Upsert.rejected
          config:
            language: python
            fields: {{id: element.External_Id__c, code: status_code, msg: msg}}
        - type: WriteToJson
          input: Shape
          config: {{path: "${{FORCEBEAM_OUT}}/rejected"}}
        """)
    code, report = run(path, capsys)
    assert code == 0, report
    rejected = [json.loads(x) for p in out.glob("rejected*") for x in p.read_text().split("\n")
                if x]
    assert [(r["id"], r["code"]) for r in rejected] == [
        (f"D-{mode}-2", "INVALID_TYPE_ON_FIELD_IN_RECORD")]
    assert "15/01/2026" in rejected[0]["msg"] and "YYYY-MM-DD" in rejected[0]["msg"]
    soql = ("SELECT External_Id__c, Due_Date__c FROM Invoice__c "  # noqa: S608 - our ids
            f"WHERE External_Id__c LIKE 'D-{mode}-%'")
    rows = org_query(small_org, soql)
    assert rows == [{"External_Id__c": f"D-{mode}-1", "Due_Date__c": "2026-01-15"}]


def test_validate_online_warns_what_a_bulk_read_of_a_compound_really_reads(small_org, out,
                                                                           tmp_path, capsys):
    path = pipeline(tmp_path, """\
        - type: ReadFromSalesforce
          name: Read
          config:
            connection: emulated
            sobject: Account
            mode: bulk
            fields: [Id, BillingAddress]
        - type: WriteToJson
          input: Read
          config: {path: "${FORCEBEAM_OUT}/x"}
        - type: ReadFromSalesforce
          name: ReadInvoices
          config:
            connection: emulated
            sobject: Invoice__c
            mode: bulk
            fields: [Id, Location__c, Location__Latitude__s]
        - type: WriteToJson
          input: ReadInvoices
          config: {path: "${FORCEBEAM_OUT}/y"}
        """)
    code, report = run(path, capsys, "validate", "--online")
    assert code == 0, report
    line = line_of(path, "fields: [Id, BillingAddress")
    assert f"warning: {path}:{line}: pipeline.transforms[0].config.fields[1]: mode: bulk cannot " \
           "read the compound field BillingAddress: the column is dropped; none of its parts " \
           "is listed, so nothing of it is read (list its parts (BillingStreet, " in report
    assert "compound field Location__c: the column is dropped; read instead: " \
           "Location__Latitude__s" in report


@pytest.mark.parametrize("command", [("run",), ("validate", "--online")])
def test_a_replicated_object_name_the_org_does_not_list_is_warned_at_its_line(
        small_org, out, tmp_path, capsys, command):
    path = pipeline(tmp_path, """\
        - type: ReplicateSalesforce
          name: Lake
          config:
            connection: emulated
            objects: [Case, "Invoice*",
                      Acount]
            path: "${FORCEBEAM_OUT}/lake"
            format: jsonl
        """)
    code, report = run(path, capsys, *command)
    assert code == 0, report
    assert f"warning: {path}:{line_of(path, 'Acount]')}: pipeline.transforms[0].config." \
           "objects[2]: object 'Acount' is not in describeGlobal" in report, report
    assert "did you mean 'Account'?" in report
    assert "'Case'" not in report and "Invoice" not in report.split("warning:", 1)[1]


def test_objects_takes_one_name_or_all_in_any_case(tmp_path):
    from forcebeam.stages.salesforce.replicate_config import ReplicateConfig

    assert ReplicateConfig(connection={}, path="lake", objects="Account").objects == ["Account"]
    assert ReplicateConfig(connection={}, path="lake", objects="ALL").objects == "all"


@pytest.mark.parametrize("mode", ["rest", "bulk"])
def test_a_delete_fed_ids_of_another_object_deletes_nothing_on_rest_and_bulk(
        small_org, out, tmp_path, capsys, mode):
    invoices = [r["Id"] for r in org_query(small_org, "SELECT Id FROM Invoice__c LIMIT 2")]
    these = "SELECT Id FROM Invoice__c WHERE Id IN ('" + "','".join(invoices) + "')"  # noqa: S608 - org Ids
    path = pipeline(tmp_path, read_then_delete(these, mode), """\
        - type: WriteToJson
          input: Delete.failed
          config: {path: "${FORCEBEAM_OUT}/dead"}
        """)
    code, report = run(path, capsys)
    assert code == 0, report
    dead = [json.loads(x) for p in out.glob("dead*") for x in p.read_text().splitlines()]
    # The rejected record keeps its field names (a JSON object), as the user wrote it.
    assert sorted(d["element"]["Id"] for d in dead) == sorted(invoices)
    assert {d["status_code"] for d in dead} == {"MALFORMED_ID"}
    assert all("Account ID: id value of incorrect type" in d["msg"] for d in dead)
    still = org_query(small_org, these)
    assert sorted(r["Id"] for r in still) == sorted(invoices)


def test_a_negative_formula_refresh_is_refused(tmp_path):
    import pydantic

    from forcebeam.stages.salesforce.replicate_config import ReplicateConfig

    with pytest.raises(pydantic.ValidationError, match="cannot be negative"):
        ReplicateConfig(connection={}, path="lake", formula_refresh=-5)
    assert ReplicateConfig(connection={}, path="lake",
                           formula_refresh=0).formula_refresh_seconds == 0
    assert ReplicateConfig(connection={}, path="lake",
                           formula_refresh="24H").formula_refresh_seconds == 86400


@pytest.mark.parametrize("command", [("run",), ("validate", "--online")])
def test_a_damaged_replication_state_is_refused_naming_its_path(small_org, out, tmp_path,
                                                                 capsys, command):
    state = out / "state"
    state.mkdir()
    (state / "Case.json").write_text('{"watermark": ')
    path = pipeline(tmp_path, """\
        - type: ReplicateSalesforce
          name: Lake
          config:
            connection: emulated
            objects: [Case]
            path: "${FORCEBEAM_OUT}/lake"
            state: "${FORCEBEAM_OUT}/state"
        """)
    code, report = run(path, capsys, *command)
    assert code == 2, report
    assert f"{path}:{line_of(path, 'state: ')}: pipeline.transforms[0].config.state: the " \
           f"replication state {state / 'Case.json'} of Case is damaged" in report, report
    assert "delete it: the next run then extracts Case in full again" in report
    assert not (out / "lake").exists()
