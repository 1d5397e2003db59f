"""Auth flows: one module per grant, registered by ``type`` (entry point group
``forcebeam.auth_flows``), so a new flow is one file and one entry point line."""

from __future__ import annotations

import importlib
import threading
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forcebeam.auth.credentials import Credentials

ENTRY_POINT_GROUP = "forcebeam.auth_flows"

_BUILTIN_FLOWS = {
    "jwt_bearer": "forcebeam.auth.flows.jwt_bearer:JwtBearerCredentials",
    "client_credentials": "forcebeam.auth.flows.client_credentials:ClientCredentials",
    "refresh_token": "forcebeam.auth.flows.refresh_token:RefreshTokenCredentials",
    "password": "forcebeam.auth.flows.password:PasswordCredentials",
    "basic": "forcebeam.auth.flows.soap_login:SoapLoginCredentials",
    "access_token": "forcebeam.auth.flows.access_token:AccessTokenCredentials",
    "token_exchange": "forcebeam.auth.flows.token_exchange:TokenExchangeCredentials",
}

_lock = threading.Lock()
_loaded: dict[str, type[Credentials]] = {}


def _targets() -> dict[str, str]:
    targets = dict(_BUILTIN_FLOWS)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        targets[entry.name] = entry.value
    return targets


def known_types() -> list[str]:
    return sorted(_targets())


def get_flow(auth_type: str) -> type[Credentials]:
    """The Credentials class for an auth ``type``; KeyError if nothing registers it."""
    with _lock:
        flow = _loaded.get(auth_type)
        if flow is None:
            target = _targets()[auth_type]
            module_name, _, attr = target.partition(":")
            module = importlib.import_module(module_name)
            flow = getattr(module, attr)
            _loaded[auth_type] = flow
        return flow
