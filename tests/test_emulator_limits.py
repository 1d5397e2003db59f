"""`GET /services/data/vXX.X/limits`: every documented limit, and live Bulk meters.

What a user would notice: a client that reads any documented limit finds it (tap-salesforce
stops with a KeyError on `DailyBulkApiBatches` otherwise), and the Bulk allocations go down
as jobs and batches run: a Bulk 2.0 query job takes one DailyBulkV2QueryJobs and its result
file's size in DailyBulkV2QueryFileStorageMB; each processed Bulk 1.0 batch (every PK chunk)
and each 10,000 records of a Bulk 2.0 ingest job take one DailyBulkApiBatches.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from simple_salesforce import Salesforce

from bench.org import Login, login, session_for
from tests.support.bulk import wait_until_terminal
from tests.support.org import EmulatedOrg

#: The keys the REST API reference ("Limits", API 62.0) lists for an org like ours.
DOCUMENTED_KEYS = {
    "ActiveScratchOrgs", "AnalyticsExternalDataSizeMB", "ConcurrentAsyncGetReportInstances",
    "ConcurrentEinsteinDataInsightsStoryCreation", "ConcurrentEinsteinDiscoveryStoryCreation",
    "ConcurrentSyncReportRuns", "DailyAnalyticsDataflowJobExecutions",
    "DailyAnalyticsUploadedFilesSizeMB", "DailyApiRequests", "DailyAsyncApexExecutions",
    "DailyAsyncApexTests", "DailyBulkApiBatches", "DailyBulkV2QueryFileStorageMB",
    "DailyBulkV2QueryJobs", "DailyDeliveredPlatformEvents",
    "DailyDurableGenericStreamingApiEvents", "DailyDurableStreamingApiEvents",
    "DailyEinsteinDataInsightsStoryCreation", "DailyEinsteinDiscoveryOptimizationJobRuns",
    "DailyEinsteinDiscoveryPredictAPICalls", "DailyEinsteinDiscoveryPredictionsByCDC",
    "DailyEinsteinDiscoveryStoryCreation", "DailyFunctionsApiCallLimit",
    "DailyGenericStreamingApiEvents", "DailyScratchOrgs", "DailyStandardVolumePlatformEvents",
    "DailyStreamingApiEvents", "DailyWorkflowEmails", "DataStorageMB",
    "DurableStreamingApiConcurrentClients", "FileStorageMB", "HourlyAsyncReportRuns",
    "HourlyDashboardRefreshes", "HourlyDashboardResults", "HourlyDashboardStatuses",
    "HourlyLongTermIdMapping", "HourlyODataCallout", "HourlyPublishedPlatformEvents",
    "HourlyPublishedStandardVolumePlatformEvents", "HourlyShortTermIdMapping",
    "HourlySyncReportRuns", "HourlyTimeBasedWorkflow", "MassEmail",
    "MonthlyEinsteinDiscoveryStoryCreation", "MonthlyPlatformEventsUsageEntitlement",
    "Package2VersionCreates", "Package2VersionCreatesWithoutValidation", "PermissionSets",
    "PlatformEventTriggersWithParallelProcessing", "PrivateConnectOutboundCalloutHourlyLimitMB",
    "SingleEmail", "StreamingApiConcurrentClients",
}


def limits(session: requests.Session, auth: Login, version: str | None = None
           ) -> dict[str, Any]:
    version = version or auth.api_version
    response = session.get(f"{auth.instance_url}/services/data/v{version}/limits",
                           headers=auth.headers(), timeout=60)
    response.raise_for_status()
    return response.json()


def used(before: dict[str, Any], after: dict[str, Any], key: str) -> int:
    assert after[key]["Max"] == before[key]["Max"]
    return before[key]["Remaining"] - after[key]["Remaining"]


def test_limits_has_every_documented_key_with_max_and_remaining(org: EmulatedOrg) -> None:
    session = session_for(org)
    auth = login(org, session)
    body = limits(session, auth)
    assert DOCUMENTED_KEYS <= set(body)
    for key, entry in body.items():
        assert isinstance(entry["Max"], int) and isinstance(entry["Remaining"], int), key
        assert 0 <= entry["Remaining"] <= entry["Max"], key
    assert body["DailyBulkApiBatches"]["Max"] == 15_000
    assert body["DailyBulkV2QueryJobs"]["Max"] == 10_000
    assert set(body["PermissionSets"]["CreateCustom"]) == {"Max", "Remaining"}
    org_settings = org.admin("GET", "org").json()
    assert body["DailyApiRequests"]["Max"] == org_settings["daily_api_limit"]
    # API 48.0 and earlier name the shared batch allocation DailyBulkApiRequests
    older = limits(session, auth, "45.0")
    assert "DailyBulkApiRequests" in older and "DailyBulkApiBatches" not in older
    assert "DailyBulkV2QueryJobs" not in older
    assert "DailyBulkApiBatches" in limits(session, auth, "49.0")


def wait_for_v1_batches(sf: Salesforce, job_id: str) -> list[dict[str, Any]]:
    url = f"{sf.bulk.bulk_url}job/{job_id}/batch"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        batches = sf.session.get(url, headers=sf.bulk.headers, timeout=60).json()["batchInfo"]
        if batches and all(b["state"] not in ("Queued", "InProgress") for b in batches):
            return batches
        time.sleep(0.05)
    raise AssertionError("Bulk 1.0 batches still running")


def test_bulk_meters_move_with_jobs_and_batches(org_factory: Any) -> None:
    private = org_factory(records=250)
    session = session_for(private)
    auth = login(private, session)
    sf = Salesforce(instance_url=auth.instance_url, session_id=auth.access_token,
                    session=session, version=auth.api_version)
    start = limits(session, auth)

    # Bulk 2.0 query: one query job and its result file's storage; no batch.
    base = f"{auth.instance_url}/services/data/v{auth.api_version}/jobs"
    job = session.post(f"{base}/query", headers=auth.headers(), timeout=60, json={
        "operation": "query", "query": "SELECT Id, Name, Description FROM Account"}).json()
    wait_until_terminal(lambda: session.get(f"{base}/query/{job['id']}",
                                            headers=auth.headers(), timeout=60).json(),
                        job["id"])
    after_v2_query = limits(session, auth)
    assert used(start, after_v2_query, "DailyBulkV2QueryJobs") == 1
    assert used(start, after_v2_query, "DailyBulkV2QueryFileStorageMB") == 1
    assert used(start, after_v2_query, "DailyBulkApiBatches") == 0
    assert used(start, after_v2_query, "DailyApiRequests") >= 3

    # Bulk 1.0: each batch is one; a PK-chunked query takes one per chunk, not the original.
    sf.bulk.Account.query("SELECT Id FROM Account", wait=0)
    after_v1_query = limits(session, auth)
    assert used(after_v2_query, after_v1_query, "DailyBulkApiBatches") == 1
    assert used(after_v2_query, after_v1_query, "DailyBulkV2QueryJobs") == 0
    sf.bulk.Contact.insert([{"LastName": f"Meter {n}"} for n in range(5)], batch_size=2)
    after_v1_insert = limits(session, auth)
    assert used(after_v1_query, after_v1_insert, "DailyBulkApiBatches") == 3
    chunked = sf.session.post(f"{sf.bulk.bulk_url}job", timeout=60, json={
        "operation": "query", "object": "Account", "contentType": "JSON"},
        headers={**sf.bulk.headers, "Sforce-Enable-PKChunking": "chunkSize=100"}).json()
    sf.session.post(f"{sf.bulk.bulk_url}job/{chunked['id']}/batch", headers=sf.bulk.headers,
                    data="SELECT Id FROM Account", timeout=60)
    chunks = [b for b in wait_for_v1_batches(sf, chunked["id"]) if b["state"] == "Completed"]
    assert len(chunks) >= 3
    after_chunks = limits(session, auth)
    assert used(after_v1_insert, after_chunks, "DailyBulkApiBatches") == len(chunks)

    # Bulk 2.0 ingest: one batch per 10,000 records processed (3 records: one).
    ingest = sf.bulk2.Contact.insert(records=[{"LastName": f"Ingest {n}"} for n in range(3)])
    assert ingest[0]["numberRecordsProcessed"] == 3
    after_ingest = limits(session, auth)
    assert used(after_chunks, after_ingest, "DailyBulkApiBatches") == 1
    assert used(after_chunks, after_ingest, "DailyBulkV2QueryJobs") == 0
