"""What forcebeam keeps on disk between runs: where (``FORCEBEAM_CACHE_DIR``, default
``~/.cache/forcebeam``), and how a JSON file there is written.

One place for both, because two caches share them: the describe cache
(``stages.salesforce.describe``) and Beam YAML's transform names (``pipelines.catalog``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["cache_dir", "store_json"]


def cache_dir(name: str) -> Path:
    """The folder of one cache, ``name``, under the cache root."""
    root = os.environ.get("FORCEBEAM_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "forcebeam")
    return Path(root) / name


def store_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically (a concurrent run never reads half a file).

    Best effort: a folder it cannot write (a read-only home) only costs the work again next
    time.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False,
                                         encoding="utf-8", suffix=".tmp") as handle:
            json.dump(data, handle)
        os.replace(handle.name, path)
    except OSError:
        return
