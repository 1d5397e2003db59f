"""`validate --online` and `describe`: check sobjects and fields against the org's describe.

Uses the stages' describe cache, so an online validation also warms the schema the run will
need (the run then builds its pipeline without another describe).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from forcebeam.pipelines import connections
from forcebeam.pipelines.problems import Problem, suggestion_for
from forcebeam.pipelines.spec import CONNECTION_FIELD, PipelineSpec
from forcebeam.stages.salesforce.schema import bulk_dropped_compounds


class Describer:
    """Object names and field types of one org, fetched lazily and remembered."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    @functools.cached_property
    def _client(self) -> Any:
        from forcebeam.auth import get_client

        return get_client(self.connection)

    @functools.lru_cache(maxsize=1)  # noqa: B019 - one Describer per command run
    def sobject_names(self) -> list[str]:
        listing = self._client.request("GET", "sobjects").json()
        return sorted(item["name"] for item in listing.get("sobjects", []))

    @functools.lru_cache(maxsize=64)  # noqa: B019
    def describe(self, sobject: str) -> dict[str, Any] | None:
        """The describe (from the stages' cache when fresh: no login), None if unknown."""
        from forcebeam.stages.salesforce.config import StageInputError
        from forcebeam.stages.salesforce.describe import cached_describe

        try:
            return cached_describe(self.connection, sobject)
        except StageInputError:
            return None

    def fields(self, sobject: str) -> dict[str, str] | None:
        """Field name -> Salesforce type (string, id, currency, ...), or None if unknown."""
        described = self.describe(sobject)
        if described is None:
            return None
        return {field["name"]: field.get("type", "?") for field in described.get("fields", [])}

    def relationships(self, sobject: str) -> dict[str, str]:
        """Relationship name -> the object it points at (the first, if polymorphic)."""
        described = self.describe(sobject) or {}
        return {field["relationshipName"]: (field.get("referenceTo") or [""])[0]
                for field in described.get("fields", []) if field.get("relationshipName")}

    def path_problem(self, sobject: str, path: str) -> tuple[str, str] | None:
        """(message, suggestion) for the first wrong segment of ``Account.Owner.Name``."""
        current = sobject
        segments = path.split(".")
        for depth, segment in enumerate(segments):
            walked = ".".join(segments[:depth]) or sobject
            if depth == len(segments) - 1:
                fields = self.fields(current) or {}
                if segment.lower() in {name.lower() for name in fields}:
                    return None
                return (f"'{current}' (reached by {walked}) has no field '{segment}'"
                        if depth else f"'{sobject}' has no field '{segment}'",
                        suggestion_for(segment, fields))
            choices = self.relationships(current)
            match = next((name for name in choices if name.lower() == segment.lower()), None)
            if match is None:
                where = f"'{current}' (reached by {walked})" if depth else f"'{sobject}'"
                return (f"{where} has no relationship '{segment}'",
                        suggestion_for(segment, choices))
            current = choices[match]
            if not current or self.describe(current) is None:
                return None     # a target we cannot describe: Salesforce checks the rest
        return None


def problems(spec: PipelineSpec,
             describer_for: Callable[[Any], Describer] | None = None) -> list[Problem]:
    """Unknown sobjects and fields in our transforms, each with the closest valid name."""
    from forcebeam.pipelines import catalog

    make = describer_for or Describer
    describers: dict[str, Describer] = {}
    ours = catalog.forcebeam_stage_types()
    found: list[Problem] = []
    for transform in spec.transforms():
        config = transform.config
        if transform.type not in ours or not isinstance(config, dict):
            continue
        name = config.get(CONNECTION_FIELD)
        sobject = config.get("sobject")
        if not isinstance(name, str) or not isinstance(sobject, str):
            continue  # soql reads are checked by Salesforce itself at run time
        if name not in describers:
            describers[name] = make(connections.build(spec.connections[name],
                                                      source=spec.path, name=name))
        describer = describers[name]
        base = (*transform.path, "config")
        if describer.describe(sobject) is None:
            found.append(spec.file.problem((*base, "sobject"), f"unknown sobject '{sobject}'",
                                           suggestion_for(sobject, describer.sobject_names())))
            continue
        wanted: list[tuple[tuple[Any, ...], str]] = []
        if isinstance(config.get("fields"), list):
            wanted += [((*base, "fields", index), str(value))
                       for index, value in enumerate(config["fields"])]
        if isinstance(config.get("external_id_field"), str):
            wanted.append(((*base, "external_id_field"), config["external_id_field"]))
        for path, field in wanted:
            wrong = describer.path_problem(sobject, field)
            if wrong is not None:
                found.append(spec.file.problem(path, *wrong))
    return found


