"""The Salesforce stages: ``ReadFromSalesforce`` / ``WriteToSalesforce`` (Beam PTransforms).

Incremental reads promote their watermark with ``stages.salesforce.incremental.commit_pending``
after the pipeline succeeded.

The stages are imported on first use (PEP 562): importing a Beam-free module of this package
(``soql``, ``schema``, ``bulk_query``, ``head_start``, ...) must not import Beam, because
``forcebeam run`` uses them to start a read's job while Beam is still being imported.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ReadFromSalesforce", "WriteToSalesforce", "commit_pending"]

_HOMES = {"ReadFromSalesforce": "read", "WriteToSalesforce": "write",
          "commit_pending": "incremental"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
