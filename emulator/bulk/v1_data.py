"""Bulk API 1.0 batch data: parsing uploaded records and writing result files, per content
type (CSV, JSON, XML).

Rules (Bulk API 1.0 developer guide, "Prepare data files" and "Get batch results"):
- CSV upload: header row of field names (`Account.External_Id__c` for a parent by external
  id); an empty cell leaves the field unchanged, `#N/A` sets it to null. JSON upload: an
  array of objects (`attributes` ignored, null sets null, a nested object names a parent by
  external id). XML upload: `<sObjects><sObject><Field>…` with `xsi:nil="true"` for null,
  a parent as `<Relationship><sObject><IndexedField>value</IndexedField></sObject>
  </Relationship>`.
- Ingest results, one per uploaded record in order: CSV `"Id","Success","Created","Error"`
  (`Error` as `CODE:message:fields --`), JSON `[{"id","success","created","errors"}]`, XML
  `<results><result><id/><success/><created/><errors/></result></results>`.
- Query results: CSV as Bulk 2.0 writes it (every value quoted, null empty), or the text
  `Records not found for this query` when nothing matched (a real org's answer); JSON records
  with `attributes` and nested parents, where dates and datetimes are epoch milliseconds
  (simple-salesforce issue #290 shows a real org doing so); XML `<queryResult><records
  xsi:type="sObject"><type>…</type>…` with `xsi:nil="true"` for null.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from forcebeam.emulator.bulk.ingest import NULL_MARKER, format_error
from forcebeam.emulator.bulk.results import converters_for, format_value, write_result_file
from forcebeam.emulator.bulk.v1_jobs import BatchFailedError

XML_NS = "http://www.force.com/2009/06/asyncapi/dataload"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_NIL = f"{{{XSI_NS}}}nil"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

#: A CSV query result file when the query matched no record (what a real org writes).
NO_RECORDS_CSV = b"Records not found for this query"
#: Bulk 1.0 ingest batch limits (records, and bytes of one batch's data).
MAX_BATCH_RECORDS = 10_000
MAX_BATCH_BYTES = 10_000_000


def invalid_batch(message: str) -> BatchFailedError:
    return BatchFailedError(f"InvalidBatch : {message}")


# ----- ingest: upload parsing ----------------------------------------------------------------
def parse_records(content_type: str, data: bytes) -> list[dict[str, Any]]:
    """The records of one ingest batch; BatchFailedError when the data cannot be read."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid_batch("The batch data is not UTF-8 text") from None
    if content_type == "CSV":
        records = _csv_records(text)
    elif content_type == "JSON":
        records = _json_records(text)
    else:
        records = _xml_records(text)
    if len(records) > MAX_BATCH_RECORDS:
        raise invalid_batch(f"Records in a single batch must not exceed {MAX_BATCH_RECORDS:,} "
                            f"(this batch has {len(records):,}): split it into more batches")
    return records


def _csv_records(text: str) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header or any(not name.strip() for name in header):
        raise invalid_batch("Field name not provided: the first CSV row must name every column")
    records = []
    for row in reader:
        if not row:
            continue
        record: dict[str, Any] = {}
        for name, value in zip(header, row, strict=False):
            if value != "":
                record[name.strip()] = None if value == NULL_MARKER else value
        records.append(record)
    return records


def _flatten(prefix: str, value: dict[str, Any], into: dict[str, Any]) -> None:
    for key, inner in value.items():
        if key == "attributes":
            continue
        if isinstance(inner, dict):
            _flatten(f"{prefix}{key}.", inner, into)
        else:
            into[f"{prefix}{key}"] = inner


def _json_records(text: str) -> list[dict[str, Any]]:
    try:
        parsed = json.loads(text)
    except ValueError as error:
        raise invalid_batch(f"The batch data is not valid JSON: {error}") from None
    if not isinstance(parsed, list) or not all(isinstance(item, dict) for item in parsed):
        raise invalid_batch("JSON batch data must be an array of record objects")
    records = []
    for item in parsed:
        record: dict[str, Any] = {}
        _flatten("", item, record)
        records.append(record)
    return records


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_fields(element: ET.Element, prefix: str, into: dict[str, Any]) -> None:
    for child in element:
        name = _local(child.tag)
        if name == "type" and prefix:
            continue
        if child.get(_XSI_NIL) == "true":
            into[f"{prefix}{name}"] = None
        elif name == "sObject" and prefix:
            # `<Relationship><sObject><IndexedField>…` names the parent (the docs' form)
            _xml_fields(child, prefix, into)
        elif len(child):
            _xml_fields(child, f"{prefix}{name}.", into)
        elif child.text is not None:
            into[f"{prefix}{name}"] = child.text


