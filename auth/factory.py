"""Connection -> SalesforceClient, shared per process: where the parts are put together.

credentials (the flow) -> session (:class:`SessionAuth` + the :class:`ApiAdapter` of the
API transport) -> client. However many threads, DoFn instances or bundles ask for the same
connection, one client (one login) serves them all; a closed client is replaced on the next
ask. Permanent auth failures are remembered by the session (see :mod:`auth.session`), so
asking again does not call the token endpoint again.
"""

from __future__ import annotations

import atexit
import copyreg
import threading

from forcebeam.auth.client import SalesforceClient
from forcebeam.auth.connection import Connection
from forcebeam.auth.flows import get_flow
from forcebeam.auth.session import ApiAdapter, SessionAuth, forget_failures, origin_of
from forcebeam.auth.transport import ClientCertFiles, ThrottleClock, build_session, make_retry
from forcebeam.auth.usage import ApiUsage

_lock = threading.Lock()
_key_locks: dict[Connection, threading.Lock] = {}
_clients: dict[Connection, SalesforceClient] = {}


def get_client(connection: Connection) -> SalesforceClient:
    """The process's shared, authenticated client for ``connection`` (logs in on first use)."""
    client = _clients.get(connection)
    if client is not None and not client.closed:
        return client
    with _lock:
        key_lock = _key_locks.setdefault(connection, threading.Lock())
    with key_lock:
        client = _clients.get(connection)
        if client is None or client.closed:
            client = _clients[connection] = _build(connection)
        return client


def _build(connection: Connection) -> SalesforceClient:
    cert_files = ClientCertFiles(connection.mutual_tls) if connection.mutual_tls else None
    client_cert = cert_files.pair if cert_files else None
    clock = ThrottleClock()
    try:
        token_http = build_session(ca_bundle=connection.ca_bundle, client_cert=client_cert,
                                   retry=make_retry(clock))
        auth = SessionAuth(get_flow(connection.auth.type)(connection), token_http)
        try:
            auth.current_token()  # log in now: configuration errors surface at setup()
            instance_url = connection.api_endpoint(auth.credentials.instance_url or
                                                   connection.login_url)
            usage = ApiUsage(connection)
            api_http = build_session(ca_bundle=connection.ca_bundle, client_cert=client_cert,
                                     retry=make_retry(clock), adapter_class=ApiAdapter,
                                     auth=auth, usage=usage, api_origin=origin_of(instance_url),
                                     api_version=connection.api_version)
        except BaseException:
            auth.close()
            raise
        return SalesforceClient(connection, auth, api_http, usage, clock, instance_url,
                                cleanup=cert_files.close if cert_files else None)
    except BaseException:
        if cert_files is not None:
            cert_files.close()
        raise


def _shared_client_for(client: SalesforceClient) -> tuple[object, tuple[Connection]]:
    """A client pickles as its Connection: unpickled, it is the receiving process's shared
    client for that connection (registered here so the client never imports the factory)."""
    return (get_client, (client.connection,))


copyreg.pickle(SalesforceClient, _shared_client_for)


def reset() -> None:
    """Close every shared client and forget remembered failures (tests, long-lived hosts)."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()
    forget_failures()


atexit.register(reset)
