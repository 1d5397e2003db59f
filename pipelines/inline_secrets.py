"""`allow_inline_secrets: true` on a connection: literal secret values, for local runs only.

By default a secret field must be a reference (auth refuses literals). A connection may opt
in to literals - handy for a throwaway sandbox - and even then the value never enters the
job graph: it is moved into an environment variable of this process (inherited by local
worker processes) and the field becomes an `env://` reference to it. Remote workers cannot
see that variable, so `forcebeam run` refuses the switch on non-local runners.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Mapping, MutableMapping
from typing import Any

from forcebeam.pipelines.problems import FieldPath

ALLOW_FLAG = "allow_inline_secrets"
_VARIABLE_PREFIX = "FORCEBEAM_INLINE_SECRET_"


def allows_inline(mapping: Mapping[str, Any]) -> bool:
    return mapping.get(ALLOW_FLAG) is True


def secret_paths(mapping: Mapping[str, Any]) -> list[FieldPath]:
    """Where a connection holds secrets, from auth's own models (flow + mutual TLS)."""
    from forcebeam.auth.config_types import MutualTlsConfig
    from forcebeam.auth.flows import get_flow

    paths: list[FieldPath] = []
    auth = mapping.get("auth")
    if isinstance(auth, Mapping):
        try:
            model = get_flow(str(auth.get("type"))).config_model
        except KeyError:
            model = None
        paths += [("auth", name) for name in getattr(model, "secret_fields", ())]
    if isinstance(mapping.get("mutual_tls"), Mapping):
        paths += [("mutual_tls", name) for name, info in MutualTlsConfig.model_fields.items()
                  if info.annotation is not int]
    return paths


def is_reference(value: str) -> bool:
    from forcebeam.auth.secrets import known_schemes

    scheme, separator, rest = value.partition(":")
    return bool(separator and rest) and scheme in known_schemes()


def externalize(mapping: Mapping[str, Any], connection: str,
                environ: MutableMapping[str, str] | None = None) -> dict[str, Any]:
    """The connection without the switch; with it on, literal secrets become env:// refs."""
    data = copy.deepcopy(dict(mapping))
    allowed = data.pop(ALLOW_FLAG, False) is True
    if not allowed:
        return data
    target = os.environ if environ is None else environ
    for section, field in secret_paths(data):
        value = data[section].get(field)
        if not isinstance(value, str) or not value or is_reference(value):
            continue
        digest = hashlib.sha256(f"{connection}\0{section}.{field}".encode()).hexdigest()[:12]
        variable = f"{_VARIABLE_PREFIX}{digest.upper()}"
        target[variable] = value
        data[section][field] = f"env://{variable}"
    return data
