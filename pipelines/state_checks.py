"""Incremental state files checked before a run: damaged, or written for another read.

A state file is the memory of the last successful run. A damaged one used to surface as a
raw JSONDecodeError on a worker; one written for `LastModifiedDate` was silently reused for
`SystemModstamp` (or for another query), skipping rows. Both are the file's problem, so they
are reported like any other: at the `state:` line, with the path, what is wrong and the fix.
"""

from __future__ import annotations

from forcebeam.pipelines.problems import Problem
from forcebeam.pipelines.spec import PipelineSpec


def problems(spec: PipelineSpec) -> list[Problem]:
    from forcebeam.stages.salesforce.incremental import (
        IncrementalSpec,
        state_problem,
        state_source,
    )

    found = []
    for transform in spec.transforms():
        config = transform.config
        if transform.type != "ReadFromSalesforce" or not isinstance(config, dict):
            continue
        incremental = config.get("incremental")
        if not isinstance(incremental, dict) or not isinstance(incremental.get("state"), str):
            continue
        try:
            settings = IncrementalSpec.from_mapping(incremental)
        except ValueError:
            continue  # reported by the stage config check
        assert settings.state is not None
        wrong = state_problem(settings.state, settings, state_source(config))
        if wrong:
            found.append(spec.file.problem(
                (*transform.path, "config", "incremental", "state"), wrong))
    return found
