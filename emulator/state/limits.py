"""The org's `/limits`: every documented limit, and the daily meters the emulator can keep.

Why: clients read `/limits` before they start work and stop with a KeyError when a key is
missing (tap-salesforce reads `DailyBulkApiBatches` before any Bulk call), so the resource
lists every limit a current API version documents. The limits the emulator really spends
are live; the others are constant and plausible (a Developer Edition-sized org).

Live meters (Salesforce's "Bulk API and Bulk API 2.0 Limits and Allocations"):
- `DailyApiRequests` is the org's API meter (`OrgSettings.api_usage`);
- `DailyBulkV2QueryJobs`: each Bulk 2.0 query job created takes one;
- `DailyBulkV2QueryFileStorageMB`: the size of the Bulk 2.0 query result files generated;
- `DailyBulkApiBatches` (shared by Bulk API 1.0 and 2.0): each Bulk 1.0 batch that is
  processed takes one (query and ingest, every PK chunk too; the original batch a PK-chunked
  job leaves NotProcessed does not); Bulk 2.0 ingest takes one per 10,000 records processed
  (the job's internal batches; its empty initial batch does not count); Bulk 2.0 query jobs
  take none.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from forcebeam.emulator.state.org import OrgSettings

BYTES_PER_MB = 1024 * 1024
#: Records per internal batch of a Bulk 2.0 ingest job (each counts as one batch).
BULK_V2_INGEST_BATCH_RECORDS = 10_000


@dataclass(frozen=True)
class LimitSpec:
    """One documented limit: its allocation and the API versions that return it."""

    max: int
    since: int = 29  # the /limits resource exists from API 29.0
    until: int | None = None  # last API version that still returns the key
    nested: tuple[tuple[str, int], ...] = ()  # sub-limits (PermissionSets.CreateCustom)


#: Every documented key of `GET /services/data/vXX.X/limits` with a plausible allocation.
DOCUMENTED_LIMITS: dict[str, LimitSpec] = {
    "ActiveScratchOrgs": LimitSpec(3),
    "AnalyticsExternalDataSizeMB": LimitSpec(40_960),
    "CdpAiInferenceApiMonthlyLimit": LimitSpec(0),
    "ConcurrentAsyncGetReportInstances": LimitSpec(200),
    "ConcurrentEinsteinDataInsightsStoryCreation": LimitSpec(5),
    "ConcurrentEinsteinDiscoveryStoryCreation": LimitSpec(2),
    "ConcurrentSyncReportRuns": LimitSpec(20),
    "ContentDistBandwidthLimitMB": LimitSpec(200),
    "ContentDistViewLimit": LimitSpec(20_000),
    "ContentPublicationLimit": LimitSpec(200_000),
    "DailyAnalyticsDataflowJobExecutions": LimitSpec(60),
    "DailyAnalyticsUploadedFilesSizeMB": LimitSpec(51_200),
    "DailyApiRequests": LimitSpec(0),  # from OrgSettings.daily_api_limit
    "DailyAsyncApexExecutions": LimitSpec(250_000),
    "DailyAsyncApexTests": LimitSpec(500, since=56),
    "DailyBulkApiBatches": LimitSpec(15_000, since=49),
    "DailyBulkApiRequests": LimitSpec(15_000, until=48),
    "DailyBulkV2QueryFileStorageMB": LimitSpec(976_562, since=47),
    "DailyBulkV2QueryJobs": LimitSpec(10_000, since=47),
    "DailyDeliveredPlatformEvents": LimitSpec(50_000),
    "DailyDurableGenericStreamingApiEvents": LimitSpec(10_000, since=37),
    "DailyDurableStreamingApiEvents": LimitSpec(10_000, since=37),
    "DailyEinsteinDataInsightsStoryCreation": LimitSpec(1_000),
    "DailyEinsteinDiscoveryOptimizationJobRuns": LimitSpec(25),
    "DailyEinsteinDiscoveryPredictAPICalls": LimitSpec(50_000),
    "DailyEinsteinDiscoveryPredictionsByCDC": LimitSpec(500_000),
    "DailyEinsteinDiscoveryStoryCreation": LimitSpec(100),
    "DailyFunctionsApiCallLimit": LimitSpec(235_000, since=53),
    "DailyGenericStreamingApiEvents": LimitSpec(10_000),
    "DailyMetadataRetrievesWithDependencies": LimitSpec(50),
    "DailyScratchOrgs": LimitSpec(6),
    "DailyStandardVolumePlatformEvents": LimitSpec(10_000),
    "DailyStreamingApiEvents": LimitSpec(10_000),
    "DailyWorkflowEmails": LimitSpec(2_000),
    "DataStorageMB": LimitSpec(5),
    "DurableStreamingApiConcurrentClients": LimitSpec(20, since=37),
    "FileStorageMB": LimitSpec(20),
    "HourlyAsyncReportRuns": LimitSpec(1_200),
    "HourlyDashboardRefreshes": LimitSpec(200),
    "HourlyDashboardResults": LimitSpec(5_000),
    "HourlyDashboardStatuses": LimitSpec(999_999_999),
    "HourlyElevateAsyncReportRuns": LimitSpec(0),
    "HourlyElevateSyncReportRuns": LimitSpec(0),
    "HourlyLongTermIdMapping": LimitSpec(100_000),
    "HourlyManagedContentPublicRequests": LimitSpec(50_000),
    "HourlyODataCallout": LimitSpec(10_000),
    "HourlyPublishedPlatformEvents": LimitSpec(50_000),
    "HourlyPublishedStandardVolumePlatformEvents": LimitSpec(1_000),
    "HourlyShortTermIdMapping": LimitSpec(100_000),
    "HourlySyncReportRuns": LimitSpec(500),
    "HourlyTimeBasedWorkflow": LimitSpec(50),
    "MassEmail": LimitSpec(10),
    "MaxContentDocumentsLimit": LimitSpec(0),
    "MonthlyEinsteinDiscoveryStoryCreation": LimitSpec(500),
    "MonthlyPlatformEvents": LimitSpec(0, until=47),
    "MonthlyPlatformEventsUsageEntitlement": LimitSpec(0, since=48),
    "Package2VersionCreates": LimitSpec(6),
    "Package2VersionCreatesWithoutValidation": LimitSpec(500),
    "PermissionSets": LimitSpec(1_500, since=41, nested=(("CreateCustom", 1_000),)),
    "PlatformEventTriggersWithParallelProcessing": LimitSpec(5),
    "PrivateConnectOutboundCalloutHourlyLimitMB": LimitSpec(0),
    "PublishCallbackUsageInApex": LimitSpec(5_000),
    "SingleEmail": LimitSpec(15),
    "StreamingApiConcurrentClients": LimitSpec(20),
}


class DailyUsage:
    """What the org's clients used today of the limits the emulator meters (thread-safe:
    Bulk work finishes on executor threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bulk_v2_query_jobs = 0
        self.bulk_v2_query_file_bytes = 0
        self.bulk_api_batches = 0

    def bulk_v2_query_job_created(self) -> None:
        with self._lock:
            self.bulk_v2_query_jobs += 1

    def bulk_v2_query_file_written(self, size_bytes: int) -> None:
        with self._lock:
            self.bulk_v2_query_file_bytes += max(0, size_bytes)

    def bulk_batches_processed(self, count: int = 1) -> None:
        with self._lock:
            self.bulk_api_batches += max(0, count)

    def bulk_v2_ingest_processed(self, records: int) -> None:
        """A Bulk 2.0 ingest job finished: one batch per 10,000 records it processed."""
        self.bulk_batches_processed(math.ceil(records / BULK_V2_INGEST_BATCH_RECORDS))

    def used(self) -> dict[str, int]:
        """Amount used per live key (file storage in whole MB, rounded up)."""
        with self._lock:
            return {
                "DailyBulkV2QueryJobs": self.bulk_v2_query_jobs,
                "DailyBulkV2QueryFileStorageMB": math.ceil(
                    self.bulk_v2_query_file_bytes / BYTES_PER_MB),
                "DailyBulkApiBatches": self.bulk_api_batches,
                "DailyBulkApiRequests": self.bulk_api_batches,
            }


def limits_body(api_version: str, org: OrgSettings, usage: DailyUsage) -> dict[str, Any]:
    """The JSON of `GET /services/data/vXX.X/limits` for one API version."""
    major = int(float(api_version))
    used = usage.used()
    used["DailyApiRequests"] = org.api_usage
    body: dict[str, Any] = {}
    for key, spec in DOCUMENTED_LIMITS.items():
        if major < spec.since or (spec.until is not None and major > spec.until):
            continue
        maximum = org.daily_api_limit if key == "DailyApiRequests" else spec.max
        entry: dict[str, Any] = {"Max": maximum,
                                 "Remaining": max(maximum - used.get(key, 0), 0)}
        for name, nested_max in spec.nested:
            entry[name] = {"Max": nested_max, "Remaining": nested_max}
        body[key] = entry
    return body
