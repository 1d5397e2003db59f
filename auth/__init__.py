"""forcebeam auth: connections, secret references, OAuth/SOAP flows ± mutual TLS, the client
factory. Stages call :func:`get_client` with a :class:`Connection`; nothing else is needed.

Importing ``auth`` touches neither the network nor Google: secrets are resolved and logins
happen in ``get_client`` (on the worker, in ``DoFn.setup()``).

Inside, one way from credentials to session to client: ``auth.flows`` (one Credentials
class per grant: get and apply a token) -> ``auth.session`` (when to log in and resend) ->
``auth.client`` (what stages use), assembled and shared per process by ``auth.factory``.
Plugins (flows, secret providers, subject token sources, stages) come from entry points
through ``auth.plugins``; ``Connection.from_mapping`` is the one validation of a connection.

The rest of the surface: ``auth.commands`` (check / keygen / authorize for the CLI),
``auth.secrets`` (resolve / write_back references), ``auth.factory.reset()`` (tests).
"""

from forcebeam.auth.client import ClientStats, SalesforceClient
from forcebeam.auth.connection import Connection, ConnectionConfigError
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
           "Connection", "ConnectionConfigError", "DEFAULT_RETRY", "ErrorKind", "FatalError",
           "ForcebeamError", "InputError", "RetriableApiError", "RetryPolicy",
           "SalesforceApiError", "SalesforceClient", "SecretError", "TransientAuthError",
           "TransientError", "get_client"]
