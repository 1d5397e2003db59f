"""A write's input batch as pandas frames: records and rows made only where needed.

Why: Beam YAML's ``ReadFromCsv`` (and every pandas-based source) hands on pandas DataFrames.
A row-wise consumer makes Beam explode each frame into one row object per record (~5 µs a
record), and the write then turned each row back into a dict. A Bulk write needs neither:
its upload is built column by column (``ingest_csv.upload_columns``). So ``WriteToSalesforce``
takes the frames as they are (a Beam batched DoFn) and keeps them here; a record (dict) or an
input row is made only for what needs one: a rejected record's dead letter, the ``written``
output when something reads it, a REST call, a record-by-record check.

Values are exactly what Beam's own explode gives (``DataFrameBatchConverter.explode_batch``):
each column's values as iterating its Series gives them, ``None`` wherever ``pd.isnull``.
Frames are never concatenated: pandas infers each chunk's dtypes on its own (an integer
column with an empty cell is a float column in that chunk only), and a concatenation would
turn the other chunks' integers into floats.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["FrameRecords"]


class FrameRecords(Sequence[dict[str, Any]]):
    """The records of some pandas frames of one schema, in order (a ``Sequence`` of dicts).

    ``row_type``: the input's Beam row type (``RowTypeConstraint``); its ``user_type`` makes
    the input rows, as Beam would have.
    """

    def __init__(self, frames: Sequence[Any], row_type: Any) -> None:
        self._frames = list(frames)
        self._row_type = row_type
        self._names = [name for name, _ in row_type._fields]
        self._length = sum(len(frame) for frame in self._frames)
        self._columns: dict[str, list[Any]] = {}

    @property
    def names(self) -> list[str]:
        """The columns, in the row type's order (every record has every one)."""
        return list(self._names)

    def column(self, name: str) -> list[Any]:
        """One column's values across the frames (``None`` for a null), computed once."""
        values = self._columns.get(name)
        if values is None:
            values = []
            for frame in self._frames:
                values.extend(_series_values(frame[name]))
            self._columns[name] = values
        return values

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(index)
        return {name: self.column(name)[index] for name in self._names}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        columns = [self.column(name) for name in self._names]
        for values in zip(*columns, strict=True):
            yield dict(zip(self._names, values, strict=True))

    def element(self, index: int) -> Any:
        """The input row at ``index``, as Beam's explode would have made it."""
        return self._row_type.user_type(**self[index])


def _series_values(series: Any) -> list[Any]:
    """A Series' values as iterating it gives them, ``None`` wherever ``pd.isnull``.

    Iterating a Series boxes each value of a NumPy column with ``ndarray.item`` and yields
    an extension array's own values; ``tolist`` of the same array gives the same objects in
    one call. Other dtypes (dates, categoricals, nullable integers) are iterated as Beam does.
    """
    import numpy as np
    import pandas as pd

    nulls = pd.isnull(series)
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iubfO" or isinstance(dtype, pd.StringDtype):
        values = series.to_numpy().tolist()
        if not nulls.any():
            return values
        return [None if null else value for null, value in zip(nulls.tolist(), values,
                                                                strict=True)]
    return [None if null else value for null, value in zip(nulls, series, strict=True)]
