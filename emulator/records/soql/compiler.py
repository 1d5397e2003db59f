"""ParsedQuery + Schema -> parameterised SQLite SQL, with Salesforce's validation errors.

Values never enter SQL text: every literal is a `?` parameter. Identifiers come only from
the schema (never from the query text), so the f-strings below cannot inject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any

from forcebeam.emulator.records import ids
from forcebeam.emulator.records.schema import TEXT_TYPES, FieldDef, ObjectDef, Schema
from forcebeam.emulator.records.soql.aggregates import (
    AggregateCompiler,
    AggregatePlan,
    reject_aggregate_in_where,
)
from forcebeam.emulator.records.soql.dates import relative_range
from forcebeam.emulator.records.soql.errors import (
    SoqlError,
    bad_relationship,
    located,
    no_such_column,
    unsupported_sobject,
)
from forcebeam.emulator.records.soql.parser import (
    BoolExpr,
    Condition,
    CountCall,
    FieldPath,
    FieldsCall,
    Literal,
    ParsedQuery,
    SelectedField,
)
from forcebeam.emulator.records.values import datetime_to_ms

FIELDS_FUNCTION_MAX_LIMIT = 200
MAX_OFFSET = 2000
MAX_RELATIONSHIP_DEPTH = 5
_TYPE_WORDS = {"boolean": "boolean", "int": "int", "double": "double", "currency": "currency",
               "percent": "percent", "date": "date", "datetime": "dateTime"}
_SQL_OPS = {"=": "=", "!=": "IS NOT", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class Column:
    """One selected field: its canonical path (`Account.Name`) and its definition."""

    path: str
    field: FieldDef

    @property
    def relationship_path(self) -> tuple[str, ...]:
        """Canonical relationship names leading to the field (empty for base fields)."""
        return tuple(self.path.split(".")[:-1])


@dataclass
class CompiledQuery:
    sobject: ObjectDef
    columns: list[Column]
    select_exprs: list[str]  # SQL expressions, compound columns take several
    from_sql: str
    where_sql: str  # without the IsDeleted filter
    params: list[Any]
    order_sql: list[str]
    limit: int | None
    offset: int | None
    is_count: bool
    has_is_deleted: bool = field(default=False)
    aggregate: AggregatePlan | None = None  # GROUP BY / aggregate functions: AggregateResult


def _quote(name: str) -> str:
    return '"' + name + '"'


class _Compiler:
    def __init__(self, schema: Schema, soql: str, today: date,
                 hidden: frozenset[tuple[str, str]] = frozenset()) -> None:
        self.schema = schema
        self.hidden = hidden  # (object, field) lower-cased: field-level security says no
        self.soql = soql
        self.today = today
        self.joins: list[str] = []
        self.aliases: dict[tuple[str, ...], tuple[str, ObjectDef]] = {}
        self.params: list[Any] = []

    def error(self, code: str, line: int, column: int, detail: str) -> SoqlError:
        return SoqlError(code, located(self.soql, line, column, detail))

    # ------------------------------------------------------------------ resolution
    def resolve(self, path: FieldPath) -> tuple[str, FieldDef, str]:
        """-> (SQL alias, field, canonical dotted path); adds LEFT JOINs as needed."""
        parts = list(path.parts)
        base_alias, obj = self.aliases[()]
        if (len(parts) > 1 and parts[0].lower() == obj.name.lower()
                and parts[0].lower() not in obj.relationships):
            parts = parts[1:]
        if len(parts) - 1 > MAX_RELATIONSHIP_DEPTH:
            raise self.error("MALFORMED_QUERY", path.line, path.column,
                             "SOQL statements cannot query relationships more than 5 levels")
        key: tuple[str, ...] = ()
        alias = base_alias
        canonical: list[str] = []
        for relationship in parts[:-1]:
            ref = obj.relationships.get(relationship.lower())
            if ref is None:
                raise self.error("INVALID_FIELD", path.line, path.column,
                                 bad_relationship(relationship))
            key = (*key, ref.relationship_name or "")
            canonical.append(ref.relationship_name or "")
            if key not in self.aliases:
                target = self.schema.object(ref.reference_to[0])
                assert target is not None
                new_alias = f"t{len(self.aliases)}"
                self.joins.append(f"LEFT JOIN {_quote(target.table)} {new_alias} "
                                  f"ON {new_alias}.\"Id\" = {alias}.{_quote(ref.name)}")
                self.aliases[key] = (new_alias, target)
            alias, obj = self.aliases[key]
        found = obj.field(parts[-1])
        if found is None or (obj.name.lower(), found.name.lower()) in self.hidden:
            raise self.error("INVALID_FIELD", path.line, path.column,
                             no_such_column(parts[-1], obj.name))
        return alias, found, ".".join([*canonical, found.name])

    def column_exprs(self, alias: str, f: FieldDef) -> list[str]:
        if f.formula is not None:
            return [self.column_sql(alias, f)]
        return [f"{alias}.{_quote(name)}" for name in f.stored_columns]

    def column_sql(self, alias: str, f: FieldDef) -> str:
        """One field's SQL value; a cross-object formula is evaluated at query time."""
        if f.formula is None:
            return f"{alias}.{_quote(f.name)}"
        reference, parent_field = f.formula
        owner = next(o for a, o in self.aliases.values() if a == alias)
        ref = owner.field(reference)
        assert ref is not None and ref.reference_to
        parent = self.schema.object(ref.reference_to[0])
        assert parent is not None
        return (f"(SELECT p.{_quote(parent_field)} FROM {_quote(parent.table)} p "  # noqa: S608
                f"WHERE p.\"Id\" = {alias}.{_quote(reference)})")

    # ------------------------------------------------------------------ WHERE
    def where(self, expr: Any) -> str:
        if isinstance(expr, BoolExpr):
            if expr.op == "NOT":
                return f"NOT ({self.where(expr.children[0])})"
            return "(" + f" {expr.op} ".join(self.where(c) for c in expr.children) + ")"
        return self.condition(expr)

    def condition(self, cond: Condition) -> str:
        """SOQL logic is two-valued (a null field simply doesn't match), so comparisons that
        SQL would make NULL are made FALSE — otherwise `NOT x = 'a'` would drop null rows."""
        assert isinstance(cond.path, FieldPath)
        alias, f, _ = self.resolve(cond.path)
        return self.compare_sql(cond, f, self.column_sql(alias, f))

    def compare_sql(self, cond: Condition, f: FieldDef, column: str) -> str:
        """`column` (a field's or an aggregate's SQL, typed as `f`) tested as `cond` says."""
        sql = self._condition(cond, f, column)
        if sql.startswith("(") or " IS " in sql:
            return sql  # IS [NOT] NULL, IS NOT ?, NOT IN and ranges are null-safe already
        return f"({sql} AND {column} IS NOT NULL)"

    def _condition(self, cond: Condition, f: FieldDef, column: str) -> str:
        where_at = (cond.path.line, cond.path.column)
        if f.is_compound or f.is_long_text:
            raise self.error("INVALID_FIELD", *where_at,
                             f"field '{f.name}' can not be filtered in a query call")
        if cond.op in ("INCLUDES", "EXCLUDES"):
            raise self.error("INVALID_QUERY_FILTER_OPERATOR", *where_at,
                             "includes or excludes operator only valid on multipicklist field")
        collate = " COLLATE NOCASE" if f.type in TEXT_TYPES - {"id", "reference"} else ""
        if cond.op == "LIKE":
            assert isinstance(cond.value, Literal)
            if f.type not in TEXT_TYPES - {"id", "reference"} or cond.value.kind != "string":
                raise self.error("INVALID_QUERY_FILTER_OPERATOR", *where_at,
                                 f"invalid operator on {f.type} field: LIKE")
            self.params.append(cond.value.value)
            return f"{column} LIKE ? ESCAPE '\\'"
        if cond.op in ("IN", "NOT IN"):
            assert isinstance(cond.value, tuple)
            values = [self.storage_value(f, literal) for literal in cond.value]
            self.params.extend(values)
            marks = ", ".join("?" for _ in values)
            if cond.op == "IN":
                return f"{column}{collate} IN ({marks})"
            return f"({column} IS NULL OR {column}{collate} NOT IN ({marks}))"
        literal = cond.value
        assert isinstance(literal, Literal)
        if literal.kind == "null":
            if cond.op not in ("=", "!="):
                raise self.error("INVALID_QUERY_FILTER_OPERATOR", *where_at,
                                 f"invalid operator for null value: {cond.op}")
            return f"{column} IS {'NOT ' if cond.op == '!=' else ''}NULL"
        if literal.kind == "date_literal":
            return self.date_range(f, column, cond.op, literal)
        self.params.append(self.storage_value(f, literal))
        if cond.op == "=":
            return f"{column} = ?{collate}"
        return f"{column} {_SQL_OPS[cond.op]} ?{collate}"

    def date_range(self, f: FieldDef, column: str, op: str, literal: Literal) -> str:
        if f.type not in ("date", "datetime"):
            raise self.type_error(f, literal)
        name, n = literal.value
        start, end = relative_range(name, n, self.today)
        if f.type == "date":
            low: Any = start.isoformat()
            high: Any = end.isoformat()
        else:
            low = datetime_to_ms(datetime.combine(start, time(), timezone.utc))
            high = datetime_to_ms(datetime.combine(end, time(), timezone.utc))
        if op == "=":
            self.params += [low, high]
            return f"({column} >= ? AND {column} < ? AND {column} IS NOT NULL)"
        if op == "!=":
            self.params += [low, high]
            return f"({column} IS NULL OR {column} < ? OR {column} >= ?)"
        bound = {"<": (low, "<"), "<=": (high, "<"), ">": (high, ">="), ">=": (low, ">=")}[op]
        self.params.append(bound[0])
        return f"{column} {bound[1]} ?"

    def type_error(self, f: FieldDef, literal: Literal) -> SoqlError:
        if f.type in TEXT_TYPES:
            detail = (f"value of filter criterion for field '{f.name}' must be of type "
                      "string and should be enclosed in quotes")
        else:
            detail = (f"value of filter criterion for field '{f.name}' must be of type "
                      f"{_TYPE_WORDS[f.type]} and should not be enclosed in quotes")
        return self.error("INVALID_FIELD", literal.line or 1, literal.column or 1, detail)

    def storage_value(self, f: FieldDef, literal: Literal) -> Any:
        kind = literal.kind
        if kind == "null":
            return None
        if f.type in TEXT_TYPES:
            if kind != "string":
                raise self.type_error(f, literal)
            text = literal.value.replace("\\%", "%").replace("\\_", "_")
            if f.type in ("id", "reference"):
                if not ids.is_well_formed(text):
                    raise self.error("INVALID_QUERY_FILTER_OPERATOR", literal.line,
                                     literal.column, f"invalid ID field: {text}")
                return ids.normalize(text)
            return text
        expected = {"boolean": "boolean", "date": "date", "datetime": "datetime"}.get(
            f.type, "number")
        if kind != expected:
            raise self.type_error(f, literal)
        if kind == "boolean":
            return 1 if literal.value else 0
        if kind == "date":
            return literal.value.isoformat()
        if kind == "datetime":
            return datetime_to_ms(literal.value)
        return literal.value

    # ------------------------------------------------------------------ SELECT
    def select(self, parsed: ParsedQuery, obj: ObjectDef) -> tuple[list[Column], list[str]]:
        columns: list[Column] = []
        exprs: list[str] = []
        seen: set[str] = set()
        for item in parsed.items:
            if isinstance(item, CountCall):
                continue
            if isinstance(item, ParsedQuery):
                raise self.error("MALFORMED_QUERY", item.sobject_line, item.sobject_column,
                                 "parent-to-child subqueries are not supported by the emulator")
            if isinstance(item, SelectedField):
                assert item.alias is not None
                raise self.error("MALFORMED_QUERY", item.alias.line, item.alias.column,
                                 f"unexpected token: '{item.alias.name}'")
            if isinstance(item, FieldsCall):
                targets = [f for f in obj.field_list
                           if (item.kind == "ALL" or (item.kind == "CUSTOM") == f.custom)
                           and (obj.name.lower(), f.name.lower()) not in self.hidden]
                resolved = [("t0", f, f.name) for f in targets]
            else:
                resolved = [self.resolve(item)]
            for alias, f, path in resolved:
                if path.lower() in seen:
                    if isinstance(item, FieldPath):
                        raise self.error("INVALID_FIELD", item.line, item.column,
                                         f"duplicate field selected: {path}")
                    continue
                seen.add(path.lower())
                columns.append(Column(path, f))
                exprs.extend(self.column_exprs(alias, f))
        return columns, exprs

    def order(self, parsed: ParsedQuery) -> list[str]:
        clauses = []
        for item in parsed.order_by:
            assert isinstance(item.path, FieldPath)
            alias, f, _ = self.resolve(item.path)
            if f.is_compound or f.is_long_text:
                raise self.error("INVALID_FIELD", item.path.line, item.path.column,
                                 f"field '{f.name}' can not be sorted in a query call")
            collate = " COLLATE NOCASE" if f.type in TEXT_TYPES - {"id", "reference"} else ""
            direction = " DESC" if item.descending else ""
            nulls_first = True if item.nulls_first is None else item.nulls_first
            nulls = " NULLS FIRST" if nulls_first else " NULLS LAST"
            clauses.append(f"{self.column_sql(alias, f)}{collate}{direction}{nulls}")
        return clauses


