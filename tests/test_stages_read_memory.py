"""A Bulk read holds a bounded amount of its result at once, however many pages it has.

Peak memory per worker must not grow with the size of a read (issue 11: 5M rows within
1.3x of 100k). A read unit downloads a few pages ahead, keeps them as received (gzip'd)
and parses the page it hands on; a reader alone in its process (one local worker) also
parses the next page meanwhile and downloads more at once (``PAGE_DOWNLOADS_ALONE``), readers
sharing a process hold one parsed page and ``PAGE_DOWNLOADS`` downloads each. A page is
handed on block by block, so Beam's references to the last batches it processed hold blocks,
not whole pages. The read reports what it held through Beam metrics, checked here on reads
against the emulator.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter

from forcebeam.stages.salesforce import bulk_query
from forcebeam.stages.salesforce.read import (
    PAGE_DOWNLOADS,
    PAGE_DOWNLOADS_ALONE,
    ReadFromSalesforce,
    _blocks_of,
)
from tests.support.stages import FNAPI, by_id, connection_mapping, expected_rows, run_collect

FIELDS = ["Id", "Name", "Description", "AnnualRevenue", "CreatedDate"]


@pytest.fixture(autouse=True)
def _private_describe_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))


def _most(result, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_name(name))["distributions"]
    assert found, f"the read reported no {name} metric"
    return max(entry.committed.max for entry in found)


@pytest.mark.parametrize("workers, parsed, bodies", [
    (1, 2, PAGE_DOWNLOADS_ALONE),     # alone: this page and the next parsed, more downloads
    (2, 1, PAGE_DOWNLOADS),           # two readers share the process: one page each
])
def test_a_read_of_many_pages_holds_a_bounded_few_pages(org, tmp_path, workers, parsed,
                                                         bodies):
    # 5,000 Accounts in pages of 400: 13 pages, read by one reader or shared by two.
    org.reset_counters()
    rows, result = run_collect(
        lambda: ReadFromSalesforce(connection_mapping(org), sobject="Account", fields=FIELDS,
                                   mode="bulk", bulk_page_size=400),
        options=[*FNAPI, f"--direct_num_workers={workers}"], out=tmp_path / "rows")
    assert by_id(rows) == expected_rows(org, FIELDS)
    assert org.counters()["api_calls"]["bulk_results"] == 13
    assert _most(result, "result_pages_parsed_at_once") == parsed
    assert _most(result, "result_page_bodies_ahead") == bodies


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
