"""The pipeline-only cell: our read path's CPU cost per sink, with the emulator out of it.

Result pages of one Bulk job are downloaded once (raw CSV files, as the org sends them);
then, per sink, a Beam pipeline on one worker (FnApiRunner, in a fresh process) reads those
files through exactly the stage's own steps (parse with pyarrow, convert, hand on Arrow
batches or rows as `forcebeam run` would choose) into Beam YAML's WriteToParquet or our
WriteToJsonLines / WriteToCsvFiles. The timer covers the pipeline run (not interpreter or
Beam import), so the figure is rows/s of pure pipeline work.

    python -m bench.pipeline_only PAGES_DIR SINK OUT_PREFIX   (used by bench/suite.py)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.forcebeam_run import GOOGLE_AUTH_GUARD, count_output_rows
from bench.measure import Measurement
from bench.org import extract_fields, extract_soql, login, session_for
from bench.rss import PeakRssSampler
from tests.support.org import EmulatedOrg

PIPELINE_ONLY_SINKS = ("parquet", "jsonl", "csvfiles")
PAGE_ROWS = 50_000


def download_pages(org: EmulatedOrg, directory: Path) -> tuple[int, list[str]]:
    """Every result page of one Bulk job for the bench extract, as raw files; the describe
    is saved next to them. Returns (rows, fields)."""
    directory.mkdir(parents=True, exist_ok=True)
    session = session_for(org)
    auth = login(org, session)
    fields = extract_fields(session, auth)
    job = session.post(auth.data_url("jobs/query"), json={
        "operation": "query", "query": extract_soql(fields)}, headers=auth.headers(),
        timeout=60).json()
    while job["state"] not in ("JobComplete", "Failed", "Aborted"):
        time.sleep(0.5)
        job = session.get(auth.data_url(f"jobs/query/{job['id']}"), headers=auth.headers(),
                          timeout=60).json()
    rows, locator, number = 0, None, 0
    while True:
        params: dict[str, Any] = {"maxRecords": PAGE_ROWS}
        if locator:
            params["locator"] = locator
        page = session.get(auth.data_url(f"jobs/query/{job['id']}/results"), params=params,
                           headers=auth.headers(), timeout=600)
        page.raise_for_status()
        (directory / f"page-{number:05d}.csv").write_bytes(page.content)
        rows += int(page.headers["Sforce-NumberOfRecords"])
        number += 1
        locator = page.headers.get("Sforce-Locator")
        if not locator or locator == "null":
            break
    describe = session.get(auth.data_url("sobjects/Account/describe"), headers=auth.headers(),
                           timeout=60).json()
    (directory / "describe.json").write_text(json.dumps(describe))
    (directory / "fields.json").write_text(json.dumps(fields))
    return rows, fields


def run_cell(pages: Path, sink: str, workdir: Path, rows: int, size: int,
             log: Callable[[str], None] = print) -> Measurement:
    """One sink on one worker, in a child process; rows/s over the pipeline's own time."""
    result = Measurement(method=f"pipeline only -> {sink}", profile="no org", size=size)
    prefix = workdir / f"pipeline-only-{sink}" / "accounts"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "bench.pipeline_only", str(pages), sink, str(prefix)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, **GOOGLE_AUTH_GUARD},
                               cwd=Path(__file__).resolve().parent.parent)
    with PeakRssSampler(process.pid) as sampler:
        out, err = process.communicate(timeout=3600)
    if process.returncode != 0:
        result.error = f"exit {process.returncode}: {err.decode(errors='replace')[-500:]}"
        return result
    facts = json.loads(out.decode().strip().splitlines()[-1])
    result.seconds = facts["seconds"]
    result.rows = count_output_rows(prefix, sink)
    result.peak_rss_bytes = sampler.peak_bytes
    result.extra = {"batches": facts["batches"], "expect_all_rows": True}
    if result.rows != rows:
        result.error = f"wrote {result.rows} rows, expected {rows}"
    log(f"    -> pipeline only {sink}: {result.rows:,} rows in {result.seconds:.1f}s = "
        f"{(result.rows_per_second or 0):,.0f} rows/s (batches: {facts['batches']})")
    return result


def _child(pages: Path, sink: str, prefix: str) -> None:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from forcebeam.stages.files.arrow_sinks import WriteToCsvFiles, WriteToJsonLines
    from forcebeam.stages.salesforce.batches import prefer_batches
    from forcebeam.stages.salesforce.columnar import parse_page
    from forcebeam.stages.salesforce.read import _Chunk, _PagesAsRows
    from forcebeam.stages.salesforce.schema import schema_from_describe

    describe = json.loads((pages / "describe.json").read_text())
    fields = json.loads((pages / "fields.json").read_text())
    schema = schema_from_describe(describe, fields=fields)
    row_class = schema.row_class()

    def read_page(path: str) -> Any:
        yield _Chunk(raw=parse_page(Path(path).read_bytes()))

    sinks = {"parquet": lambda: beam.io.WriteToParquet(prefix),
             "jsonl": lambda: WriteToJsonLines(prefix),
             "csvfiles": lambda: WriteToCsvFiles(prefix)}
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    _ = (pipeline
         | beam.Create(sorted(str(p) for p in pages.glob("page-*.csv")))
         | beam.Reshuffle()
         | "ReadPages" >> beam.FlatMap(read_page).with_output_types(_Chunk)
         | "ToRows" >> beam.ParDo(_PagesAsRows(schema, row_class)).with_output_types(row_class)
         | "Write" >> sinks[sink]())
    batches = prefer_batches(pipeline)
    started = time.perf_counter()
    pipeline.run().wait_until_finish()
    print(json.dumps({"seconds": time.perf_counter() - started, "batches": batches > 0}))


if __name__ == "__main__":
    _child(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
