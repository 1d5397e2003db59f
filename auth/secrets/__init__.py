"""Secret references and their resolution.

A connection holds *references* (``gcp-sm://…``, ``env://NAME``, ``file:///abs``,
``file:rel``, or any scheme a plugin registers); values are fetched on the worker, lazily,
once per process, and handed around as :class:`SecretValue` objects that refuse to be printed
or pickled. Providers are plugins (entry point group ``forcebeam.secret_providers``), ours
register exactly like anyone's.
"""

from __future__ import annotations

import threading

from forcebeam.auth.errors import SecretError
from forcebeam.auth.plugins import PluginRegistry
from forcebeam.auth.secrets.base import SecretProvider, SecretValue, scheme_of

__all__ = ["SecretProvider", "SecretValue", "get_provider", "known_schemes", "resolve",
           "write_back", "clear_cache", "scheme_of"]

ENTRY_POINT_GROUP = "forcebeam.secret_providers"

PROVIDERS = PluginRegistry(ENTRY_POINT_GROUP)

_lock = threading.RLock()
_providers: dict[str, SecretProvider] = {}
_cache: dict[str, SecretValue] = {}


def known_schemes() -> list[str]:
    """Every scheme a reference may use (ours and plugins', all through entry points)."""
    return PROVIDERS.names()


def get_provider(scheme: str) -> SecretProvider:
    """The process-wide provider instance for ``scheme`` (created on first use)."""
    with _lock:
        provider = _providers.get(scheme)
        if provider is None:
            try:
                provider_class = PROVIDERS.load(scheme)
            except KeyError:
                raise SecretError(f"{scheme}://…", f"no secret provider for scheme {scheme!r}; "
                                  f"known: {', '.join(known_schemes())}") from None
            provider = provider_class()
            _providers[scheme] = provider
        return provider


def resolve(reference: str) -> SecretValue:
    """The value behind ``reference``, fetched once per process and cached."""
    provider = get_provider(scheme_of(reference))
    key = provider.cache_key(reference)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    value = SecretValue(provider.read(reference))
    with _lock:
        _cache[key] = value
    return value


def write_back(reference: str, value: bytes) -> bool:
    """Store a new value for ``reference`` if its provider can write; True when stored.

    Used for refresh-token rotation: the next process (or run) must read the new token, since
    Salesforce invalidates the old one.
    """
    provider = get_provider(scheme_of(reference))
    if not provider.can_write:
        return False
    provider.write(reference, value)
    with _lock:
        _cache[provider.cache_key(reference)] = SecretValue(value)
    return True


def clear_cache() -> None:
    """Forget every resolved value (tests; or after rotating secrets out of band)."""
    with _lock:
        _cache.clear()
