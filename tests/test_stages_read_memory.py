"""A Bulk read holds a bounded amount of its result at once, however many pages it has.

Peak memory per worker must not grow with the size of the read (issue 11: 5M rows within
1.3x of 100k). A read unit downloads up to ``PAGE_DOWNLOADS`` pages ahead, keeps them as
received (gzip'd) and parses the next page while the caller has this one (two parsed pages
at most); it hands each page on block by block, so
Beam's references to the last batches it processed hold blocks, not whole pages. The read
reports what it held through Beam metrics, checked here on a read against the emulator.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter

from forcebeam.stages.salesforce import bulk_query
from forcebeam.stages.salesforce.read import PAGE_DOWNLOADS, ReadFromSalesforce, _blocks_of
from tests.support.stages import by_id, connection_mapping, expected_rows, run_collect

FIELDS = ["Id", "Name", "Description", "AnnualRevenue", "CreatedDate"]


@pytest.fixture(autouse=True)
def _private_describe_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))


def _most(result, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_name(name))["distributions"]
    assert found, f"the read reported no {name} metric"
    return max(entry.committed.max for entry in found)


def test_a_read_of_many_pages_parses_one_page_ahead_and_downloads_a_bounded_few_ahead(
        org, tmp_path):
    # 5,000 Accounts in pages of 400: 13 pages, read by 4 units of up to 4 pages.
    org.reset_counters()
    rows, result = run_collect(
        lambda: ReadFromSalesforce(connection_mapping(org), sobject="Account", fields=FIELDS,
                                   mode="bulk", bulk_page_size=400),
        out=tmp_path / "rows")
    assert by_id(rows) == expected_rows(org, FIELDS)
    assert org.counters()["api_calls"]["bulk_results"] == 13
    assert _most(result, "result_pages_parsed_at_once") == 2, "this page and the next"
    assert _most(result, "result_page_bodies_ahead") == PAGE_DOWNLOADS


def test_a_page_is_handed_on_block_by_block_in_order():
    """Each block keeps buffers of its own; the blocks together are the page, in order."""
    blocks = [pa.record_batch({"Id": [f"{n}{i}" for i in range(3)], "Name": ["a", None, "c"]})
              for n in range(3)]
    page = bulk_query.ResultPage(table=pa.Table.from_batches(blocks), next_locator=None)
    chunks = list(_blocks_of(iter([page, bulk_query.ResultPage(table=pa.table({}),
                                                                next_locator=None)])))
    assert [chunk.raw.num_rows for chunk in chunks] == [3, 3, 3]
    assert pa.concat_tables([chunk.raw for chunk in chunks]).equals(page.table)
    assert all(chunk.raw.column(0).num_chunks == 1 for chunk in chunks)
