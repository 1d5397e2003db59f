"""``ClientDoFn``: the one way a Salesforce DoFn gets its API client and counters.

The connection travels pickled (it holds no secret values, only where to find them); each
worker opens its client in ``setup()`` through ``auth.get_client``, which shares one logged-in
client per connection in the process. ``_sync()`` adds the client's API-call totals since the
last report to the stage counters (see ``metrics``).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any, ClassVar

import apache_beam as beam

from forcebeam.stages.salesforce.metrics import StageCounters

__all__ = ["ClientDoFn"]


class ClientDoFn(beam.DoFn):
    """Base DoFn: ``self._client`` and ``self._counters`` are ready after ``setup()``."""

    #: Log in on a thread from ``setup()`` and wait for it at the client's first use. For a
    #: DoFn whose first call comes only after it has taken in its input (a write sends its
    #: first batch once the batch is full): the login's round trips (a TLS handshake, the
    #: token request; ~0.4 s on a distant org) then overlap reading that input. A failed
    #: login raises the same error, at that first use.
    login_ahead: ClassVar[bool] = False

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._client_ready: Any = None
        self._login: Future[Any] | None = None
        self._counters: StageCounters | None = None

    @property
    def _client(self) -> Any:
        if self._client_ready is None and self._login is not None:
            self._client_ready = self._login.result()
        return self._client_ready

    def setup(self) -> None:
        from forcebeam.auth import get_client

        self._counters = StageCounters()
        if not self.login_ahead:
            self._client_ready = get_client(self._connection)
            return
        login: Future[Any] = Future()

        def log_in() -> None:
            try:
                login.set_result(get_client(self._connection))
            except BaseException as error:  # noqa: BLE001 - raised at the client's first use
                login.set_exception(error)

        self._login = login
        threading.Thread(target=log_in, name="forcebeam-login", daemon=True).start()

    def _sync(self) -> None:
        if self._counters is not None and self._client_ready is not None:
            self._counters.sync_client(self._client_ready)
