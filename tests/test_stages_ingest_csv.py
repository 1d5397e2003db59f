"""Bulk ingest CSV built column by column: the same cells as the per-value rules, matched back.

The upload is built with Arrow (``ingest_csv.upload_columns`` + ``upload_csv``); every cell
must be exactly what the per-value rule (``cell_text``) gives, for every type a record can
hold, in both ``nulls`` modes. Result files are matched back to the inputs by their echoed
cells; identical inputs get one result each. Against the emulator: a Bulk write of
identical and rejected records gives every input exactly one outcome, and a job the org
reports without failures costs no failedResults download.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import random
from typing import Any

import pytest
from apache_beam.utils.timestamp import Timestamp

from forcebeam.stages.salesforce import ingest_csv
from forcebeam.stages.salesforce.bulk_query import PollSchedule
from tests.support.stages import connection_mapping, result_files_fetched, watched_client
from tests.support.writes import run_write, tagged_accounts

ABSENT = object()

#: One column per kind of value a record can hold (with nulls, empties and absent fields).
COLUMNS = {
    "Text": ['plain', 'a "quoted", comma', 'two\nlines', 'ünïcödé ✓', '', None, ' pad '],
    "Int": [0, -7, 2**40, None, 12, 2**70, 3],                    # 2**70: past int64
    "Bool": [True, False, None, True, False, True, None],
    "Float": [1.5, 0.1, 1e20, None, -0.0, 3.0, 2.5],
    "Money": [decimal.Decimal("12345678901234567890.12"), decimal.Decimal("1.50"),
              decimal.Decimal("1E+2"), None, decimal.Decimal("-0.001"),
              decimal.Decimal("0"), decimal.Decimal("7")],
    "When": [dt.datetime(2024, 1, 2, 3, 4, 5, 600000), None,
             dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
             Timestamp.of(1_700_000_000.25), dt.datetime(1999, 12, 31), None,
             dt.datetime(2030, 6, 1, 12)],
    "Day": [dt.date(2024, 2, 29), None, dt.date(1970, 1, 1), dt.date(2024, 1, 1), None,
            dt.date(2000, 1, 1), dt.date(2001, 1, 1)],
    "Mixed": ["text", 5, None, True, 2.5, "", decimal.Decimal("3.10")],
    "Sparse": [ABSENT, "x", ABSENT, None, "", ABSENT, "y"],
    "Nothing": [None] * 7,
}


def _records() -> list[dict]:
    rows = []
    for index in range(7):
        rows.append({name: values[index] for name, values in COLUMNS.items()
                     if values[index] is not ABSENT})
    return rows


@pytest.mark.parametrize("nulls", ["ignore", "set"])
def test_the_upload_holds_exactly_the_per_value_cells_for_every_type(nulls):
    records = _records()
    columns = list(COLUMNS)
    upload = ingest_csv.upload_csv(ingest_csv.upload_columns(records, columns, nulls))
    rows = list(csv.reader(io.StringIO(upload.decode("utf-8"), newline="")))
    assert rows[0] == columns
    expected = [[ingest_csv.cell_text(record[name], nulls) if name in record else ""
                 for name in columns] for record in records]
    assert rows[1:] == expected
    assert upload.count(b"\r") == 0                      # LF, as the job declares


def test_a_decimal_is_written_with_every_digit():
    money = decimal.Decimal("12345678901234567890.12")
    upload = ingest_csv.upload_csv(ingest_csv.upload_columns([{"Amount": money}],
                                                             ["Amount"], "ignore"))
    assert upload.decode().splitlines()[1].strip('"') == "12345678901234567890.12"


def test_results_in_any_order_match_their_inputs_and_identical_inputs_match_in_turn():
    records = [{"Name": f"N{i % 40}", "Ext": f"E{i % 40}"} for i in range(200)]  # 5 copies
    cells = ingest_csv.upload_columns(records, ["Name", "Ext"], "ignore")
    order = list(range(200))
    random.Random(7).shuffle(order)

    def result_file(prefix: list[str], rows: list[int]) -> bytes:
        text = io.StringIO()
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        text.write(",".join(f'"{p}"' for p in prefix) + ",Name,Ext\n")
        for n, i in enumerate(rows):
            writer.writerow([f"id{n}", "x", records[i]["Name"], records[i]["Ext"]])
        return text.getvalue().encode()

    ok = ingest_csv.parse_results(result_file(["sf__Id", "sf__Created"], order[:150]))
    failed = ingest_csv.parse_results(result_file(["sf__Id", "sf__Error"], order[150:]))
    found_ok, found_failed = ingest_csv.match_results(cells, [ok, failed])
    matched = found_ok.tolist() + found_failed.tolist()
    assert sorted(matched) == list(range(200))           # every input exactly once
    for got, sent in zip(matched, order, strict=True):
        assert records[got] == records[sent]             # to an input with the same cells


def test_a_result_row_no_input_sent_is_not_matched():
    cells = ingest_csv.upload_columns([{"Name": "a"}], ["Name"], "ignore")
    stray = ingest_csv.parse_results(b'"sf__Id","sf__Created",Name\n"1","true","b"\n'
                                     b'"2","true","a"\n"3","true","a"\n')
    (found,) = ingest_csv.match_results(cells, [stray])
    assert found.tolist() == [-1, 0, -1]


def test_polls_aim_at_the_completion_the_progress_predicts():
    # The first poll comes when the job could be done at 100k records/s, not before.
    assert [PollSchedule(expected_records=n).next_delay()
            for n in (10_000, 100_000, 1_000_000, 10_000_000)] == [0.25, 1.0, 10.0, 30.0]
    small = PollSchedule(expected_records=20_000, started=0.0)
    assert [small.next_delay() for _ in range(3)] == [0.25, 0.375, 0.5625]
    schedule = PollSchedule(expected_records=100_000, started=0.0)
    assert [schedule.next_delay() for _ in range(3)] == [1.0, 1.5, 2.0]
    schedule.observe({"numberRecordsProcessed": 10_000}, now=14.0)
    schedule.observe({"numberRecordsProcessed": 30_000}, now=16.0)  # 10k rows/s
    assert schedule.next_delay() == pytest.approx(7.0)              # when it should be done
    schedule.observe({"numberRecordsProcessed": 100_000}, now=23.0)  # done, not yet complete
    assert schedule.next_delay() <= PollSchedule.BACKOFF_LIMIT
    fresh = PollSchedule(expected_records=100_000, started=0.0)
    fresh.observe({"numberRecordsProcessed": 50_000}, now=1.0)     # half done in 1 s
    assert fresh.next_delay() == pytest.approx(1.0)
    early = PollSchedule(expected_records=100_000, started=0.0)
    early.observe({"numberRecordsProcessed": 1_000}, now=1.0)
    early.observe({"numberRecordsProcessed": 2_000}, now=2.0)       # slow start: 98 s left?
    assert early.next_delay() == PollSchedule.BACKOFF_LIMIT          # no more than 2 s yet
    early.observe({"numberRecordsProcessed": 3_000}, now=20.0)
    assert early.next_delay() == pytest.approx(10.0)                 # half the 20 s waited
    slow = PollSchedule(expected_records=10_000_000, started=0.0)
    slow.observe({"numberRecordsProcessed": 1}, now=100.0)
    slow.observe({"numberRecordsProcessed": 2}, now=101.0)
    assert slow.next_delay() == PollSchedule.PREDICTED_LIMIT
    query = PollSchedule()                                # no progress to go by
    query.observe({"numberRecordsProcessed": 5}, now=1.0)
    query.observe({"numberRecordsProcessed": 9}, now=2.0)
    assert query.next_delay() == 0.25


def test_identical_and_rejected_records_each_get_one_outcome_through_bulk(org_factory,
                                                                          tmp_path):
    org = org_factory(records=10)
    conn = connection_mapping(org)
    good = [{"Name": "TWIN same", "Description": "copy"}] * 30
    good += [{"Name": f"TWIN {i}", "NumberOfEmployees": i} for i in range(40)]
    bad = [{"Description": "no name"}] * 12                        # REQUIRED_FIELD_MISSING
    records = good + bad
    random.Random(3).shuffle(records)
    written, failed = run_write(tmp_path, conn, records, sobject="Account", mode="bulk")
    assert len(written) == len(good) and len(failed) == len(bad)
    assert len({row["id"] for row in written}) == len(good)       # one new record each
    assert all(row["status_code"] == "REQUIRED_FIELD_MISSING" for row in failed)
    in_org = tagged_accounts(org, "TWIN")
    assert sorted(in_org) == sorted(row["id"] for row in written)


def test_a_result_file_the_job_says_is_empty_is_not_downloaded(org_factory):
    from forcebeam.stages.salesforce.write_apis import write_bulk

    client, fetched = result_files_fetched(org_factory(records=10))
    clean = write_bulk(client, "Account", "insert", [{"Name": f"CLEAN {i}"} for i in range(50)])
    assert all(r.success and r.id for r in clean)
    assert fetched == ["successfulResults"]
    fetched.clear()
    rejected = write_bulk(client, "Account", "insert", [{"Description": "no name"}] * 3)
    assert [r.errors[0].status_code for r in rejected] == ["REQUIRED_FIELD_MISSING"] * 3
    assert fetched == ["failedResults"]
    fetched.clear()
    mixed = write_bulk(client, "Account", "insert", [{"Name": "MIXED"}, {"Description": "x"}])
    assert [r.success for r in mixed] == [True, False]
    assert fetched == ["successfulResults", "failedResults"]


def test_a_decimal_reaches_salesforce_with_every_digit_through_rest_too(org_factory):
    """sObject Collections' JSON body carries a Decimal's digits, not a rounded float."""
    import json

    from forcebeam.stages.salesforce.write_apis import write_collections

    org = org_factory(records=10)
    bodies: list[bytes] = []

    def seen(_: str, path: str, arguments: dict[str, Any]) -> None:
        if path.startswith("composite/sobjects"):
            bodies.append(arguments.get("data") or b"")

    client = watched_client(org, seen)
    revenue = decimal.Decimal("1234567890123456.78")     # float() would give ...456.8
    (result,) = write_collections(client, "Account", "insert",
                                  [{"Name": "EXACT REST", "AnnualRevenue": revenue}])
    assert result.success and result.id
    (sent,) = [json.loads(body, parse_float=decimal.Decimal)["records"][0] for body in bodies]
    assert sent["AnnualRevenue"] == revenue and sent["Name"] == "EXACT REST"
    assert tagged_accounts(org, "EXACT REST")[result.id]["Name"] == "EXACT REST"
