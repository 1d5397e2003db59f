"""Turn a validated forcebeam pipeline file into plain Beam YAML.

The only forcebeam-specific parts of a file are `connections:` and the `connection: NAME`
field of our transforms. Here each name is replaced by that connection's mapping (secret
*references* only, so it is safe in the job graph), and our provider listing is included, so
the result is an ordinary Beam YAML pipeline that Beam's own machinery expands.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from forcebeam.pipelines.catalog import PROVIDERS_FILE, forcebeam_stage_types
from forcebeam.pipelines.inline_secrets import externalize
from forcebeam.pipelines.loader import LoadedFile
from forcebeam.pipelines.spec import CONNECTION_FIELD, PipelineSpec

# Our stages that take no input although their name does not start with "Read" (Beam YAML's
# rule for root transforms): they get `input: {}`, Beam YAML's "explicitly no input".
ROOT_STAGES = frozenset({"ReplicateSalesforce"})


def inline_connection(spec: PipelineSpec, name: str) -> dict[str, Any]:
    """The connection mapping as a transform carries it: references only (opted-in inline
    secrets moved to this process's environment), relative ca_bundle made absolute."""
    mapping = externalize(spec.connections[name], name)
    bundle = mapping.get("ca_bundle")
    if isinstance(bundle, str) and not os.path.isabs(os.path.expanduser(bundle)):
        base = os.path.dirname(os.path.abspath(spec.path))
        mapping["ca_bundle"] = os.path.normpath(os.path.join(base, bundle))
    return mapping


def to_beam_spec(spec: PipelineSpec) -> dict[str, Any]:
    """A Beam YAML pipeline dict (`pipeline`, `options`, `providers`) for `spec`."""
    data = copy.deepcopy(spec.data)
    data.pop("connections", None)
    ours = forcebeam_stage_types()
    resolved = PipelineSpec(file=LoadedFile(path=spec.path, data=data))
    for transform in resolved.transforms():
        if transform.type in ours and isinstance(transform.config, dict):
            name = transform.config.get(CONNECTION_FIELD)
            if isinstance(name, str):
                transform.config[CONNECTION_FIELD] = inline_connection(spec, name)
        if transform.type in ROOT_STAGES and isinstance(transform.spec, dict):
            transform.spec.setdefault("input", {})
    providers = list(data.get("providers") or [])
    providers.append({"include": str(PROVIDERS_FILE)})
    data["providers"] = providers
    return data


def stage_names(spec: PipelineSpec) -> dict[str, str]:
    """Our transforms' step names -> their type, for progress lines and the summary."""
    ours = forcebeam_stage_types()
    return {transform.name: str(transform.type) for transform in spec.transforms()
            if transform.type in ours}


def stage_configs(beam_spec: dict[str, Any], path: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(step name, type, config with its connection inlined) of each of our stages in a
    Beam spec."""
    ours = forcebeam_stage_types()
    resolved = PipelineSpec(file=LoadedFile(path=path, data=beam_spec))
    return [(transform.name, str(transform.type), dict(transform.config))
            for transform in resolved.transforms()
            if transform.type in ours and isinstance(transform.config, dict)]


def read_configs(beam_spec: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    """Step name -> config (connection inlined) of every ReadFromSalesforce in a Beam spec."""
    return {name: config for name, kind, config in stage_configs(beam_spec, path)
            if kind == "ReadFromSalesforce"}
