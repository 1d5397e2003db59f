"""The org's records in SQLite: SOQL queries in, per-row write results out.

Thread-safe for the server's executor: every query opens its own read connection (so a
result can be streamed from any thread while others write), and writes go through one
writer connection under a lock, each call one transaction (WAL mode keeps readers going).

The built database is cached in the data dir under (records, seed, schema version): a
restart with the same arguments opens it instantly, keeping earlier writes like a real org.
"""

from __future__ import annotations

import copy
import os
import sqlite3
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from forcebeam.emulator.records import ids
from forcebeam.emulator.records.generator import populate
from forcebeam.emulator.records.schema import SCHEMA, SCHEMA_VERSION, FieldDef, ObjectDef, Schema
from forcebeam.emulator.records.soql import ParsedQuery, SoqlError, parse
from forcebeam.emulator.records.soql.compiler import Column, CompiledQuery, compile_query
from forcebeam.emulator.records.validation import (
    RowRefusedError,
    WriteError,
    check_id,
    check_writable,
    coerce,
    missing_required,
    refuse,
)
from forcebeam.emulator.records.values import datetime_to_ms, decoder, sql_type
from forcebeam.emulator.state.identity import INTEGRATION_USER_ID

__all__ = ["Column", "ParsedQuery", "QueryResult", "RecordStore", "SoqlError", "StoreError",
           "WriteError", "WriteResult", "parse"]

OPERATIONS = ("insert", "update", "upsert", "delete", "harddelete")
ROLLED_BACK = WriteError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header")
# Id: lookups and parent joins; SystemModstamp: incremental extracts; external ids: upsert.
# (Every index costs seconds on a 1M-row build, so only what a hot path uses.)
INDEXED_FIELDS = ("Id", "SystemModstamp", "External_Id__c", "Legacy_Id__c", "Username")
_PERSON_OBJECTS = frozenset({"Contact", "Lead", "User"})


