"""SOQL text -> a small syntax tree (`ParsedQuery`), with positions kept for error carets.

The grammar lives in `soql.lark`; this module only shapes lark's tree into dataclasses that
the compiler (SQL) and Bulk's refusal checks read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from forcebeam.emulator.records.soql.errors import SoqlError, located


@dataclass(frozen=True)
class FieldPath:
    parts: tuple[str, ...]
    line: int
    column: int

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Alias:
    """A select item's alias (`COUNT(Id) total`, `Industry ind`): allowed in aggregate
    queries only, where it names the AggregateResult key."""

    name: str
    line: int
    column: int


@dataclass(frozen=True)
class SelectedField:
    """A plain field of the SELECT list, with its alias if one was written."""

    path: FieldPath
    alias: Alias | None = None


@dataclass(frozen=True)
class AggregateCall:
    """`COUNT(field)`, `COUNT_DISTINCT(field)`, `SUM`, `AVG`, `MIN`, `MAX` (path None: the
    bare `COUNT()` inside HAVING/ORDER BY)."""

    function: str  # upper-cased
    path: FieldPath | None
    line: int
    column: int
    alias: Alias | None = None

    @property
    def text(self) -> str:
        return f"{self.function}({self.path.text if self.path else ''})"


@dataclass(frozen=True)
class FieldsCall:
    kind: str  # ALL | STANDARD | CUSTOM
    line: int
    column: int


@dataclass(frozen=True)
class CountCall:
    pass


@dataclass(frozen=True)
class Literal:
    """A SOQL value: kind is string|number|boolean|null|date|datetime|date_literal."""

    kind: str
    value: Any  # str | int | float | bool | None | date | datetime | (name, n)
    text: str
    line: int
    column: int


@dataclass(frozen=True)
class Condition:
    path: FieldPath | AggregateCall  # an aggregate only in HAVING
    op: str  # = != < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES
    value: Literal | tuple[Literal, ...]


@dataclass(frozen=True)
class BoolExpr:
    op: str  # AND | OR | NOT
    children: tuple[Any, ...]


@dataclass(frozen=True)
class OrderItem:
    path: FieldPath | AggregateCall  # an aggregate only in aggregate queries
    descending: bool
    nulls_first: bool | None  # None = Salesforce default (nulls first)


@dataclass
class ParsedQuery:
    sobject: str
    sobject_line: int
    sobject_column: int
    # FieldPath | SelectedField (aliased) | FieldsCall | CountCall | AggregateCall |
    # ParsedQuery (subquery)
    items: list[Any]
    where: Any = None  # Condition | BoolExpr | None
    group_by: list[FieldPath] = field(default_factory=list)
    having: Any = None  # Condition | BoolExpr | None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None

    @property
    def uses_fields_function(self) -> bool:
        return any(isinstance(item, FieldsCall) for item in self.items)

    @property
    def is_count(self) -> bool:
        return any(isinstance(item, CountCall) for item in self.items)

    @property
    def is_aggregate(self) -> bool:
        """GROUP BY, HAVING or an aggregate function anywhere: the answer is AggregateResult
        rows (COUNT() alone is `is_count`, answered by totalSize only)."""
        return bool(self.group_by or self.having is not None
                    or any(isinstance(item, AggregateCall) for item in self.items)
                    or any(isinstance(item.path, AggregateCall) for item in self.order_by))

    @property
    def has_subquery(self) -> bool:
        return any(isinstance(item, ParsedQuery) for item in self.items)


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"',
            "\\": "\\", "%": "\\%", "_": "\\_"}
_ESCAPE_RE = re.compile(r"\\(.)", re.S)


def _unescape(body: str) -> str:
    """SOQL string escapes; `\\%` and `\\_` stay escaped for LIKE (the compiler handles them)."""
    def replace(match: re.Match[str]) -> str:
        char = match.group(1)
        if char not in _ESCAPES:
            raise SoqlError("MALFORMED_QUERY", f"Invalid string literal escape: \\{char}")
        return _ESCAPES[char]
    return _ESCAPE_RE.sub(replace, body)


def parse_datetime_literal(text: str) -> datetime:
    """`2024-01-01T00:00:00[.fff…](Z|±hh:mm|±hhmm)` -> aware UTC datetime."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})",
                         text, re.I)
    if not match:
        raise ValueError(text)
    base = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    micros = int((match.group(2) or ".0")[1:7].ljust(6, "0"))
    zone = match.group(3).upper()
    offset = timedelta(0)
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return (base.replace(microsecond=micros) - offset).replace(tzinfo=timezone.utc)


