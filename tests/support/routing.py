"""Route Salesforce host names to the emulator without any request leaving loopback.

simple-salesforce always builds `https://{domain}.salesforce.com/...` URLs. A test session
mounts `RoutingAdapter` for those hosts: the TCP connection goes to 127.0.0.1:PORT while the
`Host` header, the TLS SNI and the certificate hostname check keep the Salesforce name (the
emulator's server certificate lists login/test.salesforce.com and *.my.salesforce.com), so the
emulator sees exactly what a real org would. Every other non-loopback URL is refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from tests.support.org import PinnedCAAdapter

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class LoopbackOnlyAdapter(PinnedCAAdapter):
    """Refuses any host that is not loopback (the default mount of a routed session)."""

    def send(self, request, **kwargs):  # type: ignore[override]
        host = urlsplit(request.url).hostname or ""
        if host not in LOOPBACK:
            raise requests.ConnectionError(f"test tried to reach {host!r}: only loopback "
                                           "and routed Salesforce hosts are allowed")
        return super().send(request, **kwargs)


class RoutingAdapter(PinnedCAAdapter):
    """Send requests for one Salesforce host name to a loopback port, TLS name unchanged."""

    def __init__(self, ca_file: str, hostname: str, port: int, **kwargs: Any) -> None:
        self._hostname = hostname
        self._port = port
        super().__init__(ca_file, **kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):  # type: ignore[override]
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert)
        host_params["host"] = "127.0.0.1"
        host_params["port"] = self._port
        pool_kwargs["server_hostname"] = self._hostname
        pool_kwargs["assert_hostname"] = self._hostname
        return host_params, pool_kwargs

    def send(self, request, **kwargs):  # type: ignore[override]
        if urlsplit(request.url).hostname != self._hostname:
            raise requests.ConnectionError(f"adapter for {self._hostname} got {request.url}")
        request.headers["Host"] = self._hostname
        return super().send(request, **kwargs)


def routed_session(ca_file: str, port: int,
                   hostnames: tuple[str, ...] = ("login.salesforce.com", "test.salesforce.com",
                                                 "acme.my.salesforce.com"),
                   client_cert: tuple[str, str] | None = None) -> requests.Session:
    """A session where each of `hostnames` (https) reaches the emulator on `port`, loopback
    URLs reach loopback (trusting the emulator CA), and nothing else is reachable."""
    session = requests.Session()
    session.mount("https://", LoopbackOnlyAdapter(ca_file))
    session.mount("http://", LoopbackOnlyAdapter(ca_file))
    for hostname in hostnames:
        session.mount(f"https://{hostname}/", RoutingAdapter(ca_file, hostname, port))
    if client_cert:
        session.cert = client_cert
    return session
