"""Per-row write checks shared by REST, composite collections and Bulk ingest.

Input values are JSON values (REST) or strings (Bulk CSV); both are coerced to storage
values here, and every refusal is a `WriteError` worded like Salesforce's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import partial
from typing import Any

from forcebeam.emulator.records import ids
from forcebeam.emulator.records.schema import FieldDef, ObjectDef
from forcebeam.emulator.records.soql.parser import parse_datetime_literal
from forcebeam.emulator.records.values import datetime_to_ms

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = frozenset({"true", "1", "yes", "y"})
_FALSE = frozenset({"false", "0", "no", "n"})


@dataclass
class WriteError:
    """One reason a row was refused (composite `statusCode`, Bulk `sf__Error` code)."""

    status_code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}


class RowRefusedError(Exception):
    """Raised inside validation; carries the WriteError for the row."""

    def __init__(self, error: WriteError) -> None:
        super().__init__(error.message)
        self.error = error


def refuse(code: str, message: str, fields: list[str] | None = None) -> RowRefusedError:
    return RowRefusedError(WriteError(code, message, list(fields or [])))


def not_of_type(f: FieldDef, value: Any) -> RowRefusedError:
    return refuse("INVALID_TYPE_ON_FIELD_IN_RECORD",
                  f"{f.label}: value not of required type: {value}", [f.name])


def bad_id(obj_label: str, value: Any, field_name: str = "Id") -> RowRefusedError:
    return refuse("MALFORMED_ID", f"{obj_label} ID: id value of incorrect type: {value}",
                  [field_name])


def check_id(obj: ObjectDef, value: Any, field_name: str = "Id") -> str:
    """A well-formed id of `obj` in 18-char form, else MALFORMED_ID."""
    if not isinstance(value, str) or not ids.is_well_formed(value) \
            or value[:3] != obj.key_prefix:
        raise bad_id(obj.label, value, field_name)
    return ids.normalize(value)


def parse_datetime_value(text: str) -> datetime:
    """Salesforce accepts `…SSS+hh:mm`, `…SSSZ`, `…+hhmm`, no zone (UTC) and bare dates."""
    text = text.strip()
    try:
        return parse_datetime_literal(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def coerce(f: FieldDef, value: Any) -> Any:
    """JSON/CSV value -> storage value for `f`; raises RowRefusedError on a bad value."""
    if value is None or value == "":
        return None
    kind = f.type
    if kind == "boolean":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return int(value.strip().lower() in _TRUE)
        raise not_of_type(f, value)
    if kind == "int":
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value) if isinstance(value, str) else value
            if not isinstance(number, (int, float)) or number != int(number):
                raise ValueError
            return int(number)
        except (TypeError, ValueError, OverflowError):
            raise not_of_type(f, value) from None
    if kind in ("double", "currency", "percent"):
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise not_of_type(f, value) from None
        if f.precision and abs(number) >= 10 ** (f.precision - f.scale):
            raise refuse("NUMBER_OUTSIDE_VALID_RANGE",
                         f"{f.label}: value outside of valid range on numeric field: {value}",
                         [f.name])
        return number
    if kind == "date":
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        try:
            return date.fromisoformat(str(value).strip()[:10]).isoformat()
        except ValueError:
            raise not_of_type(f, value) from None
    if kind == "datetime":
        if isinstance(value, datetime):
            return datetime_to_ms(value)
        try:
            return datetime_to_ms(parse_datetime_value(str(value)))
        except ValueError:
            raise not_of_type(f, value) from None
    if isinstance(value, (dict, list)):
        raise not_of_type(f, value)
    text = value if isinstance(value, str) else (
        ("true" if value else "false") if isinstance(value, bool) else str(value))
    if kind in ("id", "reference"):
        return text  # checked against the referenced object by the store
    if f.length and len(text) > f.length:
        raise refuse("STRING_TOO_LONG",
                     f"{f.label}: data value too large: {text[:100]} (max length={f.length})",
                     [f.name])
    if kind == "picklist" and f.restricted_picklist and text not in f.picklist:
        raise refuse("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                     f"{f.label}: bad value for restricted picklist field: {text}", [f.name])
    if kind == "email" and not _EMAIL_RE.match(text):
        raise refuse("INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {text}",
                     [f.name])
    return text


#: Kinds whose string values are only checked for length (see `coerce`'s last branch).
_PLAIN_TEXT_KINDS = frozenset({"string", "textarea", "phone", "url"})


def coercer(f: FieldDef) -> Callable[[Any], Any]:
    """`coerce(f, value)` as a one-argument function; plain text fields get a shortcut for
    string values that makes exactly `coerce`'s checks (Bulk CSV cells are all strings)."""
    if f.type == "int":
        def integer(value: Any) -> Any:
            if value.__class__ is str and value != "":
                try:
                    number = float(value)
                    whole = int(number)
                except (ValueError, OverflowError):
                    return coerce(f, value)   # raises, worded in one place
                if number == whole:
                    return whole
            return coerce(f, value)

        return integer
    if f.type not in _PLAIN_TEXT_KINDS:
        return partial(coerce, f)
    length = f.length

    def text(value: Any) -> Any:
        if value.__class__ is not str:
            return coerce(f, value)
        if value == "":
            return None
        if length and len(value) > length:
            return coerce(f, value)   # raises STRING_TOO_LONG, worded in one place
        return value

    return text


def check_writable(f: FieldDef, creating: bool) -> None:
    """Refuse fields the integration user may not set on this operation."""
    allowed = f.createable if creating else f.updateable
    if not allowed:
        raise refuse("INVALID_FIELD_FOR_INSERT_UPDATE",
                     f"Unable to create/update fields: {f.name}. Please check the security "
                     "settings of this field and verify that it is read/write for your profile "
                     "or permission set.", [f.name])


def coerce_column(f: FieldDef, convert: Callable[[Any], Any], values: list[Any]
                  ) -> tuple[list[Any], set[int]]:
    """`convert` (`coercer(f)`) applied to a column of raw values at once: the converted
    values and the positions it refused (left None there; the per-row write reports them).

    Why: a Bulk batch's column is converted with one C-level pass where it can be: a plain
    text column of non-empty strings within the field's length is its own conversion (what
    `coercer`'s shortcut returns for each), others are mapped. A dict or list value is
    always refused here: the per-row path reads a dict as a parent reference.
    """
    kinds = set(map(type, values))
    if kinds <= _STR_OR_NONE:
        if f.type in _PLAIN_TEXT_KINDS and kinds == _STR_ONLY and "" not in values and (
                not f.length or max(map(len, values), default=0) <= f.length):
            return list(values), set()
        if f.type == "int" and kinds == _STR_ONLY and "" not in values:
            # `coercer`'s integer shortcut, per column: float() of each, kept when whole.
            try:
                numbers = list(map(float, values))
                wholes = list(map(int, numbers))
            except (ValueError, OverflowError):
                pass
            else:
                if numbers == wholes:
                    return wholes, set()
        try:
            return list(map(convert, values)), set()
        except RowRefusedError:
            pass
    converted: list[Any] = []
    refused: set[int] = set()
    for position, value in enumerate(values):
        try:
            if isinstance(value, (dict, list)):
                raise not_of_type(f, value)
            converted.append(convert(value))
        except RowRefusedError:
            converted.append(None)
            refused.add(position)
    return converted, refused


_STR_ONLY = frozenset({str})
_STR_OR_NONE = frozenset({str, type(None)})
