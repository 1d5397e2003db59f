"""Build the emulated org's state: every backend created here, once, before any listener.

Why one place: wire handlers only parse, call a backend and serialise (moto's split of
`responses` and `models`); none of them may create state on first use, so what exists and
how the parts are wired together (the Bulk runners read the org's delay and the fault
spec's processing model; Bulk 1.0 meters `/limits`) is visible here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from forcebeam.emulator.bulk.jobs import BulkJobs
from forcebeam.emulator.bulk.v1_jobs import BulkV1Jobs
from forcebeam.emulator.records.store import RecordStore
from forcebeam.emulator.state import EmulatorState, Paths, Urls
from forcebeam.emulator.state.counters import Counters
from forcebeam.emulator.state.faults import FaultInjector
from forcebeam.emulator.state.identity import MTLS_USERNAME, Identity
from forcebeam.emulator.state.limits import DailyUsage
from forcebeam.emulator.state.org import OrgSettings
from forcebeam.emulator.state.query_cursors import QueryCursors
from forcebeam.emulator.state.secrets import SecretStore
from forcebeam.emulator.tls import certificate_fingerprint, ensure_pki

SECRET_PROJECT = "forcebeam-emulator"  # noqa: S105 (a project id)
APP_KEY_SECRET = "connected-app-private-key"  # noqa: S105 (a secret id)
CLIENT_TLS_KEY_SECRET = "client-tls-private-key"  # noqa: S105 (a secret id)


@dataclass(frozen=True)
class StateConfig:
    """What the command line decides about a new org."""

    data_dir: Path
    host: str = "127.0.0.1"
    records: int = 1000
    seed: int = 42
    faults: str | None = None           # fault spec: JSON, @file or k=v,k=v
    latency_ms: float | None = None
    bandwidth_mbps: float | None = None
    bulk_job_delay: float | None = None


def build_state(config: StateConfig) -> EmulatorState:
    """Certificates, identities, secrets, records and every job/meter registry of one org."""
    data_dir = config.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pki = ensure_pki(data_dir / "pki", MTLS_USERNAME)
    jwt_pem, client_pem = pki.jwt_cert.read_bytes(), pki.client_cert.read_bytes()
    identity = Identity.seeded(jwt_pem, certificate_fingerprint(jwt_pem),
                               client_pem, certificate_fingerprint(client_pem))
    org = OrgSettings(bulk_job_delay_seconds=float(config.bulk_job_delay or 0.0))
    secrets = SecretStore()
    secrets.put(SECRET_PROJECT, APP_KEY_SECRET, pki.jwt_key.read_bytes())
    secrets.put(SECRET_PROJECT, CLIENT_TLS_KEY_SECRET, pki.client_key.read_bytes())
    faults = FaultInjector.from_cli(faults=config.faults, latency_ms=config.latency_ms,
                                    bandwidth_mbps=config.bandwidth_mbps,
                                    bulk_job_delay=config.bulk_job_delay, org=org)
    usage = DailyUsage()
    return EmulatorState(
        org=org, identity=identity, counters=Counters(),
        paths=Paths(data_dir=data_dir, pki=pki), urls=Urls(host=config.host),
        records=RecordStore(data_dir, records=config.records, seed=config.seed),
        faults=faults, secrets=secrets, usage=usage,
        bulk=BulkJobs(data_dir, delay_seconds=lambda: org.bulk_job_delay_seconds,
                      processing=lambda: faults.spec.query_processing()),
        bulk_v1=BulkV1Jobs(data_dir, delay_seconds=lambda: org.bulk_job_delay_seconds,
                           on_batch_processed=usage.bulk_batches_processed),
        query_cursors=QueryCursors())
