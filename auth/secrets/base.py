"""The provider contract and the value wrapper that keeps secrets out of logs and pickles."""

from __future__ import annotations

from typing import ClassVar, NoReturn

from forcebeam.auth.errors import SecretError


def scheme_of(reference: str) -> str:
    """``gcp-sm://p/…`` -> ``gcp-sm``; ``file:rel`` -> ``file``."""
    scheme, sep, _ = reference.partition(":")
    if not sep or not scheme:
        raise SecretError(reference, "not a secret reference (expected scheme:…, e.g. "
                          "env://NAME, file:///abs/path, gcp-sm://projects/P/secrets/S/versions/V)")
    return scheme


class SecretValue:
    """Secret bytes that print as ``***`` and refuse to be pickled.

    Beam pickles DoFns and their attributes; a value that cannot be pickled turns an
    accidental leak into the pipeline graph into a loud error instead of a silent one.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes | str) -> None:
        self._value = value.encode() if isinstance(value, str) else bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def text(self) -> str:
        return self._value.decode("utf-8").strip()

    def __repr__(self) -> str:
        return "SecretValue(***)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("secret values are never pickled; pickle the reference instead")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SecretProvider:
    """One scheme of secret references. Subclass, set ``scheme``, implement ``read``.

    ``can_write`` providers also implement ``write`` (store a new version), which
    refresh-token rotation uses.
    """

    scheme: ClassVar[str] = ""
    can_write: ClassVar[bool] = False

    def cache_key(self, reference: str) -> str:
        """What identifies the value behind ``reference`` in the per-process cache.

        The reference alone is not always enough: the same ``gcp-sm://`` name means a
        different secret on another Secret Manager endpoint (e.g. two emulated orgs in one
        process). Providers whose answer depends on more than the reference say so here.
        """
        return reference

    def read(self, reference: str) -> bytes:
        raise NotImplementedError

    def write(self, reference: str, value: bytes) -> None:
        raise SecretError(reference, f"the {self.scheme} provider cannot store values")
