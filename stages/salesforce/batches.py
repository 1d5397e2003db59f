"""Hand a read's pages to batch-aware consumers as Arrow tables, everyone else gets rows.

Why a pass over the built pipeline: whether a read should emit ``pyarrow.Table`` batches
depends on what consumes it, which is only known once the whole pipeline is built. Batches
are a win only if EVERY consumer takes them as they are (Beam YAML's WriteToParquet, our
JSON lines/CSV sinks, the progress counter): for any row-wise consumer (MapToFields, Filter,
Sql, a GroupBy, WriteToSalesforce) Beam would explode each table into rows itself, at
several times the cost of our own explosion. So reads start as rows (``_PagesAsRows``) and
this pass switches a read to ``_PagesAsBatches`` when all its consumers are Beam batched
DoFns whose input batch converter is exactly the one for the read's row type.

``forcebeam run`` applies it to every pipeline; Python users call ``prefer_batches(p)``
after building and before running their pipeline.
"""

from __future__ import annotations

import logging
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.typehints.batch import BatchConverter

from forcebeam.stages.salesforce.pipeline_graph import Consumers

__all__ = ["prefer_batches"]

LOG = logging.getLogger(__name__)


def prefer_batches(pipeline: beam.Pipeline) -> int:
    """Switch reads whose consumers all take Arrow batches to batch output; returns how many.

    Safe to call more than once; reads in ``native`` typing (no Arrow form) stay rows.
    """
    from forcebeam.stages.salesforce.columnar import arrow_schema
    from forcebeam.stages.salesforce.read import _PagesAsBatches, _PagesAsRows

    graph = Consumers(_PagesAsRows)
    pipeline.visit(graph)
    switched = 0
    for node in graph.found:
        fn = node.transform.fn
        row_class = fn._row_class
        if type(fn) is _PagesAsBatches:
            switched += 1
            continue
        if fn._schema.mode != "portable" or arrow_schema(row_class) is None:
            continue
        converter = BatchConverter.from_typehints(element_type=row_class, batch_type=pa.Table)
        output = node.outputs[None]
        consumers = graph.consumers.get(output, [])
        if consumers and all(main and _takes_batches(consumer, converter)
                             for consumer, main in consumers):
            fn.__class__ = _PagesAsBatches
            fn.output_batch_converter = converter
            switched += 1
            LOG.debug("%s hands its pages on as Arrow batches", node.full_label)
    return switched


def _takes_batches(node: Any, converter: BatchConverter) -> bool:
    """A batched DoFn consuming exactly this batch type (passed through, no conversion)."""
    transform = node.transform
    if not isinstance(transform, beam.ParDo):
        return False
    fn = transform.fn
    return bool(fn._process_batch_defined
                and getattr(fn, "input_batch_converter", None) == converter)
