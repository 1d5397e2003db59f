"""What is wrong with a pipeline file, said so a user can fix it without reading our code.

Every check (YAML syntax, transforms, connections, secrets, online describe) reports a
`Problem` carrying the file, the line, the field path and, where we can guess it, the closest
valid name. Checks collect problems instead of stopping at the first, so one `validate` run
shows everything to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# The closest-name suggestions are auth's, so a connection's problems and the file's other
# problems read alike.
from forcebeam.auth.config_problems import FieldPath, closest, suggestion_for
from forcebeam.auth.config_problems import format_path as auth_format_path
from forcebeam.auth.errors import InputError

__all__ = ["FieldPath", "PipelineFileError", "Problem", "closest", "format_path",
           "suggestion_for"]


def format_path(path: FieldPath) -> str:
    """`("pipeline", "transforms", 0, "config")` -> `pipeline.transforms[0].config`."""
    return auth_format_path(path) or "(top level)"


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
