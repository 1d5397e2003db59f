"""Salesforce describe -> Beam row schema, and the value converters for both wire formats.

Why one module: REST JSON and Bulk 2.0 CSV carry the same field in two spellings (JSON
number vs text, ``+0000`` vs ``Z``). Rows must be equal whichever path read them, so each
field gets ONE target type and two converters (``from_json`` / ``from_csv``) that agree.

Two typings (``types=``):

* ``portable`` (default) - values every Beam YAML file sink writes readably and exactly
  (apache-beam 2.77 WriteToParquet refuses Beam logical types; WriteToJson writes
  Timestamp as micros/nanos and date as epoch millis):
  boolean -> bool, int/long -> int, double/percent -> float,
  **currency -> decimal string** at the field's scale (``"1234.50"``). Salesforce currency
  has up to 18 significant digits; a float64 holds only ~15-17, so a float would round large
  amounts and print ``0.30000000000000004``-style artefacts in CSV/JSON; a decimal string is
  exact in all three sinks and casts losslessly downstream (``CAST(x AS DECIMAL(18,2))``).
  date -> ``"2026-01-15"``, datetime -> ``"2026-01-15T09:30:00.000Z"`` (ISO-8601, UTC).
* ``native`` - for Python pipelines: currency -> ``decimal.Decimal``, date ->
  ``datetime.date``, datetime -> ``apache_beam.utils.timestamp.Timestamp``.

Everything else (id, reference, picklist, text, formula fields, anyType, base64, time) is a
string; compound address/location (REST only) is its JSON text. Every field is nullable.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from forcebeam.stages.salesforce.timestamps import format_datetime, parse_datetime

__all__ = [
    "COMPOUND_TYPES",
    "FieldSpec",
    "RowSchema",
    "TypeMode",
    "beam_name",
    "schema_from_describe",
]

TypeMode = Literal["portable", "native"]
COMPOUND_TYPES = frozenset({"address", "location"})
_BOOL_TYPES = frozenset({"boolean"})
_INT_TYPES = frozenset({"int", "long"})
_FLOAT_TYPES = frozenset({"double", "percent"})

Converter = Callable[[Any], Any]


def beam_name(path: str) -> str:
    """Beam/YAML field name for a SOQL column path (``Owner.Name`` -> ``Owner_Name``)."""
    return path.replace(".", "_")


@dataclass(frozen=True)
class FieldSpec:
    """One output column: the SOQL path, its Salesforce type and its Beam python type."""

    path: str            # as written in SOQL: "Name", "Owner.Name"
    sf_type: str         # describe "type" ("string", "currency", ... ; "string" if unknown)
    scale: int = 0       # currency scale (decimal places)
    compound: bool = False

    @property
    def name(self) -> str:
        return beam_name(self.path)

    def python_type(self, mode: TypeMode) -> type:
        return _python_type(self.sf_type, mode)

    def json_converter(self, mode: TypeMode) -> Converter:
        return _json_converter(self, mode)

    def csv_converter(self, mode: TypeMode) -> Converter:
        return _csv_converter(self, mode)


@dataclass(frozen=True)
class RowSchema:
    """The ordered output columns of a read; picklable (plain data only)."""

    sobject: str
    fields: tuple[FieldSpec, ...]
    mode: TypeMode = "portable"

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def row_class(self) -> type:
        """A NamedTuple class for the rows: Beam's schema type at construction time.

        Why not ``beam.Row(**kwargs)``: building a NamedTuple from the converted value
        tuple costs a fraction of a keyword-argument Row per element (wide extracts make
        millions of them); Beam and Beam YAML treat both as schema'd rows (``_asdict()``,
        attribute access, RowCoder).
        """
        from apache_beam.typehints.schemas import named_fields_to_schema, named_tuple_from_schema

        fields = [(f.name, typing.Optional[f.python_type(self.mode)])  # noqa: UP045 - Beam
                  for f in self.fields]
        # Beam's generated class pickles its instances by schema, so rows survive any coder.
        return named_tuple_from_schema(named_fields_to_schema(fields))

    def field(self, path: str) -> FieldSpec | None:
        wanted = path.lower()
        return next((f for f in self.fields if f.path.lower() == wanted), None)


@dataclass(frozen=True)
class DroppedCompound:
    """A compound field named in a Bulk read's `fields`: Bulk API 2.0 cannot select it, so
    its column is dropped; `kept` are those of its parts the same list names."""

    name: str
    index: int                  # its position in the read's `fields`
    parts: tuple[str, ...]
    kept: tuple[str, ...]

    @property
    def consequence(self) -> str:
        instead = (f"read instead: {', '.join(self.kept)}" if self.kept
                   else "none of its parts is listed, so nothing of it is read")
        return (f"mode: bulk cannot read the compound field {self.name}: the column is "
                f"dropped; {instead}")

    @property
    def fix(self) -> str:
        return (f"list its parts ({', '.join(self.parts)}) or use mode: auto (reads it "
                "through REST as JSON text)")


def bulk_dropped_compounds(describe: Mapping[str, Any], fields: Sequence[Any]
                           ) -> list[DroppedCompound]:
    """The compound fields among `fields` (as a user listed them) of a Bulk read."""
    described = describe.get("fields", [])
    by_name = {str(f["name"]).lower(): f for f in described}
    listed = {str(field).lower() for field in fields}
    dropped: list[DroppedCompound] = []
    for index, field in enumerate(fields):
        found = by_name.get(str(field).lower())
        if not found or found.get("type") not in COMPOUND_TYPES:
            continue
        parts = tuple(str(f["name"]) for f in described
                      if f.get("compoundFieldName") == found["name"])
        dropped.append(DroppedCompound(name=str(found["name"]), index=index, parts=parts,
                                       kept=tuple(p for p in parts if p.lower() in listed)))
    return dropped


def schema_from_describe(describe: Mapping[str, Any], *, fields: Sequence[str] | None = None,
                         mode: TypeMode = "portable", include_compound: bool = False,
                         related: Mapping[str, Mapping[str, Any]] | None = None) -> RowSchema:
    """Build the row schema for ``fields`` (default: every non-compound field).

    ``fields`` may name relationship paths (``Owner.Name``); they are typed from ``related``
    (describe of the parent object, keyed by relationship name) when given, else as strings.
    Unknown names raise ``ValueError`` naming the field and the closest real names.
    """
    by_name = {f["name"].lower(): f for f in describe.get("fields", [])}
    sobject = describe.get("name", "")
    if fields is None:
        chosen = [_spec(f) for f in describe.get("fields", [])
                  if include_compound or f.get("type") not in COMPOUND_TYPES]
        return RowSchema(sobject=sobject, fields=tuple(chosen), mode=mode)
    specs: list[FieldSpec] = []
    for path in fields:
        if "." in path:
            relationship, _, leaf = path.partition(".")
            parent = (related or {}).get(relationship.lower())
            leaf_desc = None
            if parent is not None:
                leaf_desc = {f["name"].lower(): f for f in parent.get("fields", [])}.get(
                    leaf.lower())
            specs.append(_spec(leaf_desc, path=path) if leaf_desc else
                         FieldSpec(path=path, sf_type="string"))
            continue
        desc = by_name.get(path.lower())
        if desc is None:
            raise ValueError(_unknown_field_message(sobject, path, by_name))
        specs.append(_spec(desc))
    return RowSchema(sobject=sobject, fields=tuple(specs), mode=mode)


def _unknown_field_message(sobject: str, path: str, by_name: Mapping[str, Any]) -> str:
    import difflib

    real = [f["name"] for f in by_name.values()]
    close = difflib.get_close_matches(path, real, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return (f"fields: {sobject} has no field {path!r}.{hint} "
            f"Run `forcebeam describe FILE CONNECTION {sobject}` to list its fields.")


def _spec(desc: Mapping[str, Any], path: str | None = None) -> FieldSpec:
    sf_type = str(desc.get("type") or "string")
    if desc.get("calculated") and sf_type not in COMPOUND_TYPES:
        sf_type = "formula"      # formula results are strings (brief: formula/anyType as str)
    return FieldSpec(path=path or desc["name"], sf_type=sf_type,
                     scale=int(desc.get("scale") or 0), compound=sf_type in COMPOUND_TYPES)


def _python_type(sf_type: str, mode: TypeMode) -> type:
    if sf_type in _BOOL_TYPES:
        return bool
    if sf_type in _INT_TYPES:
        return int
    if sf_type in _FLOAT_TYPES:
        return float
    if mode == "native":
        if sf_type == "currency":
            return decimal.Decimal
        if sf_type == "date":
            return dt.date
        if sf_type == "datetime":
            from apache_beam.utils.timestamp import Timestamp

            return Timestamp
    return str


# ---------------------------------------------------------------------------- converters

def _iso_datetime_z(text: str) -> str:
    """Normalise a Salesforce dateTime (``...+0000`` REST / ``...Z`` Bulk) to ``...000Z``."""
    if text.endswith("Z") and len(text) == 24:
        return text
    if text.endswith("+0000") and len(text) == 28:
        return text[:-5] + "Z"
    return format_datetime(parse_datetime(text))


def _native_timestamp(text: str) -> Any:
    from apache_beam.utils.timestamp import Timestamp

    return Timestamp.from_utc_datetime(parse_datetime(text))


def _currency_decimal(value: Any, scale: int) -> decimal.Decimal:
    """Exactly ``scale`` decimals, as Salesforce stores currency (9800000.0 -> 9800000)."""
    amount = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
    return amount.quantize(decimal.Decimal(1).scaleb(-scale))


def _currency_text(value: Any, scale: int) -> str:
    """Exact decimal text with ``scale`` decimals; Bulk CSV usually has it already.

    The fast path (digits, one point, exactly ``scale`` decimals) skips Decimal arithmetic,
    which dominated the conversion of wide extracts; anything else is normalised exactly.
    """
    if isinstance(value, str):
        whole, point, fraction = value.partition(".")
        if (point and len(fraction) == scale and fraction.isdigit()
                and whole.lstrip("-").isdigit()):
            return value
    return f"{_currency_decimal(value, scale):f}"


def _text_of_json(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _int_of_text(text: str) -> int:
    """``42`` (Bulk CSV) or ``42.0`` (some REST numbers) as an int; plain ints skip Decimal."""
    try:
        return int(text)
    except ValueError:
        return int(decimal.Decimal(text))


def _bool_of_csv(text: str) -> bool:
    return text.lower() == "true"


def _typed(sf_type: str, scale: int, mode: TypeMode) -> Converter:
    """Converter from a non-null *text* value (the CSV spelling) to the target type."""
    if sf_type in _BOOL_TYPES:
        return _bool_of_csv
    if sf_type in _INT_TYPES:
        return _int_of_text
    if sf_type in _FLOAT_TYPES:
        return float
    if sf_type == "currency":
        if mode == "native":
            return lambda text: _currency_decimal(text, scale)
        return lambda text: _currency_text(text, scale)
    if sf_type == "datetime":
        return _native_timestamp if mode == "native" else _iso_datetime_z
    if sf_type == "date":
        return dt.date.fromisoformat if mode == "native" else str
    return str


def _text_or_none(text: str) -> str | None:
    return text or None


def _csv_converter(spec: FieldSpec, mode: TypeMode) -> Converter:
    typed = _typed(spec.sf_type, spec.scale, mode)
    if typed is str:
        return _text_or_none      # the hot path of wide extracts: most fields are text

    def convert(text: str) -> Any:
        return typed(text) if text != "" else None
    return convert


def _json_converter(spec: FieldSpec, mode: TypeMode) -> Converter:
    sf_type = spec.sf_type
    if sf_type in _BOOL_TYPES:
        return lambda v: v if v is None or isinstance(v, bool) else _bool_of_csv(str(v))
    if sf_type in _INT_TYPES:
        return lambda v: None if v is None else int(v)
    if sf_type in _FLOAT_TYPES:
        return lambda v: None if v is None else float(v)
    if sf_type == "currency":
        scale = spec.scale
        if mode == "native":
            return lambda v: None if v is None else _currency_decimal(v, scale)
        return lambda v: None if v is None else _currency_text(v, scale)
    if sf_type == "location":
        return _location_text
    typed = _typed(sf_type, spec.scale, mode)

    def convert(value: Any) -> Any:
        if value is None or value == "":
            return None
        return typed(_text_of_json(value))
    return convert


def _location_text(value: Any) -> str | None:
    """A geolocation as JSON text with numeric latitude/longitude, whatever the source sent."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, dict):
        value = {key: float(part) if key in ("latitude", "longitude") and part is not None
                 else part for key, part in value.items()}
    return _text_of_json(value)


def converters(schema: RowSchema, columns: Iterable[str], *, wire: Literal["json", "csv"]
               ) -> list[Converter]:
    """Converters in ``columns`` order (case-insensitive match on SOQL paths)."""
    out = []
    for column in columns:
        spec = schema.field(column) or FieldSpec(path=column, sf_type="string")
        out.append(spec.csv_converter(schema.mode) if wire == "csv"
                   else spec.json_converter(schema.mode))
    return out
