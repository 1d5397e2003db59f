"""Writes whose ``written`` output nobody reads do not build it.

Why a pass over the built pipeline: ``WriteToSalesforce`` always has a ``written`` output (a
row per success: the new Id and the record), and building it costs more per record than
sending the record (~12 µs: the row, the record copy, a Bulk job's successful-results file
downloaded and matched). Most pipelines only keep the failures. Whether anyone reads
``written`` is only known once the whole pipeline is built, so this pass looks: when every
consumer of a write's ``written`` output (through our own ``WrittenRows`` step) only counts
rows, such as ``forcebeam run``'s progress taps, the write counts its successes for them
instead and emits none.

``forcebeam run`` applies it to every pipeline; Python users may call
``skip_unread_written(p)`` after building and before running theirs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import apache_beam as beam

from forcebeam.stages.salesforce.pipeline_graph import Consumers

__all__ = ["skip_unread_written"]

LOG = logging.getLogger(__name__)

#: Given a consumer's DoFn: the counter that takes its row count when it only counts rows
#: (a fresh one, with ``setup/start_bundle/add/finish_bundle``), else None (it reads them).
Counting = Callable[[beam.DoFn], Any]


def skip_unread_written(pipeline: beam.Pipeline,
                        counting: Counting = lambda fn: None) -> int:
    """Turn off the ``written`` rows of writes nobody reads them from; returns how many."""
    from forcebeam.stages.salesforce.write import _WriteBatches

    graph = Consumers(_WriteBatches)
    pipeline.visit(graph)
    skipped = 0
    for node in graph.found:
        fn = node.transform.fn
        written = node.outputs.get(None)
        counters = _counters_only(graph, written, counting) if written is not None else None
        if counters is None or len(counters) > 1:
            continue
        fn.emit_written = False
        fn.written_count = counters[0] if counters else None
        skipped += 1
        LOG.debug("%s: nobody reads its written output; successes are only counted",
                  node.full_label)
    return skipped


def _counters_only(graph: Consumers, pcoll: Any, counting: Counting) -> list[Any] | None:
    """The counters standing in for every consumer of ``pcoll`` (through our ``WrittenRows``
    step), or None when some consumer reads the rows."""
    from forcebeam.stages.salesforce.write import _WithRecord

    counters: list[Any] = []
    for consumer, main in graph.consumers.get(pcoll, []):
        transform = consumer.transform
        if not main or not isinstance(transform, beam.ParDo):   # a side input reads them
            return None
        counter = counting(transform.fn)
        if counter is not None:
            counters.append(counter)
            continue
        if not isinstance(transform.fn, _WithRecord) or len(consumer.outputs) != 1:
            return None
        further = _counters_only(graph, next(iter(consumer.outputs.values())), counting)
        if further is None:
            return None
        counters += further
    return counters
