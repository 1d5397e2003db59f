"""Incremental state files checked before a run: damaged, or written for another read.

A state file is the memory of the last successful run. A damaged one used to surface as a
raw JSONDecodeError on a worker; one written for `LastModifiedDate` was silently reused for
`SystemModstamp` (or for another query), skipping rows. Both are the file's problem, so they
are reported like any other: at the `state:` line, with the path, what is wrong and the fix.
The same reads are the ones `forcebeam run` commits after a successful run (`stateful_reads`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forcebeam.pipelines.problems import Problem
from forcebeam.pipelines.spec import PipelineSpec, TransformRef

if TYPE_CHECKING:
    from forcebeam.stages.salesforce.incremental import IncrementalSpec


@dataclass(frozen=True)
class StatefulRead:
    """A ReadFromSalesforce of the file whose incremental settings keep a state file."""

    transform: TransformRef
    settings: IncrementalSpec   # as the stage parses it; `state` is set
    source: str        # what its state is written for (`incremental.state_source`)

    @property
    def state(self) -> str:
        return str(self.settings.state)


def stateful_reads(spec: PipelineSpec) -> Iterator[StatefulRead]:
    """Reads with an `incremental.state`, their settings parsed by the stage's own parser;
    settings it refuses are left out (the stage config check reports them)."""
    from forcebeam.stages.salesforce.incremental import IncrementalSpec, state_source

    for transform in spec.transforms():
        config = transform.config
        if transform.type != "ReadFromSalesforce" or not isinstance(config, dict) \
                or not isinstance(config.get("incremental"), dict):
            continue
        try:
            settings = IncrementalSpec.from_mapping(config["incremental"])
        except ValueError:
            continue
        if isinstance(settings.state, str):
            yield StatefulRead(transform, settings, state_source(config))


def problems(spec: PipelineSpec) -> list[Problem]:
    from forcebeam.stages.salesforce.incremental import state_problem

    found = []
    for read in stateful_reads(spec):
        wrong = state_problem(read.state, read.settings, read.source)
        if wrong:
            found.append(spec.file.problem(
                (*read.transform.path, "config", "incremental", "state"), wrong))
    return found
