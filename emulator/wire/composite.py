"""sObject Collections (`/composite/sobjects`): up to 200 records per call, one transaction.

Per-record results come back in input order and use `statusCode` (not `errorCode`) in their
errors (wire §4.6); allOrNone rolls the whole call back in SQLite.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from forcebeam.emulator.records import ids as ids_
from forcebeam.emulator.records.soql import SoqlError
from forcebeam.emulator.records.store import RecordStore, StoreError, WriteResult
from forcebeam.emulator.state import EmulatorState
from forcebeam.emulator.state.identity import Session
from forcebeam.emulator.wire.errors import (
    CodeFirstError,
    InvalidFieldError,
    JsonParserError,
    NotFoundError,
    StoreRefusedError,
)
from forcebeam.emulator.wire.http import (
    api_version_from,
    data_path,
    require_session,
    sf_error,
    sf_json,
)
from forcebeam.emulator.wire.rest import (
    FIELD_NAME_RE,
    RecordShaper,
    lock_failure_hook,
    read_json,
    records_store,
    run_blocking,
)

MAX_RECORDS = 200


def _result_json(result: WriteResult, with_created: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if result.id is not None:
        body["id"] = result.id
    body["success"] = result.success
    body["errors"] = [e.as_json() for e in result.errors]
    if with_created and result.success:
        body["created"] = bool(result.created)
    return body


def _too_many(count: int) -> web.Response | None:
    if count > MAX_RECORDS:
        return sf_error(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more "
                        f"than {MAX_RECORDS} records into this call")
    return None


def _body_records(body: Any) -> tuple[list[dict[str, Any]], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list) \
            or not all(isinstance(r, dict) for r in body["records"]):
        raise CodeFirstError('Body must be {"allOrNone": bool, "records": [{"attributes": '
                             '{"type": "Account"}, ...}]}', code=JsonParserError.error_code)
    return body["records"], bool(body.get("allOrNone", False))


def _type_of(record: dict[str, Any], store: RecordStore) -> str | None:
    attributes = record.get("attributes")
    if isinstance(attributes, dict) and attributes.get("type"):
        return str(attributes["type"])
    record_id = record.get("Id") or record.get("id")
    return store.object_for_id(record_id) if record_id else None


async def _write(request: web.Request, session: Session, operation: str,
                 items: list[tuple[str | None, dict[str, Any]]], all_or_none: bool,
                 external_id_field: str | None = None) -> list[WriteResult]:
    store = records_store(request)
    fail_row = lock_failure_hook(request)
    try:
        return await run_blocking(lambda: store.write_mixed(
            operation, items, external_id_field=external_id_field, all_or_none=all_or_none,
            fail_row=fail_row, user_id=session.user_id))
    except StoreError as error:
        raise StoreRefusedError.of(error.code, error.message) from None


async def _write_body_records(request: web.Request, operation: str) -> web.Response:
    """POST (insert) and PATCH (update) take the same body: typed records, allOrNone."""
    api_version_from(request)
    session = require_session(request, api="rest", kind="composite")
    store = records_store(request)
    records, all_or_none = _body_records(await read_json(request))
    if (refused := _too_many(len(records))) is not None:
        return refused
    items = [(_type_of(r, store), r) for r in records]
    results = await _write(request, session, operation, items, all_or_none)
    return sf_json([_result_json(r, False) for r in results])


async def create(request: web.Request) -> web.Response:
    return await _write_body_records(request, "insert")


async def update(request: web.Request) -> web.Response:
    return await _write_body_records(request, "update")


async def delete(request: web.Request) -> web.Response:
    api_version_from(request)
    session = require_session(request, api="rest", kind="composite")
    store = records_store(request)
    ids = [i for i in request.query.get("ids", "").split(",") if i.strip()]
    if not ids:
        return sf_error(400, "MISSING_ARGUMENT", "ids parameter is required")
    if (refused := _too_many(len(ids))) is not None:
        return refused
    all_or_none = request.query.get("allOrNone", "").lower() == "true"
    items = [(store.object_for_id(i.strip()) or "", {"Id": i.strip()}) for i in ids]
    results = await _write(request, session, "delete", items, all_or_none)
    for result, (name, record) in zip(results, items, strict=True):
        if not name and not result.success:
            result.errors[0].status_code = "MALFORMED_ID"
            result.errors[0].message = f"malformed id {record['Id']}"
    return sf_json([_result_json(r, False) for r in results])


async def upsert(request: web.Request) -> web.Response:
    api_version_from(request)
    session = require_session(request, api="rest", kind="composite")
    store = records_store(request)
    obj = store.schema.object(request.match_info["sobject"])
    if obj is None:
        raise NotFoundError()
    records, all_or_none = _body_records(await read_json(request))
    if (refused := _too_many(len(records))) is not None:
        return refused
    items: list[tuple[str | None, dict[str, Any]]] = [(obj.name, r) for r in records]
    results = await _write(request, session, "upsert", items, all_or_none,
                           external_id_field=request.match_info["field"])
    return sf_json([_result_json(r, True) for r in results])


async def _retrieve(request: web.Request, ids: list[str], fields: list[str]) -> web.Response:
    version = api_version_from(request)
    require_session(request, api="rest", kind="composite")
    store = records_store(request)
    obj = store.schema.object(request.match_info["sobject"])
    if obj is None:
        raise NotFoundError()
    if not fields or not ids:
        return sf_error(400, "MISSING_ARGUMENT", "ids and fields are both required")
    if (refused := _too_many(len(ids))) is not None:
        return refused
    bad = [name for name in fields if not FIELD_NAME_RE.fullmatch(name)]
    if bad:
        return InvalidFieldError(f"No such column '{bad[0]}' on entity '{obj.name}'").response()
    wanted = [i for i in ids if store.object_for_id(i) == obj.name]

    def fetch() -> list[dict[str, Any] | None]:
        found: dict[str, dict[str, Any]] = {}
        if wanted:
            quoted = ", ".join(f"'{i}'" for i in wanted)  # well-formed ids only
            result = store.execute(f"SELECT Id, {', '.join(fields)} FROM {obj.name} "  # noqa: S608
                                   f"WHERE Id IN ({quoted})", count_total=False)
            shaper = RecordShaper(store.schema, obj, result.columns[1:], version)
            for row in result.rows:
                found[row[0]] = shaper.record(row[1:], row[0])
        return [found.get(ids_.normalize(i)) if i in wanted else None for i in ids]

    try:
        return sf_json(await run_blocking(fetch))
    except SoqlError as error:
        return sf_error(400, error.code, error.message)


async def retrieve_get(request: web.Request) -> web.Response:
    ids = [i.strip() for i in request.query.get("ids", "").split(",") if i.strip()]
    fields = [f.strip() for f in request.query.get("fields", "").split(",") if f.strip()]
    return await _retrieve(request, ids, fields)


async def retrieve_post(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        return JsonParserError('Body must be {"ids": [...], "fields": [...]}').response()
    return await _retrieve(request, [str(i) for i in body.get("ids") or []],
                           [str(f) for f in body.get("fields") or []])


def register(app: web.Application, state: EmulatorState) -> None:
    router = app.router
    for path in ("composite/sobjects", "composite/sobjects/"):
        router.add_post(data_path(path), create)
        router.add_patch(data_path(path), update)
        router.add_delete(data_path(path), delete)
    router.add_get(data_path("composite/sobjects/{sobject}"), retrieve_get)
    router.add_post(data_path("composite/sobjects/{sobject}"), retrieve_post)
    router.add_patch(data_path("composite/sobjects/{sobject}/{field}"), upsert)
