"""The token layer: one Credentials class per flow, shaped like google-auth's.

``valid`` / ``expired`` / ``refresh()`` / ``apply(headers)``. Salesforce tokens carry no
expiry, so a token is valid until Salesforce rejects it; the transport then calls
``refresh()`` (through :class:`auth.tokens.TokenManager`, which de-duplicates concurrent
refreshes). A credentials object holds resolved secrets in memory, so it refuses to be pickled;
what travels is the Connection.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, ClassVar, NoReturn

import requests

from forcebeam.auth import secrets
from forcebeam.auth.config_types import AuthConfig
from forcebeam.auth.errors import SecretError
from forcebeam.auth.oauth import TokenResponse
from forcebeam.auth.secrets import SecretValue

if TYPE_CHECKING:
    from forcebeam.auth.connection import Connection

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

    def __init__(self, connection: Connection, http: requests.Session) -> None:
        self.connection = connection
        self.config = connection.auth
        self._http = http
        self.token: SecretValue | None = None
        self.instance_url: str | None = None
        self.identity_url: str = ""
        self.expiry: float | None = None
        self.refresh_count = 0

    # google-auth style surface ------------------------------------------------------------

    @property
    def expired(self) -> bool:
        return self.expiry is not None and time.time() >= self.expiry

    @property
    def valid(self) -> bool:
        return self.token is not None and not self.expired

    def refresh(self) -> None:
        """Obtain a new access token (one token-endpoint call)."""
        if self.legacy and self.type not in _warned_legacy:
            from forcebeam.auth.sunset import warning_for

            _warned_legacy.add(self.type)
            log.warning("%s", warning_for(self.type) or f"auth type {self.type!r} is legacy")
        response = self._fetch()
        self.token = response.access_token
        self.instance_url = response.instance_url
        self.identity_url = response.identity_url
        self.refresh_count += 1

    def apply(self, headers: dict[str, str]) -> None:
        if self.token is None:
            raise RuntimeError("credentials have no token yet; call refresh() first")
        headers["Authorization"] = "Bearer " + self.token.text()

    # helpers for subclasses ---------------------------------------------------------------

    def _fetch(self) -> TokenResponse:
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

    @property
    def http(self) -> requests.Session:
        return self._http

    def __repr__(self) -> str:
        return f"{type(self).__name__}(type={self.type!r}, valid={self.valid})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("credentials hold secrets and are never pickled; pickle the Connection")
