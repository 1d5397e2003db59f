"""Build (never run) the Beam pipeline of a validated pipeline file.

Building is what `forcebeam run` and `validate --online` share: the options the file and
the command line give, Beam YAML's constructor over our Beam spec, and the graph passes over
the result (`prefer_batches`). Running it (runner choice, progress, summary, exit code,
committing incremental state) is `pipelines.run`'s job. This module imports no validation:
validation builds a pipeline through it (`online_checks.build_problems`), never the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from forcebeam.auth.errors import ErrorKind, FatalError, kind_of
from forcebeam.pipelines import catalog, dataflow_dry_run, progress
from forcebeam.pipelines.problems import FieldPath, PipelineFileError
from forcebeam.pipelines.spec import PipelineSpec
from forcebeam.stages.salesforce.batches import prefer_batches
from forcebeam.stages.salesforce.written_unread import skip_unread_written


def build_options(spec: PipelineSpec, beam_args: Sequence[str]) -> Any:
    """The file's `options:` with the command line's flags on top (flags win)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    beam_args = dataflow_dry_run.normalise_flags(beam_args)
    given = {arg[2:].split("=", 1)[0] for arg in beam_args if arg.startswith("--")}
    # PipelineOptions lets keyword values override flags; keep only what flags don't set.
    from_file = {key: value for key, value in spec.options.items() if key not in given}
    if "pickle_library" not in given:
        from_file.setdefault("pickle_library", "cloudpickle")  # what Beam YAML uses
    return PipelineOptions(list(beam_args), **from_file)


def construct(spec: PipelineSpec, beam_spec: dict[str, Any], options: Any,
              runner: Any = None) -> Any:
    """Build (not run) the Beam pipeline; PipelineBuildError names the failing transform."""
    import apache_beam as beam
    from apache_beam.yaml.main import build_pipeline_components_from_yaml

    # Beam's catalogue, loaded (and cached by Beam) without the clients the file does not
    # use: Beam YAML would otherwise import Vertex AI and Bigtable (~3.5 s) to build it.
    catalog.load_standard_providers([transform.type for transform in spec.transforms()])
    text = yaml.safe_dump({k: v for k, v in beam_spec.items() if k != "options"},
                          sort_keys=False)
    _, constructor = build_pipeline_components_from_yaml(text, [], pipeline_path=spec.path)
    pipeline = beam.Pipeline(runner=runner, options=options)
    try:
        constructor(pipeline)
    except BaseException as error:  # noqa: BLE001 - reported as the user's problem
        discard(pipeline)    # Beam removes its temp folder only at the end of run()
        if not isinstance(error, Exception):
            raise
        failure = PipelineBuildError.from_beam(error, text)
        if failure.in_file:  # a wrong file: exit 2 at its line, like every validation error
            raise PipelineFileError([failure.as_problem(spec)]) from error
        raise failure from error
    # Reads whose consumers all take Arrow batches (Parquet, our JSON lines/CSV sinks) hand
    # them whole pages; every other read emits rows itself.
    prefer_batches(pipeline)
    # Writes whose `written` output only feeds progress counters count their successes.
    skip_unread_written(pipeline, progress.counter_for)
    return pipeline


def discard(pipeline: Any) -> None:
    """Remove the temp folder Beam makes for every Pipeline (removed by ``run()`` only), for
    a pipeline that is built and never run (``validate --online``, a failed build)."""
    import shutil

    folder = getattr(pipeline, "local_tempdir", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


class PipelineBuildError(FatalError):
    """A transform could not be built because the org or the machine failed (a login or a
    describe); a file Beam refuses becomes a PipelineFileError instead (``in_file``)."""

    def __init__(self, message: str, transform: str | None = None, cause: str = "",
                 in_file: bool = False, path: FieldPath | None = None,
                 suggestion: str = "") -> None:
        super().__init__(message)
        self.transform = transform
        self.cause = cause
        self.in_file = in_file  # the file is wrong (Beam refused a config), not the org/network
        self.path = path        # where in the user's file, when Beam's line could be mapped
        self.suggestion = suggestion

    def as_problem(self, spec: PipelineSpec) -> Any:
        """The failure as a Problem at the failing transform's (or field's) line."""
        path = self.path or next((transform.path for transform in spec.transforms()
                                  if transform.name == self.transform), ("pipeline",))
        if self.suggestion:  # our own stages' refusals: already in the user's words
            return spec.file.problem(path, self.cause, self.suggestion)
        return spec.file.problem(path, f"Beam cannot build this: {self.cause}")

    @classmethod
    def from_beam(cls, error: BaseException, beam_text: str = "") -> PipelineBuildError:
        """Beam YAML says 'Error applying transform "X" at line N' (N of the text we gave
        it, not the user's file): map N to the user's field path, keep the cause."""
        from forcebeam.pipelines.beam_places import locate
        from forcebeam.stages.salesforce.config import StageInputError

        cause = error.__cause__ or error
        place = locate(str(error), beam_text)
        transform = place.transform
        path = place.path
        if isinstance(cause, StageInputError):
            if path is not None and cause.field and _is_transform(path):
                path = (*path, "config", cause.field)
            where = f"transform {transform}" if transform else "the pipeline"
            return cls(f"could not build {where}: {cause.message}", transform, cause.message,
                       in_file=True, path=path, suggestion=cause.suggestion)
        inner = str(cause) if cause is not error else place.message
        reason = f"{type(cause).__name__}: {locate(inner, beam_text).message}"
        where = f"transform {transform}" if transform else "the pipeline"
        hint = _hint_for(inner)
        return cls(f"could not build {where}: {reason}", transform,
                   f"{reason} ({hint})" if hint else reason,
                   in_file=_refused_by_beam(cause), path=path)


# Beam refusals whose fix lies elsewhere in the file: (text in Beam's message, the fix).
_HINTS = (("logical types are not currently supported",
           "ReadFromSalesforce's `types: native` gives Decimal, date and Timestamp values this "
           "sink cannot write; use `types: portable` (the default: exact decimal and ISO "
           "strings) for file sinks"),)


def _hint_for(message: str) -> str:
    return next((fix for needle, fix in _HINTS if needle in message.lower()), "")


def _is_transform(path: FieldPath) -> bool:
    return isinstance(path[-1], int) or path[-1] in ("source", "sink")


def _refused_by_beam(cause: BaseException) -> bool:
    """Whether a failure while building is the file's mistake, by the error's class.

    Our errors say their kind (login, secrets, API failures are not the file's). Anything
    else was raised by Beam YAML itself while it built the file's transforms - its
    expression compiler, a transform's arguments, a combination it does not support - so
    it refuses the file, which is the user's input.
    """
    kind = kind_of(cause)
    return kind is None or kind is ErrorKind.INPUT
