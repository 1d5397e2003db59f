"""What replication tools read besides records: `sobjects/X/deleted` and FieldDefinition.

- `GET /services/data/vXX.X/sobjects/X/deleted/?start=...&end=...` (REST "Get Deleted
  Records", SOAP getDeleted): `{"deletedRecords": [{"id", "deletedDate"}],
  "earliestDateAvailable", "latestDateCovered"}`. A start before the deletion log's
  `earliestDateAvailable` is refused with INVALID_REPLICATION_DATE, as Salesforce does.
- `SELECT QualifiedApiName, DataType FROM FieldDefinition WHERE
  EntityDefinition.QualifiedApiName = 'X'`: every field of the object, whatever the caller's
  field-level security (describe omits the fields a user cannot read; this lists them).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from forcebeam.emulator.records.store import RecordStore
from forcebeam.emulator.records.values import datetime_to_ms
from forcebeam.emulator.wire.errors import CodeFirstError, InvalidFieldError, NotFoundError
from forcebeam.emulator.wire.http import (
    api_version_from,
    require_session,
    sf_datetime,
    sf_error,
    sf_json,
    state_of,
)

__all__ = ["get_deleted", "field_definitions"]

_FIELD_DEFINITION = re.compile(
    r"^\s*select\s+(?P<select>[\w\s,]+?)\s+from\s+FieldDefinition\s+where\s+"
    r"EntityDefinition(?:\.QualifiedApiName|Id)\s*=\s*'(?P<sobject>\w+)'\s*$", re.IGNORECASE)
_FIELD_DEFINITION_COLUMNS = {"qualifiedapiname": "QualifiedApiName",
                             "developername": "DeveloperName", "datatype": "DataType",
                             "label": "Label"}


def _parse_time(text: str | None, name: str) -> datetime:
    if not text:
        raise CodeFirstError(f"{name} is required", code="MISSING_ARGUMENT")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise CodeFirstError(f"{name}: {text} is not an ISO 8601 dateTime",
                             code="INVALID_DATE_FORMAT") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _ms_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


async def get_deleted(request: web.Request) -> web.Response:
    require_session(request, api="rest", kind="rest_other")
    store = state_of(request).records
    obj = store.schema.object(request.match_info["sobject"])
    if obj is None:
        raise NotFoundError()
    api_version_from(request)
    if not obj.replicateable:
        return sf_error(400, "INVALID_TYPE", f"sObject type '{obj.name}' is not replicateable")
    start = _parse_time(request.query.get("start"), "start")
    end = _parse_time(request.query.get("end"), "end")
    if end < start:
        return sf_error(400, "INVALID_REPLICATION_DATE", "end must be after start")
    earliest = store.deleted_log.earliest_ms
    if datetime_to_ms(start) < earliest:
        return sf_error(400, "INVALID_REPLICATION_DATE",
                        "startDate before org replication enabled date or before the "
                        f"earliest date available ({sf_datetime(_ms_datetime(earliest))})")
    now = store.now()
    covered = min(end, now)
    rows = store.deleted_log.between(obj.name, datetime_to_ms(start), datetime_to_ms(covered))
    return sf_json({
        "deletedRecords": [{"id": record_id, "deletedDate": sf_datetime(_ms_datetime(at))}
                           for record_id, at in rows],
        "earliestDateAvailable": sf_datetime(_ms_datetime(earliest)),
        "latestDateCovered": sf_datetime(covered)})


def field_definitions(store: RecordStore, soql: str) -> dict[str, Any] | None:
    """A query result for a FieldDefinition query, or None when `soql` is not one."""
    match = _FIELD_DEFINITION.match(soql)
    if not match:
        return None
    obj = store.schema.object(match.group("sobject"))
    columns = [c.strip() for c in match.group("select").split(",") if c.strip()]
    unknown = [c for c in columns if c.lower() not in _FIELD_DEFINITION_COLUMNS]
    if unknown:
        raise CodeFirstError(f"No such column '{unknown[0]}' on entity 'FieldDefinition'.",
                             code=InvalidFieldError.error_code)
    records = []
    for f in obj.field_list if obj else []:
        values = {"QualifiedApiName": f.name, "DeveloperName": f.name.removesuffix("__c"),
                  "DataType": f.type, "Label": f.label}
        record: dict[str, Any] = {"attributes": {"type": "FieldDefinition"}}
        for column in columns:
            name = _FIELD_DEFINITION_COLUMNS[column.lower()]
            record[name] = values[name]
        records.append(record)
    return {"totalSize": len(records), "done": True, "records": records}
