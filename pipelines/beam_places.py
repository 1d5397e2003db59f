"""Map Beam YAML's "at line N" (a line of the text we handed it) to the user's file and line.

`forcebeam run` gives Beam YAML a generated text (connections inlined, providers added), so
Beam's line numbers are not the user's: "line 30" of a 10-line file, or the first of two
unnamed `WriteToJson` transforms when the second failed. The generated text keeps the
structure of the user's `pipeline:` section, so a line of it is a field path, and a field
path has a line in the user's file (`loader.LoadedFile.line_of`). Paths are rebuilt from the
composed nodes (no `${VAR}` filling: the text is ours and already filled).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from forcebeam.pipelines.problems import FieldPath

# `"Name" at line N`, `... at line N: ...`: every place Beam YAML names.
_AT_LINE = re.compile(r'(?:"([^"]+)" )?at line (\d+)')


@dataclass(frozen=True)
class BeamPlace:
    """Where a Beam YAML message points, in the user's terms."""

    path: FieldPath | None       # field path in the user's file (None: no line named)
    transform: str | None        # the transform name Beam quoted, if any
    message: str                 # Beam's message without its own line numbers


def locate(message: str, beam_text: str) -> BeamPlace:
    """The user's field path for the first `at line N` of `message` (N in `beam_text`)."""
    match = _AT_LINE.search(message)
    cleaned = _AT_LINE.sub(lambda m: f'"{m.group(1)}"' if m.group(1) else "", message)
    cleaned = re.sub(r"\s+:", ":", re.sub(r"  +", " ", cleaned)).strip()
    if match is None:
        return BeamPlace(None, None, cleaned)
    return BeamPlace(_path_at(beam_text, int(match.group(2))), match.group(1), cleaned)


def _lines(node: yaml.Node, path: FieldPath, found: dict[FieldPath, int]) -> None:
    found.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key)
            found[(*path, name)] = key.start_mark.line + 1
            _lines(value, (*path, name), found)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), found)


def _path_at(beam_text: str, line: int) -> FieldPath | None:
    try:
        root = yaml.compose(beam_text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # our own dump always parses; never hide the real error
        return None
    lines: dict[FieldPath, int] = {}
    if root is not None:
        _lines(root, (), lines)
    candidates = [path for path, at in lines.items() if at == line and path]
    if not candidates:
        return None
    # The shortest path on that line is the construct the line starts (a transform's
    # `- type:` item rather than its `type` key); inside our `pipeline:` section only.
    best = min(candidates, key=len)
    return best if best[:1] == ("pipeline",) else None
