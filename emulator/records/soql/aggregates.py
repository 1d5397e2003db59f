"""Aggregate SOQL (GROUP BY, HAVING, COUNT(field), COUNT_DISTINCT, SUM, AVG, MIN, MAX) ->
SQLite GROUP BY SQL, with the checks and error texts a real org applies.

The answer is AggregateResult rows: one key per select item, named as Salesforce names it
(a grouped field by its field name, `Owner.Name` -> `Name`; an aggregate by its alias, or
`expr0`, `expr1`, ... counting only the aggregates without an alias).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Any

from forcebeam.emulator.records.schema import TEXT_TYPES, FieldDef, ObjectDef
from forcebeam.emulator.records.soql.errors import SoqlError, located
from forcebeam.emulator.records.soql.parser import (
    AggregateCall,
    BoolExpr,
    Condition,
    CountCall,
    FieldPath,
    FieldsCall,
    ParsedQuery,
    SelectedField,
)
from forcebeam.emulator.records.values import decoder

if TYPE_CHECKING:
    from forcebeam.emulator.records.soql.compiler import _Compiler

_PICKLIST_RANK_WIDTH = 5  # MIN/MAX on a picklist compare "00003Value" strings, then strip


@dataclass(frozen=True)
class AggregateColumn:
    """One key of an AggregateResult record: its name, how its SQL value decodes, and
    whether it is an aggregate (for `?columns=true`)."""

    name: str
    display: str  # as written: `Owner.Name`, `COUNT(Id)`
    type: str  # the value's field type: int for counts, double for AVG, else the field's
    aggregate: bool
    field: FieldDef | None = None  # the grouped or aggregated field (None for COUNT())
    decode: Callable[[Any], Any] = dataclass_field(default=lambda raw: raw, compare=False)


@dataclass
class AggregatePlan:
    """SQL pieces of an aggregate query; params in the order their SQL appears."""

    columns: list[AggregateColumn]
    select_sql: list[str]
    select_params: list[Any]
    group_sql: list[str]
    having_sql: str
    having_params: list[Any]
    order_sql: list[str]
    order_params: list[Any]
    grouped: bool


def _text_collation(f: FieldDef) -> str:
    return " COLLATE NOCASE" if f.type in TEXT_TYPES - {"id", "reference"} else ""


class AggregateCompiler:
    """Compiles the aggregate clauses of one query with the shared `_Compiler` (name
    resolution, joins, WHERE conditions)."""

    def __init__(self, base: _Compiler, parsed: ParsedQuery, obj: ObjectDef) -> None:
        self.base = base
        self.parsed = parsed
        self.obj = obj
        self.grouped: dict[str, tuple[str, FieldDef]] = {}  # canonical path lower -> sql, f
        self.group_sql: list[str] = []

    def error(self, code: str, line: int, column: int, detail: str) -> SoqlError:
        return self.base.error(code, line, column, detail)

    # ------------------------------------------------------------------ pieces
    def field_of(self, path: FieldPath) -> tuple[str, FieldDef, str]:
        alias, f, canonical = self.base.resolve(path)
        return self.base.column_sql(alias, f), f, canonical

    def aggregate_sql(self, call: AggregateCall, params: list[Any], *, sort_key: bool = False
                      ) -> tuple[str, str, FieldDef | None, Callable[[Any], Any]]:
        """-> (SQL, value type, field, decoder) of one aggregate function call; `sort_key`:
        the SQL to sort by (a picklist's MIN/MAX sorts by picklist order)."""
        if call.path is None:  # COUNT() in HAVING / ORDER BY
            return "COUNT(*)", "int", None, int
        column, f, canonical = self.field_of(call.path)
        if not f.aggregatable_by(call.function):
            raise self.error("INVALID_FIELD", call.line, call.column,
                             f"field {f.name} does not support aggregate operator "
                             f"{call.function}")
        if canonical.lower() in self.grouped:
            raise self.error("MALFORMED_QUERY", call.line, call.column,
                             f"Grouped field should not be aggregated: {call.path.text}")
        collate = _text_collation(f)
        function = call.function
        if function == "COUNT":
            return f"COUNT({column})", "int", f, int
        if function == "COUNT_DISTINCT":
            return f"COUNT(DISTINCT {column}{collate})", "int", f, int
        if function == "AVG":
            return f"AVG({column})", "double", f, float
        if function == "SUM":
            return f"SUM({column})", f.type, f, decoder(f.type)
        if f.type == "picklist" and f.picklist:
            # Salesforce takes a picklist's MIN/MAX in the picklist's value order: compare
            # "<rank><value>" strings (values off the list rank last), then drop the rank.
            whens = " ".join("WHEN ? THEN ?" for _ in f.picklist)
            for rank, value in enumerate(f.picklist):
                params.extend([value, rank])
            ranked = (f"{function}(CASE WHEN {column} IS NULL THEN NULL ELSE printf('%0"
                      f"{_PICKLIST_RANK_WIDTH}d', CASE {column}{collate} {whens} "
                      f"ELSE {len(f.picklist)} END) || {column} END)")
            sql = ranked if sort_key else f"substr({ranked}, {_PICKLIST_RANK_WIDTH + 1})"
            return sql, f.type, f, decoder(f.type)
        return f"{function}({column}{collate})", f.type, f, decoder(f.type)

    # ------------------------------------------------------------------ clauses
    def group_by(self) -> list[str]:
        sql = []
        seen: set[str] = set()
        for path in self.parsed.group_by:
            column, f, canonical = self.field_of(path)
            if f.is_compound or not f.groupable:
                raise self.error("INVALID_FIELD", path.line, path.column,
                                 f"field '{f.name}' can not be grouped in a query call")
            if canonical.lower() in seen:
                raise self.error("MALFORMED_QUERY", path.line, path.column,
                                 f"duplicate field in GROUP BY: {path.text}")
            seen.add(canonical.lower())
            self.grouped[canonical.lower()] = (column, f)
            sql.append(f"{column}{_text_collation(f)}")
        return sql

    def select(self, params: list[Any]) -> tuple[list[AggregateColumn], list[str]]:
        columns: list[AggregateColumn] = []
        exprs: list[str] = []
        names: set[str] = set()
        unnamed = 0
        for item in self.parsed.items:
            if isinstance(item, CountCall):
                raise SoqlError("MALFORMED_QUERY", located(
                    self.base.soql, self.parsed.sobject_line, 1,
                    "COUNT() must be the only element in the SELECT list."))
            if isinstance(item, ParsedQuery):
                raise self.error("MALFORMED_QUERY", item.sobject_line, item.sobject_column,
                                 "parent-to-child subqueries are not supported by the emulator")
            if isinstance(item, FieldsCall):
                first = next((f.name for f in self.obj.field_list
                              if f.name.lower() not in self.grouped), "FIELDS()")
                raise self.error("MALFORMED_QUERY", item.line, item.column,
                                 f"Field must be grouped or aggregated: {first}")
            alias = item.alias if isinstance(item, (SelectedField, AggregateCall)) else None
            if isinstance(item, AggregateCall):
                sql, kind, f, decode = self.aggregate_sql(item, params)
                name = alias.name if alias else f"expr{unnamed}"
                unnamed += 0 if alias else 1
                column = AggregateColumn(name, item.text, kind, True, f, decode)
                where_at = (alias.line, alias.column) if alias else (item.line, item.column)
            else:
                path = item.path if isinstance(item, SelectedField) else item
                column_sql, f, canonical = self.field_of(path)
                if canonical.lower() not in self.grouped:
                    raise self.error("MALFORMED_QUERY", path.line, path.column,
                                     f"Field must be grouped or aggregated: {path.text}")
                sql = column_sql
                name = alias.name if alias else f.name
                column = AggregateColumn(name, canonical, f.type, False, f, decoder(f.type))
                where_at = (alias.line, alias.column) if alias else (path.line, path.column)
            if name.lower() in names:
                raise self.error("MALFORMED_QUERY", *where_at, f"duplicate alias: {name}")
            names.add(name.lower())
            columns.append(column)
            exprs.append(sql)
        return columns, exprs

    def having(self, params: list[Any]) -> str:
        return self._having(self.parsed.having, params) if self.parsed.having is not None \
            else ""

    def _having(self, expr: Any, params: list[Any]) -> str:
        """A HAVING condition tests an aggregate (typed as its value) or a grouped field,
        with WHERE's operators and literal rules."""
        if isinstance(expr, BoolExpr):
            if expr.op == "NOT":
                return f"NOT ({self._having(expr.children[0], params)})"
            return "(" + f" {expr.op} ".join(self._having(c, params)
                                             for c in expr.children) + ")"
        assert isinstance(expr, Condition)
        saved, self.base.params = self.base.params, params
        try:
            if isinstance(expr.path, AggregateCall):
                sql, kind, f, _ = self.aggregate_sql(expr.path, params)
                value_field = FieldDef(expr.path.text, kind, expr.path.text) if f is None \
                    or kind != f.type else f
                return self.base.compare_sql(expr, value_field, sql)
            column, f, canonical = self.field_of(expr.path)
            if canonical.lower() not in self.grouped:
                raise self.error("MALFORMED_QUERY", expr.path.line, expr.path.column,
                                 f"Field must be grouped or aggregated: {expr.path.text}")
            return self.base.compare_sql(expr, f, column)
        finally:
            self.base.params = saved

    def order(self, params: list[Any]) -> list[str]:
        clauses = []
        for item in self.parsed.order_by:
            if isinstance(item.path, AggregateCall):
                sql, _, f, _ = self.aggregate_sql(item.path, params, sort_key=True)
                collate = ""
            else:
                sql, f, canonical = self.field_of(item.path)
                if canonical.lower() not in self.grouped:
                    raise self.error("MALFORMED_QUERY", item.path.line, item.path.column,
                                     "Ordered field must be grouped or aggregated: "
                                     f"{item.path.text}")
                collate = _text_collation(f)
            direction = " DESC" if item.descending else ""
            nulls_first = True if item.nulls_first is None else item.nulls_first
            clauses.append(f"{sql}{collate}{direction}"
                           f"{' NULLS FIRST' if nulls_first else ' NULLS LAST'}")
        # No ORDER BY: groups in grouped-field order, so answers are repeatable.
        clauses.extend(f"{sql} NULLS FIRST" for sql in self.group_sql)
        return clauses

    def compile(self) -> AggregatePlan:
        parsed = self.parsed
        grouped = bool(parsed.group_by)
        if not grouped and parsed.limit is not None:
            raise SoqlError("MALFORMED_QUERY", "Non-grouped query that uses overall aggregate "
                            "functions cannot also use LIMIT")
        if not grouped and parsed.offset is not None:
            raise SoqlError("MALFORMED_QUERY", "Non-grouped query that uses overall aggregate "
                            "functions cannot also use OFFSET")
        self.group_sql = self.group_by()
        select_params: list[Any] = []
        columns, exprs = self.select(select_params)
        return AggregatePlan(columns, exprs, select_params, self.group_sql, "", [], [], [],
                             grouped)

    def compile_after_where(self, plan: AggregatePlan) -> None:
        """HAVING and ORDER BY come after WHERE in the SQL text (and so in its params)."""
        plan.having_sql = self.having(plan.having_params)
        plan.order_sql = self.order(plan.order_params)


def reject_aggregate_in_where(base: _Compiler, expr: Any) -> None:
    """Aggregates filter in HAVING, never in WHERE (as on a real org)."""
    if isinstance(expr, BoolExpr):
        for child in expr.children:
            reject_aggregate_in_where(base, child)
    elif isinstance(expr, Condition) and isinstance(expr.path, AggregateCall):
        raise base.error("MALFORMED_QUERY", expr.path.line, expr.path.column,
                         "Aggregate functions are not allowed in the WHERE clause: "
                         f"{expr.path.text} (filter aggregates with HAVING)")
