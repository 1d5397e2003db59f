"""`forcebeam run` against the emulated org: exact extracts, upserts with dead letters,
the same on two worker processes, the summary, and incremental state committed on success."""

from __future__ import annotations

import glob
import json
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from forcebeam.pipelines.cli import main
from tests.support.org import EmulatedOrg, start_org
from tests.support.pipelines import (  # the fixture is autouse
    forget_org_afterwards,  # noqa: F401
    jwt_connections,
    point_env_at,
    run_ok,
)
from tests.support.truth import org_query

RECORDS = 600
ACCOUNT_FIELDS = ["Id", "Name", "Industry", "NumberOfEmployees", "AnnualRevenue"]

PIPELINE = jwt_connections() + """pipeline:
  transforms:
    - type: ReadFromSalesforce
      name: ReadAccounts
      config:
        connection: emulated
        sobject: Account
        fields: [Id, Name, Industry, NumberOfEmployees, AnnualRevenue]
    - type: MapToFields
      name: Shape
      input: ReadAccounts
      config:
        language: python
        fields:
          Id: Id
          Name: Name
          Industry: Industry
          NumberOfEmployees: NumberOfEmployees
          AnnualRevenue: AnnualRevenue
          NameLength: "len(Name)"
    - type: WriteToParquet
      input: Shape
      config:
        path: ${FORCEBEAM_OUT}/accounts
    - type: ReadFromCsv
      name: ReadInvoices
      config:
        path: ${FORCEBEAM_OUT}/invoices.csv
    - type: WriteToSalesforce
      name: UpsertInvoices
      input: ReadInvoices
      config:
        connection: emulated
        sobject: Invoice__c
        operation: upsert
        external_id_field: External_Id__c
        error_handling:
          output: rejected
    - type: MapToFields
      name: ShapeRejected
      input: UpsertInvoices.rejected
      config:
        language: python
        fields:
          External_Id__c: element.External_Id__c
          status_code: status_code
          message: msg
    - type: WriteToJson
      input: ShapeRejected
      config:
        path: ${FORCEBEAM_OUT}/rejected
"""


@pytest.fixture(scope="module")
def private_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    """This module writes Invoice__c rows, so it gets an org of its own."""
    with start_org(tmp_path_factory.mktemp("run-org"), records=RECORDS) as running:
        yield running


