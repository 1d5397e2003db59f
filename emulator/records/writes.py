"""The org's write rules: DML calls (insert, update, upsert, delete, hardDelete) applied row
by row with Salesforce's per-row errors, all-or-none rollback, and the admin writes that
move records in time or empty the Recycle Bin.

Each call is one transaction on the database's writer connection, under its lock. Rows are
still checked one by one, in order, but what they look up (upsert matches, unique values,
rows to update) is read ahead for the whole call and their statements go to SQLite in runs
(`emulator.records.write_call`, `Database.pending`), so a 10,000-row Bulk batch costs a few
queries instead of tens of thousands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
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
    refuse,
)
from forcebeam.emulator.records.values import datetime_to_ms
from forcebeam.emulator.records.write_call import (
    NO_DEFAULT,
    OWNER,
    PARENT,
    SKIP,
    UNKNOWN,
    WriteCall,
)

OPERATIONS = ("insert", "update", "upsert", "delete", "harddelete")
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
        objects = [self.db.schema.object(name) if name else None for name, _ in items]
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
                results = []
                for index, ((name, record), obj) in enumerate(zip(items, objects, strict=True)):
                    if obj is None:
                        results.append(WriteResult(None, False, None, [WriteError(
                            "INVALID_TYPE", f"sObject type '{name}' is not supported.")]))
                        continue
                    results.append(self._write_one(call, obj, op, record, index, ext_field,
                                                   duplicates, fail_row, user))
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
        keys = (_get(r, ext_field.name) for r in records)
        counts = Counter(str(key).lower() for key in keys if key not in (None, ""))
        return {key for key, n in counts.items() if n > 1}


def _read_ahead(call: WriteCall, op: str, items: list[tuple[str | None, dict[str, Any]]],
                objects: list[ObjectDef | None], ext_field: FieldDef | None) -> None:
    """Fetch, per object of the call, what its rows will look up: upsert matches (with their
    rows), unique-field values, rows to update (see `write_call`)."""
    by_object: dict[str, tuple[ObjectDef, list[dict[str, Any]]]] = {}
    for (_, record), obj in zip(items, objects, strict=True):
        if obj is not None:
            by_object.setdefault(obj.name, (obj, []))[1].append(record)
    for obj, records in by_object.values():
        if op == "upsert" and ext_field is not None and ext_field.type != "id" \
                and obj.field(ext_field.name) is not None:
            keys = (_get(r, ext_field.name) for r in records)
            call.prefetch_matches(obj, ext_field, (str(k) for k in keys if k not in (None, "")),
                                  with_rows=True)
        if op in ("insert", "update", "upsert"):
            for f in call.plan(obj).unique:
                if op != "upsert" or ext_field is None or f.name != ext_field.name:
                    call.prefetch_matches(obj, f, (_get(r, f.name) for r in records))
        if op == "update":
            given = (_get(r, "Id") for r in records)
            call.prefetch_rows(obj, [ids.normalize(i) for i in given if isinstance(i, str)
                                     and ids.is_well_formed(i) and i[:3] == obj.key_prefix])


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
