"""Batch-aware file sinks: JSON lines and CSV written straight from Arrow tables.

Why: Beam YAML's ``WriteToJson``/``WriteToCsv`` go through Beam's DataFrame API (pandas),
which costs ~10 µs per row, more than reading the rows from Salesforce. These sinks take
``pyarrow.Table`` batches as they are (``process_batch``): a read that hands its pages on as
Arrow batches reaches the file with no per-row Python work. JSON text is built column by
column with ``pyarrow.compute`` (strings escaped per RFC 8259, floats in their shortest
round-trip form with a ``.0`` for whole numbers, null as ``null``); CSV is ``pyarrow.csv``.
Rows from any other schema'd PCollection work too (Beam batches them into tables).

No new dependency: pyarrow ships with apache-beam.

Output files: ``<path>-SSSSS-of-NNNNN<suffix>`` like Beam's file sinks (``.json``/``.csv``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes

__all__ = ["WriteToCsvFiles", "WriteToJsonLines", "csv_text", "json_lines"]

#: Control characters JSON strings must escape, in their short form where one exists.
_SHORT_ESCAPES = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NULL = pa.scalar("null", pa.string())


_NEEDS_ESCAPE = '["\\\\\\x00-\\x1f]'
_RARE_CONTROL = "[\\x00-\\x08\\x0b\\x0e-\\x1f]"


def _escaped(column: Any) -> Any:
    """JSON string escaping (RFC 8259), only the passes this column needs."""
    if not pc.any(pc.match_substring_regex(column, _NEEDS_ESCAPE)).as_py():
        return column
    escaped = pc.replace_substring(column, "\\", "\\\\")
    escaped = pc.replace_substring(escaped, '"', '\\"')
    rare = pc.any(pc.match_substring_regex(escaped, _RARE_CONTROL)).as_py()
    for code in range(0x20):
        char = chr(code)
        if char in _SHORT_ESCAPES:
            if pc.any(pc.match_substring(escaped, char)).as_py():
                escaped = pc.replace_substring(escaped, char, _SHORT_ESCAPES[char])
        elif rare:
            escaped = pc.replace_substring(escaped, char, f"\\u{code:04x}")
    return escaped


def _json_floats(column: Any) -> Any:
    text = pc.cast(column, pa.string())
    finite = pc.is_finite(column)
    whole = pc.invert(pc.match_substring_regex(text, "[.eE]"))
    text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    return pc.if_else(finite, text, pa.scalar(None, pa.string()))   # NaN/inf: null


def _json_pieces(column: Any) -> list[Any]:
    """One column's JSON text as pieces of a row: literals (str) and arrays.

    A string column without nulls gets its quotes as literals, merged with the neighbouring
    literals, so most columns cost one scan (the escaping check) and no array of their own.
    """
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        escaped = _escaped(column)
        if column.null_count == 0:
            return ['"', escaped, '"']
        text = pc.binary_join_element_wise('"', escaped, '"', "")
    elif pa.types.is_boolean(kind):
        text = pc.if_else(column, "true", "false")
    elif pa.types.is_integer(kind):
        text = pc.cast(column, pa.string())
    elif pa.types.is_floating(kind):
        text = _json_floats(column)
    else:   # not produced by our reads; exact through the json module
        text = pa.array([None if value is None else
                         json.dumps(value, ensure_ascii=False, default=str)
                         for value in column.to_pylist()], pa.string())
    return [pc.fill_null(text, _NULL) if text.null_count else text]


def json_lines(table: pa.Table) -> bytes:
    """``table`` as JSON lines (one object per row, keys in column order), UTF-8."""
    if table.num_rows == 0:
        return b""
    if table.num_columns == 0:
        return b"{}\n" * table.num_rows
    table = table.combine_chunks()
    pieces: list[Any] = []
    for index, (name, column) in enumerate(zip(table.column_names, table.columns,
                                               strict=True)):
        pieces.append(("{" if index == 0 else ",") + json.dumps(name, ensure_ascii=False)
                      + ":")
        pieces += _json_pieces(column.chunk(0) if column.num_chunks == 1 else column)
    pieces.append("}\n")
    merged: list[Any] = []
    for piece in pieces:       # adjacent literals become one
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    lines = pc.binary_join_element_wise(*merged, "")
    if isinstance(lines, pa.ChunkedArray):
        lines = pa.concat_arrays(lines.chunks) if lines.num_chunks else pa.array([], pa.string())
    return _string_bytes(lines)


def _string_bytes(array: pa.Array) -> bytes:
    """The concatenated UTF-8 of a non-null string array, straight from its data buffer."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
    start, end = offsets[array.offset], offsets[array.offset + len(array)]
    return array.buffers()[2].slice(int(start), int(end - start)).to_pybytes()