@pytest.fixture
def org_env(private_org: EmulatedOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point `${FORCEBEAM_*}` at the org; returns the output directory."""
    return point_env_at(private_org, tmp_path, monkeypatch)


def write_invoices(out: Path, prefix: str) -> list[dict[str, str]]:
    rows = [{"External_Id__c": f"{prefix}-1", "Name": "Good one", "Status__c": "Draft",
             "Amount__c": "10.5"},
            {"External_Id__c": f"{prefix}-2", "Name": "Good two", "Status__c": "Paid",
             "Amount__c": "99.25"},
            {"External_Id__c": f"{prefix}-3", "Name": "Bad status", "Status__c": "Lost",
             "Amount__c": "1.0"}]
    lines = ["External_Id__c,Name,Status__c,Amount__c"]
    lines += [",".join(row.values()) for row in rows]
    (out / "invoices.csv").write_text("\n".join(lines) + "\n")
    return rows


def check_outputs(org: EmulatedOrg, out: Path, prefix: str) -> None:
    truth = {row["Id"]: row for row in org_query(
        org, "SELECT Id, Name, Industry, NumberOfEmployees, AnnualRevenue FROM Account")}
    table = pq.read_table(glob.glob(str(out / "accounts*"))).to_pylist()
    assert len(table) == len(truth) == RECORDS
    for row in table:
        expected = truth[row["Id"]]
        assert row["Name"] == expected["Name"]
        assert row["NameLength"] == len(expected["Name"])
        assert row["Industry"] == expected["Industry"]
        assert row["NumberOfEmployees"] == expected["NumberOfEmployees"]
        # Currency arrives as an exact decimal string (portable types), None when empty.
        revenue = expected["AnnualRevenue"]
        assert (row["AnnualRevenue"] if row["AnnualRevenue"] is None
                else Decimal(row["AnnualRevenue"])) == (None if revenue is None
                                                        else Decimal(str(revenue)))

    soql = ("SELECT External_Id__c, Name, Status__c, Amount__c FROM Invoice__c "  # noqa: S608
            f"WHERE External_Id__c LIKE '{prefix}-%'")  # the test's own ids
    written = {row["External_Id__c"]: row for row in org_query(org, soql)}
    assert set(written) == {f"{prefix}-1", f"{prefix}-2"}
    assert written[f"{prefix}-1"]["Status__c"] == "Draft"
    assert written[f"{prefix}-2"]["Amount__c"] == 99.25

    rejected = [json.loads(line) for path in glob.glob(str(out / "rejected*"))
                for line in Path(path).read_text().splitlines()]
    assert rejected == [{"External_Id__c": f"{prefix}-3",
                         "status_code": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                         "message": rejected[0]["message"]}]
    assert "Lost" in rejected[0]["message"]


@pytest.mark.parametrize("beam_args", [
    [],
    ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
], ids=["in_memory", "multi_processing"])
def test_run_extracts_and_upserts_exactly(private_org, org_env, tmp_path, beam_args):
    prefix = "MP" if beam_args else "IM"
    write_invoices(org_env, prefix)
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    report = run_ok(path, beam_args)
    check_outputs(private_org, org_env, prefix)
    # The closing summary names each Salesforce stage with its counts.
    lines = {line.split()[0]: line.split() for line in report.splitlines()
             if line.strip().startswith(("ReadAccounts", "UpsertInvoices"))}
    assert lines["ReadAccounts"][1] == f"{RECORDS:,}"
    assert lines["UpsertInvoices"][2:4] == ["2", "1"]          # written, failed


def test_rejected_records_without_error_handling_fail_the_run(private_org, org_env, tmp_path,
                                                              capsys):
    write_invoices(org_env, "NOEH")
    text = PIPELINE.split("    - type: MapToFields\n      name: ShapeRejected")[0]
    text = text.replace("        error_handling:\n          output: rejected\n", "")
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    code = main(["run", str(path)])
    error = capsys.readouterr().err
    assert code == 1
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in error
    assert "error_handling" in error  # says how to keep them as dead letters instead


def test_incremental_state_is_committed_after_success(private_org, org_env, tmp_path):
    state = tmp_path / "accounts.state.json"
    path = tmp_path / "incremental.yaml"
    path.write_text(jwt_connections() + textwrap.dedent(f"""\
        pipeline:
          transforms:
            - type: ReadFromSalesforce
              name: ReadChanged
              config:
                connection: emulated
                sobject: Account
                fields: [Id, SystemModstamp]
                incremental: {{field: SystemModstamp, start: "2000-01-01T00:00:00Z",
                               state: "{state}"}}
            - type: WriteToJson
              input: ReadChanged
              config: {{path: "${{FORCEBEAM_OUT}}/changed"}}
        """))
    report = run_ok(path)
    assert state.exists() and not Path(f"{state}.pending").exists()
    assert f"incremental state committed: {state}" in report
    first = sum(len(Path(p).read_text().splitlines())
                for p in glob.glob(str(org_env / "changed*")))
    assert first == RECORDS

    # Touch two accounts: the next run reads just those.
    touched = private_org.admin("POST", "records/Account/touch", json={"count": 2}).json()["ids"]
    for old in glob.glob(str(org_env / "changed*")):
        Path(old).unlink()
    run_ok(path)
    again = [json.loads(line)["Id"] for p in glob.glob(str(org_env / "changed*"))
             for line in Path(p).read_text().splitlines()]
    assert sorted(again) == sorted(touched)


def test_a_config_beam_refuses_exits_2_at_its_line(private_org, org_env, tmp_path, capsys):
    text = PIPELINE.split("    - type: ReadFromCsv")[0].replace('"len(Name)"', '"len(Name"')
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    assert main(["run", str(path)]) == 2
    error = capsys.readouterr().err
    line = next(number for number, text in enumerate(path.read_text().splitlines(), 1)
                if "name: Shape" in text)
    assert f"{path}:{line - 1}: pipeline.transforms[1]: Beam cannot build this: SyntaxError" \
        in error
    assert not list(org_env.glob("accounts*"))  # nothing ran
