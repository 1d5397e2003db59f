"""Which transform types a pipeline file may use, and who provides each.

Three sources: Beam YAML's standard providers (WriteToParquet, MapToFields, ...), our stage
plugins (entry point group `forcebeam.stages`, through `stages.registry`), and providers the
file itself declares. Beam caches its catalogue; `load_standard_providers` loads it without
clients the file does not need.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

PROVIDERS_FILE = Path(__file__).resolve().parent / "providers.yaml"


#: Beam YAML types whose providers import the Vertex AI and Bigtable clients (installed with
#: the [dataflow] extra; seconds to import, and paid by every start otherwise).
CLIENT_HEAVY_TYPES = frozenset({"MLTransform", "RunInference", "Enrichment"})
_CLIENT_MODULES = ("vertexai", "google.cloud.aiplatform", "google.cloud.bigtable")
_CLIENT_PROVIDER_MODULES = ("apache_beam.yaml.yaml_ml", "apache_beam.yaml.yaml_enrichment")
_loaded_without_clients = False


def load_standard_providers(used_types: Iterable[Any] = ()) -> Mapping[str, Any]:
    """Beam YAML's standard provider catalogue (cached by Beam for the process).

    When ``used_types`` has none of CLIENT_HEAVY_TYPES the catalogue is loaded with the
    Vertex AI and Bigtable clients hidden, so their transforms register without those
    handlers (they are not used) and a run starts seconds sooner. A later file of the same
    process that does use them gets the catalogue loaded again, with the clients.
    """
    import importlib
    import sys

    from apache_beam.yaml import yaml_provider

    global _loaded_without_clients
    wanted = any(isinstance(kind, str) and kind.split("-", 1)[0] in CLIENT_HEAVY_TYPES
                 for kind in used_types)
    if wanted and _loaded_without_clients:
        yaml_provider.standard_providers.cache_clear()
        for name in _CLIENT_PROVIDER_MODULES:
            if name in sys.modules:
                importlib.reload(sys.modules[name])
        _loaded_without_clients = False
    hidden = [] if wanted else [name for name in _CLIENT_MODULES if name not in sys.modules]
    # Beam logs a warning per optional ML module it cannot import; not the user's business.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment] - import raises ImportError
        providers = yaml_provider.standard_providers()
        if hidden and not _loaded_without_clients:
            _loaded_without_clients = _CLIENT_PROVIDER_MODULES[0] in sys.modules
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
        root.setLevel(level)
    return providers


def beam_transform_types(used_types: Iterable[Any] = ()) -> frozenset[str]:
    """Beam YAML's standard transform types (language suffixes like `-python` removed)."""
    return frozenset(name.split("-", 1)[0] for name in load_standard_providers(used_types))


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


def all_known_types(extra: Iterable[str] = (), used_types: Iterable[Any] = ()) -> set[str]:
    """Every transform type a file may use: Beam's, ours, and ``extra`` (the file's own).

    Beam's names come from a copy on disk when it holds every type ``used_types`` needs, so
    the usual file is validated without importing Beam: `forcebeam run` starts its reads'
    jobs once the file is valid (``pipelines.head_start``), and Beam's import (~1.4 s) is
    then spent while the org works. A type missing from the copy loads the catalogue itself
    (and refreshes the copy), so a stale copy can only let a type through to Beam's build,
    which reports it at its line.
    """
    base = set(forcebeam_stage_types()) | provided_types() | set(extra)
    needed = {kind for kind in used_types if isinstance(kind, str)} - base
    stored = _stored_beam_types()
    if stored is not None and needed <= stored:
        return base | stored
    names = beam_transform_types(used_types)
    _store_beam_types(names)
    return base | names


def _beam_types_file() -> Path:
    """One copy per Beam install (its version, this interpreter and environment)."""
    import hashlib
    import sys
    from importlib.metadata import version

    from forcebeam.stages.cache_files import cache_dir

    key = hashlib.sha256(f"{version('apache-beam')}\0{sys.version}\0{sys.prefix}".encode())
    return cache_dir("beam-yaml") / f"types-{key.hexdigest()[:16]}.json"


def _stored_beam_types() -> frozenset[str] | None:
    try:
        names = json.loads(_beam_types_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        return None
    return frozenset(names)


def _store_beam_types(names: Iterable[str]) -> None:
    from forcebeam.stages.cache_files import store_json

    store_json(_beam_types_file(), sorted(names))


@functools.lru_cache(maxsize=1)
def provided_types() -> frozenset[str]:
    """Every transform our providers.yaml lists (stages and our file sinks)."""
    names, _ = declared_provider_types(_read_include(str(PROVIDERS_FILE), "/"), "/")
    return frozenset(names)
