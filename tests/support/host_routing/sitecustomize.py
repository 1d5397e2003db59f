"""Route Salesforce host names to the emulator inside a peer tool's own process.

Put this folder on a tool's PYTHONPATH (Python imports `sitecustomize` at start-up) and set
`FORCEBEAM_ROUTE_SALESFORCE_PORT` to the emulator's loopback port: name resolution of
login/test.salesforce.com and *.my.salesforce.com (port 443) then answers 127.0.0.1:PORT,
so the tool connects to the emulator while its Host header, TLS SNI and certificate check
keep the Salesforce name (the emulator's certificate lists them; trust comes from
`REQUESTS_CA_BUNDLE`/`SSL_CERT_FILE`). Any other name that is not loopback is refused, so
nothing the tool does can leave the machine. The tool itself is not modified.
"""

from __future__ import annotations

import os
import socket

_PORT = os.environ.get("FORCEBEAM_ROUTE_SALESFORCE_PORT", "")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_ROUTED = frozenset({"login.salesforce.com", "test.salesforce.com"})


def _routed(host: str) -> bool:
    return host in _ROUTED or host.endswith(".my.salesforce.com")


if _PORT.isdigit():
    _resolve = socket.getaddrinfo

    def _getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = (host.decode() if isinstance(host, bytes) else str(host or "")).lower()
        if _routed(name) and str(port) in ("443", "https", "None"):
            return _resolve("127.0.0.1", int(_PORT), *args, **kwargs)
        if name and name not in _LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME,
                                  f"forcebeam test routing: {name!r} is not loopback or a "
                                  "routed Salesforce host; refused")
        return _resolve(host, port, *args, **kwargs)

    socket.getaddrinfo = _getaddrinfo
