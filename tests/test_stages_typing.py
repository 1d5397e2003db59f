"""Row typing and planning rules that need no org: REST and Bulk spellings must agree.

The describe JSON below follows wire §4.3 (field objects with name/type/scale/calculated).
"""

from __future__ import annotations

import bisect
import datetime as dt
import decimal

import pytest
from apache_beam.utils.timestamp import Timestamp

from forcebeam.stages.salesforce import planner
from forcebeam.stages.salesforce.ingest_csv import cell_text
from forcebeam.stages.salesforce.schema import schema_from_describe
from forcebeam.stages.salesforce.soql import parse_custom_soql
from forcebeam.stages.salesforce.write_apis import parse_bulk_error

DESCRIBE = {"name": "Account", "fields": [
    {"name": "Id", "type": "id"},
    {"name": "IsDeleted", "type": "boolean"},
    {"name": "NumberOfEmployees", "type": "int"},
    {"name": "Rating__c", "type": "double"},
    {"name": "AnnualRevenue", "type": "currency", "scale": 2},
    {"name": "SLAExpirationDate__c", "type": "date"},
    {"name": "CreatedDate", "type": "datetime"},
    {"name": "Score__c", "type": "double", "calculated": True},
    {"name": "BillingAddress", "type": "address"},
    {"name": "BillingCity", "type": "string"},
]}

# The same row as REST JSON (numbers, +0000) and as Bulk CSV text (Z, empty = null).
REST_ROW = {"Id": "001000000000001AAA", "IsDeleted": False, "NumberOfEmployees": 12,
            "Rating__c": decimal.Decimal("4.5"), "AnnualRevenue": decimal.Decimal("1234.5"),
            "SLAExpirationDate__c": "2026-01-15", "CreatedDate": "2026-01-15T09:30:00.000+0000",
            "Score__c": decimal.Decimal("7.25"), "BillingCity": None}
CSV_ROW = {"Id": "001000000000001AAA", "IsDeleted": "false", "NumberOfEmployees": "12",
           "Rating__c": "4.5", "AnnualRevenue": "1234.5", "SLAExpirationDate__c": "2026-01-15",
           "CreatedDate": "2026-01-15T09:30:00.000Z", "Score__c": "7.25", "BillingCity": ""}


def _convert(mode):
    schema = schema_from_describe(DESCRIBE, mode=mode)
    rest = tuple(f.json_converter(mode)(REST_ROW[f.path]) for f in schema.fields)
    bulk = tuple(f.csv_converter(mode)(CSV_ROW[f.path]) for f in schema.fields)
    return schema, rest, bulk


def test_all_fields_skip_compound_but_keep_components():
    schema = schema_from_describe(DESCRIBE)
    assert "BillingAddress" not in schema.names and "BillingCity" in schema.names


def test_portable_rows_are_equal_from_rest_and_bulk_and_exact():
    schema, rest, bulk = _convert("portable")
    assert rest == bulk
    row = dict(zip(schema.names, rest, strict=True))
    assert row["AnnualRevenue"] == "1234.50"          # exact, at the field's scale
    assert row["CreatedDate"] == "2026-01-15T09:30:00.000Z"
    assert row["SLAExpirationDate__c"] == "2026-01-15"
    assert row["IsDeleted"] is False and row["NumberOfEmployees"] == 12
    assert row["Rating__c"] == 4.5 and row["Score__c"] == "7.25"    # formula -> str
    assert row["BillingCity"] is None


def test_native_rows_are_equal_from_rest_and_bulk():
    schema, rest, bulk = _convert("native")
    assert rest == bulk
    row = dict(zip(schema.names, rest, strict=True))
    assert row["AnnualRevenue"] == decimal.Decimal("1234.50")
    assert row["SLAExpirationDate__c"] == dt.date(2026, 1, 15)
    assert row["CreatedDate"] == Timestamp.from_utc_datetime(
        dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.timezone.utc))


def test_unknown_field_names_the_closest_real_field():
    with pytest.raises(ValueError, match="Did you mean NumberOfEmployees"):
        schema_from_describe(DESCRIBE, fields=["NumberOfEmployes"])


def test_custom_soql_shapes():
    assert parse_custom_soql("SELECT Id, Name FROM Account WHERE Name LIKE 'A%'") == (
        "Account", ["Id", "Name"], "Name LIKE 'A%'", True)
    assert parse_custom_soql("select Id from Contact order by Id limit 5")[3] is False


def _ids(count, skew=False):
    # Fixed-width base62 ids like the emulator's; skewed = dense head, sparse tail.
    serials = [i * i if skew else i for i in range(1, count + 1)]
    return sorted("001" + "5g0" + planner._to_id(s)[-9:] for s in serials)


@pytest.mark.parametrize("skew", [False, True])
def test_plan_id_ranges_is_balanced_within_2x_with_few_counts(skew):
    ids = _ids(20_000, skew)
    calls = []

    def count(id_from, id_to):
        calls.append((id_from, id_to))
        lo = bisect.bisect_left(ids, id_from) if id_from else 0
        hi = bisect.bisect_left(ids, id_to) if id_to else len(ids)
        return hi - lo

    ranges = planner.plan_id_ranges(total=len(ids), wanted=8, min_id=ids[0], max_id=ids[-1],
                                    count=count)
    sizes = [r[2] for r in ranges]
    assert sum(sizes) == len(ids)                     # every row in exactly one unit
    assert len(ranges) >= 8
    assert max(sizes) <= 2 * (len(ids) / 8)
    assert len(calls) <= 8 * 8, "planning must cost O(units) COUNT() calls"


def test_bulk_error_text_and_null_cells():
    error = parse_bulk_error("REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --")
    assert (error.status_code, error.message, error.fields) == (
        "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ("Name",))
    assert parse_bulk_error("INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"
                            ).fields == ()
    assert cell_text(None) == "#N/A" and cell_text(True) == "true"


def test_a_geolocation_has_numeric_latitude_and_longitude_whatever_the_source_sent():
    schema = schema_from_describe({"name": "Invoice__c", "fields": [
        {"name": "Location__c", "type": "location"}]}, fields=["Location__c"])
    convert = schema.fields[0].json_converter("portable")
    expected = '{"latitude": -58.89, "longitude": -168.41}'
    assert convert({"latitude": "-58.89", "longitude": "-168.41"}) == expected
    assert convert({"latitude": decimal.Decimal("-58.89"), "longitude": -168.41}) == expected
    assert convert(None) is None
