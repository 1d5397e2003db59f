"""Org-wide settings and toggles: what an admin changes in Setup, and the daily API meter.

Kept apart from identities so tests can flip one switch (`PATCH /__emulator/org`) without
touching users or apps.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_DAILY_API_LIMIT = 5_000_000  # big, so benchmarks never trip it; tests lower it


@dataclass
class OrgSettings:
    """Setup toggles the emulator honours (names are the admin API's JSON keys)."""

    password_flow_blocked: bool = False
    soap_login_enabled: bool = True
    daily_api_limit: int = DEFAULT_DAILY_API_LIMIT
    api_usage: int = 0
    refresh_token_rotation: bool = False
    session_seconds: int = 7200
    bulk_job_delay_seconds: float = 0.0
    # API Access Control: only "Use Any API Client" bypasses the uninstalled-app block.
    api_access_control: bool = False
    # Versions below this are retired (REST 410, Bulk 400 InvalidVersion, SOAP
    # UNSUPPORTED_API_VERSION); 31.0-40.0 retire in Summer '28, so tests raise it to 41.
    oldest_api_version: int = 31
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply admin changes; unknown keys or wrong types raise ValueError naming the key."""
        current = self.as_json()
        for key, value in changes.items():
            if key not in current:
                raise ValueError(f"unknown org setting {key!r}; known: {sorted(current)}")
            expected = type(current[key])
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ValueError(f"org setting {key!r} must be {expected.__name__}")
            setattr(self, key, value)
        return self.as_json()

    def consume_api_call(self) -> bool:
        """Count one API call against the daily limit; False when the limit is already used up."""
        with self._lock:
            if self.api_usage >= self.daily_api_limit:
                return False
            self.api_usage += 1
            return True

    def limit_info(self) -> str:
        """The exact `Sforce-Limit-Info` value (tap-salesforce anchors its regex at `$`)."""
        return f"api-usage={self.api_usage}/{self.daily_api_limit}"
