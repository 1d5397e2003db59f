"""The org's write rules: DML calls (insert, update, upsert, delete, hardDelete) applied row
by row with Salesforce's per-row errors, all-or-none rollback, and the admin writes that
move records in time or empty the Recycle Bin.

Each call is one transaction on the database's writer connection, under its lock. Rows are
still checked one by one, in order, but what they look up (upsert matches, unique values,
rows to update) is read ahead for the whole call and their statements go to SQLite in runs
(`emulator.records.write_call`, `Database.pending`), so a 10,000-row Bulk batch costs a few
queries instead of tens of thousands. Runs of rows that these rules would insert without a
refusal are inserted together, column by column (`_InsertRuns`, `_insert_rows`); the first
row any rule would treat otherwise takes the per-row path, which alone decides and words
refusals, updates and deletes.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from forcebeam.emulator.records import ids
from forcebeam.emulator.records.database import Database, StoreError, quote
from forcebeam.emulator.records.schema import FieldDef, ObjectDef
from forcebeam.emulator.records.validation import (
    RowRefusedError,
    WriteError,
    check_id,
    check_writable,
    coerce,
    coerce_column,
    refuse,
)
from forcebeam.emulator.records.values import datetime_to_ms, datetimes_to_ms
from forcebeam.emulator.records.write_call import (
    NO_DEFAULT,
    OWNER,
    PARENT,
    SKIP,
    UNKNOWN,
    WriteCall,
    match_keys,
)

OPERATIONS = ("insert", "update", "upsert", "delete", "harddelete")
#: Whether calls insert clean runs of rows together (`_InsertRuns`); off, every row takes
#: the per-row path (tests compare the two).
INSERT_RUNS = True
ROLLED_BACK = WriteError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header")


@dataclass(slots=True)
class WriteResult:
    id: str | None
    success: bool
    created: bool | None = None
    errors: list[WriteError] = field(default_factory=list)


class RecordWriter:
    """Applies DML to one `Database`; rows written without a user belong to
    `default_user_id` (the integration user)."""

    def __init__(self, db: Database, default_user_id: str) -> None:
        self.db = db
        self.default_user_id = default_user_id

    def record_state(self, sobject: str, record_id: str) -> str | None:
        """'live', 'deleted' or None (no such row) for an 18-char id of `sobject`."""
        obj = self.db.object(sobject)
        with self.db.lock:
            row = self.db.row(obj, record_id)
        if row is None:
            return None
        return "deleted" if row.get("IsDeleted") else "live"

    def find_ids(self, sobject: str, field_name: str, value: Any) -> list[str]:
        """Live ids whose `field_name` equals `value` (upsert / get by external id)."""
        obj = self.db.object(sobject)
        f = self.db.external_field(obj, field_name)
        with self.db.lock:
            return self.db.match_ids(obj, f, value)

    def write(self, sobject: str, operation: str, records: list[dict[str, Any]], *,
              external_id_field: str | None = None, all_or_none: bool = False,
              fail_row: Callable[[int], WriteError | None] | None = None,
              user_id: str | None = None) -> list[WriteResult]:
        """Apply one DML call; one WriteResult per input record, in input order."""
        obj = self.db.object(sobject)
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
        names = [name for name, _ in items]
        known = {name: self.db.schema.object(name) if name else None for name in set(names)}
        objects = list(map(known.__getitem__, names))
        ext_field = None
        duplicates: set[str] = set()
        if op == "upsert":
            first = next((o for o in objects if o is not None), None)
            if first is None:
                raise StoreError("NOT_FOUND", "upsert needs an sObject type")
            ext_field = self.db.external_field(first, external_id_field or "")
            duplicates = self._batch_duplicates(first, ext_field, [r for _, r in items])
        with self.db.lock:
            self.db.writer.execute("BEGIN IMMEDIATE")
            try:
                call = WriteCall(self.db)
                _read_ahead(call, op, items, objects, ext_field)
                if fail_row is not None:
                    fail_row = _RolledOnce(fail_row)
                runs = _InsertRuns.for_call(self, call, op, items, objects, ext_field,
                                            duplicates, fail_row, user)
                results: list[WriteResult] = []
                index, count = 0, len(items)
                while index < count:
                    if runs is not None:
                        index += runs.insert_from(index, results)
                        if index >= count:
                            break
                    name, record = items[index]
                    obj = objects[index]
                    if obj is None:
                        results.append(WriteResult(None, False, None, [WriteError(
                            "INVALID_TYPE", f"sObject type '{name}' is not supported.")]))
                    else:
                        results.append(self._write_one(call, obj, op, record, index, ext_field,
                                                       duplicates, fail_row, user))
                    index += 1
                if all_or_none and not all(r.success for r in results):
                    self.db.pending.discard()
                    self.db.writer.execute("ROLLBACK")
                    return [r if not r.success else WriteResult(
                        None if op == "insert" else r.id, False, None, [ROLLED_BACK])
                        for r in results]
                self.db.pending.flush()
                self.db.writer.execute("COMMIT")
                return results
            except BaseException:
                self.db.pending.discard()
                if self.db.writer.in_transaction:
                    self.db.writer.execute("ROLLBACK")
                raise

    def object_for_id(self, record_id: str) -> str | None:
        """The sObject name an id's key prefix belongs to (None if unknown/malformed)."""
        if not isinstance(record_id, str) or not ids.is_well_formed(record_id):
            return None
        obj = self.db.schema.by_prefix.get(record_id[:3])
        return obj.name if obj else None

    def _write_one(self, call: WriteCall, obj: ObjectDef, op: str, record: dict[str, Any],
                   index: int,
                   ext_field: FieldDef | None, duplicates: set[str],
                   fail_row: Callable[[int], WriteError | None] | None,
                   user: str) -> WriteResult:
        try:
            if fail_row is not None:
                injected = fail_row(index)
                if injected is not None:
                    raise RowRefusedError(injected)
            if op == "insert":
                return self._insert(call, obj, record, user, _get(record, "Id"))
            if op == "update":
                return self._update(call, obj, record, user)
            if op == "upsert":
                assert ext_field is not None
                return self._upsert(call, obj, record, ext_field, duplicates, user)
            return self._delete(call, obj, record, hard=op == "harddelete", user=user)
        except RowRefusedError as refused:
            given_id = _get(record, "Id")
            keep_id = given_id if op != "insert" and isinstance(given_id, str) \
                and ids.is_well_formed(given_id) else None
            return WriteResult(keep_id and ids.normalize(keep_id), False, None,
                               [refused.error])

    def _values(self, call: WriteCall, obj: ObjectDef, record: dict[str, Any],
                creating: bool) -> dict[str, Any]:
        values: dict[str, Any] = {}
        columns = call.plan(obj).columns(creating)
        for key, raw in record.items():
            column = columns.get(key)
            if column is None:
                column = columns.resolve(key)
            if column is SKIP:
                continue
            if column is PARENT or isinstance(raw, dict):
                ref, target_id = self._resolve_parent(call, obj, key, raw)
                check_writable(ref, creating)
                values[ref.name] = target_id
                continue
            if column is UNKNOWN:
                raise refuse("INVALID_FIELD",
                             f"No such column '{key}' on sobject of type {obj.name}", [key])
            f, name, convert, writable, reference = column
            if not writable:
                check_writable(f, creating)
            value = convert(raw)
            if reference and value is not None:
                value = self._check_reference(f, value)
            values[name] = value
        return values

    def _resolve_parent(self, call: WriteCall, obj: ObjectDef, key: str, raw: Any
                        ) -> tuple[FieldDef, str | None]:
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
        parent = self.db.schema.object(ref.reference_to[0])
        assert parent is not None
        target = parent.field(parent_field)
        if target is None or not (target.external_id or target.type == "id"):
            raise refuse("INVALID_FIELD", f"Field {parent_field} is not an external id or "
                         f"indexed field for {parent.name}", [ref.name])
        if value in (None, ""):
            return ref, None
        matches = call.match_ids(parent, target, value)
        if len(matches) != 1:
            raise refuse("INVALID_FIELD", f"Foreign key external ID: {value} not found for "
                         f"field {target.name} in entity {parent.name}", [ref.name])
        return ref, matches[0]

    def _check_reference(self, f: FieldDef, value: str) -> str:
        target = self.db.schema.object(f.reference_to[0])
        assert target is not None
        if not ids.is_well_formed(value) or value[:3] != target.key_prefix:
            raise refuse("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}",
                         [f.name])
        value = ids.normalize(value)
        row = self.db.row(target, value)
        if row is None or row.get("IsDeleted"):
            raise refuse("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
        return value

    @staticmethod
    def _check_unique(call: WriteCall, obj: ObjectDef, values: dict[str, Any],
                      own_id: str | None) -> None:
        for f in call.plan(obj).unique:
            if values.get(f.name) is None:
                continue
            clash = [i for i in call.match_ids(obj, f, values[f.name]) if i != own_id]
            if clash:
                raise refuse("DUPLICATE_VALUE",
                             f"duplicate value found: {f.name} duplicates value on record with "
                             f"id: {clash[0]}", [f.name])

    def _insert(self, call: WriteCall, obj: ObjectDef, record: dict[str, Any], user: str,
                given_id: Any = None) -> WriteResult:
        """Create one row; `given_id` is the record's Id value (refused when set)."""
        if given_id not in (None, ""):
            raise refuse("INVALID_FIELD", "The Id field should not be specified in the sobject "
                         "data.", ["Id"])
        values = self._values(call, obj, record, creating=True)
        plan = call.plan(obj)
        for f, fill in plan.insert_fills:
            if values.get(f.name) is not None:
                continue
            if fill is OWNER:
                values[f.name] = user
            elif fill is NO_DEFAULT:
                values[f.name] = coerce(f, f.default_value)
            else:
                values[f.name] = fill[1]
        missing = [name for name in plan.required_names if values.get(name) is None]
        if missing:
            raise refuse("REQUIRED_FIELD_MISSING",
                         f"Required fields are missing: [{', '.join(missing)}]", missing)
        self._check_unique(call, obj, values, None)
        serial = self.db.serial(obj)
        record_id = ids.make_id(obj.key_prefix, serial)
        stamp = datetime_to_ms(self.db.now())
        values["Id"] = record_id
        values["CreatedDate"] = values["LastModifiedDate"] = values["SystemModstamp"] = stamp
        values["CreatedById"] = values["LastModifiedById"] = user
        if plan.has_is_deleted:
            values["IsDeleted"] = 0
        if plan.has_case_number:
            values["CaseNumber"] = f"{serial:08d}"
        if plan.is_person:
            values["Name"] = _full_name(values.get("FirstName"), values.get("LastName"))
        self.db.pending.add(plan.insert_sql(tuple(values)), [serial, *values.values()])
        call.inserted(obj, serial, record_id, values)
        return WriteResult(record_id, True, True, [])

    def _insert_rows(self, call: WriteCall, obj: ObjectDef, columns: dict[str, Any],
                     count: int, user: str, keys: dict[str, list[str | None]]
                     ) -> list[WriteResult]:
        """`_insert`'s last part for `count` rows that passed its checks (`_InsertRuns`),
        given their values column by column: fills, Ids, stamps and system fields, then one
        run of INSERTs. The same assignments as `_insert`, made per column."""
        plan = call.plan(obj)
        for f, fill in plan.insert_fills:
            if f.name not in columns:
                columns[f.name] = [user if fill is OWNER else fill[1]] * count
        serials = self.db.serials(obj, count)
        prefix, now = obj.key_prefix, self.db.now
        record_ids = ids.make_ids(prefix, serials)
        stamps = datetimes_to_ms([now() for _ in serials])   # a reading per row, as _insert
        columns["Id"] = record_ids
        columns["CreatedDate"] = columns["LastModifiedDate"] = columns["SystemModstamp"] = stamps
        columns["CreatedById"] = columns["LastModifiedById"] = [user] * count
        if plan.has_is_deleted:
            columns["IsDeleted"] = [0] * count
        if plan.has_case_number:
            columns["CaseNumber"] = [f"{serial:08d}" for serial in serials]
        if plan.is_person:
            absent = [None] * count
            columns["Name"] = list(map(_full_name, columns.get("FirstName", absent),
                                       columns.get("LastName", absent)))
        self.db.pending.add_many(plan.insert_sql(tuple(columns)),
                                 list(zip(serials, *columns.values(), strict=True)))
        call.inserted_many(obj, serials, record_ids, columns, keys)
        return [WriteResult(record_id, True, True, []) for record_id in record_ids]

    @staticmethod
    def _existing(call: WriteCall, obj: ObjectDef, record_id: Any) -> dict[str, Any]:
        if record_id in (None, ""):
            raise refuse("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        normalized = check_id(obj, record_id)
        row = call.row(obj, normalized)
        if row is None:
            raise refuse("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["Id"])
        if row.get("IsDeleted"):
            raise refuse("ENTITY_IS_DELETED", "entity is deleted", [])
        return row

    def _update(self, call: WriteCall, obj: ObjectDef, record: dict[str, Any], user: str,
                existing: dict[str, Any] | None = None) -> WriteResult:
        row = existing or self._existing(call, obj, _get(record, "Id"))
        values = self._values(call, obj, record, creating=False)
        plan = call.plan(obj)
        missing = [name for name in plan.required_names
                   if name in values and values[name] is None]
        if missing:
            raise refuse("REQUIRED_FIELD_MISSING",
                         f"Required fields are missing: [{', '.join(missing)}]", missing)
        self._check_unique(call, obj, values, row["Id"])
        if plan.is_person and ({"FirstName", "LastName"} & values.keys()):
            values["Name"] = _full_name(values.get("FirstName", row.get("FirstName")),
                                        values.get("LastName", row.get("LastName")))
        stamp = max(datetime_to_ms(self.db.now()), row["SystemModstamp"] or 0)
        values["LastModifiedDate"] = values["SystemModstamp"] = stamp
        values["LastModifiedById"] = user
        self.db.pending.add(plan.update_sql(tuple(values)), [*values.values(), row["_row"]])
        call.updated(obj, row, values)
        return WriteResult(row["Id"], True, False, [])

    def _upsert(self, call: WriteCall, obj: ObjectDef, record: dict[str, Any],
                ext_field: FieldDef, duplicates: set[str], user: str) -> WriteResult:
        key = _get(record, ext_field.name)
        if key in (None, ""):
            raise refuse("MISSING_ARGUMENT", f"{ext_field.name} not specified",
                         [ext_field.name])
        if ext_field.type == "id":
            if not ids.is_well_formed(str(key)):
                return self._insert(call, obj, {k: v for k, v in record.items()
                                                if k.lower() != "id"}, user)
            return self._update(call, obj, record, user)
        if duplicates and str(key).lower() in duplicates:
            raise refuse("DUPLICATE_EXTERNAL_ID",
                         f"Duplicate external id specified: {key}", [ext_field.name])
        matches = call.match_ids(obj, ext_field, key)
        if len(matches) > 1:
            raise refuse("DUPLICATE_EXTERNAL_ID", f"{ext_field.name}: more than one record "
                         f"found for external id field: {matches}", [ext_field.name])
        # Id keys in `record` are skipped when its values are read (`_values`), so the
        # record needs no copy without them.
        if not matches:
            return self._insert(call, obj, record, user)
        row = call.row(obj, matches[0])
        assert row is not None
        return self._update(call, obj, record, user, existing=row)

    def _delete(self, call: WriteCall, obj: ObjectDef, record: dict[str, Any], *, hard: bool,
                user: str) -> WriteResult:
        record_id = _get(record, "Id")
        if record_id in (None, ""):
            raise refuse("MISSING_ARGUMENT", "Id not specified in a delete call", ["Id"])
        normalized = check_id(obj, record_id)
        row = call.row(obj, normalized)
        if row is None:
            raise refuse("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        if hard:
            self.db.pending.add(f"DELETE FROM {quote(obj.table)} WHERE _row = ?",  # noqa: S608
                                [row["_row"]])
            call.deleted(obj, row)
            # A purge keeps the first deletion's date (soft, then emptied from the bin).
            self.db.deleted_log.record(obj.name, normalized, row["SystemModstamp"]
                                    if row.get("IsDeleted") else datetime_to_ms(self.db.now()))
            return WriteResult(normalized, True, None, [])
        if not obj.has_is_deleted:
            raise refuse("INSUFFICIENT_ACCESS_OR_READONLY",
                         "insufficient access rights on object id", [])
        if row.get("IsDeleted"):
            raise refuse("ENTITY_IS_DELETED", "entity is deleted", [])
        stamp = max(datetime_to_ms(self.db.now()), row["SystemModstamp"] or 0)
        self.db.pending.add(
            f"UPDATE {quote(obj.table)} SET \"IsDeleted\" = 1, "  # noqa: S608
            "\"SystemModstamp\" = ?, \"LastModifiedDate\" = ?, \"LastModifiedById\" = ? "
            "WHERE _row = ?", [stamp, stamp, user, row["_row"]])
        call.deleted(obj, row)
        self.db.deleted_log.record(obj.name, normalized, stamp)
        return WriteResult(normalized, True, None, [])

    def empty_recycle_bin(self, sobject: str, ids_: list[str] | None = None) -> list[str]:
        """Purge soft-deleted rows (all of `sobject`'s, or those ids) as emptying the Recycle
        Bin does: they leave queryAll, and stay in the deletion log (getDeleted)."""
        obj = self.db.object(sobject)
        if not obj.has_is_deleted:
            return []
        table = quote(obj.table)
        with self.db.lock:
            cursor = self.db.writer.execute(
                f"SELECT _row, \"Id\", \"SystemModstamp\" FROM {table} "  # noqa: S608
                "WHERE \"IsDeleted\" = 1")
            wanted = {ids.normalize(i) for i in ids_ or [] if ids.is_well_formed(i)}
            rows = [r for r in cursor.fetchall() if not ids_ or r[1] in wanted]
            self.db.writer.execute("BEGIN IMMEDIATE")
            for serial, record_id, stamp in rows:
                self.db.deleted_log.record(obj.name, record_id, stamp)
                self.db.writer.execute(f"DELETE FROM {table} WHERE _row = ?",  # noqa: S608
                                       [serial])
            self.db.writer.execute("COMMIT")
        return [r[1] for r in rows]

    def touch(self, sobject: str, ids_: list[str] | None = None, count: int | None = None,
              system_modstamp: datetime | None = None) -> list[str]:
        """Move SystemModstamp/LastModifiedDate of some rows (incremental-extract tests)."""
        obj = self.db.object(sobject)
        stamp = datetime_to_ms(system_modstamp or self.db.now())
        table = quote(obj.table)
        with self.db.lock:
            if ids_:
                wanted = [ids.normalize(i) for i in ids_ if ids.is_well_formed(i)]
                rows = [r for r in (self.db.row(obj, i) for i in wanted) if r is not None]
            else:
                live = ' WHERE "IsDeleted" = 0' if obj.has_is_deleted else ""
                cursor = self.db.writer.execute(
                    f"SELECT _row, \"Id\" FROM {table}{live} ORDER BY _row LIMIT ?",  # noqa: S608
                    [count or 0])
                rows = [{"_row": r[0], "Id": r[1]} for r in cursor.fetchall()]
            self.db.writer.execute("BEGIN IMMEDIATE")
            self.db.writer.executemany(
                f"UPDATE {table} SET \"SystemModstamp\" = ?, "  # noqa: S608
                "\"LastModifiedDate\" = ? WHERE _row = ?",
                [(stamp, stamp, r["_row"]) for r in rows])
            self.db.writer.execute("COMMIT")
        return [r["Id"] for r in rows]

    @staticmethod
    def _batch_duplicates(obj: ObjectDef, ext_field: FieldDef, records: list[dict[str, Any]]
                          ) -> set[str]:
        if ext_field.type == "id":
            return set()
        keys = _column(records, ext_field.name)
        if _all_text(keys):   # the usual Bulk column: counted in C
            counts = Counter(map(str.lower, keys))
        else:
            counts = Counter(str(key).lower() for key in keys if key not in (None, ""))
        return {key for key, n in counts.items() if n > 1}


def _read_ahead(call: WriteCall, op: str, items: list[tuple[str | None, dict[str, Any]]],
                objects: list[ObjectDef | None], ext_field: FieldDef | None) -> None:
    """Fetch, per object of the call, what its rows will look up: upsert matches (with their
    rows), unique-field values, rows to update (see `write_call`)."""
    by_object: dict[str, tuple[ObjectDef, list[dict[str, Any]]]] = {}
    if objects and objects[0] is not None and len(set(map(id, objects))) == 1:
        by_object[objects[0].name] = (objects[0], [record for _, record in items])
    else:
        for (_, record), obj in zip(items, objects, strict=True):
            if obj is not None:
                by_object.setdefault(obj.name, (obj, []))[1].append(record)
    for obj, records in by_object.values():
        if op == "upsert" and ext_field is not None and ext_field.type != "id" \
                and obj.field(ext_field.name) is not None:
            keys = _column(records, ext_field.name)
            call.prefetch_matches(obj, ext_field, keys if _all_text(keys) else
                                  (str(k) for k in keys if k not in (None, "")),
                                  with_rows=True)
        if op in ("insert", "update", "upsert"):
            for f in call.plan(obj).unique:
                if op != "upsert" or ext_field is None or f.name != ext_field.name:
                    call.prefetch_matches(obj, f, _column(records, f.name))
        if op == "update":
            given = (_get(r, "Id") for r in records)
            call.prefetch_rows(obj, [ids.normalize(i) for i in given if isinstance(i, str)
                                     and ids.is_well_formed(i) and i[:3] == obj.key_prefix])


def _all_text(values: list[Any]) -> bool:
    """Every value a non-empty str (then `str(v)` is `v` and none is skipped as absent)."""
    return set(map(type, values)) == {str} and "" not in values


def _column(records: list[dict[str, Any]], name: str) -> list[Any]:
    """`_get(record, name)` of every record (the call only when the name is not a key)."""
    return [record[name] if name in record else _get(record, name) for record in records]


def _get(record: dict[str, Any], name: str) -> Any:
    """Case-insensitive field lookup in an input record."""
    if name in record:
        return record[name]
    shape = (name, *record)
    key = _CASE_MATCHES.get(shape, _UNSEEN)
    if key is _UNSEEN:
        lowered = name.lower()
        key = next((k for k in record if k.lower() == lowered), None)
        if len(_CASE_MATCHES) >= _CASE_MATCHES_MAX:
            _CASE_MATCHES.clear()
        _CASE_MATCHES[shape] = key
    return None if key is None else record[key]


#: (name, *record keys) -> the record's key matching `name` ignoring case, or None: a batch's
#: records share their keys, so `_get` compares names once per batch, not once per row.
_CASE_MATCHES: dict[tuple[str, ...], str | None] = {}
_CASE_MATCHES_MAX = 4096
_UNSEEN = object()


def _full_name(first: str | None, last: str | None) -> str:
    return " ".join(part for part in (first, last) if part)


class _RolledOnce:
    """`fail_row` called exactly once per row, in row order, whichever path asks first: a run
    rolls a row before inserting it and leaves a failure it drew for the per-row path."""

    def __init__(self, fail_row: Callable[[int], WriteError | None]) -> None:
        self._fail_row = fail_row
        self.drawn: dict[int, WriteError | None] = {}

    def __call__(self, index: int) -> WriteError | None:
        if index in self.drawn:
            return self.drawn.pop(index)
        return self._fail_row(index)


@dataclass
class _Shape:
    """How rows with one key tuple are inserted by a run: each key a plain createable
    field that is no reference (else no run takes such rows)."""

    fields: list[FieldDef]
    converters: list[Callable[[Any], Any]]
    #: Positions whose None refuses the row (required) or takes a per-row fill.
    not_null: list[int]
    unique: list[tuple[int, FieldDef]]
    key_at: int | None


@dataclass
class _Segment:
    """Consecutive rows of one shape, their columns converted at once."""

    start: int
    end: int
    shape: _Shape | None
    columns: list[list[Any]] = field(default_factory=list)
    #: Per row: passes every check that does not depend on the rows written before it.
    clean: list[bool] = field(default_factory=list)
    #: Per row: `match_key` of the upsert key, and of each unique column (None: no value).
    match_keys: list[str | None] | None = None
    unique_keys: list[list[str | None]] = field(default_factory=list)


#: Fewest rows `_InsertRuns` inserts together (shorter runs take the per-row path).
MIN_RUN = 4


class _InsertRuns:
    """Bulk-speed inserts inside `write_mixed`: leading runs of rows that the per-row rules
    (`_insert`, `_upsert` finding no match) would insert without a refusal are inserted
    together by `RecordWriter._insert_rows`; every other row goes through the per-row path.

    Why: a 10,000-row Bulk batch of new records paid ~20 µs of Python per row. A run
    converts its columns at once with the same converters (`coerce_column`), checks the
    same rules per row with dict lookups only (required, fills, duplicate external ids,
    upsert matches, unique values), draws `fail_row` in row order, and stops at the first
    row any rule would treat otherwise: that row takes the per-row path, which decides
    (and words) what happens to it.
    """

    def __init__(self, writer: RecordWriter, call: WriteCall, obj: ObjectDef, op: str,
                 records: list[dict[str, Any]], ext_field: FieldDef | None,
                 duplicates: set[str], fail_row: _RolledOnce | None, user: str) -> None:
        self.writer, self.call, self.obj, self.op = writer, call, obj, op
        self.records, self.ext_field, self.duplicates = records, ext_field, duplicates
        self.fail_row, self.user = fail_row, user
        self.plan = call.plan(obj)
        self._shapes: dict[tuple[str, ...], _Shape | None] = {}
        self._segments = _segments(list(map(tuple, records)))
        self._built: dict[int, _Segment] = {}
        self._per_row_until = 0

    @classmethod
    def for_call(cls, writer: RecordWriter, call: WriteCall, op: str,
                 items: list[tuple[str | None, dict[str, Any]]],
                 objects: list[ObjectDef | None], ext_field: FieldDef | None,
                 duplicates: set[str], fail_row: _RolledOnce | None, user: str
                 ) -> _InsertRuns | None:
        """Runs for an insert or (non-Id) upsert call of one object, else None."""
        if not INSERT_RUNS or op not in ("insert", "upsert") or not objects:
            return None
        obj = objects[0]
        if obj is None or any(o is not obj for o in objects):
            return None
        if op == "upsert" and (ext_field is None or ext_field.type == "id"
                               or obj.field(ext_field.name) is not ext_field):
            return None
        return cls(writer, call, obj, op, [record for _, record in items], ext_field,
                   duplicates, fail_row, user)

    def insert_from(self, index: int, results: list[WriteResult]) -> int:
        """Insert the run of rows starting at `index` (possibly empty); returns its length.

        Rows are checked in windows growing from 4, so a run costs about its own length
        even when every other row is cut; a run shorter than `MIN_RUN` is left to the
        per-row path (its fixed cost would exceed what it saves), as is every row before
        the cut that ended such a short run (a run from there would end there too)."""
        if index < self._per_row_until:
            return 0
        segment = self._segment(index)
        if segment.shape is None:
            return 0
        call, obj, base = self.call, self.obj, segment.start
        matches = call.read_matches(obj, self.ext_field) if segment.match_keys is not None \
            else {}
        # A look at the next MIN_RUN rows first: are they clean, with no record to update?
        ahead = index - base
        if ahead + MIN_RUN > len(segment.clean) or False in segment.clean[ahead:ahead + MIN_RUN]:
            return 0
        if segment.match_keys is not None and list(map(
                matches.get, segment.match_keys[ahead:ahead + MIN_RUN])).count([]) < MIN_RUN:
            return 0
        uniques = [(call.read_matches(obj, f), keys, set())
                   for (_, f), keys in zip(segment.shape.unique, segment.unique_keys,
                                           strict=True)]
        first = end = index - base
        window = 4
        while end < segment.end - base:
            high = min(segment.end - base, end + window)
            cut = _first_cut(segment, matches, uniques, end, high)
            if self.fail_row is not None:
                for at in range(end, cut):
                    injected = self.fail_row(base + at)
                    if injected is not None:
                        self.fail_row.drawn[base + at] = injected
                        cut = at
                        break
            for _, keys, seen in uniques:
                seen.update(keys[end:cut])
            end = cut
            if cut < high:
                break
            window *= 4
        if end - first < MIN_RUN:
            if self.fail_row is not None:   # drawn already: the per-row path takes them
                for at in range(first, end):
                    self.fail_row.drawn[base + at] = None
            self._per_row_until = base + end
            return 0
        columns = {f.name: column[first:end]
                   for f, column in zip(segment.shape.fields, segment.columns, strict=True)}
        keys = {f.name: keys[first:end]
                for (_, f), keys in zip(segment.shape.unique, segment.unique_keys, strict=True)}
        results.extend(self.writer._insert_rows(call, obj, columns, end - first, self.user,
                                                keys))
        return end - first

    def _segment(self, index: int) -> _Segment:
        at = bisect.bisect_right(self._segments, index) - 1
        start = self._segments[at]
        segment = self._built.get(start)
        if segment is None:
            end = self._segments[at + 1]
            self._built.clear()   # segments are visited in order: keep one
            segment = self._built[start] = self._build(start, end)
        return segment

    def _build(self, start: int, end: int) -> _Segment:
        keys = tuple(self.records[start])
        if keys not in self._shapes:
            self._shapes[keys] = self._shape(keys)
        shape = self._shapes[keys]
        if shape is None:
            return _Segment(start, end, None)
        rows = self.records[start:end]
        raw = [list(map(itemgetter(key), rows)) for key in keys]
        columns, clean = [], [True] * (end - start)
        for f, convert, values in zip(shape.fields, shape.converters, raw, strict=True):
            converted, refused = coerce_column(f, convert, values)
            columns.append(converted)
            for position in refused:
                clean[position] = False
        for position in shape.not_null:
            column = columns[position]
            if None in column:
                for at, value in enumerate(column):
                    if value is None:
                        clean[at] = False
        segment = _Segment(start, end, shape, columns, clean)
        if shape.key_at is not None:
            upsert_keys = raw[shape.key_at]
            duplicates = self.duplicates
            for at, key in enumerate(upsert_keys):
                if key in (None, "") or (duplicates and str(key).lower() in duplicates):
                    clean[at] = False
            segment.match_keys = match_keys(upsert_keys)
        segment.unique_keys = [segment.match_keys if position == shape.key_at
                               and columns[position] == upsert_keys
                               else match_keys(columns[position])
                               for position, _ in shape.unique]
        return segment

    def _shape(self, keys: tuple[str, ...]) -> _Shape | None:
        """The run plan of rows with these keys, or None when the per-row path takes them:
        a key that is no plain createable field (Id, attributes, `Parent.Field`, unknown,
        read-only, a reference checked against its target), two keys naming one field,
        a required field or a unique one with a default left out, a default that does not
        convert, or (upsert) no key named exactly as the external id field."""
        plan = self.plan
        if any(key == "attributes" or key.lower() == "id" for key in keys):
            return None
        fields = [plan.field(key) for key in keys]
        if any(f is None or f.name != key or not f.createable
               or f.type in ("reference", "id") or f.is_compound
               for f, key in zip(fields, keys, strict=True)):
            return None
        names = [f.name for f in fields if f is not None]
        if len(set(names)) != len(names) or (plan.is_person and "Name" in names):
            return None
        if any(name not in names for name in plan.required_names):
            return None
        fills = {f.name: fill for f, fill in plan.insert_fills}
        if any(fill is NO_DEFAULT for fill in fills.values()):
            return None
        unique = [(names.index(f.name), f) for f in plan.unique if f.name in names]
        if any(f.name not in names and f.name in fills for f in plan.unique):
            return None
        key_at = None
        if self.op == "upsert":
            assert self.ext_field is not None
            if self.ext_field.name not in names:
                return None
            key_at = names.index(self.ext_field.name)
        not_null = [at for at, name in enumerate(names)
                    if name in plan.required_names or name in fills]
        checked = [f for f in fields if f is not None]
        return _Shape(checked, [plan.coercer(f) for f in checked], not_null, unique, key_at)


def _first_cut(segment: _Segment, matches: dict[str, Any],
               uniques: list[tuple[dict[str, Any], list[str | None], set[str | None]]],
               low: int, high: int) -> int:
    """The first position in [low, high) of `segment` whose row a run cannot insert, given
    the rows before it (from `low` on) inserted: not clean, an upsert key that matches a
    record (or was not read ahead), a unique value held by a record or an earlier row; else
    `high`."""
    try:
        cut = segment.clean.index(False, low, high)
    except ValueError:
        cut = high
    if segment.match_keys is not None and cut > low:
        found = list(map(matches.get, segment.match_keys[low:cut]))
        if found.count([]) != len(found):
            cut = low + next(at for at, entry in enumerate(found) if entry != [])
    for entries, keys, seen in uniques:
        if cut <= low:
            break
        part = keys[low:cut]
        found = list(map(entries.get, part))
        if found.count([]) == len(found) and len(set(part)) == len(part) \
                and seen.isdisjoint(part):
            continue
        earlier = set(seen)
        for at, (key, entry) in enumerate(zip(part, found, strict=True)):
            if key is not None and (key in earlier or entry != []):
                cut = low + at
                break
            earlier.add(key)
    return cut


def _segments(shapes: list[tuple[str, ...]]) -> list[int]:
    """Start of every run of equal key tuples, and the end of the last."""
    if not shapes:
        return [0]
    if shapes.count(shapes[0]) == len(shapes):
        return [0, len(shapes)]
    starts = [0]
    for at in range(1, len(shapes)):
        if shapes[at] != shapes[at - 1]:
            starts.append(at)
    starts.append(len(shapes))
    return starts