def warnings(spec: PipelineSpec,
             describer_for: Callable[[Any], Describer] | None = None) -> list[Problem]:
    """Things that will run but not as the file may suggest (shown by `validate --online`).

    Bulk API 2.0 cannot read compound fields (addresses, geolocations): a `mode: bulk` read
    drops them, and reads their parts only when the file lists them.
    """
    make = describer_for or Describer
    found: list[Problem] = replication_warnings(spec, make)
    for transform in spec.transforms():
        config = transform.config
        if transform.type != "ReadFromSalesforce" or not isinstance(config, dict) \
                or config.get("mode") != "bulk" or not isinstance(config.get("fields"), list):
            continue
        name, sobject = config.get(CONNECTION_FIELD), config.get("sobject")
        if not isinstance(name, str) or not isinstance(sobject, str):
            continue
        described = make(connections.build(spec.connections[name], source=spec.path,
                                           name=name)).describe(sobject) or {}
        for dropped in bulk_dropped_compounds(described, config["fields"]):
            found.append(spec.file.problem(
                (*transform.path, "config", "fields", dropped.index), dropped.consequence,
                dropped.fix))
    return found


def replication_warnings(spec: PipelineSpec, make: Callable[[Any], Describer]
                         ) -> list[Problem]:
    """ReplicateSalesforce objects named (not globbed) that describeGlobal does not list.

    Not fatal (an object the integration user cannot see is skipped and reported in the
    manifest), but a typo would otherwise only show up there: say it at its line.
    """
    found: list[Problem] = []
    for transform in spec.transforms():
        config = transform.config
        if transform.type != "ReplicateSalesforce" or not isinstance(config, dict) \
                or not isinstance(config.get("objects"), list):
            continue
        name = config.get(CONNECTION_FIELD)
        if not isinstance(name, str) or name not in spec.connections:
            continue
        names = make(connections.build(spec.connections[name], source=spec.path,
                                       name=name)).sobject_names()
        known = {known.lower() for known in names}
        for index, wanted in enumerate(config["objects"]):
            text = str(wanted)
            if any(c in text for c in "*?[") or text.lower() in known:
                continue
            found.append(spec.file.problem(
                (*transform.path, "config", "objects", index),
                f"object '{text}' is not in describeGlobal (no such object, or the "
                "integration user cannot see it): the run skips it and lists it in the "
                "manifest's skipped", suggestion_for(text, names)))
    return found


def build_problems(spec: PipelineSpec) -> list[Problem]:
    """Build (never run) the whole Beam pipeline: Beam's own config errors, at their line."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from forcebeam.pipelines import beam_yaml
    from forcebeam.pipelines.build import PipelineBuildError, build_options, construct, discard
    from forcebeam.pipelines.problems import PipelineFileError

    try:
        discard(construct(spec, beam_yaml.to_beam_spec(spec), build_options(spec, []),
                          FnApiRunner()))
    except PipelineFileError as error:
        return error.problems
    except PipelineBuildError as error:  # login/API trouble while building: still shown
        return [error.as_problem(spec)]
    return []
