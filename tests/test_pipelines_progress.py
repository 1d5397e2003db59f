"""Long extracts print progress while they run (rows so far of expected, rows/s) and a
closing summary per stage; the progress counters are built for local runs only."""

from __future__ import annotations

import io
import re

import pytest

from forcebeam.pipelines.emulator_env import use_org
from forcebeam.pipelines.run import run_file
from tests.support.pipelines import (  # the fixture is autouse
    JWT_CONNECTION,
    forget_org_afterwards,  # noqa: F401
)

PIPELINE = """\
connections:
  slow:
""" + JWT_CONNECTION + """pipeline:
  transforms:
    - type: ReadFromSalesforce
      name: ReadAccounts
      config: {connection: slow, sobject: Account, fields: [Id, Name], READ}
    - type: SINK
      input: ReadAccounts
      config: {path: "${FORCEBEAM_OUT}/accounts"}
"""


@pytest.mark.parametrize("read, sink", [
    ("mode: rest, split: 6", "WriteToJson"),             # rows, one at a time
    ("mode: bulk, bulk_page_size: 1000", "WriteToParquet"),   # whole pages as Arrow batches
])
def test_progress_lines_while_a_slow_extract_runs(org_factory, tmp_path, monkeypatch, read,
                                                  sink):
    # 300 ms per request (a realistic org's latency): the read takes several seconds.
    org = org_factory(records=3000, extra_args=("--latency-ms", "300"))
    for name, value in use_org(org.info, environ={}).items():  # caches of other orgs gone
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FORCEBEAM_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "slow.yaml"
    path.write_text(PIPELINE.replace("READ", read).replace("SINK", sink))
    stream = io.StringIO()
    assert run_file(str(path), [], progress_seconds=0.5, stream=stream) == 0
    report = stream.getvalue()
    progress = re.findall(r"\] ReadAccounts: ([\d,]+) rows of 3,000 (\d+)% \(([\d,]+) rows/s\)",
                          report)
    assert progress, report
    counts = [int(rows.replace(",", "")) for rows, _, _ in progress]
    assert counts == sorted(counts) and 0 < counts[0] <= 3000
    # Every request takes 300 ms, so no honest rate reaches 10,000 rows/s (a page counted
    # at once must not read as millions of rows per second).
    assert all(int(rate.replace(",", "")) < 10_000 for _, _, rate in progress), report
    assert re.search(r"ReadAccounts\s+3,000\s+0\s+0\s+\d+\s+\d+\s+[\d.]+\s+[\d,]+", report)
    if "bulk" in read:
        # "of 3,000" is the Bulk job's own record count: no COUNT() query was spent on it.
        assert org.counters()["api_calls"].get("rest_query", 0) == 0, org.counters()
