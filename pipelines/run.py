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

import re
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import yaml

from forcebeam.pipelines import beam_yaml, dataflow_dry_run, progress, summary
from forcebeam.pipelines.expected import ExpectedRows
from forcebeam.pipelines.inline_secrets import ALLOW_FLAG, allows_inline
from forcebeam.pipelines.problems import PipelineFileError
from forcebeam.pipelines.spec import PipelineSpec
from forcebeam.pipelines.validation import validate_or_raise
from forcebeam.stages.salesforce.batches import prefer_batches

EXIT_OK = 0
EXIT_FAILED = 1
# Beam YAML names a transform as `"Name" at line N`, N counted in the text we gave it.
_BEAM_PLACE = re.compile(r'"([^"]+)" at line \d+')
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
    except Exception as error:  # noqa: BLE001 - reported as the user's problem
        failure = PipelineBuildError.from_beam(error)
        if failure.in_file:  # a wrong file: exit 2 at its line, like every validation error
            raise PipelineFileError([failure.as_problem(spec)]) from error
        raise failure from error
    # Reads whose consumers all take Arrow batches (Parquet, our JSON lines/CSV sinks) hand
    # them whole pages; every other read emits rows itself.
    prefer_batches(pipeline)
    return pipeline


def run_file(file: str, beam_args: Sequence[str] = (), progress_seconds: float = 3.0,
             stream: TextIO | None = None) -> int:
    """Validate and run `file`; prints progress and a per-stage summary to `stream`."""
    stream = stream or sys.stdout
    spec = PipelineSpec.load(file)
    validate_or_raise(spec)
    # Options are ours to build (flags win over the file's); Beam only gets the pipeline.
    options = build_options(spec, beam_args)
    runner = pick_runner(options)
    local = runner is not None
    if not local:
        _refuse_inline_secrets(spec)
    beam_spec = beam_yaml.to_beam_spec(spec)
    print(f"running {file} on {_describe_runner(options, local)}", file=stream, flush=True)
    started = time.time()
    with progress.collecting(enabled=local) as progress_dir:
        # Our transforms add progress taps while a directory is announced.
        pipeline = construct(spec, beam_spec, options, runner)
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
        _commit(spec, stream)
        return EXIT_OK
    print(f"pipeline ended in state {state}", file=sys.stderr)
    return EXIT_FAILED


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


class PipelineBuildError(RuntimeError):
    """A transform could not be built (bad config Beam caught, login or describe failed)."""

    def __init__(self, message: str, transform: str | None = None, cause: str = "",
                 in_file: bool = False) -> None:
        super().__init__(message)
        self.transform = transform
        self.cause = cause
        self.in_file = in_file  # the file is wrong (Beam refused a config), not the org/network

    def as_problem(self, spec: PipelineSpec) -> Any:
        """The failure as a Problem at the failing transform's line."""
        path = next((transform.path for transform in spec.transforms()
                     if transform.name == self.transform), ("pipeline",))
        return spec.file.problem(path, f"Beam cannot build this: {self.cause}")

    @classmethod
    def from_beam(cls, error: BaseException) -> PipelineBuildError:
        """Beam YAML says 'Error applying transform "X" at line N' (N of its own text, not
        the user's file): keep the transform name and the underlying cause."""
        cause = error.__cause__ or error
        match = _BEAM_PLACE.search(str(error))
        transform = match.group(1) if match else None
        reason = _BEAM_PLACE.sub(r'"\1"', f"{type(cause).__name__}: {cause}")
        where = f"transform {transform}" if transform else "the pipeline"
        return cls(f"could not build {where}: {reason}", transform, reason,
                   in_file=_is_config_mistake(cause))


def _is_config_mistake(cause: BaseException) -> bool:
    """Beam YAML's refusals of a config (not login, API or network failures)."""
    from forcebeam.auth.errors import ConfigError, ForcebeamError

    if isinstance(cause, ForcebeamError):  # login, secrets, API: the file may well be right
        return isinstance(cause, ConfigError)
    return isinstance(cause, (SyntaxError, NameError, TypeError, KeyError, ValueError))


def _commit(spec: PipelineSpec, stream: TextIO) -> None:
    paths = incremental_states(spec)
    if not paths:
        return
    from forcebeam.stages.salesforce.incremental import commit_pending

    for path in paths:
        if commit_pending(path):
            print(f"incremental state committed: {path}", file=stream)
