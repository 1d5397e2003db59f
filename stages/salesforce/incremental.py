"""Incremental reads: watermark state, boundary de-duplication, and the commit contract.

Contract (read this before wiring a runner):

1. ``ReadFromSalesforce(..., incremental={"field": "SystemModstamp", "start": ...,
   "lookback": "10m", "state": PATH})`` reads rows with ``field >= watermark - lookback``
   (``>=``, not ``>``: rows sharing the boundary timestamp are never missed; the lookback
   also catches rows committed late with an older timestamp).
2. Rows re-read because of ``>=``/lookback are de-duplicated by Id: the state remembers the
   ``field`` value of every row seen inside the window, and a row whose Id was already seen
   with the *same* value is dropped; a row modified again (new value) is emitted.
3. The read never touches PATH. It writes the next state to ``PATH + ".pending"`` (through
   ``apache_beam.io.filesystems.FileSystems``: local paths and ``gs://`` alike).
4. After the pipeline succeeded - ``result.wait_until_finish()`` returned DONE, i.e. every
   sink wrote - the caller promotes it: ``commit_pending(PATH)``. ``forcebeam run`` does
   this; Python users call it themselves. A run that fails anywhere leaves PATH unchanged,
   so the next run reads the same rows again (at-least-once, never a gap).

State file (JSON): ``{"field", "watermark" (ISO UTC), "seen": {Id: value}, "updated_at",
"source"}`` (``source``: the sobject and fields, or the SOQL, it was committed for). A damaged
file, or one written for another field or query, is refused before the run
(``state_problem``), never silently reused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forcebeam.auth.errors import InputError
from forcebeam.stages.salesforce.timestamps import format_datetime, parse_datetime

__all__ = ["IncrementalSpec", "StateFileError", "commit_pending", "load_state", "pending_path",
           "state_problem", "state_source"]

PENDING_SUFFIX = ".pending"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value >= 0:
            raise ValueError(f"incremental.{where}: must be >= 0 seconds (or a duration like "
                             f"'10m'); got {value!r}")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"incremental.{where}: expected seconds or a duration like '10m', "
                         f"'2h', '30s'; got {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class IncrementalSpec:
    """Validated ``incremental:`` settings (picklable, no secrets)."""

    field: str = "SystemModstamp"
    start: str | None = None
    lookback_seconds: float = 0.0
    state: str | None = None

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any] | IncrementalSpec) -> IncrementalSpec:
        if isinstance(value, IncrementalSpec):
            return value
        known = {"field", "start", "lookback", "state"}
        unknown = set(value) - known
        if unknown:
            import difflib

            name = sorted(unknown)[0]
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"incremental: unknown key {name!r}.{hint} "
                             f"Allowed: {', '.join(sorted(known))}")
        start = value.get("start")
        if start is not None:
            start = format_datetime(_as_datetime(start, "start"))
        return cls(field=str(value.get("field") or "SystemModstamp"), start=start,
                   lookback_seconds=_seconds(value.get("lookback", 0), "lookback"),
                   state=value.get("state"))

    def lower_bound(self, state: Mapping[str, Any] | None) -> dt.datetime | None:
        """``watermark - lookback`` from the state, else ``start``, else None (full read)."""
        if state and state.get("watermark"):
            mark = parse_datetime(state["watermark"])
            return mark - dt.timedelta(seconds=self.lookback_seconds)
        return parse_datetime(self.start) if self.start else None


def _as_datetime(value: Any, where: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    try:
        text = str(value)
        if len(text) == 10:
            text += "T00:00:00Z"
        return parse_datetime(text)
    except ValueError as error:
        raise ValueError(f"incremental.{where}: expected an ISO-8601 date/time such as "
                         f"2026-01-15T00:00:00Z; got {value!r}") from error


def pending_path(state_path: str) -> str:
    return state_path + PENDING_SUFFIX


class StateFileError(InputError, ValueError):
    """A state file that cannot be used: names the path, what is wrong and the fix."""


def _read_json(path: str) -> dict[str, Any] | None:
    from apache_beam.io.filesystems import FileSystems

    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as handle:
        raw = handle.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise StateFileError(
            f"incremental state {path} is not valid JSON ({error}); it was damaged or "
            "written by something else. Fix: restore it from a backup, or delete it to read "
            "again from incremental.start (a full read when no start is set)") from None
    if not isinstance(data, dict) or (data and not isinstance(data.get("watermark"),
                                                              (str, type(None)))):
        raise StateFileError(
            f"incremental state {path} is not a forcebeam state (expected an object with "
            "field, watermark and seen). Fix: delete it to read again from incremental.start")
    if data.get("watermark"):
        try:
            parse_datetime(data["watermark"])
        except ValueError:
            raise StateFileError(
                f"incremental state {path}: watermark {data['watermark']!r} is not an "
                "ISO-8601 time. Fix: correct it (e.g. 2026-01-15T00:00:00.000Z) or delete "
                "the file to read again from incremental.start") from None
    return data


def state_problem(state_path: str, spec: IncrementalSpec, source: str) -> str | None:
    """Why the committed state at ``state_path`` cannot serve this read, or None.

    A state remembers the field and the query (``source``: the sobject or the SOQL text)
    it was written for; reusing it for another would skip rows silently.
    """
    try:
        state = load_state(state_path)
    except StateFileError as error:
        return str(error)
    if not state:
        return None
    field = state.get("field")
    if isinstance(field, str) and field.lower() != spec.field.lower():
        return (f"incremental state {state_path} was written for field {field}, not "
                f"{spec.field}: its watermark would skip rows. Fix: set incremental.field "
                f"back to {field}, or give this read its own state path (or delete the file "
                "to start again from incremental.start)")
    written_for = state.get("source")
    if isinstance(written_for, str) and written_for != source:
        return (f"incremental state {state_path} was written for another query "
                f"({written_for!r}, now {source!r}): its watermark would skip rows. Fix: give "
                "this read its own state path, or delete the file to start again from "
                "incremental.start")
    return None


def state_source(config: Mapping[str, Any]) -> str:
    """What a state file is written for: the sobject (and fields) or the SOQL text."""
    if config.get("soql"):
        return " ".join(str(config["soql"]).split())
    fields = config.get("fields")
    listed = f" ({', '.join(map(str, fields))})" if isinstance(fields, list) else ""
    return f"{config.get('sobject')}{listed}"


def _write_json(path: str, data: Mapping[str, Any]) -> None:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path) as handle:
        handle.write(json.dumps(data, sort_keys=True).encode("utf-8"))


def load_state(state_path: str | None) -> dict[str, Any] | None:
    """The committed state, or None before the first successful run."""
    return _read_json(state_path) if state_path else None


def commit_pending(state_path: str, source: str | None = None) -> bool:
    """Promote ``PATH.pending`` to ``PATH`` after a successful run; False if none pending.

    Call only after ``wait_until_finish()`` reported success: this is the moment the
    watermark advances. ``source`` (see ``state_source``) is recorded so a later run of
    another query refuses this state instead of skipping rows.
    """
    from apache_beam.io.filesystems import FileSystems

    pending = pending_path(state_path)
    data = _read_json(pending)
    if data is None:
        return False
    if source is not None:
        data["source"] = source
    _write_json(state_path, data)
    FileSystems.delete([pending])
    return True


def next_state(spec: IncrementalSpec, previous: Mapping[str, Any] | None,
               observed: tuple[str | None, Mapping[str, str]]) -> dict[str, Any]:
    """The state after this run: the new watermark, or the old one if nothing was read."""
    mark, seen = observed
    if mark is None:
        base = dict(previous or {})
        base.setdefault("field", spec.field)
        base.setdefault("watermark", spec.start)
        base.setdefault("seen", {})
        base["updated_at"] = format_datetime(dt.datetime.now(dt.timezone.utc))
        return base
    return {"field": spec.field, "watermark": format_datetime(parse_datetime(mark)),
            "seen": {k: format_datetime(parse_datetime(v)) for k, v in seen.items()},
            "updated_at": format_datetime(dt.datetime.now(dt.timezone.utc))}


def write_pending(state_path: str, spec: IncrementalSpec,
                  observed: tuple[str | None, Mapping[str, str]]) -> str:
    """Write the next state next to ``state_path``; returns the pending path."""
    previous = load_state(state_path)
    path = pending_path(state_path)
    _write_json(path, next_state(spec, previous, observed))
    return path


def seen_in_range(seen: Mapping[str, str], id_from: str | None, id_to: str | None
                  ) -> tuple[tuple[str, str], ...]:
    """The part of the de-dup set a unit over ``[id_from, id_to)`` can meet."""
    return tuple((k, v) for k, v in seen.items()
                 if (id_from is None or k >= id_from) and (id_to is None or k < id_to))


def unchanged(seen: Mapping[str, str], record_id: str, value: Any) -> bool:
    """True when this row was already emitted with the same ``field`` value."""
    previous = seen.get(record_id)
    if previous is None or value is None:
        return False
    return _normalised(previous) == _normalised(value)


def _normalised(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if hasattr(value, "to_utc_datetime"):
        return format_datetime(value.to_utc_datetime(has_tz=True))
    return format_datetime(parse_datetime(str(value)))


def observed_value(value: Any) -> str | None:
    return None if value is None else _normalised(value)