class StoreError(Exception):
    """A whole request is wrong (unknown object or external id field): `code` + message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class WriteResult:
    id: str | None
    success: bool
    created: bool | None = None
    errors: list[WriteError] = field(default_factory=list)


@dataclass
class QueryResult:
    """Rows stream from SQLite; `last_key` is the keyset position after the last row read."""

    sobject: str
    columns: list[Column]
    is_count: bool
    total_size: int
    rows: Iterator[tuple[Any, ...]]
    keyset_capable: bool = False  # no ORDER BY: pages can resume with `after_key`
    last_key: int | None = None


def _q(name: str) -> str:
    return '"' + name + '"'


def database_file(data_dir: Path, records: int, seed: int) -> Path:
    return data_dir / f"records-v{SCHEMA_VERSION}-n{records}-s{seed}.sqlite"


def _create_tables(conn: sqlite3.Connection, schema: Schema) -> None:
    for obj in schema.object_list:
        columns = ", ".join(f"{_q(f.name)} {sql_type(f.type)}" for f in obj.storage_fields)
        conn.execute(f"CREATE TABLE {_q(obj.table)} (_row INTEGER PRIMARY KEY, {columns})")
    conn.execute("CREATE TABLE _meta (key TEXT PRIMARY KEY, value TEXT)")


def _create_indexes(conn: sqlite3.Connection, schema: Schema) -> None:
    for obj in schema.object_list:
        for name in INDEXED_FIELDS:
            f = obj.field(name)
            if f is not None:
                unique = "UNIQUE " if name == "Id" else ""
                # text compares case-insensitively (as Salesforce does): the index must too
                collate = " COLLATE NOCASE" if f.type not in ("id", "reference", "datetime") \
                    else ""
                conn.execute(f"CREATE {unique}INDEX {_q(f'{obj.table}_{name}')} "
                             f"ON {_q(obj.table)} ({_q(name)}{collate})")


def build_database(path: Path, records: int, seed: int, schema: Schema = SCHEMA) -> None:
    """Generate the data set into `path` (via a temp file renamed at the end)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(f".building-{os.getpid()}")
    temp.unlink(missing_ok=True)
    conn = sqlite3.connect(temp, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-200000")
        conn.execute("BEGIN")
        _create_tables(conn, schema)
        populate(conn, records, seed, schema)
        _create_indexes(conn, schema)
        conn.execute("INSERT INTO _meta VALUES ('complete', '1')")
        conn.execute("COMMIT")
    finally:
        conn.close()
    os.replace(temp, path)


class RecordStore:
    """SQLite-backed records of the emulated org (see the module docstring)."""

    def __init__(self, data_dir: Path | str, records: int = 1000, seed: int = 42, *,
                 schema: Schema = SCHEMA, now: Callable[[], datetime] | None = None,
                 default_user_id: str = INTEGRATION_USER_ID) -> None:
        """Open the store for `records` Accounts (others proportional) in `data_dir`,
        generating and caching the database first if this (records, seed) is new."""
        self.path = database_file(Path(data_dir), records, seed)
        if not self.path.exists():
            build_database(self.path, records, seed, schema)
        # A private copy: fields can be added/removed at run time (admin API, schema drift).
        self.schema = copy.deepcopy(schema)
        self.now = now or (lambda: datetime.now(timezone.utc))
        # Field-level security: user id -> {(object, field)} (lower-cased) it cannot read.
        self.hidden_fields: dict[str, set[tuple[str, str]]] = {}
        self.default_user_id = default_user_id
        self._lock = threading.RLock()
        self._writer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.execute("PRAGMA synchronous=NORMAL")
        self._next_serial: dict[str, int] = {}
        self.deleted_log = DeletedLog(self._writer, self._lock, self.now)
        self.deleted_log.backfill(self.schema)

    def close(self) -> None:
        with self._lock:
            self._writer.close()

    # ------------------------------------------------------------------ reads
    def _reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False)
        conn.execute("PRAGMA query_only=ON")
        return conn

    def compile(self, soql: str, user_id: str | None = None) -> CompiledQuery:
        return compile_query(parse(soql), self.schema, soql, self.now().date(),
                             hidden=self.hidden_for(user_id))

    def hidden_for(self, user_id: str | None) -> frozenset[tuple[str, str]]:
        """(object, field) pairs field-level security hides from `user_id`."""
        return frozenset(self.hidden_fields.get(user_id or "", ()))

    def set_field_access(self, user_id: str, sobject: str, field_name: str,
                         readable: bool) -> None:
        obj = self._object(sobject)
        f = obj.field(field_name)
        if f is None:
            raise StoreError("INVALID_FIELD", f"No such column '{field_name}' on {obj.name}")
        hidden = self.hidden_fields.setdefault(user_id, set())
        key = (obj.name.lower(), f.name.lower())
        if readable:
            hidden.discard(key)
        else:
            hidden.add(key)

    def add_field(self, sobject: str, field_def: FieldDef) -> FieldDef:
        """Create a custom field now (as an admin would in Setup): new column, in describe."""
        obj = self._object(sobject)
        if not field_def.name.endswith("__c") or obj.field(field_def.name) is not None:
            raise StoreError("DUPLICATE_DEVELOPER_NAME" if obj.field(field_def.name)
                             else "INVALID_FIELD",
                             f"custom field names end in __c and are unique: {field_def.name}")
        with self._lock:
            try:
                self._writer.execute(f"ALTER TABLE {_q(obj.table)} ADD COLUMN "  # noqa: S608
                                     f"{_q(field_def.name)} {sql_type(field_def.type)}")
            except sqlite3.OperationalError as error:
                if "duplicate column" not in str(error):  # re-created after a removal
                    raise
            obj.field_list.append(field_def)
            obj.reindex()
        return field_def

    def remove_field(self, sobject: str, field_name: str) -> None:
        """Delete a custom field: it leaves describe and queries (its column is just unused)."""
        obj = self._object(sobject)
        f = obj.field(field_name)
        if f is None or not f.custom:
            raise StoreError("INVALID_FIELD", f"no custom field {field_name} on {obj.name}")
        with self._lock:
            obj.field_list.remove(f)
            obj.reindex()

    def execute(self, soql: str, *, include_deleted: bool = False, start: int = 0,
                max_rows: int | None = None, after_key: int | None = None,
                keys: Sequence[int] | None = None, count_total: bool = True,
                user_id: str | None = None) -> QueryResult:
        """Run SOQL; raises SoqlError like Salesforce.

        Paging helpers (REST query-more): `start`/`max_rows` window the result; `after_key`
        resumes a keyset scan (only when `keyset_capable`, i.e. no ORDER BY); `keys` (from
        `ordered_keys`) fetches exactly those rows, in that order, without re-sorting.
        `user_id` applies that user's field-level security (hidden fields are INVALID_FIELD).
        """
        compiled = self.compile(soql, user_id)
        where, params = self._where(compiled, include_deleted)
        total = 0
        if count_total or compiled.is_count:
            conn = self._reader()
            try:
                count = conn.execute(f"SELECT COUNT(*) {compiled.from_sql}{where}",  # noqa: S608
                                     params).fetchone()[0]
            finally:
                conn.close()
            total = max(0, count - (compiled.offset or 0))
            if compiled.limit is not None:
                total = min(total, compiled.limit)
        keyset = not compiled.order_sql
        result = QueryResult(compiled.sobject.name, compiled.columns, compiled.is_count, total,
                             iter(()), keyset_capable=keyset)
        if compiled.is_count:
            return result
        if keys is not None:
            marks = ", ".join("?" for _ in keys)
            where = (where + " AND " if where else " WHERE ") + f"t0._row IN ({marks})"
            sql = (f"SELECT {', '.join(compiled.select_exprs)}, t0._row "  # noqa: S608
                   f"{compiled.from_sql}{where}")
            result.rows = self._in_key_order(result, self._stream(result, sql,
                                                                  [*params, *keys]), keys)
            return result
        remaining = None if compiled.limit is None else max(0, compiled.limit - start)
        if after_key is not None and keyset:
            where = (where + " AND " if where else " WHERE ") + "t0._row > ?"
            params.append(after_key)
            offset = 0
        else:
            offset = (compiled.offset or 0) + start
        limits = [n for n in (remaining, max_rows) if n is not None]
        limit = min(limits) if limits else -1
        order = ", ".join([*compiled.order_sql, "t0._row"])
        sql = (f"SELECT {', '.join(compiled.select_exprs)}, t0._row "  # noqa: S608
               f"{compiled.from_sql}{where} ORDER BY {order} LIMIT ? OFFSET ?")
        result.rows = self._stream(result, sql, [*params, limit, offset])
        return result

    def ordered_keys(self, soql: str, *, include_deleted: bool = False) -> array:
        """Row keys of the whole result in ORDER BY order (8 bytes a row, no values): lets
        REST page through a sorted result by sorting once instead of once per page."""
        compiled = self.compile(soql)
        where, params = self._where(compiled, include_deleted)
        order = ", ".join([*compiled.order_sql, "t0._row"])
        limit = -1 if compiled.limit is None else compiled.limit
        keys = array("q")
        conn = self._reader()
        try:
            cursor = conn.execute(f"SELECT t0._row {compiled.from_sql}{where} "  # noqa: S608
                                  f"ORDER BY {order} LIMIT ? OFFSET ?",
                                  [*params, limit, compiled.offset or 0])
            while batch := cursor.fetchmany(10_000):
                keys.extend(row[0] for row in batch)
        finally:
            conn.close()
        return keys

    @staticmethod
    def _where(compiled: CompiledQuery, include_deleted: bool) -> tuple[str, list[Any]]:
        conditions: list[str] = []
        if compiled.has_is_deleted and not include_deleted:
            conditions.append('t0."IsDeleted" = 0')
        if compiled.where_sql:
            conditions.append(compiled.where_sql)
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        return where, list(compiled.params)

    @staticmethod
    def _in_key_order(result: QueryResult, rows: Iterator[tuple[Any, ...]],
                      keys: Sequence[int]) -> Iterator[tuple[Any, ...]]:
        by_key = {}
        for row in rows:
            by_key[result.last_key] = row
        for key in keys:
            if key in by_key:
                result.last_key = key
                yield by_key[key]

    def _stream(self, result: QueryResult, sql: str, params: list[Any]
                ) -> Iterator[tuple[Any, ...]]:
        plan: list[tuple[int, Any, FieldDef]] = []
        position = 0
        for column in result.columns:
            width = len(column.field.components) if column.field.is_compound else 1
            plan.append((position, width, column.field))
            position += width
        simple = all(width == 1 for _, width, _ in plan)
        decoders = [decoder(f.type) for _, _, f in plan]
        conn = self._reader()
        try:
            cursor = conn.execute(sql, params)
            while True:
                batch = cursor.fetchmany(1000)
                if not batch:
                    break
                for raw in batch:
                    result.last_key = raw[-1]
                    if simple:
                        yield tuple(None if v is None else d(v)
                                    for v, d in zip(raw, decoders, strict=False))
                    else:
                        yield tuple(self._decode_compound(raw, plan, decoders))
        finally:
            conn.close()

    @staticmethod
    def _decode_compound(raw: tuple[Any, ...], plan: list[tuple[int, Any, FieldDef]],
                         decoders: list[Callable[[Any], Any]]) -> Iterator[Any]:
        for (position, width, f), decode in zip(plan, decoders, strict=True):
            if width == 1 and not f.is_compound:
                value = raw[position]
                yield None if value is None else decode(value)
                continue
            parts = {key: raw[position + i] for i, (key, _) in enumerate(f.components)}
            if all(v is None for v in parts.values()):
                yield None
            elif f.type == "address":
                yield {"city": parts["city"], "country": parts["country"],
                       "geocodeAccuracy": None, "latitude": None, "longitude": None,
                       "postalCode": parts["postalCode"], "state": parts["state"],
                       "street": parts["street"]}
            else:   # location: numbers, as Salesforce's REST API answers them
                yield {key: None if value is None else float(value)
                       for key, value in parts.items()}

    def record_state(self, sobject: str, record_id: str) -> str | None:
        """'live', 'deleted' or None (no such row) for an 18-char id of `sobject`."""
        obj = self._object(sobject)
        with self._lock:
            row = self._row(obj, record_id)
        if row is None:
            return None
        return "deleted" if row.get("IsDeleted") else "live"

    def find_ids(self, sobject: str, field_name: str, value: Any) -> list[str]:
        """Live ids whose `field_name` equals `value` (upsert / get by external id)."""
        obj = self._object(sobject)
        f = self._external_field(obj, field_name)
        with self._lock:
            return self._match_ids(obj, f, value)

    # ------------------------------------------------------------------ writes
    def write(self, sobject: str, operation: str, records: list[dict[str, Any]], *,
              external_id_field: str | None = None, all_or_none: bool = False,
              fail_row: Callable[[int], WriteError | None] | None = None,
              user_id: str | None = None) -> list[WriteResult]:
        """Apply one DML call; one WriteResult per input record, in input order."""
        obj = self._object(sobject)
        return self.write_mixed(operation, [(obj.name, r) for r in records],
                                external_id_field=external_id_field, all_or_none=all_or_none,
                                fail_row=fail_row, user_id=user_id)

    def write_mixed(self, operation: str, items: list[tuple[str | None, dict[str, Any]]], *,
                    external_id_field: str | None = None, all_or_none: bool = False,
                    fail_row: Callable[[int], WriteError | None] | None = None,
                    user_id: str | None = None) -> list[WriteResult]:
        """Like `write` for (sobject, record) pairs of several objects in one transaction
        (sObject Collections). A pair whose sobject is unknown fails with INVALID_TYPE."""
        op = operation.lower()
        if op not in OPERATIONS:
            raise StoreError("INVALID_OPERATION", f"Unknown operation: {operation}")
        user = user_id or self.default_user_id
        objects = [self.schema.object(name) if name else None for name, _ in items]
        ext_field = None
        duplicates: set[str] = set()
        if op == "upsert":
            first = next((o for o in objects if o is not None), None)
            if first is None:
                raise StoreError("NOT_FOUND", "upsert needs an sObject type")
            ext_field = self._external_field(first, external_id_field or "")
            duplicates = self._batch_duplicates(first, ext_field, [r for _, r in items])
        with self._lock:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                results = []
                for index, ((name, record), obj) in enumerate(zip(items, objects, strict=True)):
                    if obj is None:
                        results.append(WriteResult(None, False, None, [WriteError(
                            "INVALID_TYPE", f"sObject type '{name}' is not supported.")]))
                        continue
                    results.append(self._write_one(obj, op, record, index, ext_field,
                                                   duplicates, fail_row, user))
                if all_or_none and not all(r.success for r in results):
                    self._writer.execute("ROLLBACK")
                    return [r if not r.success else WriteResult(
                        None if op == "insert" else r.id, False, None, [ROLLED_BACK])
                        for r in results]
                self._writer.execute("COMMIT")
                return results
            except BaseException:
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK")
                raise

    def object_for_id(self, record_id: str) -> str | None:
        """The sObject name an id's key prefix belongs to (None if unknown/malformed)."""
        if not isinstance(record_id, str) or not ids.is_well_formed(record_id):
            return None
        obj = self.schema.by_prefix.get(record_id[:3])
        return obj.name if obj else None

    def _write_one(self, obj: ObjectDef, op: str, record: dict[str, Any], index: int,
                   ext_field: FieldDef | None, duplicates: set[str],
                   fail_row: Callable[[int], WriteError | None] | None,
                   user: str) -> WriteResult:
        given_id = _get(record, "Id")
        try:
            if fail_row is not None:
                injected = fail_row(index)
                if injected is not None:
                    raise RowRefusedError(injected)
            if op == "insert":
                return self._insert(obj, record, user)
            if op == "update":
                return self._update(obj, record, user)
            if op == "upsert":
                assert ext_field is not None
                return self._upsert(obj, record, ext_field, duplicates, user)
            return self._delete(obj, record, hard=op == "harddelete", user=user)
        except RowRefusedError as refused:
            keep_id = given_id if op != "insert" and isinstance(given_id, str) \
                and ids.is_well_formed(given_id) else None
            return WriteResult(keep_id and ids.normalize(keep_id), False, None,
                               [refused.error])

    def _values(self, obj: ObjectDef, record: dict[str, Any], creating: bool
                ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, raw in record.items():
            if key == "attributes" or (key.lower() == "id"):
                continue
            if "." in key or isinstance(raw, dict):
                ref, target_id = self._resolve_parent(obj, key, raw)
                check_writable(ref, creating)
                values[ref.name] = target_id
                continue
            f = obj.field(key)
            if f is None:
                raise refuse("INVALID_FIELD",
                             f"No such column '{key}' on sobject of type {obj.name}", [key])
            check_writable(f, creating)
            value = coerce(f, raw)
            if f.type == "reference" and value is not None:
                value = self._check_reference(f, value)
            values[f.name] = value
        return values

    def _resolve_parent(self, obj: ObjectDef, key: str, raw: Any) -> tuple[FieldDef, str | None]:
        """`Account.External_Id__c: X` (CSV) or `Account: {External_Id__c: X}` (JSON)."""
        if isinstance(raw, dict):
            relationship = key
            inner = [(k, v) for k, v in raw.items() if k != "attributes"]
            if len(inner) != 1:
                raise refuse("INVALID_FIELD", f"Invalid foreign key reference for {key}", [key])
            parent_field, value = inner[0]
        else:
            relationship, _, parent_field = key.partition(".")
            value = raw
        ref = obj.relationships.get(relationship.lower())
        if ref is None:
            raise refuse("INVALID_FIELD",
                         f"No such column '{key}' on sobject of type {obj.name}", [key])
        parent = self.schema.object(ref.reference_to[0])
        assert parent is not None
        target = parent.field(parent_field)
        if target is None or not (target.external_id or target.type == "id"):
            raise refuse("INVALID_FIELD", f"Field {parent_field} is not an external id or "
                         f"indexed field for {parent.name}", [ref.name])
        if value in (None, ""):
            return ref, None
        matches = self._match_ids(parent, target, value)
        if len(matches) != 1:
            raise refuse("INVALID_FIELD", f"Foreign key external ID: {value} not found for "
                         f"field {target.name} in entity {parent.name}", [ref.name])
        return ref, matches[0]

    def _check_reference(self, f: FieldDef, value: str) -> str:
        target = self.schema.object(f.reference_to[0])
        assert target is not None
        if not ids.is_well_formed(value) or value[:3] != target.key_prefix:
            raise refuse("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}",
                         [f.name])
        value = ids.normalize(value)
        row = self._row(target, value)
        if row is None or row.get("IsDeleted"):
            raise refuse("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
        return value

    def _check_unique(self, obj: ObjectDef, values: dict[str, Any], own_id: str | None) -> None:
        for f in obj.field_list:
            if not f.unique or values.get(f.name) is None:
                continue
            clash = [i for i in self._match_ids(obj, f, values[f.name]) if i != own_id]
            if clash:
                raise refuse("DUPLICATE_VALUE",
                             f"duplicate value found: {f.name} duplicates value on record with "
                             f"id: {clash[0]}", [f.name])

    def _insert(self, obj: ObjectDef, record: dict[str, Any], user: str) -> WriteResult:
        if _get(record, "Id") not in (None, ""):
            raise refuse("INVALID_FIELD", "The Id field should not be specified in the sobject "
                         "data.", ["Id"])
        values = self._values(obj, record, creating=True)
        for f in obj.storage_fields:
            if values.get(f.name) is not None:
                continue
            if f.name == "OwnerId":
                values[f.name] = user
            elif f.default_value is not None:
                values[f.name] = coerce(f, f.default_value)
            elif f.type == "boolean":
                values[f.name] = 0
        missing = missing_required(obj, values, creating=True)
        if missing:
            raise refuse("REQUIRED_FIELD_MISSING",
                         f"Required fields are missing: [{', '.join(missing)}]", missing)
        self._check_unique(obj, values, None)
        serial = self._serial(obj)
        record_id = ids.make_id(obj.key_prefix, serial)
        stamp = datetime_to_ms(self.now())
        values.update({"Id": record_id, "CreatedDate": stamp, "LastModifiedDate": stamp,
                       "SystemModstamp": stamp, "CreatedById": user, "LastModifiedById": user})
        if obj.has_is_deleted:
            values["IsDeleted"] = 0
        if obj.field("CaseNumber") is not None:
            values["CaseNumber"] = f"{serial:08d}"
        if obj.name in _PERSON_OBJECTS:
            values["Name"] = _full_name(values.get("FirstName"), values.get("LastName"))
        names = list(values)
        self._writer.execute(
            f"INSERT INTO {_q(obj.table)} (_row, {', '.join(_q(n) for n in names)}) "  # noqa: S608
            f"VALUES (?, {', '.join('?' for _ in names)})", [serial, *values.values()])
        return WriteResult(record_id, True, True, [])

    def _existing(self, obj: ObjectDef, record_id: Any) -> dict[str, Any]:
        if record_id in (None, ""):
            raise refuse("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        normalized = check_id(obj, record_id)
        row = self._row(obj, normalized)
        if row is None:
            raise refuse("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["Id"])
        if row.get("IsDeleted"):
            raise refuse("ENTITY_IS_DELETED", "entity is deleted", [])
        return row

    def _update(self, obj: ObjectDef, record: dict[str, Any], user: str,
                existing: dict[str, Any] | None = None) -> WriteResult:
        row = existing or self._existing(obj, _get(record, "Id"))
        values = self._values(obj, record, creating=False)
        missing = missing_required(obj, values, creating=False)
        if missing:
            raise refuse("REQUIRED_FIELD_MISSING",
                         f"Required fields are missing: [{', '.join(missing)}]", missing)
        self._check_unique(obj, values, row["Id"])
        if obj.name in _PERSON_OBJECTS and ({"FirstName", "LastName"} & values.keys()):
            values["Name"] = _full_name(values.get("FirstName", row.get("FirstName")),
                                        values.get("LastName", row.get("LastName")))
        stamp = max(datetime_to_ms(self.now()), row["SystemModstamp"] or 0)
        values.update({"LastModifiedDate": stamp, "SystemModstamp": stamp,
                       "LastModifiedById": user})
        assignments = ", ".join(f"{_q(n)} = ?" for n in values)
        self._writer.execute(f"UPDATE {_q(obj.table)} SET {assignments} "  # noqa: S608
                             "WHERE _row = ?", [*values.values(), row["_row"]])
        return WriteResult(row["Id"], True, False, [])

    def _upsert(self, obj: ObjectDef, record: dict[str, Any], ext_field: FieldDef,
                duplicates: set[str], user: str) -> WriteResult:
        key = _get(record, ext_field.name)
        if key in (None, ""):
            raise refuse("MISSING_ARGUMENT", f"{ext_field.name} not specified",
                         [ext_field.name])
        if ext_field.type == "id":
            if not ids.is_well_formed(str(key)):
                return self._insert(obj, {k: v for k, v in record.items()
                                          if k.lower() != "id"}, user)
            return self._update(obj, record, user)
        if str(key).lower() in duplicates:
            raise refuse("DUPLICATE_EXTERNAL_ID",
                         f"Duplicate external id specified: {key}", [ext_field.name])
        matches = self._match_ids(obj, ext_field, key)
        if len(matches) > 1:
            raise refuse("DUPLICATE_EXTERNAL_ID", f"{ext_field.name}: more than one record "
                         f"found for external id field: {matches}", [ext_field.name])
        body = {k: v for k, v in record.items() if k.lower() != "id"}
        if not matches:
            return self._insert(obj, body, user)
        row = self._row(obj, matches[0])
        assert row is not None
        return self._update(obj, body, user, existing=row)

    def _delete(self, obj: ObjectDef, record: dict[str, Any], *, hard: bool,
                user: str) -> WriteResult:
        record_id = _get(record, "Id")
        if record_id in (None, ""):
            raise refuse("MISSING_ARGUMENT", "Id not specified in a delete call", ["Id"])
        normalized = check_id(obj, record_id)
        row = self._row(obj, normalized)
        if row is None:
            raise refuse("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        if hard:
            self._writer.execute(f"DELETE FROM {_q(obj.table)} WHERE _row = ?",  # noqa: S608
                                 [row["_row"]])
            # A purge keeps the first deletion's date (soft, then emptied from the bin).
            self.deleted_log.record(obj.name, normalized, row["SystemModstamp"]
                                    if row.get("IsDeleted") else datetime_to_ms(self.now()))
            return WriteResult(normalized, True, None, [])
        if not obj.has_is_deleted:
            raise refuse("INSUFFICIENT_ACCESS_OR_READONLY",
                         "insufficient access rights on object id", [])
        if row.get("IsDeleted"):
            raise refuse("ENTITY_IS_DELETED", "entity is deleted", [])
        stamp = max(datetime_to_ms(self.now()), row["SystemModstamp"] or 0)
        self._writer.execute(
            f"UPDATE {_q(obj.table)} SET \"IsDeleted\" = 1, "  # noqa: S608
            "\"SystemModstamp\" = ?, \"LastModifiedDate\" = ?, \"LastModifiedById\" = ? "
            "WHERE _row = ?", [stamp, stamp, user, row["_row"]])
        self.deleted_log.record(obj.name, normalized, stamp)
        return WriteResult(normalized, True, None, [])

    def empty_recycle_bin(self, sobject: str, ids_: list[str] | None = None) -> list[str]:
        """Purge soft-deleted rows (all of `sobject`'s, or those ids) as emptying the Recycle
        Bin does: they leave queryAll, and stay in the deletion log (getDeleted)."""
        obj = self._object(sobject)
        if not obj.has_is_deleted:
            return []
        table = _q(obj.table)
        with self._lock:
            cursor = self._writer.execute(
                f"SELECT _row, \"Id\", \"SystemModstamp\" FROM {table} "  # noqa: S608
                "WHERE \"IsDeleted\" = 1")
            wanted = {ids.normalize(i) for i in ids_ or [] if ids.is_well_formed(i)}
            rows = [r for r in cursor.fetchall() if not ids_ or r[1] in wanted]
            self._writer.execute("BEGIN IMMEDIATE")
            for serial, record_id, stamp in rows:
                self.deleted_log.record(obj.name, record_id, stamp)
                self._writer.execute(f"DELETE FROM {table} WHERE _row = ?",  # noqa: S608
                                     [serial])
            self._writer.execute("COMMIT")
        return [r[1] for r in rows]

    def touch(self, sobject: str, ids_: list[str] | None = None, count: int | None = None,
              system_modstamp: datetime | None = None) -> list[str]:
        """Move SystemModstamp/LastModifiedDate of some rows (incremental-extract tests)."""
        obj = self._object(sobject)
        stamp = datetime_to_ms(system_modstamp or self.now())
        table = _q(obj.table)
        with self._lock:
            if ids_:
                wanted = [ids.normalize(i) for i in ids_ if ids.is_well_formed(i)]
                rows = [r for r in (self._row(obj, i) for i in wanted) if r is not None]
            else:
                live = ' WHERE "IsDeleted" = 0' if obj.has_is_deleted else ""
                cursor = self._writer.execute(
                    f"SELECT _row, \"Id\" FROM {table}{live} ORDER BY _row LIMIT ?",  # noqa: S608
                    [count or 0])
                rows = [{"_row": r[0], "Id": r[1]} for r in cursor.fetchall()]
            self._writer.execute("BEGIN IMMEDIATE")
            self._writer.executemany(
                f"UPDATE {table} SET \"SystemModstamp\" = ?, "  # noqa: S608
                "\"LastModifiedDate\" = ? WHERE _row = ?",
                [(stamp, stamp, r["_row"]) for r in rows])
            self._writer.execute("COMMIT")
        return [r["Id"] for r in rows]

    # ------------------------------------------------------------------ helpers
    def _object(self, sobject: str) -> ObjectDef:
        obj = self.schema.object(sobject)
        if obj is None:
            raise StoreError("NOT_FOUND", f"sObject type '{sobject}' is not supported.")
        return obj

    def _external_field(self, obj: ObjectDef, field_name: str) -> FieldDef:
        f = obj.field(field_name)
        if f is None or not (f.external_id or f.type == "id"):
            raise StoreError("NOT_FOUND", f"Provided external ID field does not exist or is "
                             f"not accessible: {field_name}")
        return f

    def _row(self, obj: ObjectDef, record_id: str) -> dict[str, Any] | None:
        cursor = self._writer.execute(
            f"SELECT * FROM {_q(obj.table)} WHERE \"Id\" = ?", [record_id])  # noqa: S608
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cursor.description], row, strict=True))

    def _match_ids(self, obj: ObjectDef, f: FieldDef, value: Any) -> list[str]:
        if f.type == "id":
            text = str(value)
            return [ids.normalize(text)] if ids.is_well_formed(text) and \
                self._row(obj, ids.normalize(text)) else []
        live = ' AND "IsDeleted" = 0' if obj.has_is_deleted else ""
        cursor = self._writer.execute(
            f"SELECT \"Id\" FROM {_q(obj.table)} WHERE {_q(f.name)} = ? "  # noqa: S608
            f"COLLATE NOCASE{live} LIMIT 3", [str(value)])
        return [r[0] for r in cursor.fetchall()]

    def _serial(self, obj: ObjectDef) -> int:
        if obj.name not in self._next_serial:
            row = self._writer.execute(f"SELECT MAX(_row) FROM {_q(obj.table)}").fetchone()  # noqa: S608
            self._next_serial[obj.name] = (row[0] or 0) + 1
        serial = self._next_serial[obj.name]
        self._next_serial[obj.name] = serial + 1
        return serial

    @staticmethod
    def _batch_duplicates(obj: ObjectDef, ext_field: FieldDef, records: list[dict[str, Any]]
                          ) -> set[str]:
        if ext_field.type == "id":
            return set()
        counts = Counter(str(_get(r, ext_field.name)).lower() for r in records
                         if _get(r, ext_field.name) not in (None, ""))
        return {key for key, n in counts.items() if n > 1}


class DeletedLog:
    """Which records were deleted when: what the REST `sobjects/X/deleted` resource reads.

    Salesforce keeps this for a limited time; `earliest` is the oldest moment it still
    covers (`earliestDateAvailable`), moved forward by `forget_before`.
    """

    RETENTION_MS = 15 * 86_400_000  # a fresh org's log reaches back this far

    def __init__(self, writer: sqlite3.Connection, lock: Any,
                 now: Callable[[], datetime]) -> None:
        self._writer = writer
        self._lock = lock
        self._now = now
        with lock:
            self.created = writer.execute(
                "SELECT 1 FROM sqlite_master WHERE name = '_deleted_log'").fetchone() is None
            writer.execute("CREATE TABLE IF NOT EXISTS _deleted_log (sobject TEXT, "
                           "id TEXT PRIMARY KEY, deleted_at INTEGER)")
            writer.execute("CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value TEXT)")
            writer.execute("INSERT OR IGNORE INTO _meta VALUES ('deleted_log_start', ?)",
                           [str(datetime_to_ms(now()) - self.RETENTION_MS)])

    def backfill(self, schema: Schema) -> None:
        """Once per database: the generated data's Recycle Bin rows, at their SystemModstamp."""
        if not self.created:
            return
        with self._lock:
            for obj in schema.object_list:
                if obj.has_is_deleted:
                    self._writer.execute(
                        "INSERT OR IGNORE INTO _deleted_log SELECT ?, \"Id\", "  # noqa: S608
                        f"\"SystemModstamp\" FROM {_q(obj.table)} WHERE \"IsDeleted\" = 1",
                        [obj.name])

    def record(self, sobject: str, record_id: str, deleted_at_ms: int) -> None:
        """Log a deletion (the first one wins: a purge keeps the soft delete's date)."""
        self._writer.execute("INSERT OR IGNORE INTO _deleted_log VALUES (?, ?, ?)",
                             [sobject, record_id, deleted_at_ms])

    @property
    def earliest_ms(self) -> int:
        with self._lock:
            row = self._writer.execute(
                "SELECT value FROM _meta WHERE key = 'deleted_log_start'").fetchone()
        return int(row[0])

    def forget_before(self, when_ms: int) -> None:
        with self._lock:
            self._writer.execute("DELETE FROM _deleted_log WHERE deleted_at < ?", [when_ms])
            self._writer.execute("UPDATE _meta SET value = ? WHERE key = 'deleted_log_start'",
                                 [str(when_ms)])

    def between(self, sobject: str, start_ms: int, end_ms: int) -> list[tuple[str, int]]:
        """(Id, deleted_at ms) of `sobject`'s records deleted in [start, end]."""
        with self._lock:
            cursor = self._writer.execute(
                "SELECT id, deleted_at FROM _deleted_log WHERE sobject = ? AND deleted_at >= ? "
                "AND deleted_at <= ? ORDER BY deleted_at, id", [sobject, start_ms, end_ms])
            return [(r[0], r[1]) for r in cursor.fetchall()]


def _get(record: dict[str, Any], name: str) -> Any:
    """Case-insensitive field lookup in an input record."""
    if name in record:
        return record[name]
    lowered = name.lower()
    return next((v for k, v in record.items() if k.lower() == lowered), None)


def _full_name(first: str | None, last: str | None) -> str:
    return " ".join(part for part in (first, last) if part)

