"""What WriteToSalesforce can know about its input before a single record is sent.

When the pipeline is built, the input's Beam schema (column -> type) and the target object's
describe are both known. Checking one against the other here turns "every row rejected" or,
worse, "a value silently changed" into one refusal at the transform's line:

* a column the object has no field for (closest name), a missing ``Id`` (update/delete) or
  external-id column (upsert), required fields an insert lacks;
* a column whose Beam type cannot carry the field's values exactly: a number into a text, id,
  phone, picklist or external-id field (``000777`` was already read as ``777``), a float into
  an integer, a number into a date. Exact conversions (an int into a double) pass.

The fix named is the one that keeps the text as written: ``dtype: str`` on ``ReadFromCsv``
(all columns, or ``dtype: {Column: str}``) or a cast in ``MapToFields``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import numbers
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from forcebeam.stages.salesforce.config import StageInputError

__all__ = ["input_columns", "check_write_input", "date_text_columns", "bad_date_text"]

# Salesforce types whose values are text however they look (leading zeros, signs, spaces).
TEXT_TYPES = frozenset({"string", "textarea", "id", "reference", "phone", "email", "url",
                        "picklist", "multipicklist", "combobox", "encryptedstring", "time",
                        "base64"})
INTEGER_TYPES = frozenset({"int", "long"})
DECIMAL_TYPES = frozenset({"double", "percent", "currency"})
DATE_TYPES = frozenset({"date", "datetime"})
# Kinds (see `_kind`) each Salesforce type takes without changing a value.
_ACCEPTS: dict[str, frozenset[str]] = {
    **{t: frozenset({"str"}) for t in TEXT_TYPES},
    **{t: frozenset({"str", "int"}) for t in INTEGER_TYPES},
    **{t: frozenset({"str", "int", "float", "decimal"}) for t in DECIMAL_TYPES},
    "boolean": frozenset({"str", "bool"}),
    "date": frozenset({"str", "date"}),
    "datetime": frozenset({"str", "datetime"}),
}
_KIND_WORDS = {"int": "an integer", "float": "a floating-point number", "bool": "a boolean",
               "decimal": "a decimal", "date": "a date", "datetime": "a timestamp",
               "bytes": "bytes", "str": "a string"}


def input_columns(element_type: Any) -> list[tuple[str, Any]] | None:
    """(column, Beam type) of a schema'd input, or None when the input has no schema."""
    from apache_beam.typehints.row_type import RowTypeConstraint

    if isinstance(element_type, RowTypeConstraint):
        return list(element_type._fields)
    if isinstance(element_type, type) and hasattr(element_type, "__annotations__") \
            and hasattr(element_type, "_fields"):
        hints = typing.get_type_hints(element_type)
        return [(name, hints.get(name, Any)) for name in element_type._fields]
    return None


