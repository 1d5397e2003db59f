"""SOQL execution over the org's database: compile, count, page and stream rows, decoded
to Python values, with each user's field-level security applied.

Thread-safe: every query opens its own read connection, so a result can be streamed from
any executor thread while others write.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forcebeam.emulator.records.database import Database, StoreError
from forcebeam.emulator.records.schema import FieldDef
from forcebeam.emulator.records.soql import SoqlError, parse
from forcebeam.emulator.records.soql.compiler import CompiledQuery, compile_query
from forcebeam.emulator.records.values import decoder, needs_decoding

#: Groups one aggregate answer may hold: it is one batch, there is no queryMore for it (a real
#: org refuses more with the message below; its error code is the emulator's choice).
MAX_AGGREGATE_ROWS = 2000


@dataclass
class QueryResult:
    """Rows stream from SQLite; `last_key` is the keyset position after the last row read."""

    sobject: str
    columns: list[Any]  # Column; AggregateColumn when `is_aggregate`
    is_count: bool
    total_size: int
    rows: Iterator[tuple[Any, ...]]
    keyset_capable: bool = False  # no ORDER BY: pages can resume with `after_key`
    last_key: int | None = None
    is_aggregate: bool = False  # rows are AggregateResult values, `columns` AggregateColumns


def _selected(compiled: CompiledQuery, text_sql: Mapping[str, str]) -> list[str]:
    """The SELECT expressions with each column of a `text_sql` type wrapped in its template
    (compound columns, which take several expressions, are never wrapped)."""
    exprs: list[str] = []
    position = 0
    for column in compiled.columns:
        f = column.field
        width = len(f.stored_columns)
        own = compiled.select_exprs[position:position + width]
        template = None if f.is_compound else text_sql.get(f.type)
        exprs += [template.format(own[0])] if template else own
        position += width
    return exprs


class QueryEngine:
    """Runs SOQL against one `Database`; holds the field-level security settings it applies."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Field-level security: user id -> {(object, field)} (lower-cased) it cannot read.
        self.hidden_fields: dict[str, set[tuple[str, str]]] = {}

    def compile(self, soql: str, user_id: str | None = None) -> CompiledQuery:
        return compile_query(parse(soql), self.db.schema, soql, self.db.now().date(),
                             hidden=self.hidden_for(user_id))

    def hidden_for(self, user_id: str | None) -> frozenset[tuple[str, str]]:
        """(object, field) pairs field-level security hides from `user_id`."""
        return frozenset(self.hidden_fields.get(user_id or "", ()))

    def set_field_access(self, user_id: str, sobject: str, field_name: str,
                         readable: bool) -> None:
        obj = self.db.object(sobject)
        f = obj.field(field_name)
        if f is None:
            raise StoreError("INVALID_FIELD", f"No such column '{field_name}' on {obj.name}")
        hidden = self.hidden_fields.setdefault(user_id, set())
        key = (obj.name.lower(), f.name.lower())
        if readable:
            hidden.discard(key)
        else:
            hidden.add(key)

    def execute(self, soql: str, *, include_deleted: bool = False, start: int = 0,
                max_rows: int | None = None, after_key: int | None = None,
                keys: Sequence[int] | None = None, count_total: bool = True,
                user_id: str | None = None,
                text_sql: Mapping[str, str] | None = None) -> QueryResult:
        """Run SOQL; raises SoqlError like Salesforce.

        Paging helpers (REST query-more): `start`/`max_rows` window the result; `after_key`
        resumes a keyset scan (only when `keyset_capable`, i.e. no ORDER BY); `keys` (from
        `ordered_keys`) fetches exactly those rows, in that order, without re-sorting.
        `user_id` applies that user's field-level security (hidden fields are INVALID_FIELD).
        `text_sql` (field type -> SQL template with `{}` for the column): columns of those
        types come out of SQLite as the template's text, not decoded (a file writer's format
        computed in C, e.g. the Bulk result file's datetimes).
        """
        compiled = self.compile(soql, user_id)
        where, params = self._where(compiled, include_deleted)
        if compiled.aggregate is not None:
            return self._aggregate(compiled, where, params)
        total = 0
        if count_total or compiled.is_count:
            conn = self.db.reader()
            try:
                count = conn.execute(f"SELECT COUNT(*) {compiled.from_sql}{where}",  # noqa: S608
                                     params).fetchone()[0]
            finally:
                conn.close()
            total = max(0, count - (compiled.offset or 0))
            if compiled.limit is not None:
                total = min(total, compiled.limit)
        keyset = not compiled.order_sql
        result = QueryResult(compiled.sobject.name, compiled.columns, compiled.is_count, total,
                             iter(()), keyset_capable=keyset)
        if compiled.is_count:
            return result
        if keys is not None:
            marks = ", ".join("?" for _ in keys)
            where = (where + " AND " if where else " WHERE ") + f"t0._row IN ({marks})"
            sql = (f"SELECT {', '.join(compiled.select_exprs)}, t0._row "  # noqa: S608
                   f"{compiled.from_sql}{where}")
            result.rows = self._in_key_order(result, self._stream(result, sql,
                                                                  [*params, *keys]), keys)
            return result
        remaining = None if compiled.limit is None else max(0, compiled.limit - start)
        if after_key is not None and keyset:
            where = (where + " AND " if where else " WHERE ") + "t0._row > ?"
            params.append(after_key)
            offset = 0
        else:
            offset = (compiled.offset or 0) + start
        limits = [n for n in (remaining, max_rows) if n is not None]
        limit = min(limits) if limits else -1
        order = ", ".join([*compiled.order_sql, "t0._row"])
        select = _selected(compiled, text_sql) if text_sql else compiled.select_exprs
        sql = (f"SELECT {', '.join(select)}, t0._row "  # noqa: S608
               f"{compiled.from_sql}{where} ORDER BY {order} LIMIT ? OFFSET ?")
        result.rows = self._stream(result, sql, [*params, limit, offset],
                                   as_text=frozenset(text_sql or ()))
        return result

    def ordered_keys(self, soql: str, *, include_deleted: bool = False) -> array:
        """Row keys of the whole result in ORDER BY order (8 bytes a row, no values): lets
        REST page through a sorted result by sorting once instead of once per page."""
        compiled = self.compile(soql)
        where, params = self._where(compiled, include_deleted)
        order = ", ".join([*compiled.order_sql, "t0._row"])
        limit = -1 if compiled.limit is None else compiled.limit
        keys = array("q")
        conn = self.db.reader()
        try:
            cursor = conn.execute(f"SELECT t0._row {compiled.from_sql}{where} "  # noqa: S608
                                  f"ORDER BY {order} LIMIT ? OFFSET ?",
                                  [*params, limit, compiled.offset or 0])
            while batch := cursor.fetchmany(10_000):
                keys.extend(row[0] for row in batch)
        finally:
            conn.close()
        return keys

    def _aggregate(self, compiled: CompiledQuery, where: str, params: list[Any]
                   ) -> QueryResult:
        """All groups at once (aggregate queries have no queryMore): totalSize = groups."""
        plan = compiled.aggregate
        assert plan is not None
        sql = f"SELECT {', '.join(plan.select_sql)} {compiled.from_sql}{where}"  # noqa: S608
        if plan.group_sql:
            sql += f" GROUP BY {', '.join(plan.group_sql)}"
        if plan.having_sql:
            sql += f" HAVING {plan.having_sql}"
        if plan.order_sql:
            sql += f" ORDER BY {', '.join(plan.order_sql)}"
        sql += " LIMIT ? OFFSET ?"
        # One row past the batch tells "too many groups" apart without reading them all.
        limit = MAX_AGGREGATE_ROWS + 1 if compiled.limit is None \
            else min(compiled.limit, MAX_AGGREGATE_ROWS + 1)
        all_params = [*plan.select_params, *params, *plan.having_params, *plan.order_params,
                      limit, compiled.offset or 0]
        decoders = [column.decode for column in plan.columns]
        conn = self.db.reader()
        try:
            rows = [tuple(None if value is None else decode(value)
                          for value, decode in zip(raw, decoders, strict=True))
                    for raw in conn.execute(sql, all_params)]
        finally:
            conn.close()
        if len(rows) > MAX_AGGREGATE_ROWS:
            raise SoqlError("MALFORMED_QUERY", "Aggregate query does not support queryMore(), "
                            "use LIMIT to restrict the results to a single batch")
        return QueryResult(compiled.sobject.name, plan.columns, False, len(rows), iter(rows),
                           is_aggregate=True)

    @staticmethod
    def _where(compiled: CompiledQuery, include_deleted: bool) -> tuple[str, list[Any]]:
        conditions: list[str] = []
        if compiled.has_is_deleted and not include_deleted:
            conditions.append('t0."IsDeleted" = 0')
        if compiled.where_sql:
            conditions.append(compiled.where_sql)
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        return where, list(compiled.params)

    @staticmethod
    def _in_key_order(result: QueryResult, rows: Iterator[tuple[Any, ...]],
                      keys: Sequence[int]) -> Iterator[tuple[Any, ...]]:
        by_key = {}
        for row in rows:
            by_key[result.last_key] = row
        for key in keys:
            if key in by_key:
                result.last_key = key
                yield by_key[key]

    def _stream(self, result: QueryResult, sql: str, params: list[Any],
                as_text: frozenset[str] = frozenset()) -> Iterator[tuple[Any, ...]]:
        plan: list[tuple[int, Any, FieldDef]] = []
        position = 0
        for column in result.columns:
            width = len(column.field.stored_columns)
            plan.append((position, width, column.field))
            position += width
        simple = all(width == 1 for _, width, _ in plan)
        decoders = [decoder(f.type) for _, _, f in plan]
        # Only columns SQLite does not already hold as Python values cost a call per value.
        decoded = [(index, decode) for index, ((_, _, f), decode)
                   in enumerate(zip(plan, decoders, strict=True))
                   if needs_decoding(f.type) and f.type not in as_text]
        width = len(plan)
        conn = self.db.reader()
        try:
            cursor = conn.execute(sql, params)
            while True:
                batch = cursor.fetchmany(1000)
                if not batch:
                    break
                for raw in batch:
                    result.last_key = raw[-1]
                    if not simple:
                        yield tuple(self._decode_compound(raw, plan, decoders))
                    elif not decoded:
                        yield raw[:width]
                    else:
                        values = list(raw[:width])
                        for index, decode in decoded:
                            value = values[index]
                            if value is not None:
                                values[index] = decode(value)
                        yield tuple(values)
        finally:
            conn.close()

    @staticmethod
    def _decode_compound(raw: tuple[Any, ...], plan: list[tuple[int, Any, FieldDef]],
                         decoders: list[Callable[[Any], Any]]) -> Iterator[Any]:
        for (position, width, f), decode in zip(plan, decoders, strict=True):
            if width == 1 and not f.is_compound:
                value = raw[position]
                yield None if value is None else decode(value)
                continue
            parts = {key: raw[position + i] for i, (key, _) in enumerate(f.components)}
            if all(v is None for v in parts.values()):
                yield None
            elif f.type == "address":
                yield {"city": parts["city"], "country": parts["country"],
                       "geocodeAccuracy": None, "latitude": None, "longitude": None,
                       "postalCode": parts["postalCode"], "state": parts["state"],
                       "street": parts["street"]}
            else:   # location: numbers, as Salesforce's REST API answers them
                yield {key: None if value is None else float(value)
                       for key, value in parts.items()}
