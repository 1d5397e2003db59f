"""REST API records resources: resource list, describe, sObject CRUD, query/queryAll paging.

Wire shapes follow salesforce-wire.md §4; records live in `state.records` (RecordStore), query
locators in `state.query_cursors` (`emulator.state.query_cursors`): each page re-runs the
query from the cursor's keyset position or offset, so a 1M-row result costs no memory.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from typing import Any

from aiohttp import web

from forcebeam.emulator.records import ids
from forcebeam.emulator.records.schema import ObjectDef, Schema
from forcebeam.emulator.records.soql import SoqlError
from forcebeam.emulator.records.store import Column, QueryResult, RecordStore, StoreError
from forcebeam.emulator.records.validation import WriteError
from forcebeam.emulator.state import EmulatorState
from forcebeam.emulator.state.identity import Session
from forcebeam.emulator.state.query_cursors import QueryCursor
from forcebeam.emulator.wire import replication
from forcebeam.emulator.wire.errors import (
    EntityIsDeletedError,
    InvalidFieldError,
    InvalidQueryLocatorError,
    JsonParserError,
    MalformedIdError,
    MalformedQueryError,
    MethodNotAllowedError,
    NoSuchColumnError,
    NotFoundError,
    RecordNotFoundError,
    SalesforceError,
    StoreRefusedError,
)
from forcebeam.emulator.wire.http import (
    MAX_API_VERSION,
    api_version_from,
    data_path,
    require_session,
    sf_date,
    sf_datetime,
    sf_json,
    state_of,
)

DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
FIELD_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_BATCH_SIZE_RE = re.compile(r"batchSize\s*=\s*(\d+)", re.I)
_NOT_FOUND_CODES = {"INVALID_CROSS_REFERENCE_KEY"}
_APEX_TYPES = {"id": "Id", "reference": "Id", "boolean": "Boolean", "int": "Integer",
               "double": "Double", "currency": "Decimal", "percent": "Decimal", "date": "Date",
               "datetime": "Datetime", "address": "Address", "location": "Location"}


# ---------------------------------------------------------------------- record JSON shaping
def json_value(value: Any) -> Any:
    """Python store value -> REST JSON value (dates in Salesforce's formats)."""
    if isinstance(value, datetime):
        return sf_datetime(value)
    if isinstance(value, date):
        return sf_date(value)
    return value


def record_url(version: str, sobject: str, record_id: str) -> str:
    return f"/services/data/v{version}/sobjects/{sobject}/{record_id}"


class RecordShaper:
    """Turns store rows into REST records: attributes, nested parents, typed values."""

    def __init__(self, schema: Schema, sobject: ObjectDef, columns: list[Column],
                 version: str) -> None:
        self.sobject = sobject
        self.version = version
        self.plan: list[tuple[tuple[str, ...], tuple[str, ...], str]] = []
        self.id_position = next((i for i, c in enumerate(columns) if c.path == "Id"), None)
        for column in columns:
            hops = column.relationship_path
            types = []
            current = sobject
            for hop in hops:
                ref = current.relationships[hop.lower()]
                target = schema.object(ref.reference_to[0])
                assert target is not None
                types.append(target.name)
                current = target
            self.plan.append((hops, tuple(types), column.field.name))
        self.nested = any(hops for hops, _, _ in self.plan)

    def record(self, row: tuple[Any, ...], row_id: str | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {"type": self.sobject.name}
        if row_id:
            attributes["url"] = record_url(self.version, self.sobject.name, row_id)
        record: dict[str, Any] = {"attributes": attributes}
        if not self.nested:
            for (_, _, name), value in zip(self.plan, row, strict=True):
                record[name] = json_value(value)
            return record
        for (hops, types, name), value in zip(self.plan, row, strict=True):
            target = record
            for hop, type_name in zip(hops, types, strict=True):
                child = target.get(hop)
                if child is None:
                    child = {"attributes": {"type": type_name}}
                    target[hop] = child
                target = child
            target[name] = json_value(value)
        self._finish_parents(record)
        return record

    def _finish_parents(self, node: dict[str, Any]) -> bool:
        """Null out parents with no values (no parent row); add parent urls. True if any value."""
        has_value = False
        for key, value in list(node.items()):
            if key == "attributes":
                continue
            if isinstance(value, dict) and "attributes" in value:
                if self._finish_parents(value):
                    has_value = True
                    parent_id = value.get("Id")
                    if parent_id:
                        value["attributes"]["url"] = record_url(
                            self.version, value["attributes"]["type"], parent_id)
                else:
                    node[key] = None
            elif value is not None:
                has_value = True
        return has_value


def aggregate_records(result: QueryResult) -> list[dict[str, Any]]:
    """AggregateResult records: no url, one key per select item, values typed as JSON."""
    names = [column.name for column in result.columns]
    return [{"attributes": {"type": "AggregateResult"},
             **{name: json_value(value) for name, value in zip(names, row, strict=True)}}
            for row in result.rows]


def column_metadata(schema: Schema, result: QueryResult) -> dict[str, Any]:
    """`?columns=true` answer (what `sf data query` asks to lay out its table)."""
    obj = schema.object(result.sobject)
    assert obj is not None

    def meta(name: str, display: str, f: Any, joins: list[dict[str, Any]]) -> dict[str, Any]:
        kind = f.type if f is not None else "reference"
        return {"aggregate": False, "apexType": _APEX_TYPES.get(kind, "String") if f else None,
                "booleanType": kind == "boolean", "columnName": name, "custom": bool(f and
                                                                                   f.custom),
                "displayName": display, "foreignKeyName": None,
                "insertable": bool(f and f.createable), "joinColumns": joins,
                "numberType": kind in ("int", "double", "currency", "percent"),
                "textType": kind in ("string", "textarea", "picklist", "email", "phone", "url",
                                     "id", "reference"),
                "updatable": bool(f and f.updateable)}

    if result.is_aggregate:
        columns = []
        for column in result.columns:
            entry = meta(column.name, column.display, column.field, [])
            if column.aggregate:  # typed by the value, not the field: COUNT is an Integer
                entry.update(aggregate=True, apexType=_APEX_TYPES.get(column.type, "String"),
                             booleanType=False, custom=False, insertable=False,
                             updatable=False,
                             numberType=column.type in ("int", "double", "currency",
                                                        "percent"),
                             textType=column.type in ("string", "textarea", "picklist",
                                                      "email", "phone", "url", "id",
                                                      "reference"))
            columns.append(entry)
        return {"columnMetadata": columns, "entityName": "AggregateResult",
                "groupBy": any(not c.aggregate for c in result.columns), "idSelected": False,
                "keyPrefix": None}

    top: list[dict[str, Any]] = []
    for column in result.columns:
        hops = column.relationship_path
        level = top
        for depth, hop in enumerate(hops):
            existing = next((m for m in level if m["columnName"] == hop), None)
            if existing is None:
                existing = meta(hop, ".".join(hops[:depth + 1]), None, [])
                level.append(existing)
            level = existing["joinColumns"]
        level.append(meta(column.field.name, column.path, column.field, []))
    return {"columnMetadata": top, "entityName": obj.name, "groupBy": False,
            "idSelected": any(c.path == "Id" for c in result.columns),
            "keyPrefix": obj.key_prefix}


# ---------------------------------------------------------------------- query paging
def _batch_size(request: web.Request) -> int:
    match = _BATCH_SIZE_RE.search(request.headers.get("Sforce-Query-Options", ""))
    if not match:
        return DEFAULT_BATCH_SIZE
    return max(MIN_BATCH_SIZE, min(DEFAULT_BATCH_SIZE, int(match.group(1))))


def _page(store: RecordStore, cursor: QueryCursor, locator: str | None, offset: int,
          first: QueryResult | None = None) -> dict[str, Any]:
    """Build one page (runs in the executor)."""
    ordered = cursor.ordered
    if first is not None:
        result = first
    elif ordered is not None:
        result = store.execute(cursor.soql, include_deleted=cursor.include_deleted,
                               keys=ordered[offset:offset + cursor.batch_size],
                               count_total=False)
    else:
        result = store.execute(cursor.soql, include_deleted=cursor.include_deleted,
                               start=offset, max_rows=cursor.batch_size,
                               after_key=cursor.keys.get(offset), count_total=False)
    if result.is_count:
        return {"totalSize": cursor.total_size, "done": True, "records": []}
    if result.is_aggregate:  # every group in one page: aggregate queries have no queryMore
        return {"totalSize": result.total_size, "done": True,
                "records": aggregate_records(result)}
    obj = store.schema.object(result.sobject)
    assert obj is not None
    shaper = RecordShaper(store.schema, obj, result.columns, cursor.version)
    records = []
    for row in result.rows:
        row_id = ids.make_id(obj.key_prefix, result.last_key) if result.last_key else None
        records.append(shaper.record(row, row_id))
    next_offset = offset + len(records)
    page: dict[str, Any] = {"totalSize": cursor.total_size,
                            "done": next_offset >= cursor.total_size or not records}
    if not page["done"]:
        if result.keyset_capable:
            cursor.keys[next_offset] = result.last_key
        page["nextRecordsUrl"] = (f"/services/data/v{cursor.version}/query/"
                                  f"{locator}-{next_offset}")
    page["records"] = records
    return page


def _soql_error(error: SoqlError) -> web.Response:
    return SalesforceError(error.message, code=error.code).response()


async def run_blocking(func: Callable[[], Any]) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, func)


def records_store(request: web.Request) -> RecordStore:
    return state_of(request).records


async def query(request: web.Request, include_deleted: bool = False) -> web.Response:
    session = require_session(request, api="rest", kind="rest_query")
    version = api_version_from(request)
    store = records_store(request)
    soql = request.query.get("q")
    if not soql or not soql.strip():
        return MalformedQueryError("SOQL statements cannot be empty or null").response()
    batch = _batch_size(request)
    wants_columns = request.query.get("columns", "").lower() == "true"

    definitions = replication.field_definitions(store, soql)
    if definitions is not None:
        return sf_json(definitions)

    def first_page() -> dict[str, Any]:
        result = store.execute(soql, include_deleted=include_deleted, max_rows=batch,
                               user_id=session.user_id)
        if wants_columns:
            return column_metadata(store.schema, result)
        cursor = QueryCursor(soql, include_deleted, result.total_size, batch, version)
        locator = None
        if not (result.is_count or result.is_aggregate) and result.total_size > batch:
            if not result.keyset_capable:
                cursor.ordered = store.ordered_keys(soql, include_deleted=include_deleted)
            locator = state_of(request).query_cursors.add(cursor)
        return _page(store, cursor, locator, 0, first=result)

    try:
        return sf_json(await run_blocking(first_page))
    except SoqlError as error:
        return _soql_error(error)


async def query_more(request: web.Request) -> web.Response:
    require_session(request, api="rest", kind="rest_query")
    store = records_store(request)
    locator, _, offset_text = request.match_info["locator"].rpartition("-")
    cursor = state_of(request).query_cursors.get(locator) if offset_text.isdigit() else None
    if cursor is None:
        return InvalidQueryLocatorError().response()
    offset = int(offset_text)
    try:
        return sf_json(await run_blocking(partial(_page, store, cursor, locator, offset)))
    except SoqlError as error:
        return _soql_error(error)


# ---------------------------------------------------------------------- resources, describe
async def resources(request: web.Request) -> web.Response:
    session = require_session(request, api="rest", kind="rest_other")
    version = f"{MAX_API_VERSION}.0"
    if "version" in request.match_info:
        version = api_version_from(request)
    base = f"/services/data/v{version}"
    names = ("tooling", "metadata", "chatter", "tabs", "appMenu", "quickActions", "queryAll",
             "search", "identity", "composite", "parameterizedSearch", "recent", "limits",
             "process", "query", "compactLayouts", "sobjects", "actions", "support", "jobs")
    body = {name: f"{base}/{name}" for name in names}
    body["identity"] = (f"{state_of(request).urls.instance_url}/id/"
                        f"{session.org_id}/{session.user_id}")
    return sf_json(body)


def _object_or_404(store: RecordStore, name: str) -> ObjectDef:
    obj = store.schema.object(name)
    if obj is None:
        raise NotFoundError()
    return obj


async def describe_global(request: web.Request) -> web.Response:
    require_session(request, api="rest", kind="rest_describe")
    return sf_json(records_store(request).schema.global_describe(api_version_from(request)))


async def sobject_basic(request: web.Request) -> web.Response:
    require_session(request, api="rest", kind="rest_describe")
    store = records_store(request)
    obj = _object_or_404(store, request.match_info["sobject"])
    return sf_json({"objectDescribe": obj.global_describe(api_version_from(request)),
                    "recentItems": []})


async def describe(request: web.Request) -> web.Response:
    session = require_session(request, api="rest", kind="rest_describe")
    store = records_store(request)
    obj = _object_or_404(store, request.match_info["sobject"])
    body = obj.describe(api_version_from(request), store.schema)
    hidden = store.hidden_for(session.user_id)
    if hidden:  # field-level security: describe omits what the user cannot read
        body["fields"] = [f for f in body["fields"]
                          if (obj.name.lower(), f["name"].lower()) not in hidden]
    return sf_json(body)


# ---------------------------------------------------------------------- sObject CRUD
async def read_json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonParserError(f"Unexpected character: {exc}") from None


def _write_error_response(error: WriteError) -> web.Response:
    if error.status_code in _NOT_FOUND_CODES and error.fields in ([], ["Id"]):
        return RecordNotFoundError().response()
    if error.status_code == "ENTITY_IS_DELETED":
        return EntityIsDeletedError().response()
    return SalesforceError(error.message, error.fields, code=error.status_code).response()


async def _write(request: web.Request, session: Session, sobject: str, operation: str,
                 record: dict[str, Any], external_id_field: str | None = None) -> Any:
    store = records_store(request)
    fail_row = lock_failure_hook(request)
    try:
        results = await run_blocking(lambda: store.write(sobject, operation, [record],
                                                         external_id_field=external_id_field,
                                                         fail_row=fail_row,
                                                         user_id=session.user_id))
    except StoreError as error:
        raise StoreRefusedError.of(error.code, error.message) from None
    return results[0]


def lock_failure_hook(request: web.Request) -> Callable[[int], WriteError | None] | None:
    """The fault injector's UNABLE_TO_LOCK_ROW roll for each written row (None if off)."""
    return state_of(request).faults.lock_failure_hook()


def _record_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise JsonParserError("The request body must be a JSON object of field names and "
                              "values")
    return body


async def create(request: web.Request) -> web.Response:
    session = require_session(request, api="rest", kind="rest_sobject")
    store = records_store(request)
    obj = _object_or_404(store, request.match_info["sobject"])
    body = _record_body(await read_json(request))
    if body.get("Id") not in (None, ""):
        return InvalidFieldError(
            "The Id field should not be specified in the sobject data.").response()
    result = await _write(request, session, obj.name, "insert", body)
    if not result.success:
        return _write_error_response(result.errors[0])
    return sf_json({"id": result.id, "success": True, "errors": []}, status=201)


def _retrieve(store: RecordStore, obj: ObjectDef, record_id: str, fields: list[str] | None,
              version: str, user_id: str | None = None) -> dict[str, Any] | None:
    hidden = store.hidden_for(user_id)  # field-level security: not in the default field list
    names = fields or [f.name for f in obj.field_list
                       if (obj.name.lower(), f.name.lower()) not in hidden]
    # names are checked against FIELD_NAME_RE and the id is well-formed: nothing to inject
    soql = f"SELECT {', '.join(names)} FROM {obj.name} WHERE Id = '{record_id}'"  # noqa: S608
    result = store.execute(soql, include_deleted=True, count_total=False, user_id=user_id)
    shaper = RecordShaper(store.schema, obj, result.columns, version)
    for row in result.rows:
        return shaper.record(row, record_id)
    return None


def _parse_fields(request: web.Request) -> list[str] | None:
    raw = request.query.get("fields")
    if not raw:
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    bad = [name for name in names if not FIELD_NAME_RE.fullmatch(name)]
    if bad:
        raise NoSuchColumnError(bad[0])
    return names


def _checked_id(obj: ObjectDef, value: str) -> str:
    if not ids.is_well_formed(value):
        raise NotFoundError()
    if value[:3] != obj.key_prefix:
        raise MalformedIdError(f"{obj.label} ID: id value of incorrect type: {value}")
    return ids.normalize(value)


async def get_record(request: web.Request) -> web.Response:
    session = require_session(request, api="rest", kind="rest_sobject")
    store = records_store(request)
    obj = _object_or_404(store, request.match_info["sobject"])
    record_id = _checked_id(obj, request.match_info["record_id"])
    version = api_version_from(request)
    state = await run_blocking(lambda: store.record_state(obj.name, record_id))
    if state is None:
        return RecordNotFoundError().response()
    if state == "deleted":
        return EntityIsDeletedError().response()
    return await _record_response(request, store, obj, record_id, version, session.user_id)


async def _record_response(request: web.Request, store: RecordStore, obj: ObjectDef, record_id: str,
                           version: str, user_id: str | None = None) -> web.Response:
    """One record as GET by Id and GET by external id both answer it (`?fields=` honoured)."""
    try:
        fields = _parse_fields(request)
        record = await run_blocking(lambda: _retrieve(store, obj, record_id, fields, version,
                                                      user_id))
    except SoqlError as error:
        return _soql_error(error)
    return sf_json(record)


async def update_record(request: web.Request) -> web.Response:
    session = require_session(request, api="rest", kind="rest_sobject")
    store = records_store(request)
    obj = _object_or_404(store, request.match_info["sobject"])
    record_id = _checked_id(obj, request.match_info["record_id"])
    body = _record_body(await read_json(request))
    result = await _write(request, session, obj.name, "update", {**body, "Id": record_id})
    if not result.success:
        return _write_error_response(result.errors[0])
    return web.Response(status=204)


async def delete_record(request: web.Request) -> web.Response:
    session = require_session(request, api="rest", kind="rest_sobject")
    store = records_store(request)
    obj = _object_or_404(store, request.match_info["sobject"])
    record_id = _checked_id(obj, request.match_info["record_id"])
    result = await _write(request, session, obj.name, "delete", {"Id": record_id})
    if not result.success:
        return _write_error_response(result.errors[0])
    return web.Response(status=204)


async def post_record(request: web.Request) -> web.Response:
    """`POST /sobjects/X/{id}?_HttpMethod=PATCH` (clients without PATCH)."""
    if request.query.get("_HttpMethod", "").upper() == "PATCH":
        return await update_record(request)
    if request.query.get("_HttpMethod", "").upper() == "DELETE":
        return await delete_record(request)
    raise MethodNotAllowedError("POST", "GET,PATCH,DELETE")


def _multiple_choices(version: str, obj: ObjectDef, matches: list[str]) -> web.Response:
    return sf_json([record_url(version, obj.name, m) for m in matches], status=300)


async def _external_matches(request: web.Request, store: RecordStore, obj: ObjectDef
                            ) -> tuple[str, str, list[str]]:
    field_name = request.match_info["field"]
    value = request.match_info["value"]
    try:
        matches = await run_blocking(lambda: store.find_ids(obj.name, field_name, value))
    except StoreError as error:
        raise NotFoundError(error.message) from None
    return field_name, value, matches


async def get_by_external_id(request: web.Request) -> web.Response:
    session = require_session(request, api="rest", kind="rest_sobject")
    store = records_store(request)
    obj = _object_or_404(store, request.match_info["sobject"])
    version = api_version_from(request)
    _, _, matches = await _external_matches(request, store, obj)
    if not matches:
        return RecordNotFoundError().response()
    if len(matches) > 1:
        return _multiple_choices(version, obj, matches)
    return await _record_response(request, store, obj, matches[0], version, session.user_id)


async def upsert_by_external_id(request: web.Request) -> web.Response:
    session = require_session(request, api="rest", kind="rest_sobject")
    store = records_store(request)
    obj = _object_or_404(store, request.match_info["sobject"])
    version = api_version_from(request)
    body = _record_body(await read_json(request))
    field_name, value, matches = await _external_matches(request, store, obj)
    if len(matches) > 1:
        return _multiple_choices(version, obj, matches)
    if not matches and request.query.get("updateOnly", "").lower() == "true":
        return RecordNotFoundError().response()
    record = {k: v for k, v in body.items() if k.lower() != field_name.lower()}
    record[field_name] = value
    if field_name.lower() == "id" and not matches:
        record.pop(field_name)
        result = await _write(request, session, obj.name, "insert", record)
    else:
        result = await _write(request, session, obj.name, "upsert", record,
                              external_id_field=field_name)
    if not result.success:
        return _write_error_response(result.errors[0])
    if float(version) < 46:
        return web.Response(status=201 if result.created else 204)
    return sf_json({"id": result.id, "success": True, "errors": [], "created": result.created},
                   status=201 if result.created else 200)


def register(app: web.Application, state: EmulatorState) -> None:
    router = app.router
    router.add_get("/services/data/latest", resources)
    router.add_get("/services/data/latest/", resources)
    router.add_get(data_path(), resources)
    router.add_get(data_path() + "/", resources)
    for suffix, include_deleted in (("query", False), ("queryAll", True)):
        handler = partial(query, include_deleted=include_deleted)
        router.add_get(data_path(suffix), handler)
        router.add_get(data_path(suffix + "/"), handler)
        router.add_get(data_path(suffix + "/{locator}"), query_more)
    router.add_get(data_path("sobjects"), describe_global)
    router.add_get(data_path("sobjects/"), describe_global)
    router.add_get(data_path("sobjects/{sobject}"), sobject_basic)
    router.add_get(data_path("sobjects/{sobject}/"), sobject_basic)
    router.add_post(data_path("sobjects/{sobject}"), create)
    router.add_post(data_path("sobjects/{sobject}/"), create)
    router.add_get(data_path("sobjects/{sobject}/describe"), describe)
    router.add_get(data_path("sobjects/{sobject}/describe/"), describe)
    router.add_get(data_path("sobjects/{sobject}/deleted/"), replication.get_deleted)
    router.add_get(data_path("sobjects/{sobject}/deleted"), replication.get_deleted)
    router.add_get(data_path("sobjects/{sobject}/{record_id}"), get_record)
    router.add_patch(data_path("sobjects/{sobject}/{record_id}"), update_record)
    router.add_delete(data_path("sobjects/{sobject}/{record_id}"), delete_record)
    router.add_post(data_path("sobjects/{sobject}/{record_id}"), post_record)
    router.add_get(data_path("sobjects/{sobject}/{field}/{value}"), get_by_external_id)
    router.add_patch(data_path("sobjects/{sobject}/{field}/{value}"), upsert_by_external_id)
    router.add_post(data_path("sobjects/{sobject}/{field}/{value}"), upsert_by_external_id)