def compile_query(parsed: ParsedQuery, schema: Schema, soql: str,
                  today: date | None = None,
                  hidden: frozenset[tuple[str, str]] = frozenset()) -> CompiledQuery:
    """Resolve names and types against `schema`; raise SoqlError exactly like Salesforce.

    `hidden` are the (object, field) pairs field-level security hides from the caller: they
    are unknown columns to it (INVALID_FIELD), as in Salesforce.
    """
    compiler = _Compiler(schema, soql, today or datetime.now(timezone.utc).date(), hidden)
    obj = schema.object(parsed.sobject)
    if obj is None:
        raise compiler.error("INVALID_TYPE", parsed.sobject_line, parsed.sobject_column,
                             unsupported_sobject(parsed.sobject))
    compiler.aliases[()] = ("t0", obj)
    if parsed.is_count:
        if len(parsed.items) != 1:
            raise SoqlError("MALFORMED_QUERY", located(
                soql, parsed.sobject_line, 1,
                "COUNT() must be the only element in the SELECT list."))
        if parsed.order_by:
            raise SoqlError("MALFORMED_QUERY", "ORDER BY cannot be used with COUNT()")
        if parsed.group_by or parsed.having is not None:
            raise SoqlError("MALFORMED_QUERY", located(
                soql, parsed.sobject_line, 1,
                "COUNT() cannot be used with GROUP BY or HAVING: use COUNT(fieldName)"))
    if parsed.uses_fields_function:
        unbounded = any(isinstance(i, FieldsCall) and i.kind != "STANDARD" for i in parsed.items)
        if unbounded and (parsed.limit is None or parsed.limit > FIELDS_FUNCTION_MAX_LIMIT):
            raise SoqlError("MALFORMED_QUERY", located(
                soql, 1, 1, "The SOQL FIELDS function must have a LIMIT of at most 200"))
    if parsed.offset is not None and parsed.offset > MAX_OFFSET:
        raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE",
                        f"Maximum SOQL offset allowed is {MAX_OFFSET}")
    if parsed.where is not None:
        reject_aggregate_in_where(compiler, parsed.where)
    if parsed.is_aggregate and not parsed.is_count:
        return _compile_aggregate(compiler, parsed, obj)
    columns, exprs = compiler.select(parsed, obj)
    where_sql = compiler.where(parsed.where) if parsed.where is not None else ""
    order_sql = compiler.order(parsed)
    from_sql = " ".join([f"FROM {_quote(obj.table)} t0", *compiler.joins])
    return CompiledQuery(obj, columns, exprs, from_sql, where_sql, compiler.params, order_sql,
                         parsed.limit, parsed.offset, parsed.is_count,
                         has_is_deleted=obj.has_is_deleted)


def _compile_aggregate(compiler: _Compiler, parsed: ParsedQuery, obj: ObjectDef
                       ) -> CompiledQuery:
    """SELECT and GROUP BY, then WHERE, then HAVING and ORDER BY: each clause's params are
    collected in the order its SQL appears."""
    aggregates = AggregateCompiler(compiler, parsed, obj)
    plan = aggregates.compile()
    where_sql = compiler.where(parsed.where) if parsed.where is not None else ""
    aggregates.compile_after_where(plan)
    from_sql = " ".join([f"FROM {_quote(obj.table)} t0", *compiler.joins])
    return CompiledQuery(obj, [], plan.select_sql, from_sql, where_sql, compiler.params,
                         plan.order_sql, parsed.limit, parsed.offset, False,
                         has_is_deleted=obj.has_is_deleted, aggregate=plan)
