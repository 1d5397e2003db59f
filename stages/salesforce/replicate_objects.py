"""Which objects a replication reads: names and globs against describeGlobal.

``all`` means every sobject describe marks ``queryable`` and ``replicateable``, minus what
neither Bulk API 2.0 nor a plain REST query can read in full (change events, external and
big objects, and objects Salesforce only answers with a filter on a parent Id). Everything
left out is reported with the reason, never dropped silently: the manifest's ``skipped``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ObjectSelection", "select_objects", "UNREADABLE_WHY"]

# Objects Salesforce refuses to return without a WHERE on an Id (MALFORMED_QUERY /
# "Implementation restriction"): a full replication cannot read them.
_FILTER_REQUIRED = frozenset(name.lower() for name in (
    "ContentDocumentLink", "ContentFolderItem", "ContentFolderMember", "ContentHubItem",
    "DataStatistics", "EntityParticle", "FieldDefinition", "FlexQueueItem", "IdeaComment",
    "ListViewChartInstance", "OwnerChangeOptionInfo", "PicklistValueInfo", "RecordActionHistory",
    "RelationshipDomain", "RelationshipInfo", "SearchLayout", "UserEntityAccess",
    "UserFieldAccess", "UserRecordAccess", "Vote"))
UNREADABLE_WHY = {
    "ChangeEvent": "a change event (Change Data Capture streams it; SOQL cannot read it)",
    "__x": "an external object (its rows live outside Salesforce; Bulk cannot read it)",
    "__b": "a big object (Bulk API 2.0 and queryAll cannot read it)",
    "__e": "a platform event (not stored as records)",
    "filter": "Salesforce answers queries on it only with a filter on an Id",
}


@dataclass(frozen=True)
class ObjectSelection:
    """The objects to read (describe names, in describeGlobal order) and the skipped ones."""

    objects: tuple[str, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)


def _unreadable(name: str) -> str | None:
    for suffix in ("ChangeEvent", "__x", "__b", "__e"):
        if name.endswith(suffix):
            return UNREADABLE_WHY[suffix]
    if name.lower() in _FILTER_REQUIRED:
        return UNREADABLE_WHY["filter"]
    return None


def _matches(name: str, patterns: Iterable[str]) -> str | None:
    lowered = name.lower()
    return next((p for p in patterns if fnmatch.fnmatchcase(lowered, p.lower())), None)


def select_objects(global_describe: Mapping[str, Any], objects: Sequence[str] | str,
                   exclude: Sequence[str] = ()) -> ObjectSelection:
    """Resolve ``objects``/``exclude`` (names and globs, case-insensitive) against a
    describeGlobal body; named objects the user cannot see are skipped, not fatal."""
    entries = [s for s in global_describe.get("sobjects", []) if isinstance(s, Mapping)]
    by_name = {s["name"].lower(): s for s in entries}
    wanted = ["*"] if objects == "all" else list(objects)
    chosen: list[str] = []
    skipped: dict[str, str] = {}
    for entry in entries:
        name = entry["name"]
        pattern = _matches(name, wanted)
        if pattern is None:
            continue
        named = "*" not in pattern and "?" not in pattern and "[" not in pattern
        excluded_by = _matches(name, exclude)
        if excluded_by is not None:
            if named:
                skipped[name] = f"excluded by exclude: {excluded_by!r}"
            continue
        why = None
        if not entry.get("queryable", False):
            why = "describe says it is not queryable"
        elif not entry.get("replicateable", False):
            why = "describe says it is not replicateable"
        else:
            why = _unreadable(name)
        if why:
            skipped[name] = why
        else:
            chosen.append(name)
    for pattern in wanted:
        plain = "*" not in pattern and "?" not in pattern and "[" not in pattern
        if plain and pattern.lower() not in by_name:
            skipped[pattern] = ("not in describeGlobal: no such object, or the integration "
                                "user's profile/permission sets do not grant read access")
    return ObjectSelection(objects=tuple(chosen), skipped=skipped)
