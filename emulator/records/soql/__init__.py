"""SOQL: lark grammar -> syntax tree (parser) -> parameterised SQLite SQL (compiler)."""

from forcebeam.emulator.records.soql.errors import SoqlError
from forcebeam.emulator.records.soql.parser import ParsedQuery, parse

__all__ = ["ParsedQuery", "SoqlError", "parse"]
