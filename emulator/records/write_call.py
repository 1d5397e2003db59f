"""What one DML call keeps while it runs: per-object write plans and prefetched key matches.

Why: a Bulk ingest batch is up to 10,000 rows of one object. Resolving its fields, defaults,
required and unique fields once per call instead of once per row, and looking up every
external id and unique value of the batch in a few indexed queries instead of one query per
row, is what lets ingest keep up with the wire however large the org is.

Everything here lives for one call, under the database lock, so it never outlives the state
it was read from. Inside the call every write reports itself (`inserted`, `updated`,
`deleted`), so a prefetched lookup answers exactly what the database would at that moment;
a lookup that was not prefetched goes to the database (after pending writes are flushed).
"""

from __future__ import annotations

import bisect
import json
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from forcebeam.emulator.records.database import Database, quote
from forcebeam.emulator.records.schema import FieldDef, ObjectDef
from forcebeam.emulator.records.validation import RowRefusedError, coerce, coercer

#: SQLite's NOCASE collation folds the 26 ASCII capitals and nothing else.
_NOCASE_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
#: Keys per prefetch query (one JSON array parameter, expanded by `json_each`).
PREFETCH_CHUNK = 5000
#: Field types compared as text under NOCASE (what the prefetch can key exactly).
_NOT_TEXT = frozenset({"id", "reference", "boolean", "int", "double", "currency", "percent",
                       "date", "datetime"})


def nocase_key(value: Any) -> str:
    """The key two values share exactly when SQLite's `= ? COLLATE NOCASE` matches them
    (an ASCII text's `lower()` folds the same 26 capitals, several times faster)."""
    text = str(value)
    return text.lower() if text.isascii() else text.translate(_NOCASE_FOLD)


def match_key(value: Any) -> str:
    """`nocase_key`, with a shortcut for strings: the key `WriteCall.match_ids` looks up."""
    return value.lower() if value.__class__ is str and value.isascii() else nocase_key(value)


def match_keys(values: list[Any]) -> list[str | None]:
    """`match_key` of each value (None for None and ""), in one C-level pass when all are
    non-empty ASCII strings (their keys are then just `lower()`)."""
    keys = _ascii_keys(values)
    if keys is not None:
        return keys
    return [None if value is None or value == "" else match_key(value) for value in values]


def _ascii_keys(values: list[Any]) -> list[str] | None:
    """`lower()` of every value when each is a non-empty ASCII str without NUL (their NOCASE
    keys, and prefetchable as they are); else None."""
    if set(map(type, values)) != _STR_ONLY or "" in values:
        return None
    joined = "".join(values)
    if not joined.isascii() or "\x00" in joined:
        return None
    return list(map(str.lower, values))


_STR_ONLY = {str}


def _prefetchable(value: Any) -> bool:
    """A key a JSON array carries to SQLite unchanged (others are looked up one by one)."""
    if not isinstance(value, str) or value == "" or "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


NO_DEFAULT = object()
_ABSENT = object()
OWNER = object()
#: How a record key is written (`Columns`): skipped (Id, attributes), a parent reference
#: (`Relationship.Field`), or a name the object does not have.
SKIP, PARENT, UNKNOWN = object(), object(), object()
#: Objects whose Name is made from FirstName and LastName.
PERSON_OBJECTS = frozenset({"Contact", "Lead", "User"})


class Columns(dict[str, Any]):
    """Record key -> SKIP | PARENT | UNKNOWN | (field, name, converter, writable, reference),
    for creating or for updating; keys are resolved on first sight (`resolve`)."""

    def __init__(self, plan: ObjectPlan, creating: bool) -> None:
        super().__init__()
        self._plan = plan
        self._creating = creating

    def resolve(self, key: str) -> Any:
        if key == "attributes" or key.lower() == "id":
            column: Any = SKIP
        elif "." in key:
            column = PARENT
        else:
            f = self._plan.obj.field(key)
            if f is None:
                column = UNKNOWN
            else:
                writable = f.createable if self._creating else f.updateable
                column = (f, f.name, self._plan.coercer(f), writable, f.type == "reference")
        self[key] = column
        return column


