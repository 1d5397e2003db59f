"""Connection -> SalesforceClient, shared per process.

However many threads, DoFn instances or bundles ask for the same connection, one client (one
login) serves them all; a permanent auth failure is remembered too, so asking again does not
call the token endpoint again.
"""

from __future__ import annotations

import atexit
import threading

from forcebeam.auth.client import ApiAdapter, SalesforceClient
from forcebeam.auth.connection import Connection
from forcebeam.auth.errors import AuthError
from forcebeam.auth.flows import get_flow
from forcebeam.auth.tokens import TokenManager
from forcebeam.auth.transport import ClientCertFiles, ThrottleClock, build_session, make_retry

_lock = threading.Lock()
_key_locks: dict[Connection, threading.Lock] = {}
_clients: dict[Connection, SalesforceClient] = {}
_failures: dict[Connection, AuthError] = {}


def get_client(connection: Connection) -> SalesforceClient:
    """The process's shared, authenticated client for ``connection`` (logs in on first use)."""
    client = _clients.get(connection)
    if client is not None:
        return client
    with _lock:
        key_lock = _key_locks.setdefault(connection, threading.Lock())
    with key_lock:
        client = _clients.get(connection)
        if client is not None:
            return client
        failure = _failures.get(connection)
        if failure is not None:
            raise AuthError(failure.message, code=failure.code, fix=failure.fix)
        try:
            client = _build(connection)
        except AuthError as error:
            _failures[connection] = error
            raise
        _clients[connection] = client
        return client


def _build(connection: Connection) -> SalesforceClient:
    cert_files = ClientCertFiles(connection.mutual_tls) if connection.mutual_tls else None
    client_cert = cert_files.pair if cert_files else None
    clock = ThrottleClock()
    try:
        token_http = build_session(ca_bundle=connection.ca_bundle, client_cert=client_cert,
                                   retry=make_retry(clock))
        credentials = get_flow(connection.auth.type)(connection, token_http)

        def api_http(client: SalesforceClient):
            return build_session(ca_bundle=connection.ca_bundle, client_cert=client_cert,
                                 retry=make_retry(clock), adapter_class=ApiAdapter,
                                 client=client)

        return SalesforceClient(connection, TokenManager(credentials), token_http, api_http,
                                clock, cleanup=cert_files.close if cert_files else None)
    except BaseException:
        if cert_files is not None:
            cert_files.close()
        raise


def _forget(client: SalesforceClient) -> None:
    with _lock:
        if _clients.get(client.connection) is client:
            del _clients[client.connection]


def reset() -> None:
    """Close every shared client and forget remembered failures (tests, long-lived hosts)."""
    for client in list(_clients.values()):
        client.close()
    with _lock:
        _clients.clear()
        _failures.clear()


atexit.register(reset)
