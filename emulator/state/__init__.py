"""The emulated org's state, kept apart from the wire handlers (moto style).

`EmulatorState` holds every backend of the org; `emulator.state.build.build_state` creates
them all at once (the CLI calls it) and the app stores the result as `app["state"]`. Wire
modules parse requests, call these backends and serialise the answers; they never create or
own state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from forcebeam.emulator.state.counters import Counters
from forcebeam.emulator.state.identity import Identity
from forcebeam.emulator.state.org import OrgSettings
from forcebeam.emulator.tls import PkiPaths

if TYPE_CHECKING:  # the backends import state submodules themselves: no import at runtime
    from forcebeam.emulator.bulk.jobs import BulkJobs
    from forcebeam.emulator.bulk.v1_jobs import BulkV1Jobs
    from forcebeam.emulator.records.store import RecordStore
    from forcebeam.emulator.state.faults import FaultInjector
    from forcebeam.emulator.state.limits import DailyUsage
    from forcebeam.emulator.state.query_cursors import QueryCursors
    from forcebeam.emulator.state.secrets import SecretStore


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
    """Everything the wire handlers share, one backend per concern (built by `build_state`)."""

    org: OrgSettings            # Setup toggles and the daily API meter
    identity: Identity          # users, connected apps, sessions, tokens
    counters: Counters          # what benchmarks read (API calls per kind, logins, jobs)
    paths: Paths
    urls: Urls
    records: RecordStore        # sObject rows, SOQL, write rules
    faults: FaultInjector       # fault spec and its seeded decisions
    secrets: SecretStore        # the Secret Manager endpoint's secrets
    usage: DailyUsage           # /limits meters beyond the API call count
    bulk: BulkJobs              # Bulk API 2.0 query and ingest jobs
    bulk_v1: BulkV1Jobs         # Bulk API 1.0 jobs and batches
    query_cursors: QueryCursors  # REST query locators (nextRecordsUrl)
