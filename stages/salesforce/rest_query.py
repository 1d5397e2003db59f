"""REST query/queryAll paging, typed through the row schema.

Why ``parse_float=Decimal``: currency must be exact; JSON numbers are parsed as Decimal and
each field's converter decides (float for double/percent, fixed-scale decimal for currency).
"""

from __future__ import annotations

import decimal
import json
import re
from collections.abc import Iterator
from typing import Any, Protocol

from forcebeam.stages.salesforce.schema import RowSchema, converters

__all__ = ["ApiClient", "count_rows", "edge_id", "iter_rest_rows", "query_pages"]

_DATA_PREFIX = re.compile(r"^/services/data/v\d+\.\d+/")


class ApiClient(Protocol):
    """What the stages need from ``auth.get_client(conn)`` (see auth.client)."""

    api_version: str

    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


def _relative(url: str) -> str:
    return _DATA_PREFIX.sub("", url)


def query_pages(client: ApiClient, soql: str, *, include_deleted: bool = False
                ) -> Iterator[dict[str, Any]]:
    """Every page of a query (``nextRecordsUrl`` followed), JSON numbers as Decimal."""
    response = client.request("GET", "queryAll" if include_deleted else "query",
                              params={"q": soql})
    while True:
        page = json.loads(response.content, parse_float=decimal.Decimal)
        yield page
        next_url = page.get("nextRecordsUrl")
        if page.get("done", True) or not next_url:
            return
        response = client.request("GET", _relative(next_url))


def count_rows(client: ApiClient, soql: str, *, include_deleted: bool = False) -> int:
    page = next(query_pages(client, soql, include_deleted=include_deleted))
    return int(page.get("totalSize", 0))


def edge_id(client: ApiClient, soql: str, *, include_deleted: bool = False) -> str | None:
    page = next(query_pages(client, soql, include_deleted=include_deleted))
    records = page.get("records") or []
    return records[0]["Id"] if records else None


def _lookup(record: dict[str, Any], path: str) -> Any:
    if "." not in path:
        return record.get(path)
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def iter_rest_rows(client: ApiClient, soql: str, schema: RowSchema, *,
                   include_deleted: bool = False) -> Iterator[tuple[Any, ...]]:
    """Typed value tuples (schema order) for every row of ``soql``."""
    paths = [f.path for f in schema.fields]
    convert = converters(schema, paths, wire="json")
    pairs = list(zip(paths, convert, strict=True))
    simple = all("." not in p for p in paths)
    for page in query_pages(client, soql, include_deleted=include_deleted):
        for record in page.get("records", []):
            if simple:
                # Salesforce returns field names as spelled in describe; match case-insensitively
                # only when the exact key is missing (custom SOQL may use other casing).
                yield tuple(fn(record[p] if p in record else _ci_get(record, p))
                            for p, fn in pairs)
            else:
                yield tuple(fn(_lookup(record, p) if _has_path(record, p)
                               else _ci_lookup(record, p)) for p, fn in pairs)


def _ci_get(record: dict[str, Any], key: str) -> Any:
    wanted = key.lower()
    for name, value in record.items():
        if name.lower() == wanted:
            return value
    return None


def _has_path(record: dict[str, Any], path: str) -> bool:
    return path.split(".", 1)[0] in record


def _ci_lookup(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = _ci_get(value, part)
    return value
