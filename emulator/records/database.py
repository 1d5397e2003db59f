"""The org's SQLite database: tables per sObject, the generated data set, connections, row
lookups by id and external id, run-time schema changes and the deletion log.

The built database is cached in the data dir under (records, seed, schema version): a
restart with the same arguments opens it instantly, keeping earlier writes like a real org.
Reads open their own connection (`reader`), so a result can be streamed from any thread while
others write; writes share one writer connection under `lock` (WAL mode keeps readers going)
and send their statements through `pending` (runs of `executemany`, flushed before any read).
"""

from __future__ import annotations

import copy
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from forcebeam.emulator.records import ids
from forcebeam.emulator.records.generator import populate
from forcebeam.emulator.records.schema import SCHEMA, SCHEMA_VERSION, FieldDef, ObjectDef, Schema
from forcebeam.emulator.records.values import datetime_to_ms, sql_type

# Id: lookups and parent joins; SystemModstamp: incremental extracts; external ids: upsert.
# (Every index costs seconds on a 1M-row build, so only what a hot path uses.)
INDEXED_FIELDS = ("Id", "SystemModstamp", "External_Id__c", "Legacy_Id__c", "Username")
#: Page cache of the writer connection, in KiB.
WRITER_CACHE_KIB = 131_072
#: How much of the database file the writer reads through a memory map instead of read
#: calls (address space only: a large org's index pages are then read without a syscall).
WRITER_MMAP_BYTES = 4 * 1024**3


