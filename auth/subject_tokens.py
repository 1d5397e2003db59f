"""Where a ``token_exchange`` connection gets the token it exchanges (the *subject token*).

A source is named in the connection's ``auth.subject_token``:

- ``google-id-token`` (default): a Google-signed ID token for the machine's own service
  account, with the connection's audience, from google-auth's ID-token credentials: the
  metadata server on Dataflow, GCE, GKE and Cloud Run; a service-account or impersonated
  service-account file named by ``GOOGLE_APPLICATION_CREDENTIALS`` elsewhere.
- a secret reference (``env://VAR``, ``file:///path``, ...): a token another system puts
  there; read again for every exchange (never cached), since that system rotates it.
- the name of a plugin registered in the entry point group ``forcebeam.subject_tokens``: a
  class taking ``audience`` whose ``fetch()`` returns the token, for other identity providers.

Every token is handed back wrapped in a :class:`SecretValue`, and nothing here logs, pickles or
puts it in an error text (google-auth's own DEBUG logging hashes token fields and skips the
metadata server's plain-text answer; a test holds it to that).
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from forcebeam.auth import secrets
from forcebeam.auth.errors import AuthError, ForcebeamError, TransientAuthError
from forcebeam.auth.plugins import PluginRegistry
from forcebeam.auth.secrets import SecretValue

ENTRY_POINT_GROUP = "forcebeam.subject_tokens"
GOOGLE_ID_TOKEN = "google-id-token"  # noqa: S105 - the name of a source, not a token
SOURCES = PluginRegistry(ENTRY_POINT_GROUP)
NO_GOOGLE_IDENTITY_FIX = (
    "run where Google gives the machine an identity (a Dataflow, GCE, GKE or Cloud Run "
    "worker's service account, through the metadata server), or set "
    "GOOGLE_APPLICATION_CREDENTIALS to a service-account or impersonated-service-account "
    "credentials file; elsewhere set auth.subject_token to env://VARIABLE holding a token")


class SubjectTokenSource(Protocol):
    """What a plugin implements: built once per process with the connection's audience."""

    def __init__(self, audience: str) -> None: ...

    def fetch(self) -> str | SecretValue:
        """A currently valid subject token (cache it until it expires, if you like)."""


class GoogleIdTokenSource:
    """A Google ID token for this machine's service account, renewed when it expires."""

    def __init__(self, audience: str) -> None:
        self._audience = audience
        self._credentials: Any = None
        self._request: Any = None
        self._lock = threading.Lock()

    def fetch(self) -> SecretValue:
        import google.auth.exceptions
        import google.auth.transport.requests
        from google.oauth2 import id_token

        with self._lock:
            try:
                if self._request is None:
                    self._request = google.auth.transport.requests.Request()
                if self._credentials is None:
                    self._credentials = id_token.fetch_id_token_credentials(
                        self._audience, request=self._request)
                if not self._credentials.valid:
                    self._credentials.refresh(self._request)
                return SecretValue(self._credentials.token)
            except google.auth.exceptions.DefaultCredentialsError:
                raise AuthError("no Google identity to ask for an ID token: neither a metadata "
                                "server nor GOOGLE_APPLICATION_CREDENTIALS is available",
                                code="no_google_identity", fix=NO_GOOGLE_IDENTITY_FIX) from None
            except google.auth.exceptions.TransportError as error:
                raise TransientAuthError("could not get a Google ID token from the metadata "
                                         f"server ({type(error).__name__})") from None
            except google.auth.exceptions.RefreshError as error:
                raise AuthError("Google refused an ID token for this service account "
                                f"({_first_line(error)})", code="google_id_token_refused",
                                fix="give the credentials the right to mint ID tokens (for "
                                    "impersonation: roles/iam.serviceAccountOpenIdTokenCreator "
                                    "on the target service account)") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


class ReferenceSource:
    """A token another system writes to a secret store; re-read for every exchange."""

    def __init__(self, reference: str) -> None:
        self._reference = reference

    def fetch(self) -> SecretValue:
        provider = secrets.get_provider(secrets.scheme_of(self._reference))
        return SecretValue(provider.read(self._reference))


def known_sources() -> list[str]:
    return SOURCES.names()


def is_reference(value: str) -> bool:
    scheme, sep, rest = value.partition(":")
    return bool(sep and rest) and scheme in secrets.known_schemes()


def source_for(subject_token: str, audience: str) -> Any:
    """The source object a connection's ``auth.subject_token`` names."""
    if is_reference(subject_token):
        return ReferenceSource(subject_token)
    try:
        source_class = SOURCES.load(subject_token)
    except KeyError:
        raise AuthError(f"no subject token source named {subject_token!r}",
                        code="unknown_subject_token_source",
                        fix=f"use one of {', '.join(known_sources())} or a secret "
                            "reference such as env://VARIABLE") from None
    return source_class(audience)


def fetch(source: Any) -> SecretValue:
    """Call a source; whatever it returns comes back wrapped, whatever it raises is ours."""
    try:
        token = source.fetch()
    except ForcebeamError:
        raise
    except Exception as error:  # noqa: BLE001 - a plugin's failure, named without its data
        raise AuthError(f"the subject token source failed ({type(error).__name__})",
                        code="subject_token_source_failed",
                        fix="check the subject token source's own configuration") from None
    value = token if isinstance(token, SecretValue) else SecretValue(str(token))
    if not value.text().strip():
        raise AuthError("the subject token source gave an empty token",
                        code="empty_subject_token",
                        fix="check that the referenced variable or file holds the token")
    return SecretValue(value.text().strip())