@dataclass
class ObjectPlan:
    """An object's write rules resolved once per call."""

    obj: ObjectDef
    required: list[FieldDef]
    unique: list[FieldDef]
    #: (field, fill) for storage fields filled on insert when left null; fill is
    #: OWNER (the running user), a coerced default, or NO_DEFAULT (coerce per row).
    insert_fills: list[tuple[FieldDef, Any]]
    storage_names: frozenset[str]
    has_is_deleted: bool
    has_case_number: bool
    is_person: bool
    #: Names of `required`: the fields a create must set (``FieldDef.required_on_create``).
    required_names: tuple[str, ...]
    _columns: dict[bool, Columns] = field(default_factory=dict)
    _fields: dict[str, FieldDef | None] = field(default_factory=dict)
    _coercers: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    _sql: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)

    @classmethod
    def build(cls, obj: ObjectDef) -> ObjectPlan:
        fills: list[tuple[FieldDef, Any]] = []
        storage = obj.storage_fields
        for f in storage:
            if f.name == "OwnerId":
                fills.append((f, OWNER))
            elif f.default_value is not None:
                try:
                    fills.append((f, ("value", coerce(f, f.default_value))))
                except RowRefusedError:
                    fills.append((f, NO_DEFAULT))
            elif f.type == "boolean":
                fills.append((f, ("value", 0)))
        return cls(obj, [f for f in obj.field_list if f.required_on_create],
                   [f for f in obj.field_list if f.unique], fills,
                   frozenset(f.name for f in storage), obj.has_is_deleted,
                   obj.field("CaseNumber") is not None, obj.name in PERSON_OBJECTS,
                   tuple(f.name for f in obj.field_list if f.required_on_create))

    def columns(self, creating: bool) -> Columns:
        found = self._columns.get(creating)
        if found is None:
            found = self._columns[creating] = Columns(self, creating)
        return found

    def row_columns(self) -> list[str]:
        """The columns a write reads from an existing row (`_update`, `_delete`, the key
        bookkeeping below): what rows read ahead hold instead of every column."""
        wanted = ["_row", "Id", "IsDeleted", "SystemModstamp", "FirstName", "LastName"]
        wanted += [f.name for f in self.obj.field_list if f.unique or f.external_id]
        return [name for name in dict.fromkeys(wanted)
                if name == "_row" or name in self.storage_names]

    def field(self, key: str) -> FieldDef | None:
        """`obj.field(key)`, remembered per key string."""
        try:
            return self._fields[key]
        except KeyError:
            found = self._fields[key] = self.obj.field(key)
            return found

    def coercer(self, f: FieldDef) -> Callable[[Any], Any]:
        """`coerce(f, value)` as a function of the value, specialised once per field."""
        found = self._coercers.get(f.name)
        if found is None:
            found = self._coercers[f.name] = coercer(f)
        return found

    def insert_sql(self, names: tuple[str, ...]) -> str:
        sql = self._sql.get(("insert", names))
        if sql is None:
            columns = ", ".join(quote(n) for n in names)
            marks = ", ".join("?" for _ in names)
            sql = self._sql[("insert", names)] = (
                f"INSERT INTO {quote(self.obj.table)} (_row, {columns}) "  # noqa: S608
                f"VALUES (?, {marks})")
        return sql

    def update_sql(self, names: tuple[str, ...]) -> str:
        sql = self._sql.get(("update", names))
        if sql is None:
            assignments = ", ".join(f"{quote(n)} = ?" for n in names)
            sql = self._sql[("update", names)] = (
                f"UPDATE {quote(self.obj.table)} SET {assignments} WHERE _row = ?")  # noqa: S608
        return sql


