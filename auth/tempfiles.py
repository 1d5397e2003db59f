"""Our files in the temp directory, named for the process that made them, and the sweep.

Resolved mutual-TLS keys (``forcebeam-mtls-*``), combined CA bundles (``forcebeam-ca-*``) and
run progress counters (``forcebeam-progress-*``) live in the system temp directory while a
process uses them and are removed on every exit path we control (``close()``, ``finally``,
``atexit``, SIGTERM turned into an exception by the CLI). A process killed outright (SIGKILL,
a crashed worker) cannot clean up, so each name carries its process id, and the next process
that creates one sweeps those whose process is gone - only ours (same user, our prefix).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

__all__ = ["make_dir", "make_file", "sweep_orphans"]

KINDS = ("mtls", "ca", "progress")
_OURS = re.compile(r"^forcebeam-(" + "|".join(KINDS) + r")-(\d+)-")


def _prefix(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown temp kind {kind!r}")
    return f"forcebeam-{kind}-{os.getpid()}-"


def make_dir(kind: str) -> str:
    """A new 0700 directory for this process (after sweeping orphans of dead ones)."""
    sweep_orphans()
    directory = tempfile.mkdtemp(prefix=_prefix(kind))
    os.chmod(directory, 0o700)
    return directory


def make_file(kind: str, suffix: str = "") -> tuple[int, str]:
    """``mkstemp`` (0600) for this process: (descriptor, path)."""
    sweep_orphans()
    return tempfile.mkstemp(prefix=_prefix(kind), suffix=suffix)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True      # someone else's process: alive, and not ours to judge
    return True


def sweep_orphans(directory: str | None = None) -> list[str]:
    """Remove our temp files/dirs whose process no longer runs; returns what was removed."""
    root = Path(directory or tempfile.gettempdir())
    removed: list[str] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        match = _OURS.match(entry.name)
        if not match or _running(int(match.group(2))):
            continue
        try:
            if uid is not None and entry.stat(follow_symlinks=False).st_uid != uid:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            continue
        removed.append(entry.path)
    return removed
