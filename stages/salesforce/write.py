"""WriteToSalesforce: batch -> write (Collections or Bulk 2.0 ingest) -> written + failed.

Usage::

    result = records | WriteToSalesforce(connection=conn, sobject="Account",
                                         operation="upsert", external_id_field="Ext_Id__c")
    result["written"]   # Row(id, created, element)
    result["failed"]    # Row(element, msg, status_code, fields)  - never dropped

Inputs may be ``beam.Row`` or dicts (field name -> value; an absent key leaves the field
unchanged). ``None`` values (empty CSV cells) follow ``nulls``: ``ignore`` (default) leaves
the field unchanged, ``set`` clears it - the same on REST and Bulk. Rows Salesforce
rejects come out of ``failed`` with Salesforce's status code, message and fields; per-record
errors that may pass (``UNABLE_TO_LOCK_ROW``, ``API_TEMPORARILY_UNAVAILABLE``: see
``auth.responses``) are retried first, with the retry policy's back-off.
With Beam YAML's ``error_handling: {output: NAME}`` the failed rows are that output.

Mode ``auto`` writes batches of fewer than ``BULK_MIN_RECORDS`` through sObject Collections
(<= 200 per call) and larger ones as one Bulk 2.0 ingest job; ``hard_delete`` is Bulk-only.
Idempotence: a retried bundle re-sends its records; use ``upsert`` on an external id so a
retry updates instead of inserting twice.
"""

from __future__ import annotations

import logging
import pickle
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows
from apache_beam.typehints.row_type import RowTypeConstraint

