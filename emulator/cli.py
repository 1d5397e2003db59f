"""Command line of the emulated org: build state, bind listeners, write the info file, serve.

The info file (ARCHITECTURE §6) is the machine-readable contract scripts and tests rely on;
it is written atomically and only once every listener accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

from forcebeam.emulator.app import start_listeners
from forcebeam.emulator.state import EmulatorState
from forcebeam.emulator.state import build as state_build
from forcebeam.emulator.state.build import (
    APP_KEY_SECRET,
    CLIENT_TLS_KEY_SECRET,
    SECRET_PROJECT,
)
from forcebeam.emulator.state.identity import MTLS_USERNAME, ORG_ID

LOG = logging.getLogger("forcebeam.emulator")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="forcebeam emulator",
                                     description="Run a local emulated Salesforce org.")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="HTTPS port (0 = any free port)")
    parser.add_argument("--mtls-port", type=int, default=0, help="mutual TLS port")
    parser.add_argument("--secret-manager-port", type=int, default=0,
                        help="Secret Manager REST port (plain HTTP)")
    parser.add_argument("--metadata-port", type=int, default=0,
                        help="Google-like compute metadata port (plain HTTP; issues the "
                             "worker's ID tokens for token exchange)")
    parser.add_argument("--records", type=int, default=1000, help="Accounts to generate")
    parser.add_argument("--data-dir", type=Path, default=Path(".emulator"),
                        help="where certificates and the SQLite store live")
    parser.add_argument("--info-file", type=Path, default=None,
                        help="write connection facts here as JSON once ready")
    parser.add_argument("--seed", type=int, default=42, help="data generator seed")
    parser.add_argument("--faults", default=None, help="fault spec (JSON or @file)")
    parser.add_argument("--latency-ms", type=float, default=None)
    parser.add_argument("--bandwidth-mbps", type=float, default=None)
    parser.add_argument("--bulk-job-delay", type=float, default=None,
                        help="seconds a Bulk job stays InProgress")
    args = parser.parse_args(argv)
    if args.host not in LOOPBACK_HOSTS:
        parser.error(f"--host must be loopback ({', '.join(LOOPBACK_HOSTS)}); got {args.host}")
    if args.host == "localhost":
        args.host = "127.0.0.1"
    return args


def build_state(args: argparse.Namespace) -> EmulatorState:
    """The org's state from the command line (every backend: `emulator.state.build`)."""
    return state_build.build_state(state_build.StateConfig(
        data_dir=args.data_dir, host=args.host, records=args.records, seed=args.seed,
        faults=args.faults, latency_ms=args.latency_ms, bandwidth_mbps=args.bandwidth_mbps,
        bulk_job_delay=args.bulk_job_delay))


def info(state: EmulatorState, records: int) -> dict[str, Any]:
    """The info-file facts (ARCHITECTURE §6 + emulator contract); every path absolute."""
    identity, urls, pki = state.identity, state.urls, state.paths.pki
    integration = identity.user_by_username(
        next(u.username for u in identity.users.values() if not u.enforce_mutual_tls))
    mtls = identity.user_by_username(MTLS_USERNAME)
    assert integration is not None and mtls is not None
    app, self_app = identity.apps[identity.primary_app_key], identity.apps[
        identity.self_authorize_app_key]
    eca = identity.apps[identity.external_client_app_key]
    return {
        "instance_url": urls.instance_url, "login_url": urls.instance_url,
        "mtls_url": urls.mtls_url, "secret_manager_host": urls.secret_manager_host,
        "api_version": urls.api_version, "admin_url": urls.admin_url,
        "ca_cert": str(pki.ca_cert),
        "username": integration.username, "password": integration.password,
        "security_token": integration.security_token,
        "org_id": ORG_ID, "user_id": integration.user_id,
        "mtls_username": mtls.username, "mtls_password": mtls.password,
        "mtls_security_token": mtls.security_token, "mtls_user_id": mtls.user_id,
        "connected_app": {
            "consumer_key": app.consumer_key, "consumer_secret": app.consumer_secret,
            "private_key": str(pki.jwt_key), "certificate": str(pki.jwt_cert),
            "private_key_secret": f"gcp-sm://projects/{SECRET_PROJECT}/secrets/"
                                  f"{APP_KEY_SECRET}/versions/latest",
            "callback_url": app.callback_urls[0],
        },
        "self_authorize_app": {
            "consumer_key": self_app.consumer_key, "consumer_secret": self_app.consumer_secret,
            "callback_url": self_app.callback_urls[0],
        },
        "external_client_app": {
            "consumer_key": eca.consumer_key, "consumer_secret": eca.consumer_secret,
            "private_key": str(pki.jwt_key), "certificate": str(pki.jwt_cert),
        },
        "token_exchange": {
            "consumer_key": eca.consumer_key,
            "audience": identity.token_exchange_handler.audiences[0],
            "metadata_host": urls.metadata_host,
            "service_account": identity.id_token_issuer.service_account,
        },
        "client_tls": {"certificate": str(pki.client_cert), "private_key": str(pki.client_key),
                       "private_key_secret": f"gcp-sm://projects/{SECRET_PROJECT}/secrets/"
                                             f"{CLIENT_TLS_KEY_SECRET}/versions/latest"},
        "records": records, "data_dir": str(state.paths.data_dir), "pid": os.getpid(),
    }


def write_info_file(path: Path, facts: dict[str, Any]) -> None:
    """Write atomically (temp file + rename, 0600: it holds passwords) so readers never see
    half a file."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".info-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(facts, handle, indent=2)
    os.replace(temp, path)


async def serve(args: argparse.Namespace) -> None:
    state = build_state(args)
    listeners = await start_listeners(state, args.host, args.port, args.mtls_port,
                                      args.secret_manager_port, args.metadata_port)
    # The handler accepts ID tokens minted for the org's own URL (its My Domain on a real org).
    state.identity.token_exchange_handler.update({"audiences": [state.urls.instance_url]})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        if args.info_file is not None:
            write_info_file(args.info_file, info(state, args.records))
        LOG.info("emulated org ready at %s (mTLS %s, Secret Manager %s)",
                 state.urls.instance_url, state.urls.mtls_url, state.urls.secret_manager_host)
        await stop.wait()
    finally:
        await listeners.close()
        state.records.close()


def _exit_during_startup(signum: int, _frame: object) -> None:
    """SIGTERM/SIGINT before the loop serves: stop cleanly (exit 0) instead of dying."""
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_during_startup)
    args = parse_args(argv)
    if args.info_file is not None:
        args.info_file.unlink(missing_ok=True)  # a stale file from a previous run is not "ready"
    asyncio.run(serve(args))
    return 0