@v_args(inline=True)
class _ToTree(Transformer):
    def start(self, query: ParsedQuery) -> ParsedQuery:
        return query

    def query(self, items: list[Any], name: Token, *clauses: Any) -> ParsedQuery:
        parsed = ParsedQuery(str(name), name.line, name.column, items)
        for kind, value in clauses:
            setattr(parsed, kind, value)
        return parsed

    def select_items(self, *items: Any) -> list[Any]:
        return list(items)

    def aggregate_call(self, name: Token, path: FieldPath | None = None) -> AggregateCall:
        return AggregateCall(str(name).upper(), path, name.line, name.column)

    def aggregate_item(self, call: AggregateCall, alias: Token | None = None) -> Any:
        if call.path is None:
            if call.function != "COUNT":
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{call.function}()'")
            if alias is not None:
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{alias}'")
            return CountCall()
        if alias is None:
            return call
        return AggregateCall(call.function, call.path, call.line, call.column,
                             Alias(str(alias), alias.line, alias.column))

    def selected_field(self, path: FieldPath, alias: Token | None = None) -> Any:
        if alias is None:
            return path
        return SelectedField(path, Alias(str(alias), alias.line, alias.column))

    def fields_call(self, name: Token) -> FieldsCall:
        kind = str(name).upper()
        if kind not in ("ALL", "STANDARD", "CUSTOM"):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{name}'")
        return FieldsCall(kind, name.line, name.column)

    def subquery(self, query: ParsedQuery) -> ParsedQuery:
        return query

    def field_path(self, *names: Token) -> FieldPath:
        return FieldPath(tuple(str(n) for n in names), names[0].line, names[0].column)

    def where_clause(self, expr: Any) -> tuple[str, Any]:
        return ("where", expr)

    def group_clause(self, *paths: FieldPath) -> tuple[str, list[FieldPath]]:
        return ("group_by", list(paths))

    def having_clause(self, expr: Any) -> tuple[str, Any]:
        return ("having", expr)

    def or_(self, left: Any, right: Any) -> BoolExpr:
        return BoolExpr("OR", (left, right))

    def and_(self, left: Any, right: Any) -> BoolExpr:
        return BoolExpr("AND", (left, right))

    def not_(self, child: Any) -> BoolExpr:
        return BoolExpr("NOT", (child,))

    def compare(self, path: FieldPath, op: Token, value: Literal) -> Condition:
        return Condition(path, "!=" if str(op) == "<>" else str(op), value)

    def like(self, path: FieldPath, value: Literal) -> Condition:
        return Condition(path, "LIKE", value)

    def in_(self, path: FieldPath, values: tuple[Literal, ...]) -> Condition:
        return Condition(path, "IN", values)

    def not_in(self, path: FieldPath, values: tuple[Literal, ...]) -> Condition:
        return Condition(path, "NOT IN", values)

    def includes(self, path: FieldPath, values: tuple[Literal, ...]) -> Condition:
        return Condition(path, "INCLUDES", values)

    def excludes(self, path: FieldPath, values: tuple[Literal, ...]) -> Condition:
        return Condition(path, "EXCLUDES", values)

    def value_list(self, *values: Literal) -> tuple[Literal, ...]:
        return values

    def _literal(self, kind: str, value: Any, token: Token) -> Literal:
        return Literal(kind, value, str(token), token.line, token.column)

    def string(self, token: Token) -> Literal:
        return self._literal("string", _unescape(str(token)[1:-1]), token)

    def number(self, token: Token) -> Literal:
        text = str(token)
        value: int | float = float(text) if "." in text else int(text)
        return self._literal("number", value, token)

    def true(self, token: Token | None = None) -> Literal:
        return Literal("boolean", True, "true", 0, 0)

    def false(self, token: Token | None = None) -> Literal:
        return Literal("boolean", False, "false", 0, 0)

    def null(self, token: Token | None = None) -> Literal:
        return Literal("null", None, "null", 0, 0)

    def datetime(self, token: Token) -> Literal:
        return self._literal("datetime", parse_datetime_literal(str(token)), token)

    def date(self, token: Token) -> Literal:
        try:
            value = date.fromisoformat(str(token))
        except ValueError as exc:
            raise SoqlError("MALFORMED_QUERY", f"Invalid date: {token}") from exc
        return self._literal("date", value, token)

    def date_literal(self, token: Token) -> Literal:
        name, _, n = str(token).upper().partition(":")
        return self._literal("date_literal", (name, int(n) if n else None), token)

    def order_clause(self, *items: OrderItem) -> tuple[str, list[OrderItem]]:
        return ("order_by", list(items))

    def order_item(self, path: FieldPath, *modifiers: Any) -> OrderItem:
        descending = False
        nulls_first = None
        for kind, value in modifiers:
            if kind == "direction":
                descending = value
            else:
                nulls_first = value
        return OrderItem(path, descending, nulls_first)

    def direction(self, token: Token) -> tuple[str, bool]:
        return ("direction", str(token).upper() == "DESC")

    def nulls(self, token: Token) -> tuple[str, bool]:
        return ("nulls", str(token).upper() == "FIRST")

    def limit_clause(self, token: Token) -> tuple[str, int]:
        return ("limit", int(token))

    def offset_clause(self, token: Token) -> tuple[str, int]:
        return ("offset", int(token))


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = (Path(__file__).parent / "soql.lark").read_text()
    return Lark(grammar, parser="lalr", maybe_placeholders=False)


