"""Turn a pydantic validation failure into problems that point at fields and suggest names.

Both connection configs (auth/) and stage configs (stages/) are pydantic models; this is the
one place that translates their errors into our wording. Values are never echoed: an input
may be a pasted secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from forcebeam.pipelines.problems import FieldPath, suggestion_for

# (path relative to the checked mapping, message, suggestion)
RelativeProblem = tuple[FieldPath, str, str]


def field_names(model: type[BaseModel]) -> list[str]:
    """Every name a model accepts (field names and their aliases)."""
    names = []
    for name, info in model.model_fields.items():
        names.append(info.alias or name)
    return names


def from_validation_error(error: ValidationError, data: Any,
                          model_for: Any = None) -> list[RelativeProblem]:
    """Problems for each pydantic error; unknown keys get a 'did you mean' from the model."""
    problems: list[RelativeProblem] = []
    for item in error.errors(include_input=False, include_url=False):
        location = _clean_location(item.get("loc", ()))
        kind = item.get("type", "")
        if kind == "extra_forbidden":
            name = str(location[-1]) if location else "?"
            candidates = _siblings(model_for, location[:-1], data)
            problems.append((location, f"unknown field '{name}'",
                             suggestion_for(name, candidates)))
        elif kind == "missing":
            problems.append((location, f"missing required field '{location[-1]}'"
                             if location else "missing required field", ""))
        else:
            problems.append((location, _message(item), ""))
    return problems


def _message(item: Mapping[str, Any]) -> str:
    message = str(item.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def _clean_location(location: Iterable[Any]) -> FieldPath:
    """Drop pydantic's union-member tags (e.g. 'jwt_bearer', 'function-after[...]')."""
    cleaned: list[str | int] = []
    for part in location:
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        cleaned.append(part)
    return tuple(cleaned)


def _siblings(model: Any, parent: FieldPath, data: Any) -> list[str]:
    """Valid names beside an unknown key: walk the model's fields down `parent`."""
    current = model
    for part in parent:
        if current is None or isinstance(part, int):
            return []
        fields = getattr(current, "model_fields", {})
        info = fields.get(part)
        annotation = getattr(info, "annotation", None)
        current = _model_in(annotation)
    if current is None or not hasattr(current, "model_fields"):
        return []
    return field_names(current)


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()) or ():
        found = _model_in(argument)
        if found is not None:
            return found
    return None
