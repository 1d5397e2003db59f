"""Read a pipeline file into plain Python values while remembering where each value came from.

PyYAML's `compose` keeps a start mark on every node; we walk that node tree once, building
the values and a map `field path -> line`, so every later check can point at the exact line.
`${VAR}` placeholders are filled from the environment here, after parsing, so a value can
never inject YAML structure and line numbers stay those of the file as written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from forcebeam.pipelines.problems import FieldPath, PipelineFileError, Problem

# ${NAME} or ${NAME:-default}; `$${` writes a literal `${`.
_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class LoadedFile:
    """A parsed pipeline file: its values and the line of every field path."""

    path: str
    data: dict[str, Any]
    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line_of(self, path: FieldPath) -> int | None:
        """The line of `path`, or of its nearest enclosing field that has one."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get(())

    def problem(self, path: FieldPath, message: str, suggestion: str = "") -> Problem:
        return Problem(self.path, self.line_of(path), tuple(path), message, suggestion)


class _Builder:
    """Turns composed YAML nodes into values, interpolating `${VAR}` in strings."""

    def __init__(self, file: str, env: Mapping[str, str]) -> None:
        self.file = file
        self.env = env
        self.lines: dict[FieldPath, int] = {}
        self.problems: list[Problem] = []
        self._scalars = yaml.SafeLoader("")  # only its constructor is used, for scalar typing

    def build(self, node: yaml.Node, path: FieldPath) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            self._scalars.flatten_mapping(node)  # resolves `<<: *anchor` merges
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.build(key_node, (*path, "<key>"))
                if key in result:
                    self.problems.append(Problem(self.file, key_node.start_mark.line + 1,
                                                 (*path, key), "duplicate key",
                                                 "keep only one"))
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, (*path, key))
            self.lines.pop((*path, "<key>"), None)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        value = self._scalars.construct_object(node, deep=True)
        if isinstance(value, str) and "$" in value:
            value = self._interpolate(value, path, node.start_mark.line + 1)
        return value

    def _interpolate(self, text: str, path: FieldPath, line: int) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name, default = match.group(1), match.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self.problems.append(Problem(
                self.file, line, path, f"environment variable {name} is not set",
                f"export {name}=... before running, or write ${{{name}:-default}}"))
            return match.group(0)

        return _PLACEHOLDER.sub(replace, text)


def parse_text(text: str, file: str, env: Mapping[str, str] | None = None) -> LoadedFile:
    """Parse pipeline YAML text; raises PipelineFileError on syntax or placeholder problems."""
    env = os.environ if env is None else env
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(part for part in (error.context, error.problem) if part)
        raise PipelineFileError([Problem(file, line, (), f"YAML syntax error: {reason}",
                                         "check indentation, quotes and ':' on that line")]
                                ) from None
    except yaml.YAMLError as error:
        raise PipelineFileError([Problem(file, None, (), f"YAML error: {error}")]) from None
    if node is None:
        raise PipelineFileError([Problem(file, 1, (), "the file is empty",
                                         "start from pipelines/examples/demo.yaml")])
    builder = _Builder(file, env)
    data = builder.build(node, ())
    if not isinstance(data, dict):
        raise PipelineFileError([Problem(file, node.start_mark.line + 1, (),
                                         "a pipeline file must be a mapping",
                                         "top-level keys: connections, pipeline, options")])
    if builder.problems:
        raise PipelineFileError(builder.problems)
    return LoadedFile(path=file, data=data, lines=builder.lines)


def load_file(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> LoadedFile:
    """Read and parse a pipeline file (see `parse_text`)."""
    file = str(path)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as error:
        raise PipelineFileError([Problem(file, None, (), f"cannot read the file: "
                                         f"{error.strerror or error}")]) from None
    return parse_text(text, file, env)
