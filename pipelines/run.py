"""`forcebeam run FILE [beam options]`: validate, build with Beam YAML, run, summarise, commit.

Runner choice: no `--runner` (or DirectRunner) means DirectRunner semantics, but we hand
the pipeline straight to the FnApiRunner, which is what DirectRunner falls back to for batch
pipelines; Beam 2.77's DirectRunner would first try to download the Prism binary, and we run
offline. `--direct_running_mode`/`--direct_num_workers` keep working (FnApiRunner reads them);
any other runner (Dataflow with `--setup_file ./setup.py`, ...) is used as given.

After the pipeline finished successfully, incremental reads' pending state is committed
(see stages.salesforce.incremental): a failed run never moves a watermark.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import yaml

from forcebeam.auth.errors import ErrorKind, FatalError, kind_of
from forcebeam.auth.exit_codes import EXIT_FAILED, EXIT_OK
from forcebeam.pipelines import (
    beam_yaml,
    dataflow_dry_run,
    outputs,
    progress,
    signals,
    stopped,
    summary,
)
from forcebeam.pipelines.expected import ExpectedRows
from forcebeam.pipelines.inline_secrets import ALLOW_FLAG, allows_inline
from forcebeam.pipelines.problems import FieldPath, PipelineFileError
from forcebeam.pipelines.spec import PipelineSpec
from forcebeam.pipelines.validation import validate_or_raise
from forcebeam.stages.salesforce.batches import prefer_batches

LOCAL_RUNNERS = ("", "directrunner", "direct", "fnapirunner", "switchingdirectrunner")


def _runner_name(options: Any) -> str:
    from apache_beam.options.pipeline_options import StandardOptions

    runner = options.view_as(StandardOptions).runner
    if runner is None:
        return ""
    return runner if isinstance(runner, str) else type(runner).__name__


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


def pick_runner(options: Any) -> Any:
    """None (use `options`' runner) or an offline FnApiRunner for local runs."""
    if _runner_name(options).lower() not in LOCAL_RUNNERS:
        return None
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()


def incremental_states(spec: PipelineSpec) -> list[str]:
    """State paths of every incremental read in the file (committed after success)."""
    paths = []
    for transform in spec.transforms():
        config = transform.config if isinstance(transform.config, dict) else {}
        incremental = config.get("incremental")
        if isinstance(incremental, dict) and isinstance(incremental.get("state"), str):
            paths.append(incremental["state"])
    return paths


def construct(spec: PipelineSpec, beam_spec: dict[str, Any], options: Any,
              runner: Any = None) -> Any:
    """Build (not run) the Beam pipeline; PipelineBuildError names the failing transform."""
    import apache_beam as beam
    from apache_beam.yaml.main import build_pipeline_components_from_yaml

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
    return pipeline


def discard(pipeline: Any) -> None:
    """Remove the temp folder Beam makes for every Pipeline (removed by ``run()`` only), for
    a pipeline that is built and never run (``validate --online``, a failed build)."""
    import shutil

    folder = getattr(pipeline, "local_tempdir", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def run_file(file: str, beam_args: Sequence[str] = (), progress_seconds: float = 3.0,
             stream: TextIO | None = None) -> int:
    """Validate and run `file`; prints progress and a per-stage summary to `stream`."""
    stream = stream or sys.stdout
    spec = PipelineSpec.load(file)
    validate_or_raise(spec)
    # What only the org knows (unknown objects, fields, relationship paths) is still the
    # file's mistake: report it at its line now, as `validate --online` does, before any job.
    _check_against_org(spec)
    # Options are ours to build (flags win over the file's); Beam only gets the pipeline.
    options = build_options(spec, beam_args)
    runner = pick_runner(options)
    local = runner is not None
    if not local:
        _refuse_inline_secrets(spec)
        _require_runner_extra(options)
    beam_spec = beam_yaml.to_beam_spec(spec)
    started = time.time()
    guard = outputs.OutputGuard(outputs.sink_prefixes(spec) if local else [],
                                outputs.lake_stagings(spec) if local else [])
    with progress.collecting(enabled=local) as progress_dir:
        # Our transforms add progress taps while a directory is announced.
        pipeline = construct(spec, beam_spec, options, runner)
        # Only now: a file the build refuses (exit 2) never said it was running.
        print(f"running {file} on {_describe_runner(options, local)}", file=stream, flush=True)
        printer = None
        if progress_dir and progress_seconds > 0:
            # Counting shares the in-process workers' client; worker processes would make it
            # an extra login, so two-process runs show rows and rate without "of N".
            expected = ExpectedRows(beam_yaml.read_configs(beam_spec, file)
                                    if _in_process(options) else {})
            printer = progress.ProgressPrinter(progress_dir, progress_seconds, stream=stream,
                                               expected=expected)
            printer.start()
        try:
            result = pipeline.run()
            state = result.wait_until_finish()
        except BaseException as error:
            # Failed or interrupted (Ctrl-C, SIGTERM): say what was done and what a rerun
            # does; leave no partial output behind. The error itself is reported by the CLI.
            if printer:
                printer.stop()
                printer = None
            if local:   # remote runners keep their own record (the job's page and logs)
                counts = progress.read_progress(progress_dir) if progress_dir else {}
                removed = guard.after_failure()
                print(stopped.render(spec, counts, _why(error), removed), file=stream,
                      flush=True)
            raise
        finally:
            if printer:
                printer.stop()
        counts = progress.read_progress(progress_dir) if progress_dir else {}
    if not local and dataflow_dry_run.is_dry_run(options):
        for path in dataflow_dry_run.write_job_files(result, options):
            print(f"wrote {path}", file=stream)
        print(f"{_runner_name(options)}: the job was built and not submitted (--dry_run)",
              file=stream)
        return EXIT_OK
    print(summary.render(summary.collect(result, beam_yaml.stage_names(spec), counts,
                                         started, time.time())), file=stream)
    if str(state).upper().endswith("DONE"):
        guard.after_success()
        _commit(spec, stream)
        return EXIT_OK
    print(stopped.render(spec, counts, f"pipeline ended in state {state}",
                         guard.after_failure()), file=stream)
    print(f"pipeline ended in state {state}", file=sys.stderr)
    return EXIT_FAILED


def _require_runner_extra(options: Any) -> None:
    """Dataflow needs apache-beam[gcp]: say which of our extras brings it, before building."""
    if _runner_name(options).lower() != "dataflowrunner":
        return
    try:
        from apache_beam.runners.dataflow.internal import apiclient  # noqa: F401
    except ImportError as error:
        raise ImportError("DataflowRunner needs the dataflow extra: "
                          "pip install 'forcebeam[dataflow]'") from error


def _why(error: BaseException) -> str:
    if signals.received():
        return "terminated"
    if isinstance(error, KeyboardInterrupt) or signals.interrupted():
        return "interrupted"
    text = str(error).strip().splitlines()
    return f"failed: {type(error).__name__}" + (f": {text[0][:160]}" if text else "")


def _check_against_org(spec: PipelineSpec) -> None:
    """Describe-based checks (no login when the describe cache is fresh)."""
    from forcebeam.pipelines import online_checks

    problems = online_checks.problems(spec)
    if problems:
        raise PipelineFileError(problems)
    for warning in online_checks.warnings(spec):    # as `validate --online` prints them
        print(f"warning: {warning}", file=sys.stderr)


def _in_process(options: Any) -> bool:
    from apache_beam.options.pipeline_options import DirectOptions

    return options.view_as(DirectOptions).direct_running_mode != "multi_processing"


def _describe_runner(options: Any, local: bool) -> str:
    if not local:
        return _runner_name(options)
    from apache_beam.options.pipeline_options import DirectOptions

    direct = options.view_as(DirectOptions)
    workers = direct.direct_num_workers or 1
    return f"the local FnApiRunner ({direct.direct_running_mode}, {workers} worker(s))"


def _refuse_inline_secrets(spec: PipelineSpec) -> None:
    problems = [spec.file.problem(("connections", name, ALLOW_FLAG),
                                  "inline secrets work on local runners only (remote workers "
                                  "cannot see this machine's environment)",
                                  "store the values in a secret manager and reference them")
                for name, mapping in spec.connections.items()
                if isinstance(mapping, dict) and allows_inline(mapping)]
    if problems:
        raise PipelineFileError(problems)


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


def _commit(spec: PipelineSpec, stream: TextIO) -> None:
    from forcebeam.stages.salesforce.incremental import commit_pending, state_source

    for transform in spec.transforms():
        config = transform.config if isinstance(transform.config, dict) else {}
        incremental = config.get("incremental")
        if not (isinstance(incremental, dict) and isinstance(incremental.get("state"), str)):
            continue
        path = incremental["state"]
        if commit_pending(path, source=state_source(config)):
            print(f"incremental state committed: {path}", file=stream)