class StoreError(Exception):
    """A whole request is wrong (unknown object or external id field): `code` + message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def quote(name: str) -> str:
    """A double-quoted SQL identifier (field and table names come from the schema)."""
    return '"' + name + '"'


def database_file(data_dir: Path, records: int, seed: int) -> Path:
    return data_dir / f"records-v{SCHEMA_VERSION}-n{records}-s{seed}.sqlite"


def _create_tables(conn: sqlite3.Connection, schema: Schema) -> None:
    for obj in schema.object_list:
        columns = ", ".join(f"{quote(f.name)} {sql_type(f.type)}" for f in obj.storage_fields)
        conn.execute(f"CREATE TABLE {quote(obj.table)} (_row INTEGER PRIMARY KEY, {columns})")
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
                conn.execute(f"CREATE {unique}INDEX {quote(f'{obj.table}_{name}')} "
                             f"ON {quote(obj.table)} ({quote(name)}{collate})")


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


class PendingWrites:
    """Write statements of the running DML call, sent to SQLite in runs (`executemany`).

    Why: one `execute` per row costs more than the row's own work in SQLite; consecutive
    rows of a Bulk batch share one statement text, so they go down as one run. Statements keep
    their order, and every read on the writer connection flushes first (`Database.row`,
    `match_ids`, `serial`), so nothing a call reads can miss a write it made earlier.
    """

    def __init__(self, writer: sqlite3.Connection) -> None:
        self._writer = writer
        self._sql: str | None = None
        self._params: list[Sequence[Any]] = []

    def add(self, sql: str, params: Sequence[Any]) -> None:
        if sql != self._sql:
            self.flush()
            self._sql = sql
        self._params.append(params)

    def flush(self) -> None:
        if self._params:
            params, self._params = self._params, []
            assert self._sql is not None  # noqa: S101 - set with the first params
            self._writer.executemany(self._sql, params)

    def add_many(self, sql: str, params: list[Sequence[Any]]) -> None:
        """`add` for several rows of one statement, in order."""
        if sql != self._sql:
            self.flush()
            self._sql = sql
        self._params.extend(params)

    def discard(self) -> None:
        """Forget unsent statements (the call is being rolled back)."""
        self._params = []


class Database:
    """One org's database file and connections (see the module docstring)."""

    def __init__(self, data_dir: Path, records: int, seed: int, *, schema: Schema,
                 now: Callable[[], datetime]) -> None:
        """Open the database for `records` Accounts (others proportional) in `data_dir`,
        generating and caching it first if this (records, seed) is new."""
        self.path = database_file(data_dir, records, seed)
        if not self.path.exists():
            build_database(self.path, records, seed, schema)
        # A private copy: fields can be added/removed at run time (admin API, schema drift).
        self.schema = copy.deepcopy(schema)
        self.now = now
        self.lock = threading.RLock()
        self.writer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.writer.execute("PRAGMA journal_mode=WAL")
        self.writer.execute("PRAGMA synchronous=NORMAL")
        # Writes touch index pages all over a large table: a larger page cache than SQLite's
        # 2 MB default keeps them in memory (pages are only allocated as they are used).
        self.writer.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        self.writer.execute(f"PRAGMA mmap_size={WRITER_MMAP_BYTES}")
        self.pending = PendingWrites(self.writer)
        self._next_serial: dict[str, int] = {}
        self.deleted_log = DeletedLog(self.writer, self.lock, self.now)
        self.deleted_log.backfill(self.schema)

    def close(self) -> None:
        with self.lock:
            self.writer.close()

    def reader(self) -> sqlite3.Connection:
        """A new read-only connection (the caller closes it)."""
        conn = sqlite3.connect(self.path, check_same_thread=False)
        conn.execute("PRAGMA query_only=ON")
        return conn

    def object(self, sobject: str) -> ObjectDef:
        """The object definition, or StoreError NOT_FOUND as Salesforce words it."""
        obj = self.schema.object(sobject)
        if obj is None:
            raise StoreError("NOT_FOUND", f"sObject type '{sobject}' is not supported.")
        return obj

    def external_field(self, obj: ObjectDef, field_name: str) -> FieldDef:
        """An External ID field (or Id) of `obj` to match upserts and parent references on."""
        f = obj.field(field_name)
        if f is None or not (f.external_id or f.type == "id"):
            raise StoreError("NOT_FOUND", f"Provided external ID field does not exist or is "
                             f"not accessible: {field_name}")
        return f

    def row(self, obj: ObjectDef, record_id: str) -> dict[str, Any] | None:
        """Every column of the row with this 18-char id (deleted rows too), on the writer."""
        self.pending.flush()
        cursor = self.writer.execute(
            f"SELECT * FROM {quote(obj.table)} WHERE \"Id\" = ?", [record_id])  # noqa: S608
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cursor.description], row, strict=True))

    def match_ids(self, obj: ObjectDef, f: FieldDef, value: Any) -> list[str]:
        """Live ids whose `f` equals `value` (case-insensitive; at most 3: enough to tell
        none, one and several apart)."""
        if f.type == "id":
            text = str(value)
            return [ids.normalize(text)] if ids.is_well_formed(text) and \
                self.row(obj, ids.normalize(text)) else []
        live = ' AND "IsDeleted" = 0' if obj.has_is_deleted else ""
        self.pending.flush()
        cursor = self.writer.execute(
            f"SELECT \"Id\" FROM {quote(obj.table)} WHERE {quote(f.name)} = ? "  # noqa: S608
            f"COLLATE NOCASE{live} LIMIT 3", [str(value)])
        return [r[0] for r in cursor.fetchall()]

    def serial(self, obj: ObjectDef) -> int:
        """The next row number of `obj` (its ids are made from it)."""
        if obj.name not in self._next_serial:
            self.pending.flush()
            row = self.writer.execute(f"SELECT MAX(_row) FROM {quote(obj.table)}").fetchone()  # noqa: S608
            self._next_serial[obj.name] = (row[0] or 0) + 1
        serial = self._next_serial[obj.name]
        self._next_serial[obj.name] = serial + 1
        return serial

    def serials(self, obj: ObjectDef, count: int) -> range:
        """The next `count` row numbers of `obj` (as `count` calls of `serial`)."""
        first = self.serial(obj)
        self._next_serial[obj.name] = first + count
        return range(first, first + count)

    def add_field(self, sobject: str, field_def: FieldDef) -> FieldDef:
        """Create a custom field now (as an admin would in Setup): new column, in describe."""
        obj = self.object(sobject)
        if not field_def.name.endswith("__c") or obj.field(field_def.name) is not None:
            raise StoreError("DUPLICATE_DEVELOPER_NAME" if obj.field(field_def.name)
                             else "INVALID_FIELD",
                             f"custom field names end in __c and are unique: {field_def.name}")
        with self.lock:
            try:
                self.writer.execute(f"ALTER TABLE {quote(obj.table)} ADD COLUMN "  # noqa: S608
                                    f"{quote(field_def.name)} {sql_type(field_def.type)}")
            except sqlite3.OperationalError as error:
                if "duplicate column" not in str(error):  # re-created after a removal
                    raise
            obj.field_list.append(field_def)
            obj.reindex()
        return field_def

    def remove_field(self, sobject: str, field_name: str) -> None:
        """Delete a custom field: it leaves describe and queries (its column is just unused)."""
        obj = self.object(sobject)
        f = obj.field(field_name)
        if f is None or not f.custom:
            raise StoreError("INVALID_FIELD", f"no custom field {field_name} on {obj.name}")
        with self.lock:
            obj.field_list.remove(f)
            obj.reindex()


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
                        f"\"SystemModstamp\" FROM {quote(obj.table)} WHERE \"IsDeleted\" = 1",
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
