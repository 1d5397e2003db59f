"""Who consumes what in a built pipeline: what the passes over it (``batches``,
``written_unread``) decide from."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import apache_beam as beam
from apache_beam.pipeline import PipelineVisitor

__all__ = ["Consumers"]


class Consumers(PipelineVisitor):
    """The leaf ParDo steps whose DoFn is one of ``fn_types`` (``found``), and each
    PCollection's consumers as ``(node, main)``: main input, or side input when False."""

    def __init__(self, *fn_types: type) -> None:
        self._fn_types = fn_types
        self.found: list[Any] = []
        self.consumers: dict[Any, list[tuple[Any, bool]]] = defaultdict(list)

    def visit_transform(self, node: Any) -> None:
        for pcoll in node.inputs:
            self.consumers[pcoll].append((node, True))
        for pcoll in getattr(node, "side_inputs", ()) or ():
            self.consumers[getattr(pcoll, "pvalue", pcoll)].append((node, False))
        transform = node.transform
        if isinstance(transform, beam.ParDo) and isinstance(transform.fn, self._fn_types):
            self.found.append(node)
