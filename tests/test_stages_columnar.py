"""Columnar conversion (pyarrow) gives exactly the per-value converters' values.

The read path parses Bulk result pages with pyarrow and converts whole columns at once; the
older path parsed with ``csv.reader`` and converted every value in Python. Both must give the
same value, of the same Python type, for every row of every emulated object (portable and
native typing), including multi-line text, unicode, huge currency and null vs empty text.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from bench.org import login
from forcebeam.auth import Connection, get_client
from forcebeam.stages.salesforce import bulk_query
from forcebeam.stages.salesforce.columnar import PageConverter, arrow_schema, parse_page
from forcebeam.stages.salesforce.schema import (
    FieldSpec,
    RowSchema,
    converters,
    schema_from_describe,
)
from tests.support.stages import connection_mapping

EDGE_INVOICES = [
    {"Name": "multi\nline, \"quoted\"\r\nand CRLF", "Notes__c": "line 1\nline 2\n\n\"x\",y",
     "Amount__c": 99999999999999.5, "Quantity__c": 1e15, "Tax_Rate__c": 0.01},
    {"Name": "unicode ünïcødé 名前 🚀", "Notes__c": "emoji 🚀 and tab\there",
     "Amount__c": -0.5, "Quantity__c": -3.25, "Tax_Rate__c": 100},
    {"Name": "nulls", "Notes__c": None, "Amount__c": None, "Quantity__c": None,
     "Tax_Rate__c": None, "Billing_Email__c": None, "Due_Date__c": None},
    {"Name": "empty strings", "Notes__c": "", "Billing_Phone__c": "", "Portal_Url__c": "",
     "Amount__c": 0, "Quantity__c": 0},
    {"Name": "comma,semicolon;pipe|caret^backquote`", "Notes__c": " leading and trailing ",
     "Amount__c": 1234567.1, "Issued_At__c": "2024-02-29T23:59:59.999Z",
     "Due_Date__c": "2024-02-29", "Paid__c": True},
]


def _per_value(data: bytes, schema: RowSchema) -> list[tuple[Any, ...]]:
    """The pre-columnar path: csv.reader over the page, one converter per value."""
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader)
    position = {name.lower(): i for i, name in enumerate(header)}
    convert = converters(schema, [f.path for f in schema.fields], wire="csv")
    plan = [(position.get(f.path.lower()), fn)
            for f, fn in zip(schema.fields, convert, strict=True)]
    return [tuple(None if i is None else fn(row[i]) for i, fn in plan) for row in reader]


def _assert_identical(columnar: list[tuple[Any, ...]], reference: list[tuple[Any, ...]],
                      schema: RowSchema, where: str) -> None:
    assert len(columnar) == len(reference), where
    for number, (got, want) in enumerate(zip(columnar, reference, strict=True)):
        for spec, a, b in zip(schema.fields, got, want, strict=True):
            assert (type(a), a) == (type(b), b), f"{where} row {number} {spec.path}"


def _check_page(data: bytes, schema: RowSchema, where: str) -> int:
    reference = _per_value(data, schema)
    raw = parse_page(data)
    target = arrow_schema(schema.row_class()) if schema.mode == "portable" else None
    converter = PageConverter(schema, target)
    _assert_identical(converter.to_rows(raw), reference, schema, f"{where} rows")
    if target is not None:
        table = converter.to_arrow(raw)
        assert table.schema == target
        names = [f.name for f in schema.fields]
        as_tuples = [tuple(row[n] for n in names) for row in table.to_pylist()]
        _assert_identical(as_tuples, reference, schema, f"{where} arrow")
    return len(reference)


@pytest.fixture(scope="module")
def edge_org(org_factory_module):
    org = org_factory_module(records=150)
    session = org.session()
    auth = login(org, session)
    for number, record in enumerate(EDGE_INVOICES):
        body = {"External_Id__c": f"EDGE-{number}", **record}
        response = session.post(auth.data_url("sobjects/Invoice__c"), json=body,
                                 headers=auth.headers(), timeout=60)
        assert response.status_code == 201, response.text
    return org


@pytest.fixture(scope="module")
def org_factory_module(tmp_path_factory):
    from tests.support.org import start_org

    started = []

    def factory(records: int):
        running = start_org(tmp_path_factory.mktemp("columnar"), records=records)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.stop()


def _bulk_pages(client: Any, soql: str) -> list[bytes]:
    job = bulk_query.create_query_job(client, soql)
    job_id = bulk_query.wait_for_job(client, f"jobs/query/{job['id']}", job, 120)["id"]
    pages, locator = [], None
    while True:
        params = {"maxRecords": 100}
        if locator:
            params["locator"] = locator
        response = client.request("GET", f"jobs/query/{job_id}/results", params=params,
                                  headers={"Accept": "text/csv"})
        pages.append(response.content)
        locator = response.headers.get("Sforce-Locator")
        if not locator or locator == "null":
            break
    bulk_query.delete_query_job(client, job_id)
    return pages


@pytest.mark.parametrize("mode", ["portable", "native"])
def test_columnar_equals_per_value_on_every_object_and_field_type(edge_org, mode):
    client = get_client(Connection.from_mapping(connection_mapping(edge_org)))
    sobjects = [s["name"] for s in client.request("GET", "sobjects").json()["sobjects"]]
    assert {"Account", "Invoice__c", "Opportunity"} <= set(sobjects)
    types_seen: set[str] = set()
    for sobject in sobjects:
        describe = client.request("GET", f"sobjects/{sobject}/describe").json()
        schema = schema_from_describe(describe, mode=mode)
        if sobject == "Organization":
            continue   # not queryable through Bulk on a real org either
        soql = f"SELECT {', '.join(f.path for f in schema.fields)} FROM {sobject}"  # noqa: S608
        rows = sum(_check_page(page, schema, f"{sobject} page {number}")
                   for number, page in enumerate(_bulk_pages(client, soql)))
        assert rows > 0 or sobject == "Organization", sobject
        types_seen |= {f.sf_type for f in schema.fields}
    assert {"boolean", "int", "double", "percent", "currency", "date", "datetime",
            "textarea", "string", "id", "reference", "picklist", "email", "phone",
            "url"} <= types_seen


def test_edge_values_survive_exactly(edge_org):
    client = get_client(Connection.from_mapping(connection_mapping(edge_org)))
    describe = client.request("GET", "sobjects/Invoice__c/describe").json()
    schema = schema_from_describe(describe)
    soql = ("SELECT " + ", ".join(f.path for f in schema.fields)  # noqa: S608 - test SOQL
            + " FROM Invoice__c WHERE External_Id__c LIKE 'EDGE-%'")
    pages = _bulk_pages(client, soql)
    converter = PageConverter(schema, arrow_schema(schema.row_class()))
    rows = [row for page in pages for row in converter.to_arrow(parse_page(page)).to_pylist()]
    by_name = {row["Name"]: row for row in rows}
    first = by_name[EDGE_INVOICES[0]["Name"]]
    assert first["Notes__c"] == "line 1\nline 2\n\n\"x\",y"
    assert first["Amount__c"] == "99999999999999.50"
    assert by_name[EDGE_INVOICES[1]["Name"]]["Amount__c"] == "-0.50"
    nulls = by_name["nulls"]
    assert nulls["Notes__c"] is None and nulls["Amount__c"] is None
    assert by_name["empty strings"]["Notes__c"] is None   # Salesforce stores "" as null
    assert by_name[EDGE_INVOICES[4]["Name"]]["Issued_At__c"] == "2024-02-29T23:59:59.999Z"


ODD_PAGE = (
    '"Id","Flag","Count","Ratio","Amount","Whole","When","Day","Text"\n'
    '"1","TRUE","42","1e3","12.5","7","2024-01-02T03:04:05.000+0000","2024-01-02","a\r\nb"\n'
    '"2","False","-7","-0.0","12.345","7.5","2024-01-02T03:04:05Z","2024-01-02",""\n'
    '"3",,"42.0"," 2.5","007.50","-0","2024-01-02T03:04:05.123456+02:00",,"x"\n'
    '"4","true","1_000","inf","-0","12.","2024-01-02T03:04:05.999Z","2024-12-31","ü\n🚀"\n'
    '"5","","","","+5","1e2","","",\n'
    '"6","true","9223372036854775807","1.7976931348623157e308","123456789012345678.99",'
    '"0.","2024-01-02T03:04:05.000Z","2024-01-02","\"\"quoted\"\""\n'
).encode()


@pytest.mark.parametrize("mode", ["portable", "native"])
def test_odd_spellings_fall_back_to_the_per_value_converter(mode):
    schema = RowSchema(sobject="X", mode=mode, fields=(
        FieldSpec("Id", "id"), FieldSpec("Flag", "boolean"), FieldSpec("Count", "int"),
        FieldSpec("Ratio", "double"), FieldSpec("Amount", "currency", scale=2),
        FieldSpec("Whole", "currency", scale=0), FieldSpec("When", "datetime"),
        FieldSpec("Day", "date"), FieldSpec("Text", "textarea"),
        FieldSpec("Missing", "string")))
    assert _check_page(ODD_PAGE, schema, "odd page") == 6


def test_a_cut_page_is_refused_not_half_read():
    from forcebeam.stages.salesforce.columnar import PageParseError

    with pytest.raises(PageParseError):
        parse_page(ODD_PAGE[: ODD_PAGE.index(b"\xc3\xbc") + 2])   # inside a quoted value
    with pytest.raises(PageParseError):
        parse_page(ODD_PAGE[:-1])                                 # the last line end missing
    assert parse_page(ODD_PAGE).num_rows == 6


def test_a_gzipped_page_parses_as_its_text_and_a_cut_one_is_refused():
    """Pages come gzip'd and are decompressed by Arrow while parsed (never held as text)."""
    import gzip

    import pyarrow as pa

    from forcebeam.stages.salesforce.columnar import PageParseError

    wire = gzip.compress(ODD_PAGE)
    assert parse_page(pa.py_buffer(wire), gzipped=True).equals(parse_page(ODD_PAGE))
    header_only = gzip.compress(ODD_PAGE[:ODD_PAGE.index(b"\n") + 1])
    assert parse_page(header_only, gzipped=True).num_rows == 0
    assert parse_page(header_only, gzipped=True).column_names == parse_page(ODD_PAGE).column_names
    for cut in (len(wire) - 4, len(wire) // 2):        # the gzip trailer, or half the rows
        with pytest.raises(PageParseError):
            parse_page(wire[:cut], gzipped=True)


def test_pages_are_encoded_as_arrow_and_sized_without_pickling(monkeypatch):
    """A page (or a table) that Beam must encode (to send it to another worker) decodes
    equal, nulls and types intact; Beam's size sampling of every PCollection reads its
    buffers instead of pickling it (it used to pickle whole 100k-row pages to count bytes)."""
    import pickle

    import apache_beam as beam
    import pyarrow as pa
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    from forcebeam.stages.files.arrow_coder import ArrowTableCoder
    from forcebeam.stages.salesforce.read import _Chunk, _ChunkCoder

    page = parse_page(b'Id,Name,Notes__c\n001A,"multi\nline",\n001B,,"x ""y"""\n')
    rest = [("001C", "name", None)]
    assert ArrowTableCoder().decode(ArrowTableCoder().encode(page)).equals(page)
    coder = _ChunkCoder()
    assert coder.decode(coder.encode(_Chunk(raw=page))).raw.equals(page)
    assert coder.decode(coder.encode(_Chunk(values=rest))).values == rest

    pickled: list[str] = []
    real_dumps = pickle.dumps

    def watching_dumps(value: Any, *args: Any, **kwargs: Any) -> bytes:
        if isinstance(value, (pa.Table, _Chunk)):
            pickled.append(type(value).__name__)
        return real_dumps(value, *args, **kwargs)

    monkeypatch.setattr(pickle, "dumps", watching_dumps)

    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        tables = (pipeline
                  | beam.Create([0, 1])
                  | "Pages" >> beam.Map(lambda i: _Chunk(raw=page) if i
                                        else _Chunk(values=rest)).with_output_types(_Chunk)
                  | "Tables" >> beam.Map(lambda chunk: chunk.raw if chunk.raw is not None
                                         else pa.table({"Id": ["001C"]}))
                  .with_output_types(pa.Table))
        # What reaches the test's own check (a shuffle of Any) is a count, not a table.
        sizes = tables | beam.Map(lambda table: (table.num_rows, table.equals(page)))
        assert_that(sizes, equal_to([(1, False), (2, True)]))
    assert pickled == []
