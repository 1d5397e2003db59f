"""Typed pieces of a connection config shared by every flow: secret references, the auth base.

Kept apart from the flows so a flow module is just "its config model + its credentials class".
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

INLINE_SECRET_HINT = "".join((  # noqa: S105 - help text, not a secret
    "put the value in a secret store and reference it: env://VARIABLE, ",
    "file:///abs/path, file:relative/path or ",
    "gcp-sm://projects/PROJECT/secrets/NAME/versions/latest"))


#: How a literal where a reference belongs is refused (the value itself is never echoed).
NOT_A_REFERENCE = "must be a secret reference, not a literal value"

UNKNOWN_SCHEME_HINT = ("a provider plugin adds a scheme: a SecretProvider class registered "
                       "under the entry-point group 'forcebeam.secret_providers' of an "
                       "installed package (README: Secret references)")


def _check_reference(value: str) -> str:
    from forcebeam.auth import secrets

    scheme, sep, rest = value.partition(":")
    known = secrets.known_schemes()
    if sep and rest.startswith("//") and scheme not in known and \
            re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        # Shaped like a reference to a store we have no provider for (vault://kv/sf): name
        # the scheme; a scheme is never the secret itself.
        raise ValueError(f"unknown secret scheme '{scheme}' (known: {', '.join(known)}); "
                         f"{UNKNOWN_SCHEME_HINT}")
    if not sep or not rest or scheme not in known:
        # The value itself is never echoed back: it may be a pasted secret.
        raise ValueError(f"{NOT_A_REFERENCE}; {INLINE_SECRET_HINT}")
    return value


SecretRef = Annotated[str, AfterValidator(_check_reference)]
"""A string naming where a secret lives (never the secret itself)."""


class FrozenModel(BaseModel):
    """Immutable, hashable, picklable, and strict about unknown keys (typos are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class AuthConfig(FrozenModel):
    """Base of every flow's config; ``type`` selects the flow (entry point name)."""

    type: str

    # Names of the fields that hold secret references; each flow's config lists its own.
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def secret_references(self) -> dict[str, str]:
        """Field name -> reference, for every secret this config points to (unset ones skipped)."""
        return {name: getattr(self, name) for name in self.secret_fields
                if getattr(self, name) is not None}


class MutualTlsConfig(FrozenModel):
    """Client certificate for mutual TLS; login and API calls go to ``port`` on both hosts."""

    certificate: SecretRef
    private_key: SecretRef
    chain: SecretRef | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 8443