def _kind(hint: Any) -> str:
    """The value kind a Beam type hint carries: str, int, float, bool, decimal, date, ..."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Union and len(args) == 1:
        hint = args[0]
    if not isinstance(hint, type):
        return "other"
    if issubclass(hint, bool) or hint.__name__ == "bool_":
        return "bool"
    if issubclass(hint, str):
        return "str"
    if issubclass(hint, bytes):
        return "bytes"
    if issubclass(hint, decimal.Decimal):
        return "decimal"
    if issubclass(hint, dt.datetime) or hint.__name__ == "Timestamp":
        return "datetime"
    if issubclass(hint, dt.date):
        return "date"
    if issubclass(hint, numbers.Integral) or _numpy_kind(hint) == "i":
        return "int"
    if issubclass(hint, numbers.Real) or _numpy_kind(hint) == "f":
        return "float"
    return "other"


def _numpy_kind(hint: type) -> str:
    import numpy  # always there: Beam depends on it

    if issubclass(hint, numpy.integer):
        return "i"
    if issubclass(hint, numpy.floating):
        return "f"
    return ""


def _fix(column: str, sf_type: str) -> str:
    if sf_type in TEXT_TYPES or sf_type in DATE_TYPES:
        return (f"keep the text as written: `dtype: str` (or `dtype: {{{column}: str}}`) "
                f"in ReadFromCsv's config, or `{column}: str({column})` in a MapToFields "
                "(language: python) before this transform")
    return (f"read the column as text (`dtype: {{{column}: str}}` in ReadFromCsv's config; "
            f"Salesforce parses it exactly) or convert it in a MapToFields "
            f"(`{column}: int({column})`) if every value is whole")


def check_write_input(columns: Sequence[tuple[str, Any]], describe: Mapping[str, Any], *,
                      operation: str, external_id_field: str | None) -> None:
    """Raise StageInputError listing every problem of this input for this write."""
    from forcebeam.stages.salesforce.schema import beam_name

    sobject = str(describe.get("name") or "?")
    fields = {str(f["name"]).lower(): f for f in describe.get("fields", [])}
    names = {str(column).lower() for column, _ in columns}
    problems: list[tuple[str, str, str]] = []     # (config key, message, fix)

    key = "Id" if operation in ("update", "delete", "hard_delete") else external_id_field
    if operation != "insert" and key and key.lower() not in names:
        where = "external_id_field" if operation == "upsert" else "operation"
        problems.append((where, f"the input has no column '{key}', which {operation} needs "
                         f"to find each {sobject} record (input columns: "
                         f"{', '.join(c for c, _ in columns) or 'none'})",
                         f"add a '{key}' column (MapToFields) or fix the column's name"))
    if operation == "upsert" and external_id_field:
        described = fields.get(external_id_field.lower())
        if described is not None and external_id_field.lower() != "id" and not (
                described.get("externalId") or described.get("idLookup")):
            problems.append(("external_id_field", f"{sobject}.{described['name']} is not an "
                             "external id field, so upsert cannot match on it",
                             "use Id or a field marked External ID in Salesforce"))
    if operation in ("delete", "hard_delete"):
        _raise(problems)
        return
    for column, hint in columns:
        described = fields.get(str(column).lower())
        if described is None:
            if "." in str(column):
                continue    # a relationship's external id (Account.External_Id__c)
            problems.append(("sobject", f"the input column '{column}' matches no field of "
                             f"{sobject}", _closest(column, fields)))
            continue
        sf_type = str(described.get("type") or "string")
        if not _writable(described, operation):
            problems.append(("sobject", f"the input column '{column}' is "
                             f"{sobject}.{described['name']}, which {operation} cannot write "
                             "(a formula, audit or read-only field): Salesforce would reject "
                             "every record", "drop the column (MapToFields) before this "
                             "transform"))
            continue
        kind = _kind(hint)
        accepted = _ACCEPTS.get(sf_type)
        if accepted is None or kind == "other" or kind in accepted:
            continue
        what = ("external-id " if described.get("externalId") else "") + sf_type
        problems.append(("sobject", f"the input column '{column}' is {_KIND_WORDS[kind]} "
                         f"but {sobject}.{described['name']} is "
                         f"{'an' if what[0] in 'aeiou' else 'a'} {what} field: writing it "
                         "would change values (e.g. '000777' read as 777, 7 written as 7.0)",
                         _fix(column, sf_type)))
    if operation == "insert":
        missing = [f["name"] for f in describe.get("fields", [])
                   if f.get("createable") and not f.get("nillable", True)
                   and not f.get("defaultedOnCreate") and f.get("type") != "boolean"
                   and str(f["name"]).lower() not in names
                   and beam_name(str(f["name"])).lower() not in names]
        if missing:
            problems.append(("sobject", f"the input lacks the required field(s) "
                             f"{', '.join(missing)} of {sobject}: Salesforce would reject "
                             "every inserted record", "add the column(s) before this "
                             "transform (MapToFields)"))
    _raise(problems)


def date_text_columns(columns: Sequence[tuple[str, Any]], describe: Mapping[str, Any]
                      ) -> dict[str, str]:
    """Text columns bound for date/datetime fields (column -> type): checked per record."""
    fields = {str(f["name"]).lower(): f for f in describe.get("fields", [])}
    found = {}
    for column, hint in columns:
        described = fields.get(str(column).lower())
        if described is not None and described.get("type") in DATE_TYPES \
                and _kind(hint) == "str":
            found[str(column)] = str(described["type"])
    return found


def bad_date_text(value: Any, sf_type: str) -> bool:
    """True when a text is no date (``YYYY-MM-DD``) / dateTime (ISO 8601) Salesforce takes.

    Such a record is never sent (a guess at ``01/02/2026`` would be a value the user did
    not write): it becomes a dead letter naming the format to use.
    """
    if not isinstance(value, str) or not value.strip():
        return False
    from forcebeam.stages.salesforce.timestamps import parse_datetime

    text = value.strip()
    try:
        if len(text) == 10:
            dt.date.fromisoformat(text)
        elif sf_type == "date" or not text[:4].isdigit():
            return True
        else:
            parse_datetime(text)
    except ValueError:
        return True
    return False


def _writable(described: Mapping[str, Any], operation: str) -> bool:
    if str(described.get("name")).lower() == "id":
        return True     # insert drops it; update and upsert match on it
    createable = bool(described.get("createable", True))
    updateable = bool(described.get("updateable", True))
    if operation == "insert":
        return createable
    if operation == "update":
        return updateable
    return createable or updateable or bool(described.get("externalId"))


def _closest(column: str, fields: Mapping[str, Mapping[str, Any]]) -> str:
    import difflib

    real = sorted(str(f["name"]) for f in fields.values())
    close = difflib.get_close_matches(str(column), real, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'? rename the column in a MapToFields"
    lowered = {name.lower(): name for name in real}
    if str(column).lower() in lowered:
        return f"did you mean '{lowered[str(column).lower()]}'?"
    return "drop or rename the column in a MapToFields before this transform"


def _raise(problems: list[tuple[str, str, str]]) -> None:
    if not problems:
        return
    if len(problems) == 1:
        field, message, fix = problems[0]
        raise StageInputError(message, field=field, suggestion=fix)
    text = "; ".join(f"{message} ({fix})" for _, message, fix in problems)
    raise StageInputError(f"{len(problems)} input problems: {text}", field=problems[0][0])
