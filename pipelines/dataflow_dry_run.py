"""`forcebeam run FILE --runner DataflowRunner ... --dry_run`: build the job, submit nothing.

Beam's DataflowRunner honours `--dry_run=True` by translating the pipeline and returning a
result whose state is None, before it stages anything or writes `--dataflow_job_file`. A dry
run is how a user (and our tests, offline) checks that a pipeline builds for Dataflow, so we
accept the bare flag, say plainly that the job was built and not submitted, exit 0, and write
what Beam would have sent where the user asked for it:

- `--dataflow_job_file=F`: the Dataflow job description (with its worker Environment, built
  offline: nothing staged, so its package list is empty);
- beside it, `F` with `.pipeline.pb` in place of its suffix: the portable pipeline proto that
  Dataflow stages as `pipeline.pb` and every worker unpickles (our DoFns are inside).

Both are what a secret scan must look at: neither may hold a secret value, only references.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)
DRY_RUN_FLAG = "--dry_run"


def normalise_flags(beam_args: Sequence[str]) -> list[str]:
    """Beam's `--dry_run` takes a value; users write it bare, as gcloud's flags are."""
    normalised = []
    for index, arg in enumerate(beam_args):
        following = beam_args[index + 1] if index + 1 < len(beam_args) else None
        bare = following is None or following.startswith("--")
        normalised.append(f"{DRY_RUN_FLAG}=True" if arg == DRY_RUN_FLAG and bare else arg)
    return normalised


def is_dry_run(options: Any) -> bool:
    from apache_beam.options.pipeline_options import TestOptions

    value = options.view_as(TestOptions).dry_run
    return str(value).strip().lower() in ("true", "1", "yes")


def pipeline_file_for(job_file: str) -> str:
    """Where the portable pipeline goes beside the job description."""
    path = Path(job_file)
    return str(path.with_suffix(".pipeline.pb") if path.suffix else Path(f"{job_file}.pipeline.pb"))


def write_job_files(result: Any, options: Any) -> list[str]:
    """Write the built job where `--dataflow_job_file` asks; the paths written."""
    from apache_beam.options.pipeline_options import DebugOptions

    job_file = options.view_as(DebugOptions).dataflow_job_file
    job = getattr(result, "job", None)
    if not job_file or job is None:
        return []
    _attach_environment(job)
    Path(job_file).parent.mkdir(parents=True, exist_ok=True)
    Path(job_file).write_text(job.json(), encoding="utf-8")
    pipeline_file = pipeline_file_for(job_file)
    Path(pipeline_file).write_bytes(job.proto_pipeline.SerializeToString())
    return [job_file, pipeline_file]


def _attach_environment(job: Any) -> None:
    """The worker Environment Beam would submit (pipeline options, SDK image), offline."""
    try:
        from apache_beam.runners.dataflow.internal import apiclient
        from apache_beam.runners.internal import names

        staged_url = f"{job.google_cloud_options.staging_location}/{names.STAGED_PIPELINE_FILENAME}"
        job.proto.environment = apiclient.Environment(
            packages=[], options=job.options,
            environment_version=apiclient._FNAPI_ENVIRONMENT_MAJOR_VERSION,  # noqa: SLF001
            proto_pipeline_staged_url=staged_url, proto_pipeline=job.proto_pipeline).proto
    except Exception as error:  # noqa: BLE001 - the job itself was built; say what is missing
        LOG.warning("the job description has no worker environment (%s)", error)
