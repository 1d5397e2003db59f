"""The org's records behind one object: `RecordStore` opens the database and hands out its
query engine and write rules (the three jobs live in their own modules).

- `emulator.records.database`: tables, the generated data set, connections, schema changes;
- `emulator.records.query_engine`: SOQL execution and field-level security;
- `emulator.records.writes`: DML write rules and per-row results.

Wire modules and Bulk jobs take a `RecordStore` and call the methods it re-exports below.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from forcebeam.emulator.records.database import Database, StoreError, database_file
from forcebeam.emulator.records.query_engine import QueryEngine, QueryResult
from forcebeam.emulator.records.schema import SCHEMA, Schema
from forcebeam.emulator.records.soql import ParsedQuery, SoqlError, parse
from forcebeam.emulator.records.soql.compiler import Column
from forcebeam.emulator.records.validation import WriteError
from forcebeam.emulator.records.writes import RecordWriter, WriteResult
from forcebeam.emulator.state.identity import INTEGRATION_USER_ID

__all__ = ["Column", "ParsedQuery", "QueryResult", "RecordStore", "SoqlError", "StoreError",
           "WriteError", "WriteResult", "database_file", "parse"]


class RecordStore:
    """SQLite-backed records of the emulated org: one database, its queries and its writes.

    Thread-safe for the server's executor (see `Database`). The methods are those of the
    three parts, bound here so callers keep one handle.
    """

    def __init__(self, data_dir: Path | str, records: int = 1000, seed: int = 42, *,
                 schema: Schema = SCHEMA, now: Callable[[], datetime] | None = None,
                 default_user_id: str = INTEGRATION_USER_ID) -> None:
        """Open the store for `records` Accounts (others proportional) in `data_dir`,
        generating and caching the database first if this (records, seed) is new."""
        self.database = Database(Path(data_dir), records, seed, schema=schema,
                                 now=now or (lambda: datetime.now(timezone.utc)))
        self.queries = QueryEngine(self.database)
        self.writes = RecordWriter(self.database, default_user_id)
        database, queries, writes = self.database, self.queries, self.writes
        self.path, self.schema, self.now = database.path, database.schema, database.now
        self.deleted_log = database.deleted_log
        self.close = database.close
        self.add_field, self.remove_field = database.add_field, database.remove_field
        self.execute, self.ordered_keys = queries.execute, queries.ordered_keys
        self.compile, self.hidden_for = queries.compile, queries.hidden_for
        self.set_field_access = queries.set_field_access
        self.write, self.write_mixed = writes.write, writes.write_mixed
        self.record_state, self.find_ids = writes.record_state, writes.find_ids
        self.object_for_id = writes.object_for_id
        self.touch, self.empty_recycle_bin = writes.touch, writes.empty_recycle_bin
