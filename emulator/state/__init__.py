"""The emulated org's state, kept apart from the wire handlers (moto style).

`EmulatorState` is built once by the CLI and stored as `app["state"]`; wire modules read and
change it but never own it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forcebeam.emulator.state.counters import Counters
from forcebeam.emulator.state.identity import Identity
from forcebeam.emulator.state.org import OrgSettings
from forcebeam.emulator.tls import PkiPaths


@dataclass
class Urls:
    """Where the org answers (filled in once the listeners are bound)."""

    host: str = "127.0.0.1"
    port: int = 0
    mtls_port: int = 0
    secret_manager_port: int = 0
    metadata_port: int = 0
    api_version: str = "62.0"

    @property
    def instance_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def mtls_url(self) -> str:
        return f"https://{self.host}:{self.mtls_port}"

    @property
    def secret_manager_host(self) -> str:
        return f"{self.host}:{self.secret_manager_port}"

    @property
    def metadata_host(self) -> str:
        """host:port as GCE_METADATA_HOST / GCE_METADATA_IP take it."""
        return f"{self.host}:{self.metadata_port}"

    @property
    def admin_url(self) -> str:
        return f"{self.instance_url}/__emulator"


@dataclass
class Paths:
    """Files the org owns: its data directory and certificates."""

    data_dir: Path
    pki: PkiPaths


@dataclass
class EmulatorState:
    """Everything the wire handlers share. `records`/`bulk`/`faults` belong to B and C."""

    org: OrgSettings
    identity: Identity
    counters: Counters
    paths: Paths
    urls: Urls
    records: Any = None  # emulator.records.store.RecordStore
    bulk: Any = None  # C's job registry
    faults: Any = None  # emulator.faults.FaultInjector
    secrets: Any = None  # emulator.wire.secret_manager.SecretStore
    extras: dict[str, Any] = field(default_factory=dict)
