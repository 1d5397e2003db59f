"""Split one read into balanced units (Id ranges) with O(units) API calls.

Why Id ranges: Salesforce Ids are fixed-width base62 and sort in (roughly) creation order,
so the smallest and largest Id of the query bound the key space; interpolating boundaries
in that space and checking each range with one ``COUNT()`` gives ranges whose sizes are
known. A range holding more than twice the target is bisected again (a bounded number of
rounds), so units end within 2x of each other whatever the Id distribution, and planning
never reads rows (no ``OFFSET`` probes, which Salesforce caps at 2,000 anyway).

Cost: 1 ``COUNT()`` + 2 edge-Id queries + 1 ``COUNT()`` per unit (+ 2 per bisection).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["ReadUnit", "plan_id_ranges", "AUTO_ROWS_PER_UNIT", "MAX_UNITS"]

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_WIDTH = 15
AUTO_ROWS_PER_UNIT = 50_000
MAX_UNITS = 256
_REFINE_ROUNDS = 4


@dataclass(frozen=True)
class ReadUnit:
    """One independently readable piece: ``id_from <= Id < id_to`` (either may be open)."""

    index: int
    id_from: str | None
    id_to: str | None
    expected_rows: int
    mode: str                      # "bulk" | "rest"
    extra: tuple[str, ...] = ()    # extra SOQL conditions (e.g. watermark)
    seen: tuple[tuple[str, str], ...] = ()   # incremental de-dup pairs (Id, value) in range
    job_id: str | None = None      # Bulk job submitted at planning (runs while others read)
    pages: tuple[str, ...] = ()    # results-page URLs of ``job_id`` (the read's job, fanned out)
    owns_job: bool = False         # every page of ``job_id``: its reader deletes the job


def _to_int(id15: str) -> int:
    value = 0
    for char in id15[:_ID_WIDTH].ljust(_ID_WIDTH, "0"):
        value = value * 62 + BASE62.index(char)
    return value


def _to_id(value: int) -> str:
    chars = []
    for _ in range(_ID_WIDTH):
        value, remainder = divmod(value, 62)
        chars.append(BASE62[remainder])
    return "".join(reversed(chars))


def unit_count(total: int, split: int | str) -> int:
    """How many units to aim for: ``split`` if an int, else one per ~50k rows."""
    if isinstance(split, int):
        return max(1, min(split, MAX_UNITS))
    if total <= 0:
        return 1
    return max(1, min(math.ceil(total / AUTO_ROWS_PER_UNIT), MAX_UNITS))


def plan_id_ranges(*, total: int, wanted: int, min_id: str, max_id: str,
                   count: Callable[[str | None, str | None], int]
                   ) -> list[tuple[str | None, str | None, int]]:
    """Balanced ``(id_from, id_to, rows)`` ranges covering every Id (first/last open).

    ``count(id_from, id_to)`` runs one ``COUNT()`` over the half-open range.
    """
    if wanted <= 1 or total <= 1:
        return [(None, None, total)]
    low, high = _to_int(min_id), _to_int(max_id) + 1
    cuts = sorted({low + (high - low) * i // wanted for i in range(1, wanted)} - {low})
    bounds: list[str | None] = [None, *(_to_id(c) for c in cuts), None]
    ranges = [(bounds[i], bounds[i + 1], count(bounds[i], bounds[i + 1]))
              for i in range(len(bounds) - 1)]
    target = total / wanted
    for _ in range(_REFINE_ROUNDS):
        if max(r[2] for r in ranges) <= 2 * target:
            break
        ranges = _bisect_heavy(ranges, target, low, high, count)
    return [r for r in ranges if r[2] > 0] or [(None, None, 0)]


def _bisect_heavy(ranges: Sequence[tuple[str | None, str | None, int]], target: float,
                  low: int, high: int, count: Callable[[str | None, str | None], int]
                  ) -> list[tuple[str | None, str | None, int]]:
    refined: list[tuple[str | None, str | None, int]] = []
    for id_from, id_to, rows in ranges:
        start = _to_int(id_from) if id_from else low
        end = _to_int(id_to) if id_to else high
        if rows <= 2 * target or end - start < 2:
            refined.append((id_from, id_to, rows))
            continue
        pieces = min(max(2, math.ceil(rows / target)), 16)
        cuts = sorted({start + (end - start) * i // pieces for i in range(1, pieces)} - {start})
        bounds = [id_from, *(_to_id(c) for c in cuts), id_to]
        for i in range(len(bounds) - 1):
            refined.append((bounds[i], bounds[i + 1], count(bounds[i], bounds[i + 1])))
    return refined
