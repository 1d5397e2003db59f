"""``env://NAME``: a secret in an environment variable of the worker process."""

from __future__ import annotations

import os

from forcebeam.auth.errors import SecretError
from forcebeam.auth.secrets.base import SecretProvider


class EnvProvider(SecretProvider):
    scheme = "env"

    def read(self, reference: str) -> bytes:
        name = reference.removeprefix("env://")
        if not name or "/" in name:
            raise SecretError(reference, "expected env://VARIABLE_NAME")
        value = os.environ.get(name)
        if value is None:
            raise SecretError(reference, f"environment variable {name} is not set in this "
                              "process (set it on every worker, or use gcp-sm:// or file://)")
        return value.encode()
