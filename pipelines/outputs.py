"""Output prefixes of file sinks hold exactly one successful run's complete files.

Beam's file sinks stage rows in folders beside the output (`beam-temp-PREFIX-*`, `.temp*`)
and rename finished shards into place. A failed or killed run leaves those folders - with row
data - behind; even a good run leaves empty `.temp*` folders; and a run with another shard
count writes `PREFIX-00000-of-00002` beside an earlier `PREFIX-00000-of-00003`, so a glob
reads both. `OutputGuard` snapshots each local prefix's folder before the run and, after it:

* success: removes the staging folders (this run's, empty ones, and `beam-temp-PREFIX-*`
  an earlier failed run left), and the shards of this prefix this run did not write;
* failure: removes the staging folders this run made and the shards it wrote (a failed run
  leaves no row data behind); an earlier successful run's untouched files stay.

A `ReplicateSalesforce` lake stages its files in `{path}/_staging/{run_id}/` and publishes
them at the end of a successful run; a failed or stopped run's staging folder (row data) is
removed here too, and the `_staging` folder itself once it is empty.

Only local paths are handled (remote file systems keep Beam's own behaviour).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from forcebeam.pipelines.spec import PipelineSpec

__all__ = ["OutputGuard", "sink_prefixes", "lake_stagings"]

_SHARD = r"-\d{5}-of-\d{5}"


def sink_prefixes(spec: PipelineSpec) -> list[str]:
    """The local `path:` prefixes of the file's `WriteTo*` sinks (not our Salesforce one)."""
    prefixes = []
    for transform in spec.transforms():
        kind = transform.type
        config = transform.config
        if not (isinstance(kind, str) and kind.startswith("WriteTo")
                and kind != "WriteToSalesforce" and isinstance(config, dict)):
            continue
        path = config.get("path")
        if isinstance(path, str) and path and "://" not in path:
            prefixes.append(os.path.abspath(os.path.expanduser(path)))
    return prefixes


def lake_stagings(spec: PipelineSpec) -> list[str]:
    """The local `{path}/_staging` folders of the file's `ReplicateSalesforce` lakes."""
    folders = []
    for transform in spec.transforms():
        config = transform.config
        if transform.type != "ReplicateSalesforce" or not isinstance(config, dict):
            continue
        path = config.get("path")
        if isinstance(path, str) and path.strip() and "://" not in path:
            lake = os.path.abspath(os.path.expanduser(path.strip().rstrip("/")))
            folders.append(os.path.join(lake, "_staging"))
    return folders


@dataclass
class _Prefix:
    prefix: str
    before: dict[str, float] = field(default_factory=dict)   # entry -> mtime

    @property
    def folder(self) -> str:
        return os.path.dirname(self.prefix) or "."

    def shard(self, name: str) -> bool:
        base = re.escape(os.path.basename(self.prefix))
        return re.fullmatch(base + _SHARD + r"(\..*)?", name) is not None \
            or name == os.path.basename(self.prefix)

    def staging(self, name: str) -> bool:
        base = os.path.basename(self.prefix)
        return name.startswith(f"beam-temp-{base}-") or name.startswith(".temp")


class OutputGuard:
    """Snapshot sink folders before a run; tidy them after it (see module docstring)."""

    def __init__(self, prefixes: Iterable[str], stagings: Iterable[str] = ()) -> None:
        self._started = time.time()
        self._prefixes = [_Prefix(prefix) for prefix in dict.fromkeys(prefixes)]
        for item in self._prefixes:
            item.before = _listing(item.folder)
        # lake staging folder -> the run folders it held before this run
        self._stagings = {folder: set(_listing(folder)) for folder in dict.fromkeys(stagings)}
        self._new_lakes = {folder for folder in self._stagings
                           if not os.path.exists(os.path.dirname(folder))}

    def after_success(self) -> list[str]:
        removed: list[str] = []
        for item in self._prefixes:
            now = _listing(item.folder)
            written = {name for name, mtime in now.items()
                       if item.shard(name) and (name not in item.before
                                                or mtime >= self._started - 1)}
            for name in now:
                if item.staging(name) and (name not in item.before
                                           or name.startswith("beam-temp-")
                                           or _empty(os.path.join(item.folder, name))):
                    removed += _remove(item.folder, name)
                elif item.shard(name) and written and name not in written:
                    removed += _remove(item.folder, name)   # an earlier run's shard
        for folder in self._stagings:                       # the commit emptied it
            _remove_if_empty(folder)
        return removed

    def after_failure(self) -> list[str]:
        removed: list[str] = []
        for item in self._prefixes:
            now = _listing(item.folder)
            for name, mtime in now.items():
                fresh = name not in item.before or mtime > item.before[name]
                if fresh and (item.staging(name) or item.shard(name)):
                    removed += _remove(item.folder, name)
        for folder, before in self._stagings.items():      # this run's staged lake files
            for name in set(_listing(folder)) - before:
                removed += _remove(folder, name)
            _remove_if_empty(folder)
            if folder in self._new_lakes:                   # a first run made the lake
                _remove_if_empty(os.path.dirname(folder))
        return removed


def _listing(folder: str) -> dict[str, float]:
    try:
        return {entry.name: entry.stat(follow_symlinks=False).st_mtime
                for entry in os.scandir(folder)}
    except OSError:
        return {}


def _empty(path: str) -> bool:
    try:
        return os.path.isdir(path) and not os.listdir(path)
    except OSError:
        return False


def _remove_if_empty(folder: str) -> None:
    if _empty(folder):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def _remove(folder: str, name: str) -> list[str]:
    path = os.path.join(folder, name)
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except OSError:
        return []
    return [path]
