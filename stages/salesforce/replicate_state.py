"""Per-object replication state: one JSON file per object under the ``state`` folder.

``{state}/{Object}.json`` holds what the next run starts from::

    {"watermark": ISO, "seen": {Id: ISO}, "deleted_until": ISO, "tombstoned": [Id, ...],
     "formulas_at": ISO, "fields": [...], "run_id": ..., "updated_at": ISO}

``watermark``/``seen`` are the incremental read's (rows with the watermark field ``>=`` the
watermark are read again; those already seen with the same value are dropped, as
``stages.salesforce.incremental`` does). ``deleted_until`` is where the next getDeleted
window starts; ``tombstoned`` keeps the last run's tombstone Ids so a deletion at a window
edge is written once. The files are written only by the commit step at the very end of a
successful run (``replicate_manifest``): a failed run leaves them unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["new_run_id", "load_object_state", "write_object_state", "state_file"]


def new_run_id(now: dt.datetime | None = None) -> str:
    """A UTC-time based, lexically sortable run id: ``20261203T224601123456Z``."""
    moment = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%S%fZ")


def state_file(state_path: str, sobject: str) -> str:
    return f"{state_path.rstrip('/')}/{sobject}.json"


def load_object_state(state_path: str, sobject: str) -> dict[str, Any]:
    """The committed state of ``sobject`` ({} before its first successful run)."""
    from apache_beam.io.filesystems import FileSystems

    from forcebeam.stages.salesforce.config import StageInputError

    path = state_file(state_path, sobject)
    if not FileSystems.exists(path):
        return {}
    with FileSystems.open(path) as handle:
        text = handle.read()
    try:
        state = json.loads(text.decode("utf-8"))
    except ValueError as error:     # JSONDecodeError, UnicodeDecodeError
        state = error
    if not isinstance(state, dict) or (state and not isinstance(state.get("fields", []), list)):
        # Refused before anything runs: guessing would re-read or skip rows silently.
        raise StageInputError(
            f"the replication state {path} of {sobject} is damaged (not the JSON object a "
            f"run writes{f': {state}' if isinstance(state, Exception) else ''})",
            field="state",
            suggestion=f"restore {path} from a backup, or delete it: the next run then "
                       f"extracts {sobject} in full again")
    return state


def write_object_state(state_path: str, sobject: str, data: Mapping[str, Any]) -> str:
    from apache_beam.io.filesystems import FileSystems

    path = state_file(state_path, sobject)
    with FileSystems.create(path) as handle:
        handle.write(json.dumps(data, sort_keys=True, indent=1).encode("utf-8"))
    return path
