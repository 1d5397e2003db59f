"""The emulated org's records: schema + describe, generated data, SQLite store, SOQL."""

from forcebeam.emulator.records.schema import SCHEMA, FieldDef, ObjectDef, Schema
from forcebeam.emulator.records.soql import ParsedQuery, SoqlError, parse
from forcebeam.emulator.records.store import (
    Column,
    QueryResult,
    RecordStore,
    StoreError,
    WriteError,
    WriteResult,
)

__all__ = ["SCHEMA", "Column", "FieldDef", "ObjectDef", "ParsedQuery", "QueryResult",
           "RecordStore", "Schema", "SoqlError", "StoreError", "WriteError", "WriteResult",
           "parse"]
