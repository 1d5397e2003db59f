"""Secret Manager state: secrets and their numbered versions (payload bytes).

Lives with the org state so the connected app's private key can be preloaded at start, the
way a user would store it before pointing a pipeline at `gcp-sm://...`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone


@dataclass
class SecretVersion:
    number: int
    data: bytes
    created: datetime
    state: str = "ENABLED"  # ENABLED | DISABLED | DESTROYED


@dataclass
class Secret:
    project: str
    secret_id: str
    created: datetime
    labels: dict[str, str] = field(default_factory=dict)
    versions: list[SecretVersion] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"projects/{self.project}/secrets/{self.secret_id}"


class SecretStore:
    """In-memory secrets keyed by (project, secret id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[tuple[str, str], Secret] = {}

    def create(self, project: str, secret_id: str,
               labels: dict[str, str] | None = None) -> Secret | None:
        """The new secret, or None if it already exists."""
        with self._lock:
            if (project, secret_id) in self._secrets:
                return None
            secret = Secret(project, secret_id, datetime.now(timezone.utc), labels or {})
            self._secrets[(project, secret_id)] = secret
            return secret

    def get(self, project: str, secret_id: str) -> Secret | None:
        return self._secrets.get((project, secret_id))

    def list(self, project: str) -> list[Secret]:
        with self._lock:
            return [s for (p, _), s in sorted(self._secrets.items()) if p == project]

    def delete(self, project: str, secret_id: str) -> bool:
        with self._lock:
            return self._secrets.pop((project, secret_id), None) is not None

    def add_version(self, secret: Secret, data: bytes) -> SecretVersion:
        with self._lock:
            version = SecretVersion(len(secret.versions) + 1, data, datetime.now(timezone.utc))
            secret.versions.append(version)
            return version

    @staticmethod
    def version(secret: Secret, version_id: str) -> SecretVersion | None:
        """A version by number or `latest` (the newest ENABLED one)."""
        if version_id == "latest":
            enabled = [v for v in secret.versions if v.state == "ENABLED"]
            return enabled[-1] if enabled else None
        if not version_id.isdigit():
            return None
        number = int(version_id)
        return secret.versions[number - 1] if 0 < number <= len(secret.versions) else None

    def put(self, project: str, secret_id: str, data: bytes) -> SecretVersion:
        """Create the secret if needed and add a version (preloading at start)."""
        secret = self.get(project, secret_id) or self.create(project, secret_id)
        assert secret is not None
        return self.add_version(secret, data)
