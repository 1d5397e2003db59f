"""The Salesforce stages: ``ReadFromSalesforce`` / ``WriteToSalesforce`` (Beam PTransforms).

Incremental reads promote their watermark with ``stages.salesforce.incremental.commit_pending``
after the pipeline succeeded.
"""

from forcebeam.stages.salesforce.incremental import commit_pending
from forcebeam.stages.salesforce.read import ReadFromSalesforce
from forcebeam.stages.salesforce.write import WriteToSalesforce

__all__ = ["ReadFromSalesforce", "WriteToSalesforce", "commit_pending"]
