"""Typed configs of the Salesforce stages (the schemas the registry publishes).

Why pydantic models: the pipelines engineer validates YAML ``config:`` blocks against them
before building anything (unknown/missing fields, closest-name suggestions), and the
transforms validate their own kwargs through the same models, so both agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

__all__ = ["ReadConfig", "WriteConfig", "as_connection"]


def as_connection(connection: Any) -> Any:
    """A ``auth.Connection`` from a Connection or its mapping (validated eagerly)."""
    from forcebeam.auth.connection import Connection

    if isinstance(connection, Connection):
        return connection
    if isinstance(connection, Mapping):
        return Connection.from_mapping(dict(connection), source="<stage config>",
                                       path="connection")
    raise TypeError("connection: expected a connection mapping (login_url, auth, ...) or an "
                    f"auth.Connection, got {type(connection).__name__}")


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
    incremental: dict[str, Any] | None = None
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

    @field_validator("incremental")
    @classmethod
    def _incremental_keys(cls, value: Any) -> Any:
        if value is not None:
            from forcebeam.stages.salesforce.incremental import IncrementalSpec

            IncrementalSpec.from_mapping(value)      # unknown keys, bad start/lookback
        return value

    @field_validator("split")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be auto, none or a number of units >= 1")
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

    @model_validator(mode="after")
    def _consistent(self) -> WriteConfig:
        if self.operation == "upsert" and not self.external_id_field:
            raise ValueError("external_id_field: required for operation upsert (the field "
                             "Salesforce matches records on, e.g. External_Id__c or Id)")
        if self.operation == "hard_delete" and self.mode == "rest":
            raise ValueError("mode: hard_delete exists only in Bulk API 2.0; use mode bulk "
                             "or auto")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError("batch_size: must be >= 1")
        if self.error_handling is not None and "output" not in self.error_handling:
            raise ValueError("error_handling: expected {output: <name>}")
        return self
