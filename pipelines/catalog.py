"""Which transform types a pipeline file may use, and who provides each.

Three sources: Beam YAML's standard providers (WriteToParquet, MapToFields, ...), our stage
plugins (entry point group `forcebeam.stages`, through `stages.registry`), and providers the
file itself declares. Loading Beam's catalogue takes about a second, so it is cached.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

PROVIDERS_FILE = Path(__file__).resolve().parent / "providers.yaml"


@functools.lru_cache(maxsize=1)
def beam_transform_types() -> frozenset[str]:
    """Beam YAML's standard transform types (language suffixes like `-python` removed)."""
    from apache_beam.yaml import yaml_provider

    # Beam logs a warning per optional ML module it cannot import; not the user's business.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        names = yaml_provider.standard_providers().keys()
    finally:
        root.setLevel(level)
    return frozenset(name.split("-", 1)[0] for name in names)


@functools.lru_cache(maxsize=1)
def forcebeam_stage_types() -> frozenset[str]:
    """Our registered stages (ReadFromSalesforce, WriteToSalesforce, plugins)."""
    from forcebeam.stages.registry import available_stages

    return frozenset(available_stages())


def declared_provider_types(providers: Any, base_dir: str) -> tuple[set[str], bool]:
    """Transform names the file's own `providers:` declare.

    Returns the names and whether some provider could not be read (a remote `include:`), in
    which case unknown types cannot be reported with certainty.
    """
    names: set[str] = set()
    opaque = False
    for provider in providers if isinstance(providers, list) else []:
        if not isinstance(provider, Mapping):
            continue
        if "include" in provider:
            included = _read_include(str(provider["include"]), base_dir)
            if included is None:
                opaque = True
                continue
            inner, inner_opaque = declared_provider_types(included, base_dir)
            names |= inner
            opaque |= inner_opaque
        elif isinstance(provider.get("transforms"), Mapping):
            names |= {str(name) for name in provider["transforms"]}
    return names, opaque


def _read_include(location: str, base_dir: str) -> Any:
    if "://" in location:
        return None
    path = Path(location) if os.path.isabs(location) else Path(base_dir) / location
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def all_known_types(extra: Iterable[str] = ()) -> set[str]:
    return (set(beam_transform_types()) | set(forcebeam_stage_types())
            | provided_types() | set(extra))


@functools.lru_cache(maxsize=1)
def provided_types() -> frozenset[str]:
    """Every transform our providers.yaml lists (stages and our file sinks)."""
    names, _ = declared_provider_types(_read_include(str(PROVIDERS_FILE), "/"), "/")
    return frozenset(names)
