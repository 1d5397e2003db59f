"""`forcebeam run FILE [beam options]`: validate, build (`pipelines.build`), run, summarise,
commit.

Runner choice: no `--runner` (or DirectRunner) means DirectRunner semantics, but we hand
the pipeline straight to the FnApiRunner, which is what DirectRunner falls back to for batch
pipelines; Beam 2.77's DirectRunner would first try to download the Prism binary, and we run
offline. `--direct_running_mode`/`--direct_num_workers` keep working (FnApiRunner reads them);
any other runner (Dataflow with `--setup_file ./setup.py`, ...) is used as given.

After the pipeline finished successfully, incremental reads' pending state is committed
(see stages.salesforce.incremental): a failed run never moves a watermark.

Beam is imported only once the file is valid and a local run's head start has begun
(`pipelines.head_start`): its reads' Bulk jobs then run on the org during Beam's import.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from forcebeam.auth.exit_codes import EXIT_FAILED, EXIT_OK
from forcebeam.pipelines import beam_yaml, dataflow_dry_run, head_start, outputs, signals
from forcebeam.pipelines.expected import ExpectedRows
from forcebeam.pipelines.inline_secrets import ALLOW_FLAG, allows_inline
from forcebeam.pipelines.problems import PipelineFileError
from forcebeam.pipelines.spec import PipelineSpec
from forcebeam.pipelines.state_checks import stateful_reads
from forcebeam.pipelines.validation import validate_or_raise
from forcebeam.stages.runners import is_local_runner, runner_name


def _runner_name(options: Any) -> str:
    from apache_beam.options.pipeline_options import StandardOptions

    return runner_name(options.view_as(StandardOptions).runner)


def pick_runner(options: Any) -> Any:
    """None (use `options`' runner) or an offline FnApiRunner for local runs."""
    if not is_local_runner(_runner_name(options)):
        return None
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()


def run_file(file: str, beam_args: Sequence[str] = (), progress_seconds: float = 3.0,
             stream: TextIO | None = None) -> int:
    """Validate and run `file`; prints progress and a per-stage summary to `stream`."""
    stream = stream or sys.stdout
    spec = PipelineSpec.load(file)
    validate_or_raise(spec)
    # What only the org knows (unknown objects, fields, relationship paths) is still the
    # file's mistake: report it at its line now, as `validate --online` does, before any job.
    _check_against_org(spec)
    # A local run's logins and reads' jobs begin now, on threads: the org works while Beam
    # is imported. Whatever no read took is discarded on every way out.
    head_start.start(spec, beam_args)
    try:
        return _run(spec, file, beam_args, progress_seconds, stream)
    finally:
        head_start.finish()


def _run(spec: PipelineSpec, file: str, beam_args: Sequence[str], progress_seconds: float,
         stream: TextIO) -> int:
    # Beam is imported here, after the head start.
    from forcebeam.pipelines import progress, stopped, summary
    from forcebeam.pipelines.build import build_options, construct

    # Options are ours to build (flags win over the file's); Beam only gets the pipeline.
    options = build_options(spec, beam_args)
    runner = pick_runner(options)
    local = runner is not None
    if not (local and _in_process(options)):
        head_start.finish()     # judged wrong: no worker of this process will take them
    head_start.raise_login_failure()
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


def _commit(spec: PipelineSpec, stream: TextIO) -> None:
    from forcebeam.stages.salesforce.incremental import commit_pending

    for read in stateful_reads(spec):
        if commit_pending(read.state, source=read.source):
            print(f"incremental state committed: {read.state}", file=stream)
