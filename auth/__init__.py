"""forcebeam auth: connections, secret references, OAuth/SOAP flows ± mutual TLS, the client
factory. Stages call :func:`get_client` with a :class:`Connection`; nothing else is needed.

Importing ``auth`` touches neither the network nor Google: secrets are resolved and logins
happen in ``get_client`` (on the worker, in ``DoFn.setup()``).

The rest of the surface: ``auth.commands`` (check / keygen / authorize for the CLI),
``auth.secrets`` (resolve / write_back references), ``auth.factory.reset()`` (tests).
"""

from forcebeam.auth.client import ClientStats, SalesforceClient
from forcebeam.auth.connection import Connection
from forcebeam.auth.errors import (
    ApiQuotaExceeded,
    ApiVersionRetired,
    AuthError,
    ConfigError,
    ErrorKind,
    FatalError,
    ForcebeamError,
    InputError,
    RetriableApiError,
    SalesforceApiError,
    SecretError,
    TransientAuthError,
    TransientError,
)
from forcebeam.auth.factory import get_client
from forcebeam.auth.retry import DEFAULT_RETRY, RetryPolicy

__all__ = ["ApiQuotaExceeded", "ApiVersionRetired", "AuthError", "ClientStats", "ConfigError",
           "Connection", "DEFAULT_RETRY", "ErrorKind", "FatalError", "ForcebeamError",
           "InputError", "RetriableApiError", "RetryPolicy", "SalesforceApiError",
           "SalesforceClient", "SecretError", "TransientAuthError", "TransientError",
           "get_client"]