def csv_text(table: pa.Table, delimiter: str = ",") -> bytes:
    """``table`` as CSV rows without a header (strings quoted, null as an empty field)."""
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False,
                                                      delimiter=delimiter))
    return sink.getvalue()


def _csv_header(names: list[str], delimiter: str) -> bytes:
    """The header line, quoting only the names that need it (as most CSV writers do)."""
    def quoted(name: str) -> str:
        if any(char in name for char in (delimiter, '"', "\n", "\r")):
            return '"' + name.replace('"', '""') + '"'
        return name
    return (delimiter.join(quoted(name) for name in names) + "\n").encode("utf-8")


class _AsTables(beam.DoFn):
    """Batches in, one element per batch out: the file sink then writes whole tables."""

    def get_input_batch_type(self, input_element_type: Any) -> Any:
        return pa.Table     # the annotation below is a string (postponed evaluation)

    @beam.DoFn.yields_elements
    def process_batch(self, batch: pa.Table) -> Iterator[pa.Table]:
        if batch.num_rows:
            yield batch


class _ArrowTextSink(filebasedsink.FileBasedSink):
    """A Beam file sink whose records are whole tables encoded by ``encode``."""

    def __init__(self, path: str, suffix: str, num_shards: int,
                 encode: Callable[[pa.Table], bytes], header: bytes = b"") -> None:
        super().__init__(path, coder=None, file_name_suffix=suffix, num_shards=num_shards,
                         mime_type="text/plain", compression_type=CompressionTypes.AUTO)
        self._encode = encode
        self._header = header

    def open(self, temp_path: str) -> Any:
        handle = super().open(temp_path)
        if self._header:
            handle.write(self._header)
        return handle

    def write_record(self, file_handle: Any, value: pa.Table) -> None:
        file_handle.write(self._encode(value))


def _arrow_schema(pcoll: beam.PCollection) -> pa.Schema:
    from apache_beam.typehints.arrow_type_compatibility import arrow_schema_from_beam_schema
    from apache_beam.typehints.schemas import schema_from_element_type

    try:
        return arrow_schema_from_beam_schema(schema_from_element_type(pcoll.element_type))
    except Exception as error:
        raise ValueError("this sink writes rows with a schema whose fields are plain "
                         "strings, numbers and booleans (ReadFromSalesforce with types: "
                         f"portable, or MapToFields output); got {pcoll.element_type}"
                         ) from error


class WriteToJsonLines(beam.PTransform):
    """Write rows as JSON lines (one object per row), taking Arrow batches whole.

    Args:
      path: Output path prefix; files are ``<path>-SSSSS-of-NNNNN.json``.
      num_shards: Number of files (0: let the runner decide).
      file_name_suffix: Suffix of every file (default ``.json``).
    """

    def __init__(self, path: str, num_shards: int = 0,
                 file_name_suffix: str = ".json") -> None:
        super().__init__()
        self._path, self._num_shards, self._suffix = path, num_shards, file_name_suffix

    def expand(self, pcoll: beam.PCollection) -> Any:
        _arrow_schema(pcoll)   # a clear error now rather than inside a worker
        return (pcoll
                | "AsTables" >> beam.ParDo(_AsTables())
                | "Write" >> beam.io.Write(_ArrowTextSink(self._path, self._suffix,
                                                          self._num_shards, json_lines)))


class WriteToCsvFiles(beam.PTransform):
    """Write rows as CSV files with a header line, taking Arrow batches whole.

    Args:
      path: Output path prefix; files are ``<path>-SSSSS-of-NNNNN.csv``.
      delimiter: Field separator (default ``,``).
      num_shards: Number of files (0: let the runner decide).
      file_name_suffix: Suffix of every file (default ``.csv``).
    """

    def __init__(self, path: str, delimiter: str = ",", num_shards: int = 0,
                 file_name_suffix: str = ".csv") -> None:
        super().__init__()
        self._path, self._delimiter = path, delimiter
        self._num_shards, self._suffix = num_shards, file_name_suffix

    def expand(self, pcoll: beam.PCollection) -> Any:
        schema = _arrow_schema(pcoll)
        header = _csv_header(schema.names, self._delimiter)
        delimiter = self._delimiter
        return (pcoll
                | "AsTables" >> beam.ParDo(_AsTables())
                | "Write" >> beam.io.Write(_ArrowTextSink(
                    self._path, self._suffix, self._num_shards,
                    lambda table: csv_text(table, delimiter), header=header)))