def parse(soql: str) -> ParsedQuery:
    """Parse SOQL; raises SoqlError(MALFORMED_QUERY) with Salesforce's caret message."""
    if soql is None or not soql.strip():
        raise SoqlError("MALFORMED_QUERY", "SOQL statements cannot be empty or null")
    try:
        tree = _parser().parse(soql)
    except UnexpectedEOF as exc:
        raise SoqlError("MALFORMED_QUERY", _eof_message(soql)) from exc
    except UnexpectedToken as exc:
        token = exc.token
        if token.type == "$END":
            raise SoqlError("MALFORMED_QUERY", _eof_message(soql)) from exc
        raise SoqlError("MALFORMED_QUERY", located(
            soql, exc.line, exc.column, f"unexpected token: '{token}'")) from exc
    except UnexpectedCharacters as exc:
        char = soql[exc.pos_in_stream] if exc.pos_in_stream < len(soql) else ""
        raise SoqlError("MALFORMED_QUERY", located(
            soql, exc.line, exc.column, f"no viable alternative at character '{char}'")) from exc
    except UnexpectedInput as exc:  # pragma: no cover - other lark input errors
        raise SoqlError("MALFORMED_QUERY", f"unexpected input: {exc}") from exc
    try:
        return _ToTree().transform(tree)
    except Exception as exc:  # lark wraps transformer errors in VisitError
        inner = getattr(exc, "orig_exc", exc)
        if isinstance(inner, SoqlError):
            raise inner from None
        raise


def _eof_message(soql: str) -> str:
    lines = soql.rstrip().split("\n")
    return located(soql.rstrip(), len(lines), len(lines[-1]) + 1, "unexpected token: <EOF>")
