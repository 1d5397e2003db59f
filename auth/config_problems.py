"""What is wrong with a config, said once: each problem with its path, message and fix.

Connections (auth/) and stage configs (stages/) are pydantic models; this is the one place
that turns a pydantic failure into problems in our words: a path tuple (relative to the
checked mapping, so a caller places it in its file by prefixing its own path), a message,
and a fix (the closest valid name for a typo). Values are never echoed: an input may be a
pasted secret.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from forcebeam.auth.config_types import INLINE_SECRET_HINT, NOT_A_REFERENCE

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One mistake in a config: where (path tuple), what, and what to do instead."""

    path: FieldPath
    message: str
    fix: str = ""

    def under(self, *prefix: str | int) -> Problem:
        return Problem((*prefix, *self.path), self.message, self.fix)


def format_path(path: Iterable[str | int]) -> str:
    """`("pipeline", "transforms", 0, "config")` -> `pipeline.transforms[0].config`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The valid name a typo most likely meant (difflib), or None when nothing is close."""
    candidates = sorted(set(candidates))
    matches = difflib.get_close_matches(str(name), candidates, n=1, cutoff=0.6)
    if not matches:
        # Case slips (`account` for `Account`) are the commonest typo in Salesforce names.
        lowered = {candidate.lower(): candidate for candidate in candidates}
        return lowered.get(str(name).lower())
    return matches[0]


def suggestion_for(name: str, candidates: Sequence[str] | Iterable[str]) -> str:
    """`did you mean 'X'?` or, with no close match, the list of valid names (shortened)."""
    names = sorted(set(candidates))
    best = closest(name, names)
    if best is not None:
        return f"did you mean '{best}'?"
    if not names:
        return ""
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return f"valid names: {shown}"


def field_names(model: type[BaseModel]) -> list[str]:
    """Every name a model accepts (field names and their aliases)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def from_validation_error(error: ValidationError, model: Any = None) -> list[Problem]:
    """A problem per pydantic error; unknown keys get a 'did you mean' from ``model``."""
    problems: list[Problem] = []
    for item in error.errors(include_input=False, include_url=False):
        location = _clean_location(item.get("loc", ()))
        kind = item.get("type", "")
        if kind == "extra_forbidden":
            name = str(location[-1]) if location else "?"
            problems.append(Problem(location, f"unknown field '{name}'",
                                    suggestion_for(name, _siblings(model, location[:-1]))))
        elif kind == "missing":
            problems.append(Problem(location, f"missing required field '{location[-1]}'"
                                    if location else "missing required field"))
        else:
            message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
            if message.startswith(NOT_A_REFERENCE):
                problems.append(Problem(location, NOT_A_REFERENCE, INLINE_SECRET_HINT))
            else:
                problems.append(Problem(location, message))
    return problems


def _clean_location(location: Iterable[Any]) -> FieldPath:
    """Drop pydantic's union-member and validator tags (e.g. 'function-after[...]')."""
    return tuple(part for part in location
                 if not (isinstance(part, str) and ("[" in part or part.startswith("function-"))))


def _siblings(model: Any, parent: FieldPath) -> list[str]:
    """Valid names beside an unknown key: walk the model's fields down `parent`."""
    current = model
    for part in parent:
        if current is None or isinstance(part, int):
            return []
        info = getattr(current, "model_fields", {}).get(part)
        current = _model_in(getattr(info, "annotation", None))
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
