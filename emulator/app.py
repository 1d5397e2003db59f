"""Build the emulator's aiohttp applications and bind its four listeners.

The main application serves both TLS listeners (the org's port 443 and its mutual-TLS port
8443); handlers tell them apart by the local port. Secret Manager is a separate plain-HTTP
application on its own port, like Google's other local emulators; so is the Google-like
compute metadata server that issues the worker's ID tokens (token exchange).
"""

from __future__ import annotations

import importlib
import socket
from dataclasses import dataclass

from aiohttp import web

from forcebeam.emulator.state import EmulatorState
from forcebeam.emulator.tls import mutual_tls_context, server_context
from forcebeam.emulator.wire import WIRE_MODULES
from forcebeam.emulator.wire.faults import fault_middleware
from forcebeam.emulator.wire.http import data_api_middleware

MAX_REQUEST_BYTES = 160 * 1024 * 1024  # Bulk ingest uploads may be ~150 MB per request


def build_app(state: EmulatorState) -> web.Application:
    """The org's HTTPS application with every wire module's routes.

    Middlewares, outermost first: the data API's version check and `Sforce-Limit-Info`
    stamp, then the fault injector (so a fault's error carries the limit header too).
    """
    app = web.Application(middlewares=[data_api_middleware, fault_middleware],
                          client_max_size=MAX_REQUEST_BYTES,
                          handler_args={"max_field_size": 65536})
    app["state"] = state
    for name in WIRE_MODULES:
        module = importlib.import_module(f"{__package__}.wire.{name}")
        module.register(app, state)
    return app


def build_secret_manager_app(state: EmulatorState) -> web.Application:
    from forcebeam.emulator.wire import secret_manager

    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app["state"] = state
    secret_manager.register(app, state)
    return app


def build_metadata_app(state: EmulatorState) -> web.Application:
    from forcebeam.emulator.wire import metadata

    app = web.Application()
    app["state"] = state
    metadata.register(app, state)
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on loopback (port 0 = any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


@dataclass
class Listeners:
    runners: list[web.AppRunner]

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


async def start_listeners(state: EmulatorState, host: str, port: int, mtls_port: int,
                          secret_manager_port: int, metadata_port: int = 0) -> Listeners:
    """Bind all four listeners, record the chosen ports in `state.urls`, start serving."""
    main_sock, mtls_sock, sm_sock = bind(host, port), bind(host, mtls_port), bind(
        host, secret_manager_port)
    metadata_sock = bind(host, metadata_port)
    state.urls.host = host
    state.urls.port = main_sock.getsockname()[1]
    state.urls.mtls_port = mtls_sock.getsockname()[1]
    state.urls.secret_manager_port = sm_sock.getsockname()[1]
    state.urls.metadata_port = metadata_sock.getsockname()[1]

    org_runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=2)
    await org_runner.setup()
    await web.SockSite(org_runner, main_sock, ssl_context=server_context(state.paths.pki)).start()
    await web.SockSite(org_runner, mtls_sock,
                       ssl_context=mutual_tls_context(state.paths.pki)).start()
    sm_runner = web.AppRunner(build_secret_manager_app(state), access_log=None,
                              shutdown_timeout=2)
    await sm_runner.setup()
    await web.SockSite(sm_runner, sm_sock).start()
    metadata_runner = web.AppRunner(build_metadata_app(state), access_log=None,
                                    shutdown_timeout=2)
    await metadata_runner.setup()
    await web.SockSite(metadata_runner, metadata_sock).start()
    return Listeners([org_runner, sm_runner, metadata_runner])
