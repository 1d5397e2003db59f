"""``file:///abs/path`` or ``file:relative/path`` (relative to the working directory).

Writable: a rotated refresh token replaces the file atomically, keeping it private (0600).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from forcebeam.auth.errors import SecretError
from forcebeam.auth.secrets.base import SecretProvider


def path_of(reference: str) -> Path:
    """The file a ``file:`` reference points to."""
    if reference.startswith("file://"):
        rest = reference[len("file://"):]
        if not rest.startswith("/"):
            raise SecretError(reference, "file:// references need an absolute path "
                              "(file:///abs/path), or use file:relative/path")
        return Path(rest)
    if reference.startswith("file:"):
        rest = reference[len("file:"):]
        if not rest:
            raise SecretError(reference, "empty path")
        return Path(rest)
    raise SecretError(reference, "not a file: reference")


class FileProvider(SecretProvider):
    scheme = "file"
    can_write = True

    def read(self, reference: str) -> bytes:
        path = path_of(reference)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise SecretError(reference, f"file {path} does not exist") from None
        except OSError as error:
            raise SecretError(reference, f"cannot read {path}: {error.strerror}") from None

    def write(self, reference: str, value: bytes) -> None:
        path = path_of(reference)
        handle, temp_name = tempfile.mkstemp(dir=path.parent or ".", prefix=".forcebeam-")
        try:
            os.fchmod(handle, 0o600)
            with os.fdopen(handle, "wb") as temp:
                temp.write(value)
            os.replace(temp_name, path)
        except OSError as error:
            Path(temp_name).unlink(missing_ok=True)
            raise SecretError(reference, f"cannot write {path}: {error.strerror}") from None
