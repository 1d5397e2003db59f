"""How many rows a read will produce, for `rows so far / expected` progress lines.

First what the read's own plan learnt (`stages.salesforce.metrics.PlannedRows`: its Bulk
job's record count, or the `COUNT()` its planning made): no API call. Only a read whose plan
did not count (a REST read in one piece) costs one `SELECT COUNT()` through the process-wide
client (shared with in-process workers, so no extra login), asked lazily by the progress
printer once a read has been running for a progress interval: short runs never pay for it.
`forcebeam run` does not ask when workers are separate processes (their plans are not in
this process, and a count would cost the driver a login of its own). Reads with a custom
SOQL or an incremental window are not counted (their size is not a plain COUNT()).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

LOG = logging.getLogger(__name__)
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def count_for(config: Mapping[str, Any]) -> int | None:
    """Rows a ReadFromSalesforce config will read, or None when it cannot be counted simply."""
    sobject = config.get("sobject")
    if config.get("soql") or config.get("incremental") or not isinstance(sobject, str):
        return None
    if not _API_NAME.fullmatch(sobject):  # only a plain API name goes into the query text
        return None
    from forcebeam.auth import get_client
    from forcebeam.stages.salesforce.config import as_connection
    from forcebeam.stages.salesforce.rest_query import count_rows

    client = get_client(as_connection(config["connection"]))
    return count_rows(client, f"SELECT COUNT() FROM {sobject}",  # noqa: S608 - API name
                      include_deleted=bool(config.get("include_deleted")))


class ExpectedRows:
    """stage name -> expected rows, computed once per stage on first ask (best effort)."""

    def __init__(self, read_configs: Mapping[str, Mapping[str, Any]]) -> None:
        from forcebeam.stages.salesforce.metrics import PlannedRows

        self._configs = dict(read_configs)
        self._known: dict[str, int | None] = {}
        self._lock = threading.Lock()
        PlannedRows.forget()    # one per run: an earlier run's plans are not this run's

    def __call__(self, stage: str) -> int | None:
        with self._lock:
            if stage in self._known:
                return self._known[stage]
        from forcebeam.stages.salesforce.metrics import PlannedRows

        config = self._configs.get(stage)
        value = PlannedRows.get(stage) if config is not None else None
        if config is not None and value is None:
            try:
                value = count_for(config)
            except Exception as error:  # noqa: BLE001 - progress must never break a run
                LOG.debug("no expected row count for %s: %s", stage, type(error).__name__)
        with self._lock:
            self._known[stage] = value
        return value
