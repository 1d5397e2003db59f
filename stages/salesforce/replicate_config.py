"""Config of ``ReplicateSalesforce`` (the schema the registry publishes and YAML is checked by).

Kept apart from ``config.py`` (the read/write stages' models) so the replication stage's
settings read in one place: which objects, where files go, and the three policies
(deletes, schema drift, formula refresh).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["ReplicateConfig", "duration_seconds"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(value: Any, where: str) -> float:
    """Seconds of ``value``: a number of seconds or text like ``24h``, ``30m``, ``7d``."""
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected a duration such as 24h, 30m or 7d")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{where}: a duration cannot be negative (0 = every run)")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{where}: expected a duration such as 24h, 30m or 7d; got {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]


class ReplicateConfig(BaseModel):
    """Config of ``ReplicateSalesforce``."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    connection: Any
    objects: list[str] | Literal["all"] = "all"
    exclude: list[str] = []
    path: str
    format: Literal["parquet", "jsonl", "csv"] = "parquet"
    state: str | None = None
    deletes: bool = True
    formula_refresh: str | float | None = None
    mode: Literal["auto", "bulk", "rest"] = "auto"

    @field_validator("objects", mode="before")
    @classmethod
    def _one_name(cls, value: Any) -> Any:
        """``all`` in any case, and one name or glob as a list of one (``objects: Account``)."""
        if isinstance(value, str):
            return "all" if value.strip().lower() == "all" else [value.strip()]
        return value

    @field_validator("objects")
    @classmethod
    def _some_objects(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("name at least one object or glob (e.g. [Account, '*__c']), "
                             "or use all")
        return value

    @field_validator("formula_refresh")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is not None:
            duration_seconds(value, "formula_refresh")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a folder or bucket prefix, e.g. gs://acme-lake/salesforce")
        return value.rstrip("/")

    @property
    def state_path(self) -> str:
        """Where per-object watermarks live (default ``{path}/_state``)."""
        return (self.state or f"{self.path}/_state").rstrip("/")

    @property
    def formula_refresh_seconds(self) -> float | None:
        if self.formula_refresh is None:
            return None
        return duration_seconds(self.formula_refresh, "formula_refresh")