class WriteCall:
    """Plans and key matches of one DML call (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._plans: dict[str, ObjectPlan] = {}
        # object -> field -> nocase key -> live (row serial, Id) matches, in row order; a
        # field is here once its values were read ahead, and only its read keys are.
        self._matches: dict[str, dict[str, dict[str, list[tuple[int, str]]]]] = {}
        # Id -> the columns writes use of a row read ahead; used once, dropped when written.
        self._rows: dict[str, dict[str, Any]] = {}

    def plan(self, obj: ObjectDef) -> ObjectPlan:
        plan = self._plans.get(obj.name)
        if plan is None:
            plan = self._plans[obj.name] = ObjectPlan.build(obj)
        return plan

    # -- read ahead ---------------------------------------------------------------------

    def prefetch_matches(self, obj: ObjectDef, f: FieldDef, values: Iterable[Any], *,
                         with_rows: bool = False) -> None:
        """Read the live matches of every value for `f` in a few queries (and, `with_rows`,
        the matched rows themselves, for upserts)."""
        if f.type in _NOT_TEXT:
            return
        known = self._matches.setdefault(obj.name, {}).get(f.name, {})
        wanted: dict[str, str] = {}
        values = list(values)
        keys = None if known else _ascii_keys(values)
        if keys is not None:
            # One text per key (which of its spellings is sent does not matter: NOCASE
            # matches them all alike).
            wanted = dict(zip(keys, values, strict=True))
            values = []
        for value in values:
            if value.__class__ is str and value.isascii() and value and "\x00" not in value:
                key = value.lower()   # ASCII: the NOCASE fold
            elif _prefetchable(value):
                key = nocase_key(value)
            else:
                continue
            if key not in wanted and key not in known:
                wanted[key] = value
        if not wanted:
            return
        self.db.pending.flush()
        entries = self._matches[obj.name].setdefault(f.name, known)
        live = ' AND "IsDeleted" = 0' if obj.has_is_deleted else ""
        columns = self._row_columns(obj) if with_rows else f'_row, "Id", {quote(f.name)}'
        sql = (f"SELECT {columns} FROM {quote(obj.table)} WHERE {quote(f.name)} "  # noqa: S608
               f"COLLATE NOCASE IN (SELECT value FROM json_each(?)){live}")
        found: dict[str, list[tuple[int, str]]] = {}
        texts = list(wanted.values())
        for start in range(0, len(texts), PREFETCH_CHUNK):
            cursor = self.db.writer.execute(sql, [json.dumps(texts[start:start + PREFETCH_CHUNK])])
            names = [d[0] for d in cursor.description]
            serial_at, id_at, value_at = names.index("_row"), names.index("Id"), names.index(f.name)
            for row in cursor:
                key = nocase_key(row[value_at])
                if key not in wanted:  # SQLite matched what our key says differs: ask it
                    self._forget(obj, f.name)
                    return
                found.setdefault(key, []).append((row[serial_at], row[id_at]))
                if with_rows and row[id_at] not in self._rows:
                    self._rows[row[id_at]] = dict(zip(names, row, strict=True))
        # Every key read: no match (a new empty list each, made in C), then those found.
        entries.update(zip(wanted, iter(list, None), strict=False))
        for key, entry in found.items():
            entry.sort()
            entries[key] = entry

    def prefetch_rows(self, obj: ObjectDef, record_ids: Iterable[str]) -> None:
        """Read the rows of these 18-char ids (deleted ones too) in a few queries."""
        wanted = [i for i in dict.fromkeys(record_ids) if i not in self._rows]
        if not wanted:
            return
        self.db.pending.flush()
        sql = (f"SELECT {self._row_columns(obj)} FROM {quote(obj.table)} "  # noqa: S608
               "WHERE \"Id\" IN (SELECT value FROM json_each(?))")
        for start in range(0, len(wanted), PREFETCH_CHUNK):
            cursor = self.db.writer.execute(sql, [json.dumps(wanted[start:start + PREFETCH_CHUNK])])
            names = [d[0] for d in cursor.description]
            for row in cursor:
                record = dict(zip(names, row, strict=True))
                self._rows[record["Id"]] = record

    def _row_columns(self, obj: ObjectDef) -> str:
        names = self.plan(obj).row_columns() + list(self._matches.get(obj.name, {}))
        return ", ".join(quote(name) for name in dict.fromkeys(names))

    # -- lookups --------------------------------------------------------------------------

    def match_ids(self, obj: ObjectDef, f: FieldDef, value: Any) -> list[str]:
        """`Database.match_ids`, answered from the prefetched matches when it can be."""
        fields = self._matches.get(obj.name)
        if fields is not None and f.type not in _NOT_TEXT:
            entries = fields.get(f.name)
            if entries is not None:
                key = match_key(value)
                entry = entries.get(key)
                if entry is not None:
                    if not entry:
                        return []
                    return [record_id for _, record_id in entry[:3]] if len(entry) > 1 \
                        else [entry[0][1]]
        return self.db.match_ids(obj, f, value)

    def row(self, obj: ObjectDef, record_id: str) -> dict[str, Any] | None:
        """`Database.row`, answered once from a row read ahead when there is one."""
        row = self._rows.pop(record_id, None)
        if row is not None:
            return row
        return self.db.row(obj, record_id)

    # -- what the call wrote ---------------------------------------------------------------

    def inserted(self, obj: ObjectDef, serial: int, record_id: str,
                 values: dict[str, Any]) -> None:
        fields = self._matches.get(obj.name)
        if not fields:
            return
        for name, entries in fields.items():
            value = values.get(name)
            if value is not None:
                entry = entries.get(match_key(value))
                if entry is not None:
                    bisect.insort(entry, (serial, record_id))

    def inserted_many(self, obj: ObjectDef, serials: Iterable[int], record_ids: list[str],
                      columns: dict[str, list[Any]], keys: dict[str, list[str | None]]) -> None:
        """`inserted` for a run of new rows, given their values column by column (and the
        `match_key`s of some columns, None for a null value)."""
        fields = self._matches.get(obj.name)
        if not fields:
            return
        added = list(zip(serials, record_ids, strict=True))
        for name, entries in fields.items():
            column_keys = keys.get(name)
            if column_keys is None:
                column = columns.get(name)
                if column is None:
                    continue
                column_keys = match_keys(column)
            for entry, match in zip(map(entries.get, column_keys), added, strict=True):
                if entry is not None:
                    bisect.insort(entry, match)

    def read_matches(self, obj: ObjectDef, f: FieldDef) -> dict[str, list[tuple[int, str]]]:
        """The matches of `f` read ahead so far, by `match_key` ({} when none were: every
        lookup then goes to the database)."""
        if f.type in _NOT_TEXT:
            return {}
        return self._matches.get(obj.name, {}).get(f.name) or {}

    def updated(self, obj: ObjectDef, row: dict[str, Any], values: dict[str, Any]) -> None:
        self._rows.pop(row["Id"], None)
        fields = self._matches.get(obj.name)
        if not fields:
            return
        for name, entries in list(fields.items()):
            if name not in values:
                continue
            value, old = values[name], row.get(name, _ABSENT)
            if value is not None and old is not None and old is not _ABSENT and (
                    value == old or nocase_key(value) == nocase_key(old)):
                continue   # same key: the row keeps its place among the matches
            if not self._unmatch(obj, name, entries, row):
                continue
            if value is not None:
                entry = entries.get(nocase_key(value))
                if entry is not None:
                    bisect.insort(entry, (row["_row"], row["Id"]))

    def deleted(self, obj: ObjectDef, row: dict[str, Any]) -> None:
        self._rows.pop(row["Id"], None)
        for name, entries in list(self._matches.get(obj.name, {}).items()):
            self._unmatch(obj, name, entries, row)

    def _forget(self, obj: ObjectDef, name: str) -> None:
        """Drop every prefetched match of one field: its lookups go to the database."""
        self._matches.get(obj.name, {}).pop(name, None)

    def _unmatch(self, obj: ObjectDef, name: str, entries: dict[str, list[tuple[int, str]]],
                 row: dict[str, Any]) -> bool:
        """Take `row` out of the matches of its old value of `name`; False when the row was
        read without that column (the field's matches are dropped: it cannot be told)."""
        if name not in row:
            self._forget(obj, name)
            return False
        old = row[name]
        if old is None:
            return True
        entry = entries.get(nocase_key(old))
        match = (row["_row"], row["Id"])
        if entry is not None and match in entry:
            entry.remove(match)
        return True