def _xml_records(text: str) -> list[dict[str, Any]]:
    try:
        root = ET.fromstring(text)  # noqa: S314 - loopback-only test server
    except ET.ParseError as error:
        raise invalid_batch(f"The batch data is not valid XML: {error}") from None
    if _local(root.tag) != "sObjects":
        raise invalid_batch("XML batch data must be an <sObjects> element of <sObject>s")
    records = []
    for element in root:
        record: dict[str, Any] = {}
        _xml_fields(element, "", record)
        records.append(record)
    return records


# ----- ingest: results -----------------------------------------------------------------------
def _created(operation: str, result: Any) -> bool:
    if not result.success:
        return False
    if operation == "insert":
        return True
    return operation == "upsert" and bool(result.created)


def _errors(result: Any) -> list[dict[str, Any]]:
    return [{"statusCode": error.status_code, "message": error.message,
             "fields": list(getattr(error, "fields", None) or [])}
            for error in result.errors]


def write_ingest_results(path: Path, content_type: str, operation: str,
                         results: Sequence[Any]) -> None:
    """One result per uploaded record, in upload order, in the job's content type."""
    if content_type == "CSV":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(["Id", "Success", "Created", "Error"])
        for result in results:
            writer.writerow([result.id or "", "true" if result.success else "false",
                             "true" if _created(operation, result) else "false",
                             "" if result.success else format_error(result.errors)])
        path.write_text(buffer.getvalue(), encoding="utf-8")
    elif content_type == "JSON":
        path.write_text(json.dumps([
            {"success": result.success, "created": _created(operation, result),
             "id": result.id or None, "errors": _errors(result)} for result in results]),
            encoding="utf-8")
    else:
        parts = [f'{_DECLARATION}<results xmlns="{XML_NS}">']
        for result in results:
            parts.append("<result>")
            parts.append(f"<id>{escape(result.id)}</id>" if result.id else
                         f'<id xmlns:xsi="{XSI_NS}" xsi:nil="true"/>')
            parts.append(f"<success>{'true' if result.success else 'false'}</success>")
            parts.append(f"<created>{'true' if _created(operation, result) else 'false'}"
                         "</created>")
            for error in _errors(result):
                fields = "".join(f"<fields>{escape(name)}</fields>" for name in error["fields"])
                parts.append(f"<errors>{fields}<message>{escape(error['message'])}</message>"
                             f"<statusCode>{escape(error['statusCode'])}</statusCode></errors>")
            parts.append("</result>")
        parts.append("</results>")
        path.write_text("".join(parts), encoding="utf-8")


