"""ReadFromSalesforce against the emulated org: typed rows equal to the org's data.

Truth comes from plain REST (tests/support/truth.py); REST, Bulk and auto reads must
each equal it row for row, so they also equal each other.
"""

from __future__ import annotations

import time

import pytest

from forcebeam.stages.salesforce.read import ReadFromSalesforce
from tests.support.stages import by_id, connection_mapping, expected_rows, run_collect
from tests.support.truth import describe, rest_records


@pytest.fixture(autouse=True)
def _private_describe_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))


def _all_fields(org) -> list[str]:
    return [f["name"] for f in describe(org)["fields"] if f["type"] not in ("address", "location")]


@pytest.mark.parametrize("mode", ["rest", "bulk", "auto"])
def test_all_fields_equal_the_org_row_for_row(org, tmp_path, mode):
    expected = expected_rows(org, _all_fields(org))
    rows, _ = run_collect(lambda: ReadFromSalesforce(connection_mapping(org), sobject="Account",
                                                     mode=mode, split=3),
                          out=tmp_path / "out")
    got = by_id(rows)
    assert len(got) == len(expected) == 5000
    diffs = [(i, f, got[i].get(f), v) for i, row in expected.items() for f, v in row.items()
             if got[i].get(f) != v]
    assert not diffs, f"{len(diffs)} values differ, e.g. {diffs[:5]}"
    assert all(set(got[i]) == set(expected[i]) for i in got)
    sample = next(iter(got.values()))
    assert isinstance(sample["IsDeleted"], bool)
    assert sample["CreatedDate"].endswith("Z")


def test_include_deleted_and_custom_soql(org_factory, tmp_path):
    org = org_factory(records=300)
    victims = [r["Id"] for r in rest_records(org, "SELECT Id FROM Account ORDER BY Id LIMIT 7")]
    session = org.session()
    from bench.org import login

    auth = login(org, session)
    response = session.delete(auth.data_url("composite/sobjects"),
                              params={"ids": ",".join(victims)}, headers=auth.headers(),
                              timeout=60)
    response.raise_for_status()
    conn = connection_mapping(org)
    for mode in ("rest", "bulk"):
        live, _ = run_collect(lambda m=mode: ReadFromSalesforce(
            conn, sobject="Account", fields=["Id", "IsDeleted"], mode=m),
            out=tmp_path / f"live-{mode}")
        everything, _ = run_collect(lambda m=mode: ReadFromSalesforce(
            conn, sobject="Account", fields=["Id", "IsDeleted"], mode=m, include_deleted=True),
            out=tmp_path / f"all-{mode}")
        truth_live = {r["Id"] for r in rest_records(org, "SELECT Id FROM Account")}
        truth_all = {r["Id"]: r["IsDeleted"] for r in rest_records(
            org, "SELECT Id, IsDeleted FROM Account", include_deleted=True)}
        assert {r["Id"] for r in live} == truth_live and len(live) == len(truth_live)
        assert not set(victims) & truth_live
        assert {r["Id"]: r["IsDeleted"] for r in everything} == truth_all
        assert len(everything) == len(truth_all) > len(live)
        assert all(truth_all[v] for v in victims)

    soql = "SELECT Id, Name, NumberOfEmployees FROM Account WHERE NumberOfEmployees > 5000"
    truth = {r["Id"]: r for r in rest_records(org, soql)}
    assert 0 < len(truth) < 300
    rows, _ = run_collect(lambda: ReadFromSalesforce(conn, soql=soql, split=2),
                          out=tmp_path / "soql")
    got = by_id(rows)
    assert set(got) == set(truth)
    assert all(got[i]["Name"] == truth[i]["Name"] and
               got[i]["NumberOfEmployees"] == int(truth[i]["NumberOfEmployees"]) for i in got)

    ordered = "SELECT Id, Name FROM Account ORDER BY Name DESC LIMIT 5"
    rows, _ = run_collect(lambda: ReadFromSalesforce(conn, soql=ordered),
                          out=tmp_path / "ordered")
    assert sorted(r["Name"] for r in rows) == sorted(r["Name"] for r in rest_records(org, ordered))


def test_bulk_mode_drops_a_requested_compound_field_with_one_warning(org, tmp_path, caplog):
    caplog.set_level("WARNING")
    read = ReadFromSalesforce(connection_mapping(org), sobject="Account", mode="bulk",
                              fields=["Id", "BillingAddress", "BillingCity"])
    rows, _ = run_collect(lambda: read, out=tmp_path / "out")
    assert set(rows[0]) == {"Id", "BillingCity"}
    warnings = [r for r in caplog.records if "compound" in r.getMessage()]
    assert len(warnings) == 1 and "BillingAddress" in warnings[0].getMessage()
    assert "the column is dropped; read instead: BillingCity" in warnings[0].getMessage()


def test_bulk_mode_says_when_nothing_of_a_requested_compound_field_is_read(org, tmp_path,
                                                                           caplog):
    caplog.set_level("WARNING")
    read = ReadFromSalesforce(connection_mapping(org), sobject="Account", mode="bulk",
                              fields=["Id", "BillingAddress"])
    rows, _ = run_collect(lambda: read, out=tmp_path / "out")
    assert set(rows[0]) == {"Id"}
    warnings = [r.getMessage() for r in caplog.records if "compound" in r.getMessage()]
    assert len(warnings) == 1
    assert "none of its parts is listed, so nothing of it is read" in warnings[0]
    assert "list its parts (BillingStreet, BillingCity" in warnings[0]


