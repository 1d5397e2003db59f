"""The shape of a forcebeam pipeline file: `connections:` + Beam YAML `pipeline:`/`options:`.

`PipelineSpec` is what validation checks and the runner builds from. It keeps the loaded
file (for line numbers) and knows where every transform sits, including transforms nested in
`composite`/`chain` blocks, so checks can address them by field path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from forcebeam.pipelines.loader import LoadedFile, load_file
from forcebeam.pipelines.problems import FieldPath

TOP_LEVEL_KEYS = ("connections", "pipeline", "options", "providers")
# The field of our transforms' `config:` that names an entry of `connections:`.
CONNECTION_FIELD = "connection"
# Beam YAML's structural transform types (not provided by any provider).
STRUCTURAL_TYPES = ("composite", "chain")


@dataclass(frozen=True)
class TransformRef:
    """One transform of the pipeline and the field path of its mapping."""

    path: FieldPath
    spec: Mapping[str, Any]

    @property
    def type(self) -> Any:
        return self.spec.get("type")

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or self.spec.get("type"))

    @property
    def config(self) -> Any:
        return self.spec.get("config", {})


@dataclass
class PipelineSpec:
    """A parsed pipeline file (values + line numbers)."""

    file: LoadedFile

    @classmethod
    def load(cls, path: str, env: Mapping[str, str] | None = None) -> PipelineSpec:
        return cls(load_file(path, env))

    @property
    def path(self) -> str:
        return self.file.path

    @property
    def data(self) -> dict[str, Any]:
        return self.file.data

    @property
    def connections(self) -> dict[str, Any]:
        value = self.data.get("connections") or {}
        return value if isinstance(value, dict) else {}

    @property
    def options(self) -> dict[str, Any]:
        value = self.data.get("options") or {}
        return value if isinstance(value, dict) else {}

    def transforms(self) -> Iterator[TransformRef]:
        """Every transform mapping, depth first, nested composites included."""
        pipeline = self.data.get("pipeline")
        if isinstance(pipeline, dict):
            yield from _walk(pipeline, ("pipeline",), top=True)


def _walk(block: Mapping[str, Any], path: FieldPath, top: bool = False) -> Iterator[TransformRef]:
    if not top:
        yield TransformRef(path, block)
    if not (top or block.get("type") in STRUCTURAL_TYPES):
        return
    # A chain may name its first and last steps `source:`/`sink:` beside `transforms:`.
    if isinstance(block.get("source"), dict):
        yield from _walk(block["source"], (*path, "source"))
    children = block.get("transforms")
    if isinstance(children, list):
        for index, child in enumerate(children):
            if isinstance(child, dict):
                yield from _walk(child, (*path, "transforms", index))
    if isinstance(block.get("sink"), dict):
        yield from _walk(block["sink"], (*path, "sink"))
