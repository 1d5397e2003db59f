"""Aggregate SOQL over REST, as a real org answers it, through unmodified simple-salesforce.

What a user notices: `COUNT(Id)`, `COUNT_DISTINCT`, `SUM`, `AVG`, `MIN`, `MAX` give the numbers
the org's own rows give; results are `AggregateResult` records keyed by grouped field names,
aliases and `expr0`, `expr1`, ...; GROUP BY has a null group; HAVING, ORDER BY and LIMIT work
on groups; queryAll counts deleted rows; common mistakes fail with Salesforce's codes and
texts. Every expected value is computed here from the same org's rows read back with a plain
(non-aggregate) query.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from bench.org import login, session_for
from tests.support.clients import simple_salesforce
from tests.support.org import EmulatedOrg

RECORDS = 300
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
ROWS_SOQL = ("SELECT Id, Name, Industry, Rating, AnnualRevenue, NumberOfEmployees, OwnerId, "
             "Owner.Name, SystemModstamp, CreatedDate, IsDeleted FROM Account")


@pytest.fixture
def org(org_factory) -> EmulatedOrg:
    return org_factory(records=RECORDS)


@pytest.fixture
def sf(org: EmulatedOrg) -> Salesforce:
    return simple_salesforce(org)


def rows(sf: Salesforce, include_deleted: bool = False) -> list[dict[str, Any]]:
    return sf.query_all(ROWS_SOQL, include_deleted=include_deleted)["records"]


def aggregate(sf: Salesforce, soql: str, include_deleted: bool = False) -> dict[str, Any]:
    result = sf.query(soql, include_deleted=include_deleted)
    assert result["done"] is True and "nextRecordsUrl" not in result
    assert result["totalSize"] == len(result["records"])
    for record in result["records"]:
        assert record["attributes"] == {"type": "AggregateResult"}  # no url
    return result


def values(records: list[dict[str, Any]], key: str) -> list[Any]:
    return [r[key] for r in records if r[key] is not None]


def only(result: dict[str, Any]) -> dict[str, Any]:
    assert result["totalSize"] == 1
    return {k: v for k, v in result["records"][0].items() if k != "attributes"}


def test_overall_aggregates_match_the_rows_with_exprn_and_aliases(sf: Salesforce) -> None:
    accounts = rows(sf)
    revenue = values(accounts, "AnnualRevenue")
    assert len(revenue) < len(accounts)  # some nulls: the functions must ignore them
    answer = only(aggregate(sf, "SELECT COUNT(Id), COUNT(Industry) industries, "
                                "COUNT_DISTINCT(OwnerId), SUM(AnnualRevenue) total, "
                                "AVG(AnnualRevenue), MIN(AnnualRevenue), MAX(NumberOfEmployees) "
                                "FROM Account"))
    # Unaliased aggregates are expr0, expr1, ... counting only those without an alias.
    assert list(answer) == ["expr0", "industries", "expr1", "total", "expr2", "expr3", "expr4"]
    assert answer["expr0"] == len(accounts) and isinstance(answer["expr0"], int)
    assert answer["industries"] == len(values(accounts, "Industry"))
    assert answer["expr1"] == len({r["OwnerId"] for r in accounts})
    assert answer["total"] == pytest.approx(sum(revenue))
    assert answer["expr2"] == pytest.approx(sum(revenue) / len(revenue))
    assert answer["expr3"] == min(revenue)
    assert answer["expr4"] == max(values(accounts, "NumberOfEmployees"))


def test_min_max_on_datetimes_and_picklists_and_empty_results(sf: Salesforce) -> None:
    accounts = rows(sf)
    answer = only(aggregate(sf, "SELECT MAX(SystemModstamp), MIN(CreatedDate), MIN(Rating), "
                                "MAX(Rating) FROM Account"))
    assert DATETIME.match(answer["expr0"]) and DATETIME.match(answer["expr1"])
    assert answer["expr0"] == max(r["SystemModstamp"] for r in accounts)
    assert answer["expr1"] == min(r["CreatedDate"] for r in accounts)
    # A picklist's MIN/MAX follow the picklist's value order, not the alphabet.
    order = [v["value"] for f in sf.Account.describe()["fields"] if f["name"] == "Rating"
             for v in f["picklistValues"]]
    ratings = sorted(set(values(accounts, "Rating")), key=order.index)
    assert (answer["expr2"], answer["expr3"]) == (ratings[0], ratings[-1])
    assert (ratings[0], ratings[-1]) != (min(ratings), max(ratings))  # the data tells them apart
    # No matching rows: one row, counts 0, the other functions null.
    empty = only(aggregate(sf, "SELECT COUNT(Id), SUM(AnnualRevenue), MAX(CreatedDate) "
                               "FROM Account WHERE Name = 'no such account'"))
    assert empty == {"expr0": 0, "expr1": None, "expr2": None}


def test_group_by_gives_a_null_group_and_typed_keys(sf: Salesforce) -> None:
    accounts = rows(sf)
    counts = Counter(r["Industry"] for r in accounts)
    assert None in counts
    sums: dict[Any, float] = defaultdict(float)
    for r in accounts:
        sums[r["Industry"]] += r["AnnualRevenue"] or 0
    result = aggregate(sf, "SELECT Industry, COUNT(Id) total, SUM(AnnualRevenue) "
                           "FROM Account GROUP BY Industry")
    assert result["totalSize"] == len(counts)
    got = {r["Industry"]: r for r in result["records"]}
    assert {k: r["total"] for k, r in got.items()} == dict(counts)
    for industry, record in got.items():
        assert (record["expr0"] or 0) == pytest.approx(sums[industry])
    aliased = aggregate(sf, "SELECT Industry sector, COUNT(Id) FROM Account GROUP BY Industry")
    assert {r["sector"]: r["expr0"] for r in aliased["records"]} == dict(counts)
    pairs = Counter((r["Industry"], r["Rating"]) for r in accounts)
    two = aggregate(sf, "SELECT Industry, Rating, COUNT(Id) FROM Account "
                        "GROUP BY Industry, Rating")
    assert {(r["Industry"], r["Rating"]): r["expr0"] for r in two["records"]} == dict(pairs)


def test_having_order_by_and_limit_on_groups(sf: Salesforce) -> None:
    accounts = rows(sf)
    counts = Counter(r["Industry"] for r in accounts)
    threshold = sorted(counts.values())[len(counts) // 2]
    kept = [(k, n) for k, n in counts.items() if n > threshold and k is not None]
    expected = sorted(kept, key=lambda kn: (-kn[1], kn[0]))[:3]
    soql = ("SELECT Industry, COUNT(Id) n FROM Account GROUP BY Industry "  # noqa: S608 - SOQL under test
            f"HAVING COUNT(Id) > {threshold} AND Industry != null "
            "ORDER BY COUNT(Id) DESC, Industry LIMIT 3")
    result = aggregate(sf, soql)
    assert [(r["Industry"], r["n"]) for r in result["records"]] == expected
    # HAVING on a dateTime aggregate compares dateTime literals.
    latest: dict[str, str] = {}
    for r in accounts:
        if r["Rating"] is not None:
            latest[r["Rating"]] = max(latest.get(r["Rating"], ""), r["CreatedDate"])
    cutoff = sorted(latest.values())[len(latest) // 2]
    soql = ("SELECT Rating, MAX(CreatedDate) FROM Account WHERE Rating != null "  # noqa: S608 - SOQL under test
            f"GROUP BY Rating HAVING MAX(CreatedDate) >= {cutoff[:19]}Z")
    recent = aggregate(sf, soql)
    assert {r["Rating"]: r["expr0"] for r in recent["records"]} == {
        k: v for k, v in latest.items() if v[:19] >= cutoff[:19]}
    # ORDER BY a grouped field: null group first (Salesforce's default), then descending.
    ordered = aggregate(sf, "SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry "
                            "ORDER BY Industry DESC NULLS FIRST")
    named = sorted((k for k in counts if k is not None), key=str.lower, reverse=True)
    assert [r["Industry"] for r in ordered["records"]] == [None, *named]


def test_group_by_a_parent_field_keys_it_by_field_name(sf: Salesforce) -> None:
    owners = Counter(r["Owner"]["Name"] for r in rows(sf))
    result = aggregate(sf, "SELECT Owner.Name, COUNT(Id) FROM Account GROUP BY Owner.Name")
    assert {r["Name"]: r["expr0"] for r in result["records"]} == dict(owners)
    assert all(set(r) == {"attributes", "Name", "expr0"} for r in result["records"])


def test_query_all_counts_deleted_rows_and_columns_mark_aggregates(sf: Salesforce,
                                                                   org: EmulatedOrg) -> None:
    live = rows(sf)
    for record in live[:3]:
        sf.Account.delete(record["Id"])
    everything = rows(sf, include_deleted=True)
    deleted = Counter(r["IsDeleted"] for r in everything)
    assert deleted[True] >= 3
    assert only(aggregate(sf, "SELECT COUNT(Id) FROM Account"))["expr0"] == deleted[False]
    grouped = aggregate(sf, "SELECT IsDeleted, COUNT(Id) FROM Account GROUP BY IsDeleted",
                        include_deleted=True)
    assert {r["IsDeleted"]: r["expr0"] for r in grouped["records"]} == dict(deleted)

    session = session_for(org)
    token = login(org, session)
    meta = session.get(token.data_url("query"), headers=token.headers(), timeout=60,
                       params={"q": "SELECT Industry, COUNT(Id) total FROM Account "
                                    "GROUP BY Industry", "columns": "true"}).json()
    by_name = {c["columnName"]: c for c in meta["columnMetadata"]}
    assert by_name["Industry"]["aggregate"] is False
    assert by_name["total"]["aggregate"] is True and by_name["total"]["numberType"] is True
    assert meta["groupBy"] is True


def test_common_mistakes_fail_as_on_a_real_org(sf: Salesforce) -> None:
    cases = [
        ("SELECT Name, COUNT(Id) FROM Account GROUP BY Industry", "MALFORMED_QUERY",
         "Field must be grouped or aggregated: Name"),
        ("SELECT Name, COUNT(Id) FROM Account", "MALFORMED_QUERY",
         "Field must be grouped or aggregated: Name"),
        ("SELECT SUM(Name) FROM Account", "INVALID_FIELD",
         "field Name does not support aggregate operator SUM"),
        ("SELECT AVG(CreatedDate) FROM Account", "INVALID_FIELD",
         "field CreatedDate does not support aggregate operator AVG"),
        ("SELECT AnnualRevenue, COUNT(Id) FROM Account GROUP BY AnnualRevenue",
         "INVALID_FIELD", "field 'AnnualRevenue' can not be grouped in a query call"),
        ("SELECT Industry, COUNT(Industry) FROM Account GROUP BY Industry", "MALFORMED_QUERY",
         "Grouped field should not be aggregated: Industry"),
        ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry ORDER BY Name",
         "MALFORMED_QUERY", "Ordered field must be grouped or aggregated: Name"),
        ("SELECT COUNT(Id) FROM Account LIMIT 5", "MALFORMED_QUERY",
         "Non-grouped query that uses overall aggregate functions cannot also use LIMIT"),
        ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry HAVING Rating = 'Hot'",
         "MALFORMED_QUERY", "Field must be grouped or aggregated: Rating"),
        ("SELECT COUNT(Bogus) FROM Account", "INVALID_FIELD", "No such column 'Bogus'"),
    ]
    for soql, code, text in cases:
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.query(soql)
        error = caught.value.content[0]
        assert error["errorCode"] == code, soql
        assert text in error["message"], (soql, error["message"])


def test_more_groups_than_one_batch_are_refused_unless_limited(org_factory) -> None:
    org = org_factory(records=2100)
    sf = simple_salesforce(org)
    accounts = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    assert accounts > 2000
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id, COUNT(Name) FROM Account GROUP BY Id")
    assert "Aggregate query does not support queryMore()" in caught.value.content[0]["message"]
    limited = aggregate(sf, "SELECT Id, COUNT(Name) FROM Account GROUP BY Id LIMIT 2000")
    assert limited["totalSize"] == 2000 and all(r["expr0"] == 1 for r in limited["records"])


def test_describe_says_which_fields_group_by_and_count_accept(sf: Salesforce):
    """A user (or a tool) choosing GROUP BY fields from describe gets no refusals."""
    fields = sf.Account.describe()["fields"]
    assert any(f["groupable"] for f in fields) and not all(f["groupable"] for f in fields)
    for f in fields:
        name = f["name"]
        for soql, allowed in ((f"SELECT {name} FROM Account GROUP BY {name} LIMIT 1",  # noqa: S608
                               f["groupable"]),
                              (f"SELECT COUNT({name}) FROM Account",  # noqa: S608
                               f["aggregatable"])):
            try:
                sf.query(soql)
                accepted = True
            except SalesforceMalformedRequest:
                accepted = False
            assert accepted == allowed, (soql, f["type"])
