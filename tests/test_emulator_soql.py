"""SOQL in the emulator's records store: what a query returns and how bad SOQL is refused.

These run the real parser + compiler + SQLite store (no server): every assertion compares
rows a user would get back, computed independently from the inputs the test wrote.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from forcebeam.emulator.records.soql import SoqlError, parse
from forcebeam.emulator.records.soql.dates import relative_range
from forcebeam.emulator.records.store import RecordStore

TODAY = date(2026, 5, 20)  # a Wednesday in Q2
NOW = datetime(2026, 5, 20, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RecordStore:
    """300 Accounts plus invoices written with dates relative to a fixed 'today'."""
    records = RecordStore(Path(tmp_path_factory.mktemp("soql")), records=300, seed=7,
                          now=lambda: NOW)
    rows = []
    for offset in (-400, -95, -40, -8, -1, 0, 1, 5, 30, 100):
        day = TODAY + timedelta(days=offset)
        rows.append({"Name": f"REL {offset}", "Due_Date__c": day.isoformat(),
                     "Issued_At__c": f"{day.isoformat()}T23:30:00.000+00:00",
                     "Status__c": "Draft", "Amount__c": offset})
    rows.append({"Name": "REL none", "Status__c": None})
    results = records.write("Invoice__c", "insert", rows)
    assert all(r.success for r in results), results
    yield records
    records.close()


def names(store: RecordStore, soql: str, **kwargs) -> list[str]:
    return [row[0] for row in store.execute(soql, **kwargs).rows]


def rel_names(store: RecordStore, where: str) -> set[str]:
    return set(names(store, f"SELECT Name FROM Invoice__c WHERE Name LIKE 'REL%' AND ({where})"))  # noqa: S608 - SOQL under test


def test_where_operators_match_python_filtering(store: RecordStore) -> None:
    everything = list(store.execute("SELECT Id, Name, NumberOfEmployees, Industry FROM Account")
                      .rows)
    big = {r[0] for r in everything if r[2] is not None and r[2] >= 1200}
    assert {r[0] for r in store.execute(
        "SELECT Id FROM Account WHERE NumberOfEmployees >= 1200").rows} == big
    banking_or_media = {r[0] for r in everything if r[3] in ("Banking", "Media")}
    assert {r[0] for r in store.execute(
        "select id from account where industry in ('banking', 'MEDIA')").rows} == banking_or_media
    not_in = {r[0] for r in everything if r[3] not in ("Banking", "Media")}
    assert {r[0] for r in store.execute(
        "SELECT Id FROM Account WHERE Industry NOT IN ('Banking','Media')").rows} == not_in
    no_industry = {r[0] for r in everything if r[3] is None}
    assert no_industry, "generator should leave some Industry values null"
    assert {r[0] for r in store.execute(
        "SELECT Id FROM Account WHERE Industry = null").rows} == no_industry
    other = {r[0] for r in everything if r[3] != "Banking"}  # != keeps nulls, like Salesforce
    assert {r[0] for r in store.execute(
        "SELECT Id FROM Account WHERE Industry <> 'Banking'").rows} == other


def test_and_or_not_and_parentheses(store: RecordStore) -> None:
    rows = list(store.execute("SELECT Id, Rating, Industry FROM Account").rows)
    expected = {r[0] for r in rows if (r[1] == "Hot" or r[2] == "Energy") and not r[1] == "Cold"}
    got = {r[0] for r in store.execute(
        "SELECT Id FROM Account WHERE (Rating = 'Hot' OR Industry = 'Energy') "
        "AND NOT Rating = 'Cold'").rows}
    assert got == expected and got


def test_like_is_case_insensitive_and_escapes(store: RecordStore) -> None:
    store.write("Account", "insert", [{"Name": "100% Pure_Oil"}, {"Name": "1000 PureXOil"}])
    assert names(store, "SELECT Name FROM Account WHERE Name LIKE '100\\% pure\\_%'") == [
        "100% Pure_Oil"]
    assert sorted(names(store, "SELECT Name FROM Account WHERE Name LIKE '100%pure_oil'")) == [
        "100% Pure_Oil", "1000 PureXOil"]


def test_string_escapes_in_literals(store: RecordStore) -> None:
    store.write("Account", "insert", [{"Name": "O'Hara \\ Sons"}])
    assert names(store, "SELECT Name FROM Account WHERE Name = 'O\\'Hara \\\\ Sons'") == [
        "O'Hara \\ Sons"]


def test_datetime_literals_any_fraction_and_offset(store: RecordStore) -> None:
    day = TODAY + timedelta(days=-1)
    # 23:30 UTC on `day`; the same instant written four ways
    for literal in (f"{day}T23:30:00Z", f"{day}T23:30:00.000Z", f"{day}T23:30:00.000000+00:00",
                    f"{day + timedelta(days=1)}T01:30:00.0+02:00"):
        assert rel_names(store, f"Issued_At__c = {literal}") == {"REL -1"}, literal
    assert rel_names(store, f"Issued_At__c > {day}T23:30:00Z AND Issued_At__c < "
                            f"{TODAY + timedelta(days=2)}T00:00:00Z") == {"REL 0", "REL 1"}


def test_date_and_datetime_literals_must_match_the_field_type(store: RecordStore) -> None:
    with pytest.raises(SoqlError) as error:
        store.execute("SELECT Id FROM Invoice__c WHERE Issued_At__c > 2024-01-01")
    assert error.value.code == "INVALID_FIELD"
    assert "must be of type dateTime and should not be enclosed in quotes" in error.value.message
    with pytest.raises(SoqlError) as error:
        store.execute("SELECT Id FROM Invoice__c WHERE Amount__c = '5'")
    assert error.value.code == "INVALID_FIELD"
    with pytest.raises(SoqlError) as error:
        store.execute("SELECT Id FROM Account WHERE Name = 5")
    assert "should be enclosed in quotes" in error.value.message


@pytest.mark.parametrize(("literal", "expected"), [
    ("TODAY", {"REL 0"}),
    ("YESTERDAY", {"REL -1"}),
    ("TOMORROW", {"REL 1"}),
    ("LAST_N_DAYS:7", {"REL -1", "REL 0"}),
    ("LAST_N_DAYS:8", {"REL -8", "REL -1", "REL 0"}),
    ("NEXT_N_DAYS:5", {"REL 1", "REL 5"}),
    ("LAST_90_DAYS", {"REL -40", "REL -8", "REL -1", "REL 0"}),
    ("NEXT_90_DAYS", {"REL 1", "REL 5", "REL 30"}),
    ("THIS_MONTH", {"REL -8", "REL -1", "REL 0", "REL 1", "REL 5"}),
    ("LAST_MONTH", {"REL -40"}),
    ("NEXT_MONTH", {"REL 30"}),
    ("THIS_WEEK", {"REL -1", "REL 0", "REL 1"}),  # Sun 17 .. Sat 23 May
    ("LAST_WEEK", {"REL -8"}),
    ("THIS_QUARTER", {"REL -40", "REL -8", "REL -1", "REL 0", "REL 1", "REL 5", "REL 30"}),
    ("LAST_QUARTER", {"REL -95"}),
    ("THIS_YEAR", {"REL -95", "REL -40", "REL -8", "REL -1", "REL 0", "REL 1", "REL 5",
                   "REL 30", "REL 100"}),
    ("LAST_YEAR", {"REL -400"}),
    ("LAST_N_MONTHS:2", {"REL -40"}),
])
def test_relative_date_literals_on_date_and_datetime(store: RecordStore, literal: str,
                                                      expected: set[str]) -> None:
    assert rel_names(store, f"Due_Date__c = {literal}") == expected
    assert rel_names(store, f"Issued_At__c = {literal}") == expected


def test_relative_dates_with_comparison_operators(store: RecordStore) -> None:
    assert rel_names(store, "Due_Date__c < TODAY") == {"REL -400", "REL -95", "REL -40",
                                                       "REL -8", "REL -1"}
    assert rel_names(store, "Due_Date__c > LAST_N_DAYS:8") == {"REL 1", "REL 5", "REL 30",
                                                               "REL 100"}
    assert rel_names(store, "Due_Date__c <= YESTERDAY AND Due_Date__c >= LAST_MONTH") == {
        "REL -40", "REL -8", "REL -1"}


def test_relative_range_helper_quarters_and_weeks() -> None:
    assert relative_range("THIS_QUARTER", None, date(2026, 12, 31)) == (
        date(2026, 10, 1), date(2027, 1, 1))
    assert relative_range("NEXT_QUARTER", None, date(2026, 11, 2)) == (
        date(2027, 1, 1), date(2027, 4, 1))
    assert relative_range("THIS_WEEK", None, date(2026, 5, 17)) == (
        date(2026, 5, 17), date(2026, 5, 24))


def test_order_by_nulls_first_last_and_direction(store: RecordStore) -> None:
    asc = names(store, "SELECT Name FROM Invoice__c WHERE Name LIKE 'REL%' ORDER BY Amount__c")
    assert asc[0] == "REL none"  # Salesforce sorts nulls first by default
    assert asc[1:] == [f"REL {n}" for n in (-400, -95, -40, -8, -1, 0, 1, 5, 30, 100)]
    desc_last = names(store, "SELECT Name FROM Invoice__c WHERE Name LIKE 'REL%' "
                             "ORDER BY Amount__c DESC NULLS LAST")
    assert desc_last == list(reversed(asc[1:])) + ["REL none"]
    asc_last = names(store, "SELECT Name FROM Invoice__c WHERE Name LIKE 'REL%' "
                            "order by Amount__c asc nulls last")
    assert asc_last == asc[1:] + ["REL none"]


def test_order_by_text_is_case_insensitive(store: RecordStore) -> None:
    store.write("Lead", "insert", [{"LastName": n, "Company": "SortCo"}
                                   for n in ("beta", "Alpha", "gamma", "Delta")])
    got = names(store, "SELECT LastName FROM Lead WHERE Company = 'SortCo' ORDER BY LastName")
    assert got == ["Alpha", "beta", "Delta", "gamma"]


def test_limit_offset_and_count(store: RecordStore) -> None:
    ordered = names(store, "SELECT Id FROM Account ORDER BY Id")
    assert names(store, "SELECT Id FROM Account ORDER BY Id LIMIT 5 OFFSET 10") == ordered[10:15]
    result = store.execute("SELECT Id FROM Account ORDER BY Id LIMIT 5 OFFSET 10")
    assert result.total_size == 5
    count = store.execute("SELECT COUNT() FROM Account")
    assert count.is_count and count.total_size == len(ordered) and list(count.rows) == []
    hot = store.execute("SELECT COUNT() FROM Account WHERE Rating = 'Hot'").total_size
    assert hot == len(names(store, "SELECT Id FROM Account WHERE Rating = 'Hot'"))
    with pytest.raises(SoqlError) as error:
        store.execute("SELECT Id FROM Account OFFSET 2001")
    assert error.value.code == "NUMBER_OUTSIDE_VALID_RANGE"


def test_deleted_rows_only_with_include_deleted(store: RecordStore) -> None:
    live = store.execute("SELECT COUNT() FROM Account").total_size
    everything = store.execute("SELECT COUNT() FROM Account", include_deleted=True).total_size
    deleted = names(store, "SELECT Id FROM Account WHERE IsDeleted = true", include_deleted=True)
    assert deleted and everything == live + len(deleted)
    assert names(store, "SELECT Id FROM Account WHERE IsDeleted = true") == []


def test_parent_paths_two_levels_and_fields_function(store: RecordStore) -> None:
    result = store.execute("SELECT Name, Account.Name, Account.Owner.Username, account.parent.name "
                           "FROM Contact WHERE Account.Name != null LIMIT 3")
    assert [c.path for c in result.columns] == ["Name", "Account.Name", "Account.Owner.Username",
                                                "Account.Parent.Name"]
    rows = list(result.rows)
    assert len(rows) == 3 and all(r[1] and r[2].endswith("@forcebeam.emulator") for r in rows)
    fields = store.execute("SELECT FIELDS(ALL) FROM Invoice__c LIMIT 1")
    paths = [c.path for c in fields.columns]
    assert "Location__c" in paths and "External_Id__c" in paths and "Id" in paths
    custom = [c.path for c in store.execute("SELECT FIELDS(CUSTOM) FROM Account LIMIT 1").columns]
    assert custom == ["External_Id__c"]
    with pytest.raises(SoqlError, match="LIMIT of at most 200"):
        store.execute("SELECT FIELDS(ALL) FROM Account")


def test_compound_values(store: RecordStore) -> None:
    row = next(store.execute("SELECT BillingAddress, BillingCity FROM Account "
                             "WHERE BillingCity != null LIMIT 1").rows)
    assert row[0]["city"] == row[1] and set(row[0]) >= {"street", "postalCode", "country"}
    location = next(store.execute("SELECT Location__c FROM Invoice__c WHERE "
                                  "Location__Latitude__s != null LIMIT 1").rows)[0]
    assert set(location) == {"latitude", "longitude"}


def test_malformed_query_has_salesforce_caret_message(store: RecordStore) -> None:
    with pytest.raises(SoqlError) as error:
        store.execute("SELECT Id FROM Account WHERE")
    assert error.value.code == "MALFORMED_QUERY"
    assert error.value.message.endswith("ERROR at Row:1:Column:29\nunexpected token: <EOF>")
    with pytest.raises(SoqlError) as error:
        store.execute("SELECT Id FROM Account WHERE CreatedDate > 2024-01-01 00:00:00")
    assert error.value.code == "MALFORMED_QUERY"
    with pytest.raises(SoqlError) as error:
        store.execute("   ")
    assert error.value.message == "SOQL statements cannot be empty or null"


def test_invalid_field_and_type_messages(store: RecordStore) -> None:
    with pytest.raises(SoqlError) as error:
        store.execute("SELECT Bogus FROM Contact")
    assert error.value.code == "INVALID_FIELD"
    assert error.value.message.startswith(
        "\nSELECT Bogus FROM Contact\n       ^\nERROR at Row:1:Column:8\n"
        "No such column 'Bogus' on entity 'Contact'.")
    with pytest.raises(SoqlError) as error:
        store.execute("SELECT Id FROM Foo")
    assert error.value.code == "INVALID_TYPE"
    assert "sObject type 'Foo' is not supported" in error.value.message
    with pytest.raises(SoqlError) as error:
        store.execute("SELECT Nope.Name FROM Contact")
    assert error.value.code == "INVALID_FIELD"
    assert "Didn't understand relationship 'Nope'" in error.value.message


def test_parse_exposes_bulk_refusal_flags() -> None:
    assert parse("SELECT FIELDS(STANDARD) FROM Account").uses_fields_function
    assert parse("SELECT COUNT() FROM Account").is_count
    assert parse("SELECT Id FROM Account LIMIT 5 OFFSET 3").offset == 3
    assert parse("SELECT Id, (SELECT Id FROM Contacts) FROM Account").has_subquery
    plain = parse("select id from account")
    assert not (plain.uses_fields_function or plain.is_count or plain.has_subquery)


def test_concurrent_readers_and_writer(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The server calls the store from executor threads: reads stream while writes commit."""
    shared = RecordStore(Path(tmp_path_factory.mktemp("threads")), records=2000, seed=3)
    errors: list[BaseException] = []
    counts: list[int] = []

    def reader() -> None:
        try:
            for _ in range(5):
                result = shared.execute("SELECT Id, Name, Account.Name FROM Contact")
                counts.append(sum(1 for _ in result.rows))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    def writer() -> None:
        try:
            for batch in range(5):
                results = shared.write("Lead", "insert", [
                    {"LastName": f"T{batch}-{i}", "Company": "Threads"} for i in range(100)])
                assert all(r.success for r in results)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [
        threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert counts == [1000] * 15
    assert shared.execute("SELECT COUNT() FROM Lead WHERE Company = 'Threads'").total_size == 500


def test_aggregate_queries_are_told_apart_for_bulk_and_names_like_functions_stay_fields() -> None:
    """Bulk refuses what `is_aggregate`/`is_count` flag; a field named like a function is a
    field unless a "(" follows."""
    assert parse("SELECT COUNT() FROM Account").is_count
    for soql in ("SELECT COUNT(Id) FROM Account", "SELECT Industry FROM Account GROUP BY Industry",
                 "SELECT Industry, MAX(CreatedDate) FROM Account GROUP BY Industry "
                 "HAVING COUNT(Id) > 1 ORDER BY COUNT(Id) DESC"):
        assert parse(soql).is_aggregate, soql
    plain = parse("SELECT Count__c, Max, Country FROM Account ORDER BY Sum")
    assert not plain.is_aggregate and not plain.is_count
    assert [item.text for item in plain.items] == ["Count__c", "Max", "Country"]
