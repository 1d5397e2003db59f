"""Rows -> files of one lake folder (parquet | jsonl | csv) through Beam's file sinks.

Each write returns the PCollection of the file names it finalized, which the commit step
waits for. File names start with the run id (``{prefix}/{run_id}-00000-of-00002.parquet``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import apache_beam as beam

__all__ = ["write_files", "as_dict", "SUFFIXES", "TOMBSTONE_COLUMNS"]

SUFFIXES = {"parquet": ".parquet", "jsonl": ".jsonl", "csv": ".csv"}
TOMBSTONE_COLUMNS = ("Id", "deleted_at", "kind")


def as_dict(row: Any) -> dict[str, Any]:
    if isinstance(row, dict):
        return row
    return row._asdict()


def _csv_line(values: Sequence[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(
        ["" if v is None else ("true" if v is True else "false" if v is False else v)
         for v in values])
    return buffer.getvalue()


def _arrow_strings(columns: Sequence[str]) -> Any:
    import pyarrow as pa

    return pa.schema([(name, pa.string()) for name in columns])


def write_files(pcoll: beam.PCollection, prefix: str, fmt: str,
                columns: Sequence[str] | None = None, label: str = "Files") -> beam.PCollection:
    """Write ``pcoll`` (schema'd rows, or dicts of string ``columns``) under ``prefix``.

    ``columns`` is given for dict elements (tombstones): all string columns.
    """
    suffix = SUFFIXES[fmt]
    if columns is None:
        names = list(pcoll.element_type._fields)
    else:
        names = list(columns)
    if fmt == "parquet":
        schema = _arrow_strings(names) if columns is not None else None
        return pcoll | f"{label}/Parquet" >> beam.io.WriteToParquet(
            prefix, schema, file_name_suffix=suffix)
    if fmt == "jsonl":
        lines = pcoll | f"{label}/Json" >> beam.Map(
            lambda row: json.dumps(as_dict(row), default=str))
        return lines | f"{label}/Jsonl" >> beam.io.WriteToText(prefix, file_name_suffix=suffix)
    lines = pcoll | f"{label}/Csv" >> beam.Map(
        lambda row, names=tuple(names): _csv_line([as_dict(row).get(n) for n in names]))
    return lines | f"{label}/CsvFiles" >> beam.io.WriteToText(
        prefix, file_name_suffix=suffix, header=_csv_line(names))


def read_ids(path: str) -> list[str]:
    """The ``Id`` column of one lake file (any of the three formats)."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as handle:
        data = handle.read()
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data), columns=["Id"])
        return [i for i in table.column("Id").to_pylist() if i]
    text = data.decode("utf-8")
    if path.endswith(".jsonl"):
        return [json.loads(line)["Id"] for line in text.splitlines() if line.strip()]
    return [row["Id"] for row in csv.DictReader(io.StringIO(text)) if row.get("Id")]
