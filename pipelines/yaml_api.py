"""The transforms `providers.yaml` exposes to Beam YAML: our stages plus live progress.

They are the stages themselves (same signature, same docstring, so Beam YAML derives the
same config schema), with one addition: a row-count side branch (`pipelines.progress`) that
lets `forcebeam run` print progress while a local run is going. Outside `forcebeam run` the
branch is not added.
"""

from __future__ import annotations

import apache_beam as beam

from pipelines import progress
from stages.salesforce.read import ReadFromSalesforce as _Read

__all__ = ["ReadFromSalesforce"]


class ReadFromSalesforce(_Read):
    __doc__ = _Read.__doc__

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        rows = super().expand(pbegin)
        progress.tap(rows, self.label)
        return rows
