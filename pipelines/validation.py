"""Check a pipeline file before anything runs: every problem, with file, line, field and fix.

Order of checks: file structure -> transform types -> our transforms' configs (connection
names, stage fields through the stage's pydantic model) -> connections (auth types, fields,
secret references) -> optionally (`online=True`) sobjects and fields against describe.
`forcebeam validate` prints the problems and exits 2; `forcebeam run` does the same before
building the pipeline, so a bad file never starts a job.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, TextIO

from forcebeam.pipelines import catalog, connections, stage_configs, state_checks
from forcebeam.pipelines.problems import FieldPath, PipelineFileError, Problem, suggestion_for
from forcebeam.pipelines.spec import (
    CONNECTION_FIELD,
    STRUCTURAL_TYPES,
    TOP_LEVEL_KEYS,
    PipelineSpec,
    TransformRef,
)


def validate(spec: PipelineSpec, online: bool = False,
             describer_for: Callable[..., Any] | None = None) -> list[Problem]:
    """All problems in `spec`; empty when the file may run."""
    problems = _structure(spec)
    if problems:  # transforms cannot be checked in a file without a pipeline
        return problems
    problems += _transforms(spec)
    problems += _inputs(spec)
    problems += connections.problems(spec)
    problems += state_checks.problems(spec)
    if online and not problems:
        from forcebeam.pipelines import online_checks

        problems += online_checks.problems(spec, describer_for)
        if not problems:
            problems += online_checks.build_problems(spec)
    return problems


def validate_or_raise(spec: PipelineSpec, online: bool = False,
                      warn_to: TextIO | None = None, today: date | None = None) -> None:
    """Raise on problems; print sunset warnings (stderr by default) for a file that may run."""
    problems = validate(spec, online=online)
    if problems:
        raise PipelineFileError(problems)
    from forcebeam.auth.credentials import sunset_warning_shown

    for warning in sunset_warnings(spec, today=today):
        print(f"warning: {warning}", file=warn_to or sys.stderr)
        # the run's own first login in this process need not log the same text again
        sunset_warning_shown(str(spec.connections[warning.path[1]]["auth"]["type"]))


def sunset_warnings(spec: PipelineSpec, today: date | None = None) -> list[Problem]:
    """Connections whose auth type Salesforce is retiring, with the date and the replacement
    (pinned to the `auth.type` line)."""
    from forcebeam.auth.sunset import warning_for

    warnings = []
    for name, mapping in spec.connections.items():
        auth = mapping.get("auth") if isinstance(mapping, Mapping) else None
        message = warning_for(str(auth.get("type")), today) if isinstance(auth, Mapping) \
            else None
        if message:
            warnings.append(spec.file.problem(("connections", name, "auth", "type"), message))
    return warnings


def _structure(spec: PipelineSpec) -> list[Problem]:
    file = spec.file
    problems = []
    for key in spec.data:
        if key not in TOP_LEVEL_KEYS:
            problems.append(file.problem((key,), f"unknown top-level key '{key}'",
                                         suggestion_for(key, TOP_LEVEL_KEYS)))
    pipeline = spec.data.get("pipeline")
    if pipeline is None:
        problems.append(file.problem((), "missing 'pipeline:'",
                                     "add pipeline: {transforms: [...]}"))
    elif not isinstance(pipeline, dict) or not isinstance(
            pipeline.get("transforms", [] if pipeline.get("type") == "chain" else None), list):
        problems.append(file.problem(("pipeline",), "'pipeline' must be a mapping with a "
                                     "'transforms' list", "see pipelines/examples/demo.yaml"))
    for key in ("connections", "options"):
        if spec.data.get(key) is not None and not isinstance(spec.data[key], dict):
            problems.append(file.problem((key,), f"'{key}' must be a mapping"))
    return problems


def _transforms(spec: PipelineSpec) -> list[Problem]:
    file = spec.file
    declared, opaque = catalog.declared_provider_types(
        spec.data.get("providers"), os.path.dirname(os.path.abspath(spec.path)))
    ours = catalog.forcebeam_stage_types()
    known = catalog.all_known_types(declared, used_types=[t.type for t in spec.transforms()]) \
        | set(STRUCTURAL_TYPES)
    problems: list[Problem] = []
    for transform in spec.transforms():
        kind = transform.type
        if not isinstance(kind, str) or not kind:
            problems.append(file.problem(transform.path, "transform has no 'type'",
                                         "add type: e.g. ReadFromSalesforce"))
        elif kind in ours:
            problems += _our_transform(spec, transform)
        elif kind not in known and not opaque:
            problems.append(file.problem((*transform.path, "type"),
                                         f"unknown transform type '{kind}'",
                                         suggestion_for(kind, known)))
    return problems


def _inputs(spec: PipelineSpec) -> list[Problem]:
    """`input:` names of the top-level transforms must name a transform (`Name[.output]`)."""
    pipeline = spec.data["pipeline"]
    if pipeline.get("type") == "chain":
        return []  # a chain's inputs are implicit
    steps = [step for step in pipeline.get("transforms", []) if isinstance(step, dict)]
    names = {str(step.get("name") or step.get("type")) for step in steps}
    names |= {str(step["type"]) for step in steps if step.get("type")}
    problems = []
    for index, step in enumerate(pipeline.get("transforms", [])):
        if not isinstance(step, dict) or "input" not in step:
            continue
        value = step["input"]
        refs: list[tuple[FieldPath, Any]]
        if isinstance(value, dict):
            refs = [((key,), ref) for key, ref in value.items()]
        elif isinstance(value, list):
            refs = [((position,), ref) for position, ref in enumerate(value)]
        else:
            refs = [((), value)]
        for relative, ref in refs:
            if not isinstance(ref, str) or ref in names or ref.split(".", 1)[0] in names:
                continue
            problems.append(spec.file.problem(
                ("pipeline", "transforms", index, "input", *relative),
                f"input '{ref}' names no transform", suggestion_for(ref, names)))
    return problems


def _our_transform(spec: PipelineSpec, transform: TransformRef) -> list[Problem]:
    file = spec.file
    config = transform.config
    config_path: FieldPath = (*transform.path, "config")
    if not isinstance(config, Mapping):
        return [file.problem(config_path, f"{transform.type} needs a 'config' mapping",
                             "see pipelines/examples/demo.yaml")]
    problems = []
    name = config.get(CONNECTION_FIELD)
    if name is None:
        problems.append(file.problem(config_path, f"missing field '{CONNECTION_FIELD}'",
                                     "name one of the connections: section's entries"))
    elif not isinstance(name, str) or name not in spec.connections:
        problems.append(file.problem((*config_path, CONNECTION_FIELD),
                                     f"unknown connection '{name}'",
                                     suggestion_for(str(name), spec.connections)
                                     or "declare it under connections:"))
    for relative, message, suggestion in stage_configs.problems(transform.type, config):
        problems.append(file.problem((*config_path, *relative), message, suggestion))
    return problems
