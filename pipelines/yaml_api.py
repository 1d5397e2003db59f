"""The transforms `providers.yaml` exposes to Beam YAML: our stages plus live progress.

They are the stages themselves (same signature and docstring, so Beam YAML derives the same
config schema), with two additions:
- a row-count side branch (`pipelines.progress`) so `forcebeam run` can print progress
  while a local run is going (outside `forcebeam run` the branch is not added);
- WriteToSalesforce without `error_handling` fails the run on the first rejected record,
  naming Salesforce's code and message, instead of silently dropping its `failed` output
  (Beam YAML ignores unconsumed outputs).
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from forcebeam.auth.errors import FatalError
from forcebeam.pipelines import progress
from forcebeam.stages.salesforce.read import ReadFromSalesforce as _Read
from forcebeam.stages.salesforce.replicate import ReplicateSalesforce as _Replicate
from forcebeam.stages.salesforce.write import WriteToSalesforce as _Write

__all__ = ["ReadFromSalesforce", "WriteToSalesforce", "ReplicateSalesforce",
           "RejectedRecordError"]


class ReadFromSalesforce(_Read):
    __doc__ = _Read.__doc__

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        rows = super().expand(pbegin)
        progress.tap(rows, self.label, batches=self.arrow_ready)
        return rows


class ReplicateSalesforce(_Replicate):
    __doc__ = _Replicate.__doc__
    # Beam YAML takes only `Read...` transforms as having no input; this one reads none
    # either, so plain Beam YAML files need no `input: {}` for it.
    _yaml_requires_inputs = False

    def track_reads(self, pbegin: beam.pvalue.PBegin, reads: list[beam.PCollection]) -> None:
        if not reads or not progress.enabled():
            return
        ones = [rows | f"ProgressOne{index}" >> beam.Map(lambda _: 1)
                for index, rows in enumerate(reads)]
        progress.tap(ones | "ProgressReads" >> beam.Flatten(), self.label)


class RejectedRecordError(FatalError):
    """Salesforce rejected a record and the pipeline has no dead-letter output for it."""


class _FailOnRejected(beam.DoFn):
    def __init__(self, stage: str) -> None:
        self._stage = stage

    def process(self, failed: Any):
        code = getattr(failed, "status_code", "?")
        message = getattr(failed, "msg", "?")
        fields = ", ".join(getattr(failed, "fields", None) or [])
        raise RejectedRecordError(
            f"{self._stage}: Salesforce rejected a record: {code}: {message}"
            f"{f' (fields: {fields})' if fields else ''}. Add error_handling: "
            "{output: failed} to this transform and write that output to a file to keep "
            "rejected records as dead letters instead of stopping.")
        yield  # pragma: no cover - never reached; makes this a generator


class WriteToSalesforce(_Write):
    __doc__ = _Write.__doc__

    def expand(self, pcoll: beam.PCollection) -> Any:
        from forcebeam.pipelines.stopped import FAILED_SUFFIX, WRITTEN_SUFFIX

        progress.tap(pcoll, self.label)
        outputs = super().expand(pcoll)
        failed_name = (self._config.error_handling or {}).get("output", "failed")
        # What was written/rejected so far: the summary of a run that stops midway.
        progress.tap(outputs["written"], self.label + WRITTEN_SUFFIX)
        progress.tap(outputs[failed_name], self.label + FAILED_SUFFIX)
        if self._config.error_handling:
            return outputs
        _ = outputs["failed"] | "FailOnRejected" >> beam.ParDo(_FailOnRejected(self.label))
        return outputs["written"]