from forcebeam.auth import responses
from forcebeam.auth.retry import DEFAULT_RETRY, RetryPolicy
from forcebeam.stages.salesforce.client_dofn import ClientDoFn
from forcebeam.stages.salesforce.config import WriteConfig, as_connection
from forcebeam.stages.salesforce.frame_records import FrameRecords
from forcebeam.stages.salesforce.output_records import as_output_record, record_type
from forcebeam.stages.salesforce.write_apis import (
    RecordRejection,
    RecordResult,
    write_bulk,
    write_collections,
)
from forcebeam.stages.salesforce.write_checks import (
    bad_date_text,
    check_write_input,
    date_text_columns,
    input_columns,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["WriteToSalesforce"]

LOG = logging.getLogger(__name__)
BULK_MIN_RECORDS = 1000
DEFAULT_REST_BATCH = 200
#: Records per Bulk ingest job: one job per 100k records (a job's CSV is split further past
#: 100 MB). Each job costs ~6 API calls and a slot of the org's daily Bulk batches.
DEFAULT_BULK_BATCH = 100_000
FAILED_TAG = "failed"


class WriteToSalesforce(beam.PTransform):
    """Write records to an SObject; returns ``{"written": ..., "failed": ...}``.

    Args:
      connection: A ``auth.Connection`` or its mapping (login_url, auth, ...).
      sobject: SObject API name, e.g. ``Account``.
      operation: insert, update, upsert, delete or hard_delete.
      external_id_field: Field upsert matches on (required for upsert).
      mode: auto (Collections for small batches, Bulk 2.0 for large), rest or bulk.
      batch_size: Records per API batch (default 200 for rest, 100,000 per Bulk job).
      error_handling: Beam YAML's ``{output: NAME}``: failed rows become output NAME.
      max_retries: Retries of records failing with transient errors (UNABLE_TO_LOCK_ROW).
      nulls: ``ignore`` (default): a null value (empty cell) leaves the field unchanged;
        ``set``: it clears the field.
      check_input: With a schema'd input, check its columns against the object's describe
        when the pipeline is built (one describe, cached); refuses inputs that would be
        rejected or changed. Python callers may turn it off.
    """

    config_model = WriteConfig
    #: The back-off between re-sends of records that may pass; ``max_retries`` sets how many.
    retry: RetryPolicy = DEFAULT_RETRY

    def __init__(self, connection: Any, sobject: str, operation: str = "insert",
                 external_id_field: str | None = None, mode: str = "auto",
                 batch_size: int | None = None,
                 error_handling: Mapping[str, Any] | None = None,
                 max_retries: int = 5, nulls: str = "ignore", check_input: bool = True
                 ) -> None:
        super().__init__()
        self._config = WriteConfig(connection=connection, sobject=sobject, operation=operation,
                                   external_id_field=external_id_field, mode=mode,
                                   batch_size=batch_size,
                                   error_handling=dict(error_handling) if error_handling
                                   else None, max_retries=max_retries, nulls=nulls)
        self._connection = as_connection(connection)
        self._check_input = check_input
        self._date_columns: dict[str, str] = {}   # text columns into date fields (expand)
        self._id_of: tuple[str, str] | None = None  # (keyPrefix, label) Ids must match

    def default_label(self) -> str:
        return f"WriteToSalesforce({self._config.sobject}, {self._config.operation})"

    def display_data(self) -> dict[str, Any]:
        cfg = self._config
        return {"sobject": cfg.sobject, "operation": cfg.operation, "mode": cfg.mode,
                "external_id_field": cfg.external_id_field or "",
                "login_url": self._connection.login_url}

    def _input_row_type(self, pcoll: beam.PCollection) -> Any:
        """The input's row type (None without a schema), checked against the describe.

        With a schema, the columns are checked before anything is sent (see
        ``write_checks``): a refusal here is a build-time error at the transform's line.
        """
        columns = input_columns(pcoll.element_type)
        if columns is None:
            return None
        if self._check_input:
            from forcebeam.stages.salesforce.describe import cached_describe

            cfg = self._config
            describe = cached_describe(self._connection, cfg.sobject)
            check_write_input(columns, describe, operation=cfg.operation,
                              external_id_field=cfg.external_id_field)
            self._date_columns = date_text_columns(columns, describe)
            if cfg.operation in ID_OPERATIONS and describe.get("keyPrefix"):
                self._id_of = (str(describe["keyPrefix"]),
                               str(describe.get("label") or cfg.sobject))
        return RowTypeConstraint.from_fields(columns)

    def expand(self, pcoll: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg = self._config
        size = cfg.batch_size or (DEFAULT_REST_BATCH if cfg.mode == "rest"
                                  else DEFAULT_BULK_BATCH)
        row_type = self._input_row_type(pcoll)
        writer = _WriteBatches(self._connection, cfg, self._date_columns, self._id_of,
                               retry=self.retry.with_retries(cfg.max_retries))
        if isinstance(pcoll.element_type, RowTypeConstraint) \
                and isinstance(pcoll.windowing.windowfn, GlobalWindows):
            # Rows, or pandas frames kept whole (ReadFromCsv's): see frame_records.
            batches = pcoll | "Batch" >> beam.ParDo(_Batches(size, pcoll.element_type))
            batches.element_type = _WriteBatch     # its coder sizes a batch without pickling
        else:
            batches = pcoll | "Batch" >> beam.BatchElements(min_batch_size=size,
                                                            max_batch_size=size)
        results = batches | "Write" >> beam.ParDo(writer).with_outputs(FAILED_TAG,
                                                                       main="written")
        written, failed = results.written, results[FAILED_TAG]
        if row_type is not None:
            # Both outputs keep a schema whatever the input (a ReadFromSalesforce's rows,
            # a CSV's): Beam YAML transforms downstream (MapToFields, WriteToJson) need one.
            # Their element is the record as the user wrote it, field names kept by every
            # sink (Beam's WriteToJson wrote a nested row as a JSON array): output_records.
            record = record_type(row_type._fields)
            element_type = RowTypeConstraint.from_user_type(record) if record else row_type
            written = written | "WrittenRows" >> beam.ParDo(
                _WithRecord(record)).with_output_types(
                RowTypeConstraint.from_fields([("id", typing.Optional[str]),  # noqa: UP045
                                               ("created", typing.Optional[bool]),  # noqa: UP045
                                               ("element", element_type)]))
            failed = failed | "FailedRows" >> beam.ParDo(
                _WithRecord(record)).with_output_types(
                RowTypeConstraint.from_fields([
                    ("element", element_type), ("msg", str), ("status_code", str),
                    ("fields", typing.Sequence[str])]))
        if cfg.error_handling:
            return {"written": written, cfg.error_handling["output"]: failed}
        return {"written": written, "failed": failed}


class _WithRecord(beam.DoFn):
    """Each output row with its ``element`` as the user's record (see ``output_records``)."""

    def __init__(self, record: type | None) -> None:
        self._record = record

    def process(self, row: Any) -> Iterator[Any]:
        if self._record is None:
            yield row
            return
        fields = row.as_dict()
        fields["element"] = as_output_record(row.element, self._record)
        yield beam.Row(**fields)


class _WriteBatch:
    """The element type of ``_Batches``' output: a list of rows or a ``FrameRecords``."""


class _WriteBatchCoder(beam.coders.Coder):
    """A write batch, pickled; sized without pickling it.

    Beam sizes the first elements of every output for its counters. With the default coder
    that pickled each batch whole: ~0.08 s for a batch of 100k CSV records, spent between
    reading the file and creating the Bulk job. Only a counter uses the size.
    """

    def encode(self, batch: Any) -> bytes:
        return pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> Any:
        return pickle.loads(encoded)  # noqa: S301 - our own bytes, between our own steps

    def estimate_size(self, batch: Any) -> int:
        return 64 * len(batch)      # a rough figure per record

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self) -> Any:
        return _WriteBatch


beam.coders.registry.register_coder(_WriteBatch, _WriteBatchCoder)


class _Batches(beam.DoFn):
    """The input in batches of ``size`` records (a bundle's leftovers as a last, smaller one):
    a list of rows, or, for pandas frames, ``FrameRecords`` of the frames as they came.

    Beam hands a batched DoFn the frames a pandas source emits (``process_batch``) and rows
    from any other input (``process``), so no frame is exploded into rows here. The global
    window only, as Beam's ``BatchElements`` batches it (other windowings use that).
    """

    def __init__(self, size: int, row_type: RowTypeConstraint) -> None:
        self._size = size
        self._row_type = row_type
        self._rows: list[Any] = []
        self._frames: list[Any] = []
        self._framed = 0

    def get_input_batch_type(self, input_element_type: Any) -> Any:
        import pandas as pd

        return pd.DataFrame     # the annotation below is a string (postponed evaluation)

    def start_bundle(self) -> None:
        self._rows, self._frames, self._framed = [], [], 0

    def process(self, element: Any) -> Iterator[list[Any]]:
        self._rows.append(element)
        if len(self._rows) >= self._size:
            yield self._rows
            self._rows = []

    @beam.DoFn.yields_elements
    def process_batch(self, frame: pd.DataFrame) -> Iterator[FrameRecords]:
        start = 0
        while start < len(frame):
            take = min(self._size - self._framed, len(frame) - start)
            self._frames.append(frame.iloc[start:start + take])
            self._framed += take
            start += take
            if self._framed >= self._size:
                yield FrameRecords(self._frames, self._row_type)
                self._frames, self._framed = [], 0

    def finish_bundle(self) -> Iterator[Any]:
        if self._rows:
            yield GlobalWindows.windowed_value_at_end_of_window(self._rows)
        if self._frames:
            yield GlobalWindows.windowed_value_at_end_of_window(
                FrameRecords(self._frames, self._row_type))
        self._rows, self._frames, self._framed = [], [], 0


def _as_record(element: Any) -> dict[str, Any]:
    if hasattr(element, "_asdict"):         # beam.Row / a schema'd row: the common case
        return element._asdict()
    if isinstance(element, Mapping):
        return dict(element)
    raise TypeError(f"WriteToSalesforce: expected beam.Row or dict elements, got "
                    f"{type(element).__name__}")


class _WriteBatches(ClientDoFn):
    #: Set by ``written_unread.skip_unread_written`` when nobody reads the ``written``
    #: output: successes are then counted (into ``written_count``, a progress counter, if
    #: any), never built as rows, and a Bulk job's successful results are not downloaded.
    emit_written = True
    written_count: Any = None
    login_ahead = True       # its first call waits for a full batch: log in meanwhile

    def __init__(self, connection: Any, config: WriteConfig,
                 date_columns: Mapping[str, str] | None = None,
                 id_of: tuple[str, str] | None = None, *,
                 retry: RetryPolicy | None = None) -> None:
        super().__init__(connection)
        self._id_of = id_of
        self._date_columns = dict(date_columns or {})
        self._sobject = config.sobject
        self._operation = config.operation
        self._external_id = config.external_id_field
        self._mode = config.mode
        self._retry = retry or DEFAULT_RETRY.with_retries(config.max_retries)
        self._nulls = config.nulls

    def setup(self) -> None:
        super().setup()
        if self.written_count is not None:
            self.written_count.setup()

    def start_bundle(self) -> None:
        if self.written_count is not None:
            self.written_count.start_bundle()

    def finish_bundle(self) -> None:
        if self.written_count is not None:
            self.written_count.finish_bundle()

    def process(self, batch: list[Any] | FrameRecords) -> Iterator[Any]:
        records: Sequence[dict[str, Any]]
        if isinstance(batch, FrameRecords):     # pandas frames: rows made only when output
            records, element_at = batch, batch.element
        else:
            records, element_at = [_as_record(element) for element in batch], batch.__getitem__
        results = self._checked_write(records)
        pending = [i for i, r in enumerate(results) if _may_pass(r)]
        attempt = 0
        while pending and self._retry.pause(attempt := attempt + 1):
            LOG.info("retrying %d record(s) after transient errors (attempt %d)",
                     len(pending), attempt)
            retried = self._write([records[i] for i in pending])
            for i, result in zip(pending, retried, strict=True):
                results[i] = result
            pending = [i for i in pending if _may_pass(results[i])]
        assert self._counters is not None
        assert len(results) == len(records), "one result per record"
        ok = 0
        for index, result in enumerate(results):
            if result.success:
                ok += 1
                if self.emit_written:
                    yield beam.Row(id=result.id, created=result.created,
                                   element=element_at(index))
            else:
                first = result.errors[0] if result.errors else None
                yield beam.pvalue.TaggedOutput(FAILED_TAG, beam.Row(
                    element=element_at(index),
                    msg="; ".join(f"{e.status_code}: {e.message}" for e in result.errors)
                    or "Salesforce rejected the record without a message",
                    status_code=first.status_code if first else "UNKNOWN",
                    fields=sorted({f for e in result.errors for f in e.fields})))
        self._counters.records_written.inc(ok)
        self._counters.records_failed.inc(len(records) - ok)
        if not self.emit_written and self.written_count is not None:
            self.written_count.add(ok)
        self._counters.sync_client(self._client)

    def _checked_write(self, records: Sequence[dict[str, Any]]) -> list[RecordResult]:
        if not self._date_columns and not self._id_of:
            return self._write(records)
        results: list[RecordResult | None] = [self._other_object(r) or self._bad_dates(r)
                                              for r in records]
        sendable = [i for i, refused in enumerate(results) if refused is None]
        if sendable:
            for i, result in zip(sendable, self._write([records[i] for i in sendable]),
                                 strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def _other_object(self, record: Mapping[str, Any]) -> RecordResult | None:
        """An Id of another object: refused here, never sent, as Bulk API 2.0 refuses it.

        sObject Collections' delete takes bare Ids of any object, so a REST delete fed the
        wrong Ids would delete other records than the ``sobject`` the file names.
        """
        if self._id_of is None:
            return None
        value = next((v for k, v in record.items() if str(k).lower() == "id"), None)
        prefix, label = self._id_of
        if not isinstance(value, str) or not value or value[:3] == prefix:
            return None
        return RecordResult(success=False, errors=[RecordRejection(
            "MALFORMED_ID", f"{label} ID: id value of incorrect type: {value} ({self._sobject} "
            f"Ids start with {prefix}; not sent)", ("Id",))])

    def _bad_dates(self, record: Mapping[str, Any]) -> RecordResult | None:
        """A record with a date text Salesforce cannot parse: refused here, never sent."""
        bad = [column for column, sf_type in self._date_columns.items()
               if bad_date_text(record.get(column), sf_type)]
        if not bad:
            return None
        return RecordResult(success=False, errors=[RecordRejection(
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            "; ".join(f"{column}: value not of required type: {record.get(column)} "
                      f"(a {self._date_columns[column]} is written as "
                      f"{'YYYY-MM-DD' if self._date_columns[column] == 'date' else 'ISO 8601'}"
                      "; not sent)" for column in bad), tuple(bad))])

    def _write(self, records: Sequence[dict[str, Any]]) -> list[RecordResult]:
        use_bulk = (self._mode == "bulk" or self._operation == "hard_delete"
                    or (self._mode == "auto" and len(records) >= BULK_MIN_RECORDS))
        if use_bulk:
            return write_bulk(self._client, self._sobject, self._operation, records,
                              external_id_field=self._external_id, nulls=self._nulls,
                              ids_wanted=self.emit_written)
        return write_collections(self._client, self._sobject, self._operation, records,
                                 external_id_field=self._external_id, nulls=self._nulls)


ID_OPERATIONS = frozenset({"update", "delete", "hard_delete"})


def _may_pass(result: RecordResult) -> bool:
    """Rejected only for reasons that may pass (``auth.responses``): worth sending again."""
    return not result.success and responses.record_may_pass(e.status_code
                                                            for e in result.errors)
