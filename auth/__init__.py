"""forcebeam auth: connections, secret references, OAuth/SOAP flows ± mutual TLS, the client
factory. Stages call :func:`get_client` with a :class:`Connection`; nothing else is needed.

Everything is imported lazily-cheap: importing ``auth`` does not touch the network or Google.
"""

from auth.client import ClientStats, SalesforceClient
from auth.connection import Connection
from auth.errors import (
    ApiQuotaExceeded,
    AuthError,
    ConfigError,
    ForcebeamError,
    SalesforceApiError,
    SecretError,
    TransientAuthError,
)
from auth.factory import get_client

__all__ = ["ApiQuotaExceeded", "AuthError", "ClientStats", "ConfigError", "Connection",
           "ForcebeamError", "SalesforceApiError", "SalesforceClient", "SecretError",
           "TransientAuthError", "get_client"]
