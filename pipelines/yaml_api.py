"""The YAML faces of our stages: what `providers.yaml` registers for Beam YAML.

Beam keeps a Python transform and its YAML face apart (`WriteToBigQuery` beside
`yaml_io.write_to_bigquery`): the face takes the same config, applies the Python transform
and adds what a YAML pipeline needs. Ours are `read_from_salesforce_yaml`,
`write_to_salesforce_yaml` and `replicate_salesforce_yaml`, registered under the stages' type
names (a file still says `type: ReadFromSalesforce`); Python code applies the stages of
`forcebeam.stages.salesforce` themselves, which know nothing of this module.

What a face adds:
- a row-count side branch (`pipelines.progress`) so `forcebeam run` can print progress
  while a local run is going (outside `forcebeam run` the branch is not added);
- Beam YAML's `error_handling` contract for rejected records, decided in one place
  (`with_error_handling`): with `error_handling: {output: NAME}` they are output NAME;
  without it the first rejected record fails the run, naming Salesforce's code and message,
  instead of being dropped silently (Beam YAML ignores unconsumed outputs).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import apache_beam as beam

from forcebeam.auth.errors import FatalError
from forcebeam.pipelines import progress
from forcebeam.stages.salesforce.config import StageInputError
from forcebeam.stages.salesforce.read import ReadFromSalesforce
from forcebeam.stages.salesforce.replicate import ReplicateSalesforce
from forcebeam.stages.salesforce.write import WriteToSalesforce

__all__ = ["read_from_salesforce_yaml", "write_to_salesforce_yaml",
           "replicate_salesforce_yaml", "with_error_handling", "RejectedRecordError"]

Factory = Callable[..., beam.PTransform]


def _config_of(stage: type[beam.PTransform]) -> Callable[[Factory], Factory]:
    """Give a face its stage's signature and docstring: Beam YAML derives the config schema
    and the transform's documentation from them, so both stay the stage's."""
    def decorate(factory: Factory) -> Factory:
        factory.__signature__ = inspect.signature(stage)  # type: ignore[attr-defined]
        factory.__doc__ = stage.__doc__
        return factory

    return decorate


class _Faced(beam.PTransform):
    """A stage applied whole under the face's label (the YAML transform's name)."""

    def __init__(self, stage: beam.PTransform) -> None:
        super().__init__()
        self.stage = stage

    def default_label(self) -> str:
        return self.stage.default_label()


# --------------------------------------------------------------------- reads


class _CountedRead(_Faced):
    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        self.stage.progress_name = self.label   # its plan's row count: "rows of N"
        rows = pbegin | self.stage
        progress.tap(rows, self.label, batches=self.stage.arrow_ready)
        return rows


@_config_of(ReadFromSalesforce)
def read_from_salesforce_yaml(**config: Any) -> beam.PTransform:
    return _CountedRead(ReadFromSalesforce(**config))


class _CountedReplication(_Faced):
    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        result = pbegin | self.stage
        reads = self.stage.reads
        if reads and progress.enabled():
            ones = [rows | f"ProgressOne{index}" >> beam.Map(lambda _: 1)
                    for index, rows in enumerate(reads)]
            progress.tap(ones | "ProgressReads" >> beam.Flatten(), self.label)
        return result


@_config_of(ReplicateSalesforce)
def replicate_salesforce_yaml(**config: Any) -> beam.PTransform:
    return _CountedReplication(ReplicateSalesforce(**config))


# Beam YAML takes only `Read...` transforms as having no input; replication reads none
# either, so plain Beam YAML files need no `input: {}` for it.
replicate_salesforce_yaml._yaml_requires_inputs = False  # type: ignore[attr-defined]


# --------------------------------------------------------------------- writes


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


class _HandlingErrors(_Faced):
    """A sink whose stage returns ``{"written", "failed"}``, with Beam YAML's contract."""

    def __init__(self, stage: beam.PTransform, error_handling: Mapping[str, Any] | None
                 ) -> None:
        super().__init__(stage)
        self._dead_letters = error_handling["output"] if error_handling else None

    def expand(self, pcoll: beam.PCollection) -> Any:
        from forcebeam.pipelines.stopped import FAILED_SUFFIX, WRITTEN_SUFFIX

        progress.tap(pcoll, self.label)
        outputs = pcoll | self.stage
        # What was written/rejected so far: the summary of a run that stops midway.
        progress.tap(outputs["written"], self.label + WRITTEN_SUFFIX)
        progress.tap(outputs["failed"], self.label + FAILED_SUFFIX)
        if self._dead_letters:
            return {"written": outputs["written"], self._dead_letters: outputs["failed"]}
        _ = outputs["failed"] | "FailOnRejected" >> beam.ParDo(_FailOnRejected(self.label))
        return outputs["written"]


def with_error_handling(factory: Factory) -> Factory:
    """Beam YAML's ``error_handling: {output: NAME}`` for a face whose stage returns
    ``{"written": ..., "failed": ...}``: the one place the config is read and checked."""
    @functools.wraps(factory)
    def face(*, error_handling: Mapping[str, Any] | None = None, **config: Any
             ) -> beam.PTransform:
        if error_handling is not None and not (isinstance(error_handling, Mapping) and
                                               isinstance(error_handling.get("output"), str)):
            raise StageInputError("error_handling must be {output: NAME}",
                                  field="error_handling",
                                  suggestion="e.g. error_handling: {output: failed}")
        return _HandlingErrors(factory(**config), error_handling)

    return face


@with_error_handling
@_config_of(WriteToSalesforce)
def write_to_salesforce_yaml(**config: Any) -> beam.PTransform:
    return WriteToSalesforce(**config)
