"""Auth flows: one module per grant, registered by ``type`` (entry point group
``forcebeam.auth_flows``), so a new flow is one file and one entry point line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forcebeam.auth.plugins import PluginRegistry

if TYPE_CHECKING:
    from forcebeam.auth.credentials import Credentials

ENTRY_POINT_GROUP = "forcebeam.auth_flows"
FLOWS = PluginRegistry(ENTRY_POINT_GROUP)


def known_types() -> list[str]:
    return FLOWS.names()


def get_flow(auth_type: str) -> type[Credentials]:
    """The Credentials class for an auth ``type``; KeyError if nothing registers it."""
    return FLOWS.load(auth_type)
