"""The token layer: one Credentials class per flow, shaped like google-auth's.

Credentials know how to *get* a token (``refresh(request)``, one token-endpoint call through
the ``request`` callable they are handed) and how to *apply* it to a request's headers; they
know how long it lasts when Salesforce says so (``expiry``, hence ``valid``/``expired``).
They never decide when to log in: the session (:mod:`auth.session`) does, when there is no
token yet, when it expired, or when Salesforce rejects it. A credentials object holds
resolved secrets in memory, so it refuses to be pickled; what travels is the Connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import requests

from forcebeam.auth import secrets
from forcebeam.auth.config_types import AuthConfig
from forcebeam.auth.errors import SecretError
from forcebeam.auth.oauth import TokenResponse
from forcebeam.auth.secrets import SecretValue

if TYPE_CHECKING:
    from forcebeam.auth.connection import Connection

#: How a flow reaches the token endpoint: ``request(method, url, **requests_kwargs)``, e.g.
#: the bound ``requests.Session.request`` of the verified (mTLS) token transport, or a fake
#: that returns canned responses in unit tests (as google-auth's ``transport.Request``).
TokenRequest = Callable[..., requests.Response]

#: A token this close to its expiry counts as expired (clock skew, time in flight).
EXPIRY_SKEW_SECONDS = 60.0

log = logging.getLogger(__name__)
_warned_legacy: set[str] = set()


def sunset_warning_shown(auth_type: str) -> None:
    """The command has already shown this flow's sunset warning (``check``, ``run``): a
    login in this process does not log the same text again. Workers in other processes
    still log it once each."""
    _warned_legacy.add(auth_type)


class Credentials:
    """Base class: subclasses set ``type``/``config_model`` and implement ``_fetch``."""

    type: ClassVar[str] = ""
    config_model: ClassVar[type[AuthConfig]] = AuthConfig
    legacy: ClassVar[bool] = False       # flows Salesforce is retiring: warn once per process
    can_refresh: ClassVar[bool] = True   # False: a fixed token that cannot be renewed

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.config = connection.auth
        self.token: SecretValue | None = None
        self.instance_url: str | None = None
        self.identity_url: str = ""
        self.expiry: float | None = None   # epoch seconds; None: valid until rejected

    # google-auth style surface ------------------------------------------------------------

    @property
    def expired(self) -> bool:
        return self.expiry is not None and time.time() >= self.expiry - EXPIRY_SKEW_SECONDS

    @property
    def valid(self) -> bool:
        return self.token is not None and not self.expired

    def refresh(self, request: TokenRequest) -> None:
        """Obtain a new access token (one token-endpoint call through ``request``)."""
        if self.legacy and self.type not in _warned_legacy:
            from forcebeam.auth.sunset import warning_for

            _warned_legacy.add(self.type)
            log.warning("%s", warning_for(self.type) or f"auth type {self.type!r} is legacy")
        response = self._fetch(request)
        self.token = response.access_token
        self.instance_url = response.instance_url
        self.identity_url = response.identity_url
        self.expiry = response.expiry

    def apply(self, headers: Any, token: str | None = None) -> None:
        """Put the bearer token (``token``, or the current one) on a request's headers."""
        if token is None:
            if self.token is None:
                raise RuntimeError("credentials have no token yet; call refresh() first")
            token = self.token.text()
        headers["Authorization"] = "Bearer " + token

    # helpers for subclasses ---------------------------------------------------------------

    def _fetch(self, request: TokenRequest) -> TokenResponse:
        raise NotImplementedError

    def secret(self, field_name: str) -> SecretValue:
        """Resolve one of the config's secret references (cached per process)."""
        reference = getattr(self.config, field_name)
        if reference is None:
            raise SecretError(f"<auth.{field_name}>", "not configured")
        return secrets.resolve(reference)

    @property
    def login_endpoint(self) -> str:
        return self.connection.login_endpoint()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(type={self.type!r}, valid={self.valid})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("credentials hold secrets and are never pickled; pickle the Connection")
