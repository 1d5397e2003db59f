"""Typed configs of the Salesforce stages (the schemas the registry publishes).

Why pydantic models: the pipelines engineer validates YAML ``config:`` blocks against them
before building anything (unknown/missing fields, closest-name suggestions), and the
transforms validate their own kwargs through the same models, so both agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from forcebeam.auth.errors import ConfigError
from forcebeam.stages.salesforce.incremental import IncrementalSpec

__all__ = ["ReadConfig", "WriteConfig", "StageInputError", "as_connection"]

# Numbers a run can work with; anything else is refused when the config is validated, i.e.
# before a Bulk job exists (a zero timeout or page size would fail only after jobs were made).
MAX_BULK_PAGE_SIZE = 1_000_000
MAX_WRITE_RETRIES = 20
MAX_BULK_BATCH = 10_000_000   # Bulk API 2.0: at most 150 million records per 24 h, 150 MB


def as_connection(connection: Any) -> Any:
    """A ``auth.Connection`` from a Connection (used as it is: already validated) or its
    mapping (validated now, every problem at once; a mapping `forcebeam run` validated in
    this process is not validated again)."""
    from forcebeam.auth.connection import Connection

    if isinstance(connection, Connection):
        return connection
    if isinstance(connection, Mapping):
        return Connection.from_mapping(dict(connection), source="<stage config>",
                                       path="connection")
    raise TypeError("connection: expected a connection mapping (login_url, auth, ...) or an "
                    f"auth.Connection, got {type(connection).__name__}")


class StageInputError(ConfigError):
    """A stage cannot work with this config or input (found while the pipeline is built).

    ``field`` is the config key the problem sits at, so `forcebeam run` reports it at that
    line of the user's file (exit 2) instead of failing later with every record rejected.
    """

    def __init__(self, message: str, *, field: str = "", suggestion: str = "") -> None:
        super().__init__(message, source="stage config", path=field,
                         suggestion=suggestion)
        self.field = field

    def __reduce__(self):
        return (_rebuild, (self.message, self.field, self.suggestion))


def _rebuild(message: str, field: str, suggestion: str) -> StageInputError:
    return StageInputError(message, field=field, suggestion=suggestion)


class _StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    connection: Any


class ReadConfig(_StageConfig):
    """Config of ``ReadFromSalesforce``."""

    sobject: str | None = None
    soql: str | None = None
    fields: list[str] | None = None
    mode: Literal["auto", "bulk", "rest"] = "auto"
    include_deleted: bool = False
    incremental: IncrementalSpec | None = None
    split: int | Literal["auto", "none"] = "auto"
    types: Literal["portable", "native"] = "portable"
    bulk_timeout_seconds: float = 3600.0
    bulk_page_size: int = 100_000

    @model_validator(mode="after")
    def _one_source(self) -> ReadConfig:
        if bool(self.sobject) == bool(self.soql):
            raise ValueError("give exactly one of sobject (e.g. Account) or soql "
                             "(SELECT ... FROM ...)")
        if self.soql and self.fields is not None:
            raise ValueError("fields: not allowed with soql (the SELECT list names the fields)")
        return self

    @field_validator("incremental", mode="before")
    @classmethod
    def _incremental_settings(cls, value: Any) -> Any:
        """Parsed here, once (unknown keys, bad start/lookback): the read uses the result."""
        if value is None or isinstance(value, IncrementalSpec):
            return value
        if not isinstance(value, Mapping):
            raise ValueError("expected a mapping such as {field: SystemModstamp, lookback: "
                             "10m, state: PATH}")
        return IncrementalSpec.from_mapping(value) if value else None   # {}: not incremental

    @field_validator("split")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be auto, none or a number of units >= 1")
        return value

    @field_validator("bulk_timeout_seconds")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if not value > 0:   # also refuses NaN
            raise ValueError("must be a number of seconds > 0 (how long one Bulk job may "
                             "take; default 3600)")
        return value

    @field_validator("bulk_page_size")
    @classmethod
    def _page_size(cls, value: int) -> int:
        if not 1 <= value <= MAX_BULK_PAGE_SIZE:
            raise ValueError(f"must be between 1 and {MAX_BULK_PAGE_SIZE:,} rows per Bulk "
                             "result page (default 50,000)")
        return value


class WriteConfig(_StageConfig):
    """Config of ``WriteToSalesforce``."""

    sobject: str
    operation: Literal["insert", "update", "upsert", "delete", "hard_delete"] = "insert"
    external_id_field: str | None = None
    mode: Literal["auto", "rest", "bulk"] = "auto"
    batch_size: int | None = None
    error_handling: dict[str, Any] | None = None
    max_retries: int = 5
    nulls: Literal["ignore", "set"] = "ignore"

    @field_validator("max_retries")
    @classmethod
    def _retries(cls, value: int) -> int:
        if not 0 <= value <= MAX_WRITE_RETRIES:
            raise ValueError(f"must be between 0 and {MAX_WRITE_RETRIES} (retries of records "
                             "failing with transient errors; default 5)")
        return value

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_BULK_BATCH:
            raise ValueError(f"must be between 1 and {MAX_BULK_BATCH:,} records per batch")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> WriteConfig:
        if self.operation == "upsert" and not self.external_id_field:
            raise ValueError("external_id_field: required for operation upsert (the field "
                             "Salesforce matches records on, e.g. External_Id__c or Id)")
        if self.operation == "hard_delete" and self.mode == "rest":
            raise ValueError("mode: hard_delete exists only in Bulk API 2.0; use mode bulk "
                             "or auto")
        if self.error_handling is not None and "output" not in self.error_handling:
            raise ValueError("error_handling: expected {output: <name>}")
        return self
