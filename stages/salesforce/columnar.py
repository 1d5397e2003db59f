"""Bulk 2.0 result pages as Arrow: parse a CSV page, convert its columns without per-row work.

Why: the per-value path (``csv.reader`` + one Python converter per value) costs ~7 µs per
row of a wide object and dominated every extract. Here a page is parsed by ``pyarrow.csv``
with every column read as a string (quoted newlines kept; an empty field, quoted or not, is
null: Bulk CSV writes null as an empty field and the per-value path maps ``""`` to None,
so both paths agree), then each column is converted with vectorised ``pyarrow.compute`` to
exactly the value ``schema.csv_converter`` gives:

* boolean: ``lower(text) == "true"``; int/long and double/percent: Arrow's string cast;
* currency (portable): decimal text with exactly ``scale`` decimals, padded in Arrow when the
  text is a plain decimal with at most ``scale`` decimals;
* datetime (portable): ``...000Z`` kept, ``...+0000`` rewritten to ``Z``;
* everything else (text, ids, dates in portable mode) is the string column itself.

A value the vectorised form cannot convert exactly (an int cast that fails, a currency
needing rounding, an odd datetime) goes through the per-value converter, so a value is never
different from the per-value path's. Native typing (Decimal, date, Timestamp) has no Arrow
form Beam accepts, so those columns are converted per value on the row path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from forcebeam.auth.errors import TransientError
from forcebeam.stages.salesforce.schema import FieldSpec, RowSchema

__all__ = ["PageConverter", "arrow_schema", "parse_page"]

_BOOL = frozenset({"boolean"})
_INT = frozenset({"int", "long"})
_FLOAT = frozenset({"double", "percent"})
#: Bytes of CSV text Arrow parses at a time.
_BLOCK_BYTES = 8 << 20
#: A plain decimal Salesforce would store as is: no sign but ``-``, no leading zeros, at most
#: 18 integer digits (currency precision), so Decimal's 28-digit context never matters.
_DECIMAL_TEXT = r"^(?P<whole>-?(?:0|[1-9][0-9]{0,17}))(?:\.(?P<fraction>[0-9]*))?$"


class PageParseError(TransientError):
    """A page that is not a complete CSV document (cut off, or not CSV at all): a cut
    download, so the page is fetched again."""


def parse_page(data: bytes | pa.Buffer, *, gzipped: bool = False,
               delimiter: str = ",") -> pa.Table:
    """One Bulk CSV page (header line + rows) as a table of string columns (empty = null).

    ``gzipped``: ``data`` is the page as it came over the wire (``Content-Encoding: gzip``).
    It is then decompressed by Arrow while it is parsed, block by block, so the page's CSV
    text is never held whole (a 100k-row page of 24 fields is ~7 MB gzip'd, ~37 MB as text):
    what a page costs in memory is its parsed table. A gzip stream carries its own length
    and checksum, so a cut download fails the decompression instead of parsing short.
    """
    if gzipped:
        return _parse_gzipped(data if isinstance(data, pa.Buffer) else pa.py_buffer(data),
                              delimiter)
    if isinstance(data, pa.Buffer):
        data = data.to_pybytes()
    end = data.find(b"\n")
    if end < 0:
        if data.strip():
            raise PageParseError("the page has a header but no line end")
        return pa.table({})
    if not data.endswith(b"\n") or data.count(b'"') % 2:
        # Every complete page ends with a line end outside quotes; quotes come in pairs
        # (embedded ones are doubled). A cut page may still parse, so check first.
        raise PageParseError("the page ends inside a row or a quoted value (cut off)")
    header = _header(data[:end].rstrip(b"\r").decode("utf-8"), delimiter)
    if len(data) - end <= 2 and not data[end + 1:].strip():     # no rows, without a copy
        return _no_rows(header)
    # BufferReader reads the bytes in place (io.BytesIO handed Arrow a copy of every block).
    return _read_csv(pa.BufferReader(pa.py_buffer(data)), header, delimiter)


#: How much of a gzip'd page is decompressed first to find its header line (grown until the
#: line end is in it: an object with hundreds of fields has a header of a few kB).
_HEAD_BYTES = 1 << 16


def _parse_gzipped(body: pa.Buffer, delimiter: str) -> pa.Table:
    try:
        size = _HEAD_BYTES
        while True:
            head = pa.input_stream(body, compression="gzip").read(size)
            end = head.find(b"\n")
            if end >= 0:
                break
            if len(head) < size:       # the whole page, and no line end in it
                if head.strip():
                    raise PageParseError("the page has a header but no line end")
                return pa.table({})
            size *= 4
        header = _header(head[:end].rstrip(b"\r").decode("utf-8"), delimiter)
        if len(head) < size and not head[end + 1:].strip():
            return _no_rows(header)
        return _read_csv(pa.input_stream(body, compression="gzip"), header, delimiter)
    except OSError as error:           # "Truncated compressed stream", a bad gzip header
        raise PageParseError(f"the gzip'd page does not decompress: {error}") from error


def _no_rows(header: list[str]) -> pa.Table:
    return pa.table({name: pa.array([], pa.string()) for name in header})


def _read_csv(source: Any, header: list[str], delimiter: str) -> pa.Table:
    """The rows after the header line, every column read as (nullable) strings."""
    try:
        return pa_csv.read_csv(
            source,
            # One thread per page: workers already parse pages in parallel, and on a busy
            # machine Arrow's thread pool measured slower (1.4 vs 2.0 µs/row).
            read_options=pa_csv.ReadOptions(column_names=header, skip_rows=1,
                                            block_size=_BLOCK_BYTES, use_threads=False),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, quote_char='"',
                                              double_quote=True, newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True))
    except pa.ArrowInvalid as error:
        raise PageParseError(str(error)) from error


def _header(line: str, delimiter: str) -> list[str]:
    import csv

    return next(csv.reader([line], delimiter=delimiter))


def arrow_schema(row_class: type) -> pa.Schema | None:
    """The Arrow schema Beam derives for ``row_class`` (None if Beam has no Arrow form).

    Tables built with exactly this schema pass through Beam's batch-aware consumers
    (``PyarrowBatchConverter`` of the same row type) without any conversion.
    """
    from apache_beam.typehints.arrow_type_compatibility import arrow_schema_from_beam_schema
    from apache_beam.typehints.schemas import schema_from_element_type

    try:
        return arrow_schema_from_beam_schema(schema_from_element_type(row_class))
    except (ValueError, TypeError, NotImplementedError):
        return None


class PageConverter:
    """Converts parsed pages of one read (its schema) to Arrow tables or to row values."""

    def __init__(self, schema: RowSchema, target: pa.Schema | None = None) -> None:
        self._schema = schema
        self._target = target

    @property
    def target(self) -> pa.Schema | None:
        return self._target

    def values_to_arrow(self, values: Sequence[Sequence[Any]]) -> pa.Table:
        """Typed value tuples (REST rows) as a table of ``target`` schema."""
        assert self._target is not None, "native typing has no Arrow form"
        columns = list(zip(*values, strict=True)) if values else [()] * len(self._target)
        return pa.Table.from_arrays(
            [pa.array(list(column), type=field.type)
             for column, field in zip(columns, self._target, strict=True)],
            schema=self._target)

    def to_arrow(self, raw: pa.Table) -> pa.Table:
        """The page as a table of ``target`` schema (portable typing only)."""
        assert self._target is not None, "native typing has no Arrow form; use to_rows"
        columns = [self._column(spec, raw) for spec in self._schema.fields]
        return pa.Table.from_arrays(columns, schema=self._target)

    def to_rows(self, raw: pa.Table) -> list[tuple[Any, ...]]:
        """The page as value tuples in schema order, the per-value path's values exactly."""
        columns = []
        for spec in self._schema.fields:
            if self._schema.mode == "native" and spec.sf_type in ("currency", "date",
                                                                  "datetime"):
                columns.append(_per_value(spec, self._schema, _raw_column(raw, spec)))
            else:
                columns.append(self._column(spec, raw).to_pylist())
        if not columns:
            return [() for _ in range(raw.num_rows)]
        return list(zip(*columns, strict=True))

    def _column(self, spec: FieldSpec, raw: pa.Table) -> pa.ChunkedArray | pa.Array:
        text = _raw_column(raw, spec)
        kind = spec.sf_type
        convert = spec.csv_converter(self._schema.mode)
        if kind in _BOOL:
            return pc.equal(pc.utf8_lower(text), "true")
        if kind in _INT:
            return _cast_or_each(text, pa.int64(), convert)
        if kind in _FLOAT:
            return _cast_or_each(text, pa.float64(), convert)
        if kind == "currency":
            return _currency_text(text, spec.scale, convert)
        if kind == "datetime":
            return _datetime_z(text, convert)
        return text


def _raw_column(raw: pa.Table, spec: FieldSpec) -> pa.ChunkedArray:
    """The page's string column for ``spec`` (case-insensitive); all-null when absent."""
    wanted = spec.path.lower()
    for index, name in enumerate(raw.column_names):
        if name.lower() == wanted:
            return raw.column(index)
    return pa.chunked_array([pa.nulls(raw.num_rows, pa.string())])


def _per_value(spec: FieldSpec, schema: RowSchema, text: pa.ChunkedArray) -> list[Any]:
    convert = spec.csv_converter(schema.mode)
    return [None if value is None else convert(value) for value in text.to_pylist()]


def _cast_or_each(text: pa.ChunkedArray, target: pa.DataType,
                  convert: Callable[[str], Any]) -> pa.ChunkedArray | pa.Array:
    try:
        return pc.cast(text, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Something Arrow does not read ("1_000", "42.0", " 7"): the per-value converter
        # decides, exactly as on the per-value path (including its errors).
        return pa.array([None if value is None else convert(value)
                         for value in text.to_pylist()], type=target)


def _patched(result: pa.ChunkedArray | pa.Array, text: pa.ChunkedArray,
             needs_python: pa.ChunkedArray | pa.Array, convert: Callable[[str], Any],
             target: pa.DataType) -> pa.ChunkedArray | pa.Array:
    """``result`` with the rows flagged in ``needs_python`` converted per value."""
    flagged = pc.fill_null(needs_python, False)
    if not pc.any(flagged).as_py():
        return result
    values = result.to_pylist()
    texts = text.to_pylist()
    for index in pc.indices_nonzero(flagged).to_pylist():
        values[index] = convert(texts[index])
    return pa.array(values, type=target)


def _currency_text(text: pa.ChunkedArray, scale: int, convert: Callable[[str], Any]
                   ) -> pa.ChunkedArray | pa.Array:
    parts = pc.extract_regex(text, pattern=_DECIMAL_TEXT)
    whole = pc.struct_field(parts, "whole")
    # Zeros past the scale change nothing ("1.500" at scale 2 is "1.50"): trimmed first.
    fraction = pc.utf8_rtrim(pc.fill_null(pc.struct_field(parts, "fraction"), ""),
                             characters="0")
    exact = pc.less_equal(pc.utf8_length(fraction), scale)
    if scale > 0:
        padded = pc.utf8_rpad(fraction, width=scale, padding="0")
        normalised = pc.binary_join_element_wise(whole, padded, ".")
    else:
        normalised = whole
    result = pc.if_else(exact, normalised, pa.scalar(None, pa.string()))
    needs_python = pc.and_(pc.is_valid(text), pc.is_null(result))
    return _patched(result, text, needs_python, convert, pa.string())


def _datetime_z(text: pa.ChunkedArray, convert: Callable[[str], Any]
                ) -> pa.ChunkedArray | pa.Array:
    length = pc.utf8_length(text)
    zulu = pc.and_(pc.ends_with(text, "Z"), pc.equal(length, 24))
    offset = pc.and_(pc.ends_with(text, "+0000"), pc.equal(length, 28))
    rewritten = pc.binary_join_element_wise(pc.utf8_slice_codeunits(text, 0, 23), "Z", "")
    result = pc.if_else(zulu, text, pc.if_else(offset, rewritten,
                                                pa.scalar(None, pa.string())))
    needs_python = pc.and_(pc.is_valid(text), pc.is_null(result))
    return _patched(result, text, needs_python, convert, pa.string())

