"""One Bulk job per read: its pages fanned out to workers; Id ranges only when asked or on
QUERY_TIMEOUT; the org's documented processing model (queue, chunks, timeout) emulated.

The org's own counters say how many query jobs a read created (the budget a Salesforce admin
sees: 10,000 per 24 h for every integration together).
"""

from __future__ import annotations

import time

import pytest

from forcebeam.stages.salesforce.read import ReadFromSalesforce
from tests.support.stages import (
    by_id,
    connection_mapping,
    expected_rows,
    run_collect,
    watched_client,
)

RECORDS = 3000
FIELDS = ["Id", "Name", "AnnualRevenue", "CreatedDate"]


@pytest.fixture(autouse=True)
def _private_describe_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))


def _read(org, tmp_path, name: str, **options):
    org.reset_counters()
    rows, _ = run_collect(lambda: ReadFromSalesforce(connection_mapping(org), sobject="Account",
                                                     fields=FIELDS, **options),
                          out=tmp_path / name)
    return by_id(rows), org.counters()


@pytest.fixture(scope="module")
def small_org(tmp_path_factory):
    from tests.support.org import start_org

    running = start_org(tmp_path_factory.mktemp("one-job"), records=RECORDS)
    yield running
    running.stop()


def test_a_read_is_one_bulk_job_whose_pages_are_read_separately(small_org, tmp_path):
    rows, counters = _read(small_org, tmp_path, "default", bulk_page_size=400)
    assert rows == expected_rows(small_org, FIELDS)
    assert counters["bulk_jobs"]["query"] == 1
    # 3000 rows in pages of 400: 8 result downloads, enumerated by 2 resultPages calls
    assert counters["api_calls"]["bulk_results"] == 8


def test_a_local_worker_reads_all_its_pages_as_one_unit(small_org, tmp_path):
    """One in-process worker: the job's 8 pages are one read unit (a second unit would wait
    for its first download with nothing to parse); two workers: two units, one each."""
    from apache_beam.metrics.metric import MetricsFilter

    def units(result) -> int:
        found = result.metrics().query(MetricsFilter().with_name("read_units"))["counters"]
        return sum(c.committed or c.attempted or 0 for c in found)

    small_org.reset_counters()
    rows, result = run_collect(lambda: ReadFromSalesforce(
        connection_mapping(small_org), sobject="Account", fields=FIELDS, bulk_page_size=400),
        out=tmp_path / "one")
    assert by_id(rows) == expected_rows(small_org, FIELDS)
    assert units(result) == 1
    _, result = run_collect(lambda: ReadFromSalesforce(
        connection_mapping(small_org), sobject="Account", fields=FIELDS, bulk_page_size=400),
        options=["--runner=FnApiRunner", "--direct_num_workers=2",
                 "--direct_running_mode=multi_threading"], out=tmp_path / "two")
    assert units(result) == 2
    assert small_org.counters()["bulk_jobs"]["query"] == 2      # one job per read


@pytest.mark.parametrize("workers", [1, 2])
def test_the_reads_job_is_deleted_once_after_its_last_page(small_org, tmp_path, workers):
    """One reader holding every page deletes the job itself, once the last page is in (the
    delete then overlaps writing it); with two readers, the job is deleted once both are
    done. Either way: one delete, after every page was downloaded, and no job left."""
    requests: list[tuple[str, str]] = []
    client = watched_client(small_org, lambda method, path, _: requests.append((method, path)))
    rows, _ = run_collect(lambda: ReadFromSalesforce(
        connection_mapping(small_org), sobject="Account", fields=FIELDS, bulk_page_size=400),
        options=["--runner=FnApiRunner", f"--direct_num_workers={workers}",
                 "--direct_running_mode=multi_threading"], out=tmp_path / str(workers))
    assert by_id(rows) == expected_rows(small_org, FIELDS)
    (job_id,) = {path.split("/")[2] for _, path in requests if path.startswith("jobs/query/")}
    deletes = [index for index, (method, path) in enumerate(requests)
               if method == "DELETE" and path == f"jobs/query/{job_id}"]
    pages = [index for index, (_, path) in enumerate(requests) if "/results" in path
             and job_id in path]
    assert len(pages) == 8 and len(deletes) == 1 and deletes[0] > max(pages)
    listed = client.request("GET", "jobs/query").json().get("records") or []
    assert job_id not in {job["id"] for job in listed}


def test_split_n_trades_jobs_for_time(small_org, tmp_path):
    rows, counters = _read(small_org, tmp_path, "split", split=3, mode="bulk")
    assert rows == expected_rows(small_org, FIELDS)
    assert counters["bulk_jobs"]["query"] == 3


def test_query_timeout_replans_the_read_as_id_range_jobs(org_factory, tmp_path):
    # One unchunked 3000-row job at 1000 rows/s runs 3 s per chunk: past a 2 s timeout.
    # Id-range halves run 1.5 s each and pass.
    org = org_factory(records=RECORDS)
    org.admin("PUT", "faults", json={"bulk_chunk_rows": 5000,
                                     "bulk_chunk_rows_per_second": 1000,
                                     "bulk_query_timeout_seconds": 2})
    rows, counters = _read(org, tmp_path, "timeout", mode="bulk")
    assert rows == expected_rows(org, FIELDS)
    assert counters["bulk_jobs"]["query"] == 3          # the timed-out one + 2 ranges


def test_the_org_queues_jobs_and_processes_chunks_in_parallel(org_factory):
    from forcebeam.auth import Connection, get_client
    from forcebeam.stages.salesforce import bulk_query

    org = org_factory(records=RECORDS)
    # 3000 rows in chunks of 500 at 500 rows/s: 6 chunks of 1 s, 4 at a time -> ~2 s;
    # ORDER BY makes it one 6 s chunk; queue 1 s before InProgress.
    org.admin("PUT", "faults", json={"bulk_queue_seconds": 1, "bulk_chunk_rows": 500,
                                     "bulk_chunk_rows_per_second": 500,
                                     "bulk_chunks_per_job": 4})
    client = get_client(Connection.from_mapping(connection_mapping(org)))

    def timed(soql: str) -> tuple[float, str]:
        started = time.monotonic()
        job = bulk_query.create_query_job(client, soql)
        assert job["state"] == "UploadComplete"
        info = bulk_query.wait_for_job(client, f"jobs/query/{job['id']}", job, 60)
        return time.monotonic() - started, info["state"]

    chunked, state = timed("SELECT Id FROM Account")
    assert state == "JobComplete" and 3.0 <= chunked < 5.5
    whole, _ = timed("SELECT Id FROM Account ORDER BY Name")
    assert whole >= 7.0


def test_the_deleting_reader_holds_no_page_its_caller_has():
    """A 1M-row read lets each page go block by block as it writes them; a page the job
    deleter kept would stay whole until the next one (~70 MB more at the peak)."""
    import weakref

    from forcebeam.stages.salesforce import bulk_query

    class Page:
        pass

    made: list[weakref.ref] = []

    def pages():
        for _ in range(3):
            ahead = [Page()]
            made.append(weakref.ref(ahead[0]))
            yield ahead.pop()

    # No client: the delete after the last page fails, which a read never minds.
    reader = bulk_query.deleting_after(pages(), 3, None, "750000000000001AAA")
    for number in range(3):
        page = next(reader)
        del page
        assert made[number]() is None
    assert next(reader, None) is None
