"""forcebeam stages: the stage plugin contract and registry, and the Salesforce stages.

``stages.registry`` finds stages by name (entry-point group ``forcebeam.stages``);
``stages.salesforce`` holds ``ReadFromSalesforce`` and ``WriteToSalesforce``.
"""

from forcebeam.stages.registry import (
    ENTRY_POINT_GROUP,
    StageConfigError,
    StageInfo,
    UnknownStageError,
    available_stages,
    get_stage,
)

__all__ = ["ENTRY_POINT_GROUP", "StageConfigError", "StageInfo", "UnknownStageError",
           "available_stages", "get_stage"]
