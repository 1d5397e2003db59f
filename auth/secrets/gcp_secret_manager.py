"""``gcp-sm://projects/P/secrets/S/versions/V``: Google Cloud Secret Manager.

Uses the real google-cloud-secret-manager client. ``SECRET_MANAGER_EMULATOR_HOST=host:port``
points it at a local endpoint (plain HTTP REST, anonymous credentials), like the other Google
emulators' variables; otherwise Application Default Credentials are used. Every payload is
CRC32C-checked, and writing adds a new secret version (refresh-token rotation, keygen --store).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any

import google_crc32c

from forcebeam.auth.errors import SecretError
from forcebeam.auth.secrets.base import SecretProvider

EMULATOR_HOST_VARIABLE = "SECRET_MANAGER_EMULATOR_HOST"

_REFERENCE = re.compile(
    r"^gcp-sm://projects/(?P<project>[^/]+)/secrets/(?P<secret>[^/]+)"
    r"(?:/versions/(?P<version>[^/]+))?$")


# The generated client logs request/response payloads (secret bytes, base64) as `extra` fields
# at DEBUG. This filter blanks them on the transport's loggers so DEBUG logging stays safe.
_CLIENT_LOGGERS = ("google.cloud.secretmanager_v1.services.secret_manager_service.transports"
                   ".rest", "google.cloud.secretmanager_v1.services.secret_manager_service"
                   ".client")


class _RedactPayloads(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name in ("httpRequest", "httpResponse", "request", "response"):
            value = getattr(record, name, None)
            if isinstance(value, dict) and "payload" in value:
                setattr(record, name, {**value, "payload": "***"})
        return True


def _install_redaction() -> None:
    for name in _CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactPayloads) for f in logger.filters):
            logger.addFilter(_RedactPayloads())


def parse_reference(reference: str) -> tuple[str, str, str]:
    """(project, secret, version) of a reference; version defaults to ``latest``."""
    match = _REFERENCE.match(reference)
    if not match:
        raise SecretError(reference, "expected gcp-sm://projects/PROJECT/secrets/SECRET"
                          "/versions/VERSION (VERSION may be 'latest')")
    return match["project"], match["secret"], match["version"] or "latest"


def _crc32c(data: bytes) -> int:
    return int(google_crc32c.value(data))


class GcpSecretManagerProvider(SecretProvider):
    scheme = "gcp-sm"
    can_write = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str | None, Any] = {}
        _install_redaction()

    def _client(self) -> Any:
        """One client per endpoint; built lazily so importing forcebeam never touches Google."""
        emulator_host = os.environ.get(EMULATOR_HOST_VARIABLE) or None
        with self._lock:
            client = self._clients.get(emulator_host)
            if client is None:
                from google.cloud import secretmanager

                if emulator_host:
                    from google.auth.credentials import AnonymousCredentials

                    client = secretmanager.SecretManagerServiceClient(
                        credentials=AnonymousCredentials(), transport="rest",
                        client_options={"api_endpoint": f"http://{emulator_host}"})
                else:
                    client = secretmanager.SecretManagerServiceClient()
                self._clients[emulator_host] = client
            return client

    def cache_key(self, reference: str) -> str:
        """The endpoint is part of a secret's identity (see SecretProvider.cache_key)."""
        endpoint = os.environ.get(EMULATOR_HOST_VARIABLE) or "secretmanager.googleapis.com"
        return f"{endpoint}|{reference}"

    def read(self, reference: str) -> bytes:
        project, secret, version = parse_reference(reference)
        name = f"projects/{project}/secrets/{secret}/versions/{version}"
        try:
            response = self._client().access_secret_version(request={"name": name})
        except Exception as error:  # google.api_core errors; message never holds the value
            raise SecretError(reference, _explain(error, project, secret)) from None
        data = response.payload.data
        if "data_crc32c" in response.payload and response.payload.data_crc32c != _crc32c(data):
            raise SecretError(reference, "payload failed its CRC32C check (corrupted in "
                              "transit); retry, and report it if it persists")
        return data

    def write(self, reference: str, value: bytes) -> None:
        project, secret, _ = parse_reference(reference)
        try:
            self._client().add_secret_version(request={
                "parent": f"projects/{project}/secrets/{secret}",
                "payload": {"data": value, "data_crc32c": _crc32c(value)}})
        except Exception as error:
            raise SecretError(reference, _explain(error, project, secret, writing=True)) \
                from None


def _explain(error: Exception, project: str, secret: str, *, writing: bool = False) -> str:
    """Turn a google.api_core error into a sentence with a fix."""
    kind = type(error).__name__
    if kind == "NotFound":
        create = f"`gcloud secrets create {secret} --project {project}`"
        if writing:
            return (f"secret {secret!r} does not exist in project {project!r}: create it with "
                    f"{create} (versions are added by the command that writes)")
        return (f"secret {secret!r} (or that version) not found in project {project!r}: create "
                f"it with {create} and add a version")
    if kind in ("PermissionDenied", "Forbidden", "Unauthenticated", "Unauthorized"):
        role = "roles/secretmanager.secretVersionAdder" if writing else \
            "roles/secretmanager.secretAccessor"
        return (f"permission denied: grant the worker's service account {role} on secret "
                f"{secret!r} in project {project!r}")
    if kind == "DefaultCredentialsError":
        return ("no Google credentials: run `gcloud auth application-default login`, run on "
                f"GCP with a service account, or set {EMULATOR_HOST_VARIABLE} for a local "
                "emulator")
    return f"Secret Manager call failed ({kind}); check the network and the project"