def test_auto_mode_reads_a_requested_compound_field_through_rest(org, tmp_path):
    rows, _ = run_collect(lambda: ReadFromSalesforce(
        connection_mapping(org), soql="SELECT Id, BillingAddress, BillingCity FROM Account"),
        out=tmp_path / "out")
    assert len(rows) == 5000
    with_city = next(r for r in rows if r["BillingCity"])
    assert with_city["BillingCity"] in with_city["BillingAddress"]     # JSON text of the address


def test_unknown_field_fails_at_construction_with_the_closest_name(org):
    with pytest.raises(ValueError, match="Did you mean NumberOfEmployees"):
        ReadFromSalesforce(connection_mapping(org), sobject="Account",
                           fields=["Id", "NumberOfEmploye"]).expand(None)


def test_native_types_for_python_pipelines(org, tmp_path):
    import datetime as dt
    import decimal

    from apache_beam.utils.timestamp import Timestamp

    fields = ["Id", "Amount", "CloseDate", "CreatedDate", "IsWon", "Probability"]
    soql = f"SELECT {', '.join(fields)} FROM Opportunity"  # noqa: S608 - SOQL
    truth = {r["Id"]: r for r in rest_records(org, soql)}
    rows, _ = run_collect(lambda: ReadFromSalesforce(
        connection_mapping(org), sobject="Opportunity", fields=fields, types="native"),
        out=tmp_path / "out")
    assert len(rows) == len(truth)
    for row in rows:
        want = truth[row["Id"]]
        if want["Amount"] is not None:
            assert isinstance(row["Amount"], decimal.Decimal)
            assert row["Amount"] == decimal.Decimal(str(want["Amount"]))
        assert row["CloseDate"] == dt.date.fromisoformat(want["CloseDate"])
        created = dt.datetime.strptime(want["CreatedDate"], "%Y-%m-%dT%H:%M:%S.%f%z")
        assert row["CreatedDate"] == Timestamp.from_utc_datetime(
            created.astimezone(dt.timezone.utc))
        assert row["IsWon"] is want["IsWon"]


def test_auto_falls_back_to_rest_when_bulk_refuses(org, tmp_path, caplog):
    caplog.set_level("WARNING")
    # A parent's compound field is not known to be compound from Contact's describe, so
    # auto sends this volume to Bulk 2.0, which refuses it; the unit is read through REST.
    soql = "SELECT Id, Account.BillingAddress, Account.BillingCity FROM Contact"
    truth = rest_records(org, soql)
    assert len(truth) >= 2000
    rows, _ = run_collect(lambda: ReadFromSalesforce(connection_mapping(org), soql=soql,
                                                     split="none"),
                          out=tmp_path / "out")
    assert len(rows) == len(truth)
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1 and "reading it through REST" in refused[0].getMessage()
    cities = {r["Id"]: (r.get("Account") or {}).get("BillingCity") for r in truth}
    assert {r["Id"]: r["Account_BillingCity"] for r in rows} == {
        k: v or None for k, v in cities.items()}


@pytest.mark.parametrize("sobject", ["Contact", "Opportunity", "Lead", "Case", "Invoice__c"])
def test_rest_and_bulk_agree_on_every_object(org, tmp_path, sobject):
    conn = connection_mapping(org)
    rest, _ = run_collect(lambda: ReadFromSalesforce(conn, sobject=sobject, mode="rest"),
                          out=tmp_path / "rest")
    bulk, _ = run_collect(lambda: ReadFromSalesforce(conn, sobject=sobject, mode="bulk",
                                                     split=2), out=tmp_path / "bulk")
    assert len(rest) > 0
    assert by_id(rest) == by_id(bulk)


def test_field_removed_since_the_cached_describe_says_how_to_refresh(org, tmp_path):
    import json

    from forcebeam.auth import Connection
    from forcebeam.stages.salesforce import describe as describe_cache

    conn = connection_mapping(org)
    connection = Connection.from_mapping(conn, source="test", path="connection")
    cached = describe_cache.warm_describe_cache(connection, "Case")
    cached["fields"].append({"name": "Retired__c", "type": "string"})
    describe_cache._cache_file(connection, "Case").write_text(json.dumps(cached))
    with pytest.raises(Exception, match="FORCEBEAM_DESCRIBE_TTL=0"):  # noqa: B017 - Beam wraps
        run_collect(lambda: ReadFromSalesforce(conn, sobject="Case", mode="rest"),
                    out=tmp_path / "out")


def test_bulk_jobs_are_polled_until_complete(org_factory, tmp_path):
    org = org_factory(records=3000)
    org.admin("PUT", "faults", json={"bulk_job_delay_seconds": 2})
    conn = connection_mapping(org)
    truth = {r["Id"] for r in rest_records(org, "SELECT Id FROM Account")}
    org.reset_counters()
    started = time.monotonic()
    rows, _ = run_collect(lambda: ReadFromSalesforce(conn, sobject="Account", fields=["Id"],
                                                     mode="bulk", split="none"),
                          out=tmp_path / "out")
    assert time.monotonic() - started >= 2
    assert {r["Id"] for r in rows} == truth and len(rows) == len(truth)
    calls = org.counters()["api_calls"]
    assert calls.get("bulk_query", 0) >= 3, f"create + several status polls: {calls}"
