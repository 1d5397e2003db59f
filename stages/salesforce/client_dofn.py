"""``ClientDoFn``: the one way a Salesforce DoFn gets its API client and counters.

The connection travels pickled (it holds no secret values, only where to find them); each
worker opens its client in ``setup()`` through ``auth.get_client``, which shares one logged-in
client per connection in the process. ``_sync()`` adds the client's API-call totals since the
last report to the stage counters (see ``metrics``).
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from forcebeam.stages.salesforce.metrics import StageCounters

__all__ = ["ClientDoFn"]


class ClientDoFn(beam.DoFn):
    """Base DoFn: ``self._client`` and ``self._counters`` are set in ``setup()``."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._client: Any = None
        self._counters: StageCounters | None = None

    def setup(self) -> None:
        from forcebeam.auth import get_client

        self._client = get_client(self._connection)
        self._counters = StageCounters()

    def _sync(self) -> None:
        if self._counters is not None:
            self._counters.sync_client(self._client)