# ----- query: results ------------------------------------------------------------------------
def _epoch_ms(value: Any) -> Any:
    """JSON query results: dates and datetimes as epoch milliseconds (UTC)."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return int((moment - _EPOCH).total_seconds() * 1000)
    if isinstance(value, dt.date):
        return _epoch_ms(dt.datetime(value.year, value.month, value.day,
                                     tzinfo=dt.timezone.utc))
    if isinstance(value, Decimal):
        return float(value)
    return value


class RecordPlan:
    """Where each selected column goes in a nested record: relationship hops, the parent
    object types along them, and the field name."""

    def __init__(self, schema: Any, sobject: str, columns: Sequence[Any]) -> None:
        self.sobject = sobject
        self.steps: list[tuple[tuple[str, ...], tuple[str, ...], str]] = []
        root = schema.object(sobject) if schema is not None else None
        for column in columns:
            hops = column.relationship_path
            types: list[str] = []
            current = root
            for hop in hops:
                target = None
                if current is not None:
                    reference = current.relationships.get(hop.lower())
                    if reference is not None:
                        target = schema.object(reference.reference_to[0])
                types.append(target.name if target is not None else hop)
                current = target
            self.steps.append((tuple(hops), tuple(types), column.field.name))


def _json_record(plan: RecordPlan, row: Sequence[Any], url_prefix: str) -> dict[str, Any]:
    record: dict[str, Any] = {"attributes": {"type": plan.sobject}}
    for (hops, types, name), value in zip(plan.steps, row, strict=True):
        target = record
        for hop, type_name in zip(hops, types, strict=True):
            child = target.get(hop)
            if child is None:
                child = target[hop] = {"attributes": {"type": type_name}}
            target = child
        target[name] = _epoch_ms(value)
    _finish_parents(record, url_prefix)
    return record


def _finish_parents(node: dict[str, Any], url_prefix: str) -> bool:
    """Parents without any value become null; records with an Id get their url."""
    has_value = False
    for key, value in list(node.items()):
        if key == "attributes":
            continue
        if isinstance(value, dict):
            if _finish_parents(value, url_prefix):
                has_value = True
            else:
                node[key] = None
        elif value is not None:
            has_value = True
    record_id = node.get("Id")
    if isinstance(record_id, str) and record_id:
        node["attributes"]["url"] = f"{url_prefix}/sobjects/{node['attributes']['type']}/" \
                                    f"{record_id}"
    return has_value


def _xml_value(value: Any) -> str:
    return escape(format_value(value))


def _xml_record(plan: RecordPlan, row: Sequence[Any]) -> str:
    tree: dict[str, Any] = {}
    for (hops, types, name), value in zip(plan.steps, row, strict=True):
        target = tree
        for hop, type_name in zip(hops, types, strict=True):
            target = target.setdefault(("parent", hop), {"__type__": type_name})
        target[("field", name)] = value
    return f'<records xsi:type="sObject"><type>{escape(plan.sobject)}</type>' \
           f"{_xml_children(tree)}</records>"


def _xml_children(tree: dict[Any, Any]) -> str:
    parts = []
    for key, value in tree.items():
        if key == "__type__":
            continue
        kind, name = key
        if kind == "parent":
            inner = _xml_children(value)
            if all(v is None for k, v in _leaves(value)):
                parts.append(f'<{name} xsi:nil="true"/>')
            else:
                parts.append(f'<{name} xsi:type="sObject"><type>{escape(value["__type__"])}'
                             f"</type>{inner}</{name}>")
        elif value is None:
            parts.append(f'<{name} xsi:nil="true"/>')
        else:
            parts.append(f"<{name}>{_xml_value(value)}</{name}>")
    return "".join(parts)


def _leaves(tree: dict[Any, Any]) -> Iterable[tuple[Any, Any]]:
    for key, value in tree.items():
        if key == "__type__":
            continue
        if key[0] == "parent":
            yield from _leaves(value)
        else:
            yield key, value


def write_query_results(path: Path, content_type: str, plan: RecordPlan,
                        columns: Sequence[Any], rows: Iterable[Sequence[Any]],
                        api_version: str) -> int:
    """Write one query result file in the job's content type; returns the row count."""
    if content_type == "CSV":
        # Bulk 2.0's writer keeps the header apart (each page repeats it); a 1.0 result is
        # one whole file, header first.
        body = path.with_name(path.name + ".rows")
        result = write_result_file(body, [column.path for column in columns], rows,
                                   converters=converters_for([column.field.type
                                                              for column in columns]))
        with path.open("wb") as target, body.open("rb") as source:
            if result.row_count:
                target.write(result.header)
                shutil.copyfileobj(source, target)
            else:
                target.write(NO_RECORDS_CSV)
        body.unlink()
        return result.row_count
    count = 0
    url_prefix = f"/services/data/v{api_version}"
    with path.open("w", encoding="utf-8") as handle:
        if content_type == "JSON":
            handle.write("[")
            for row in rows:
                if count:
                    handle.write(",")
                handle.write(json.dumps(_json_record(plan, row, url_prefix)))
                count += 1
            handle.write("]")
        else:
            handle.write(f'{_DECLARATION}<queryResult xmlns="{XML_NS}" xmlns:xsi="{XSI_NS}">')
            for row in rows:
                handle.write(_xml_record(plan, row))
                count += 1
            handle.write("</queryResult>")
    return count
