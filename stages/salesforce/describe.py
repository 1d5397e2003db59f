"""``describe`` at pipeline construction, with a small on-disk cache.

Why a cache: Beam YAML needs the row schema when the pipeline is built, so the launcher must
know the fields. A describe there costs a login in the launcher process *on top of* one
login per worker process. The describe JSON (field names and types, no data, no secret) is
cached per (connection, object) for ``FORCEBEAM_DESCRIBE_TTL`` seconds (default 3600) under
``FORCEBEAM_CACHE_DIR`` (default ``~/.cache/forcebeam``): a re-run - or a run after
``forcebeam describe`` / :func:`warm_describe_cache` - builds its schema without logging in,
so an N-worker run makes N logins. Set the TTL to 0 to always describe afresh.

The cache key is a hash of the connection's redacted ``repr`` (references only) and the
object name, so two orgs or two users never share an entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from forcebeam.stages.cache_files import cache_dir, store_json

__all__ = ["describe_sobject", "cached_describe", "warm_describe_cache"]

DEFAULT_TTL_SECONDS = 3600


def describe_sobject(client: Any, sobject: str) -> dict[str, Any]:
    """The full describe of ``sobject`` through an API client."""
    return client.request("GET", f"sobjects/{sobject}/describe").json()


def _unknown_sobject(client: Any, sobject: str) -> Exception:
    import difflib

    from forcebeam.stages.salesforce.config import StageInputError

    listing = client.request("GET", "sobjects").json()
    names = sorted(item["name"] for item in listing.get("sobjects", []))
    close = difflib.get_close_matches(sobject, names, n=1, cutoff=0.6)
    lowered = {name.lower(): name for name in names}
    best = close[0] if close else lowered.get(sobject.lower())
    hint = (f"did you mean '{best}'?" if best else
            "run `forcebeam describe FILE CONNECTION` to list the org's objects")
    return StageInputError(f"unknown sobject '{sobject}': the org has no such object",
                           field="sobject", suggestion=hint)


def _ttl() -> float:
    try:
        return float(os.environ.get("FORCEBEAM_DESCRIBE_TTL", DEFAULT_TTL_SECONDS))
    except ValueError:
        return DEFAULT_TTL_SECONDS


def _cache_file(connection: Any, sobject: str) -> Path:
    key = hashlib.sha256(f"{connection!r}\0{sobject.lower()}".encode()).hexdigest()[:32]
    return cache_dir("describe") / f"{key}.json"


def cached_describe(connection: Any, sobject: str) -> dict[str, Any]:
    """Describe from the cache when fresh, else through ``auth.get_client`` (and cache it)."""
    path = _cache_file(connection, sobject)
    ttl = _ttl()
    if ttl > 0 and path.exists() and time.time() - path.stat().st_mtime < ttl:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass
    return warm_describe_cache(connection, sobject)


def warm_describe_cache(connection: Any, sobject: str) -> dict[str, Any]:
    """Describe now (one login in this process if none yet) and store the result.

    An object the org does not have is a mistake in the config, not an API failure: it is
    raised as ``StageInputError`` at ``sobject`` with the closest name the org has.
    """
    from forcebeam.auth import get_client
    from forcebeam.auth.errors import SalesforceApiError

    client = get_client(connection)
    try:
        describe = describe_sobject(client, sobject)
    except SalesforceApiError as error:
        if error.status != 404:
            raise
        raise _unknown_sobject(client, sobject) from None
    store_json(_cache_file(connection, sobject), describe)
    return describe
