"""Tombstones: which replicated records were deleted, and how (``soft`` | ``hard``).

Two sources, because neither sees everything:

- soft deletes arrive with the incremental read itself: it runs as ``queryAll``, so a
  record moved to the Recycle Bin comes back with ``IsDeleted = true`` (deleting bumps its
  ``SystemModstamp``);
- hard deletes (Bulk ``hardDelete``, and soft deletes emptied from the Recycle Bin) are only
  in the REST ``sobjects/X/deleted/?start=&end=`` resource (getDeleted), read here in
  windows of at most 15 days from the last run's ``latestDateCovered``.

A record in both is one ``soft`` tombstone; one only in getDeleted is ``hard`` (it was
purged before this run could see it, e.g. soft-deleted then emptied from the bin). When the
org no longer holds deletions as far back as the cursor (``INVALID_REPLICATION_DATE``,
before ``earliestDateAvailable``), the caller falls back to an Id reconciliation.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from forcebeam.stages.salesforce.client_dofn import ClientDoFn
from forcebeam.stages.salesforce.timestamps import format_datetime, parse_datetime

__all__ = ["GetDeletedFn", "deleted_available", "deleted_windows", "pick_tombstone",
           "MAX_WINDOW"]

LOG = logging.getLogger(__name__)
MAX_WINDOW = dt.timedelta(days=15)
COVERED = "covered"


def deleted_windows(start: dt.datetime, end: dt.datetime,
                    size: dt.timedelta = MAX_WINDOW) -> list[tuple[dt.datetime, dt.datetime]]:
    """``[start, end]`` cut into consecutive windows of at most ``size``."""
    windows = []
    low = start
    while low < end:
        high = min(low + size, end)
        windows.append((low, high))
        low = high
    return windows


def _param(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _get_deleted(client: Any, sobject: str, start: dt.datetime, end: dt.datetime
                 ) -> dict[str, Any]:
    return client.request("GET", f"sobjects/{sobject}/deleted/",
                          params={"start": _param(start), "end": _param(end)}).json()


def deleted_available(client: Any, sobject: str, since: dt.datetime) -> bool:
    """False when the org's deletion log no longer reaches back to ``since``."""
    from forcebeam.auth.errors import SalesforceApiError

    try:
        _get_deleted(client, sobject, since, since + dt.timedelta(seconds=1))
    except SalesforceApiError as error:
        if error.error_code == "INVALID_REPLICATION_DATE":
            return False
        raise
    return True


class GetDeletedFn(ClientDoFn):
    """``(sobject, since ISO, until ISO)`` -> ``(Id, (deleted_at, "hard"))`` per deleted
    record, plus ``(sobject, latestDateCovered)`` on the ``covered`` output."""

    def process(self, element: tuple[str, str, str]) -> Iterator[Any]:
        sobject, since, until = element
        covered = parse_datetime(since)
        for low, high in deleted_windows(parse_datetime(since), parse_datetime(until)):
            body = _get_deleted(self._client, sobject, low, high)
            for record in body.get("deletedRecords", []):
                deleted_at = format_datetime(parse_datetime(record["deletedDate"]))
                yield record["id"], (deleted_at, "hard")
            if body.get("latestDateCovered"):
                covered = max(covered, parse_datetime(body["latestDateCovered"]))
        yield beam.pvalue.TaggedOutput(COVERED, format_datetime(covered))


def pick_tombstone(element: tuple[str, Iterable[tuple[str | None, str]]]) -> dict[str, Any]:
    """One tombstone per Id: ``soft`` when the read saw it in the Recycle Bin, else ``hard``."""
    record_id, entries = element
    entries = list(entries)
    soft = [e for e in entries if e[1] == "soft"]
    deleted_at, kind = (soft or entries)[0]
    return {"Id": record_id, "deleted_at": deleted_at, "kind": kind}
