"""Check the config of one of our stages (ReadFromSalesforce, ...) against its pydantic model.

The model belongs to the stage (stages.registry); we only translate its verdict into
problems with field paths, so a new stage plugin is validated with no change here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from forcebeam.auth.config_problems import from_validation_error
from forcebeam.pipelines.problems import FieldPath

# (path relative to the stage's config, message, suggestion)
RelativeProblem = tuple[FieldPath, str, str]


def config_model(stage_type: str) -> type[BaseModel]:
    """The pydantic model of a registered stage's config (its own, or one the registry
    derives from its signature)."""
    from forcebeam.stages.registry import get_stage

    return get_stage(stage_type).config_model


def problems(stage_type: str, config: Mapping[str, Any]) -> list[RelativeProblem]:
    """Unknown/missing/ill-typed fields of `config` (`connection` is still the name here)."""
    found: list[RelativeProblem] = []
    handling = config.get("error_handling")
    if handling is not None and not (isinstance(handling, Mapping)
                                     and isinstance(handling.get("output"), str)):
        found.append((("error_handling",), "error_handling must be {output: NAME}",
                      "e.g. error_handling: {output: failed}"))
    model = config_model(stage_type)
    payload = dict(config)
    try:
        model.model_validate(payload)
    except ValidationError as error:
        found += [(problem.path, problem.message, problem.fix)
                  for problem in from_validation_error(error, model)]
    return found
