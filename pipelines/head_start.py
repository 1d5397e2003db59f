"""`forcebeam run`'s head start: what the org can do while this process imports Beam.

Before Beam is imported (~1.4 s, then ~1 s more to build the pipeline and start the
runner), a run whose workers will be threads of this process logs in with every connection
its Salesforce stages use, and starts each read's Bulk job (see
``stages.salesforce.head_start``). Runs whose workers are elsewhere (other processes, a
remote runner) get nothing: their plans could not take a job created here.

The runner is known for sure only once Beam parses the options, so it is judged here from
the same flags and `options:` by name; ``pipelines.run`` discards the head start at once if
Beam's reading of the options disagrees.

It begins after the file passed our validation and the org's describe checks, so a file
with a mistake of ours to report starts nothing. Beam's own checks (the configs of its
transforms) come only with the build, after the head start: a file Beam refuses has its
reads' jobs aborted and deleted before the run exits (its query jobs still count against
the org's daily budget, one per read).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from forcebeam.pipelines.spec import PipelineSpec
from forcebeam.stages.runners import is_local_runner

LOG = logging.getLogger(__name__)


def _option(beam_args: Sequence[str], options: Mapping[str, Any], name: str) -> Any:
    """A pipeline option as Beam will see it: the last flag given wins over the file."""
    value = options.get(name)
    flag = f"--{name}"
    for index, arg in enumerate(beam_args):
        if arg == flag and index + 1 < len(beam_args):
            value = beam_args[index + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def runs_in_this_process(spec: PipelineSpec, beam_args: Sequence[str]) -> bool:
    """True when the run's workers will be threads of this process (a local runner in its
    default in-memory mode)."""
    options = spec.options if isinstance(spec.options, Mapping) else {}
    runner = _option(beam_args, options, "runner")
    mode = _option(beam_args, options, "direct_running_mode")
    return is_local_runner(runner) and mode in (None, "in_memory")


def start(spec: PipelineSpec, beam_args: Sequence[str]) -> int:
    """Log in and start the reads of a valid `spec` on threads, if the run's workers are
    this process; how many reads got a head start.

    Best effort: a stage whose config the build will refuse is left to the build, which
    reports it at its line.
    """
    if not runs_in_this_process(spec, beam_args):
        return 0
    from forcebeam.pipelines.beam_yaml import stage_configs, to_beam_spec
    from forcebeam.stages.salesforce import head_start
    from forcebeam.stages.salesforce.config import ReadConfig, as_connection

    reads = 0
    for name, kind, config in stage_configs(to_beam_spec(spec), spec.path):
        if not isinstance(config.get("connection"), Mapping):
            continue
        try:
            connection = as_connection(config["connection"])
            head_start.log_in(connection)
            if kind == "ReadFromSalesforce":
                reads += head_start.start_read(connection, ReadConfig(**config))
        except Exception as error:  # noqa: BLE001 - the build reports the config's problem
            LOG.debug("no head start for %s: %s", name, type(error).__name__)
    return reads


def raise_login_failure() -> None:
    """Raise the error of a head-start login that failed (waiting for the logins begun).

    It is the error each worker's login would raise; letting the workers try again would
    only repeat a failed login against the org, where repeated failures lock the user out.
    """
    from forcebeam.stages.salesforce import head_start

    error = head_start.login_failure()
    if error is not None:
        raise error


def finish() -> None:
    """Discard what no read took (aborting and deleting its job); call on every way out."""
    from forcebeam.stages.salesforce import head_start

    head_start.discard_untaken()
