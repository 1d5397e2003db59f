"""API calls of one client and the org's daily usage: counted per request, guarded before it.

The org reports its usage on every answer (``Sforce-Limit-Info: api-usage=used/max``); a
connection's ``max_api_usage`` is enforced against the last report *before* a call is sent,
so a job stops cleanly at its share of the daily limit instead of exhausting it.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

import requests

from forcebeam.auth.errors import ApiQuotaExceeded

if TYPE_CHECKING:
    from forcebeam.auth.connection import Connection

_LIMIT_INFO = re.compile(r"(?:^|[^-])api-usage=(\d+)/(\d+)")


class ApiUsage:
    """Calls made (``api_calls``) and the org's last reported ``org_usage`` (used, max)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        self.api_calls = 0
        self.org_usage: tuple[int, int] | None = None

    def reserve(self) -> None:
        """Count a call about to be sent, refusing it if it would pass ``max_api_usage``."""
        with self._lock:
            if self.org_usage is not None:
                used, daily_max = self.org_usage
                ceiling = self._connection.api_usage_ceiling(daily_max)
                if ceiling is not None and used + 1 > ceiling:
                    raise ApiQuotaExceeded(
                        403, "MAX_API_USAGE_REACHED",
                        f"this connection may use {self._connection.max_api_usage} of the "
                        f"daily API limit ({ceiling} of {daily_max} calls) and {used} are used; "
                        "resume after the 24 h window rolls, or raise max_api_usage")
                self.org_usage = (used + 1, daily_max)
            self.api_calls += 1

    def observe(self, response: requests.Response) -> None:
        """Take the org's usage from an answer's Sforce-Limit-Info header."""
        info = response.headers.get("Sforce-Limit-Info")
        match = _LIMIT_INFO.search(info) if info else None
        if match:
            with self._lock:
                self.org_usage = (int(match.group(1)), int(match.group(2)))
