"""What is wrong with a pipeline file, said so a user can fix it without reading our code.

Every check (YAML syntax, transforms, connections, secrets, online describe) reports a
`Problem` carrying the file, the line, the field path and, where we can guess it, the closest
valid name. Checks collect problems instead of stopping at the first, so one `validate` run
shows everything to fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from forcebeam.auth.errors import InputError

FieldPath = tuple[str | int, ...]


def format_path(path: FieldPath) -> str:
    """`("pipeline", "transforms", 0, "config")` -> `pipeline.transforms[0].config`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The valid name a typo most likely meant (difflib), or None when nothing is close."""
    matches = difflib.get_close_matches(str(name), sorted(set(candidates)), n=1, cutoff=0.6)
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


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a pipeline file, pinned to its place."""

    file: str
    line: int | None
    path: FieldPath
    message: str
    suggestion: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {format_path(self.path)}: {self.message}"
        return f"{text} ({self.suggestion})" if self.suggestion else text


class PipelineFileError(InputError):
    """A pipeline file that must not run; carries every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(self.report())

    def report(self) -> str:
        count = len(self.problems)
        header = f"{count} problem{'s' if count != 1 else ''} in the pipeline file:"
        return "\n".join([header, *(f"  {problem}" for problem in self.problems)])
