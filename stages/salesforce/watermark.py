"""``WatermarkFn``: an incremental read's next watermark and lookback window, combined
across workers (``stages.salesforce.incremental`` holds the state contract it feeds).

Its own module because it is the only part of incremental reads that needs Beam: the rest
(state files, bounds) is used by ``forcebeam run`` before Beam is imported.
"""

from __future__ import annotations

import datetime as dt

import apache_beam as beam

from forcebeam.stages.salesforce.timestamps import parse_datetime

__all__ = ["WatermarkFn"]


class WatermarkFn(beam.CombineFn):
    """Max ``field`` value and the ``{Id: value}`` pairs inside the lookback window.

    Observations are ``(Id, ISO value)``; pairs older than ``max - lookback`` are pruned as
    the max advances, so the accumulator stays as small as the window.
    """

    def __init__(self, lookback_seconds: float) -> None:
        self._lookback = dt.timedelta(seconds=lookback_seconds)

    def create_accumulator(self) -> tuple[str | None, dict[str, str]]:
        return None, {}

    def add_input(self, acc, element):
        record_id, value = element
        if value is None:
            return acc
        return self.merge_accumulators([acc, (value, {record_id: value})])

    def merge_accumulators(self, accumulators):
        top: str | None = None
        seen: dict[str, str] = {}
        parsed: dict[str, dt.datetime] = {}
        for mark, pairs in accumulators:
            if mark is not None and (top is None or _after(mark, top, parsed)):
                top = mark
            seen.update(pairs)
        if top is None:
            return None, seen
        floor = _parse(top, parsed) - self._lookback
        return top, {k: v for k, v in seen.items() if _parse(v, parsed) >= floor}

    def extract_output(self, acc):
        return acc


def _parse(text: str, cache: dict[str, dt.datetime]) -> dt.datetime:
    if text not in cache:
        cache[text] = parse_datetime(text)
    return cache[text]


def _after(a: str, b: str, cache: dict[str, dt.datetime]) -> bool:
    return _parse(a, cache) > _parse(b, cache)
