"""How fast the emulator serves Bulk 2.0 query results: the ceiling for every client benchmark.

One emulator with N Accounts (default 1M), one Bulk 2.0 query job over every non-compound
Account field, then every results page downloaded raw with requests (streamed, discarded,
nothing decoded) — once uncompressed (`Accept-Encoding: identity`, the CSV bytes themselves)
and once gzip'd (what requests asks for by default). Prints and returns MB/s and rows/s, the
time the job took to render its result file, and the page count.

    python -m bench serving [--records 1000000] [--max-records 100000]
    python -m bench.emulator_serving ...        (same)
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

GOOGLE_AUTH_GUARD = {"NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1:9",
                     "GCE_METADATA_IP": "127.0.0.1:9"}
os.environ.update(GOOGLE_AUTH_GUARD)  # before anything imports google-auth

from bench.org import extract_fields, extract_soql, login, session_for  # noqa: E402
from tests.support.org import start_org  # noqa: E402

DEFAULT_RECORDS = 1_000_000
STREAM_CHUNK_BYTES = 1 << 20
ENCODINGS = ("identity", "gzip")


def download_all(session: Any, url: str, headers: dict[str, str],
                 max_records: int | None) -> dict[str, Any]:
    """Stream every page of a job's results to nowhere; bytes as they came off the wire."""
    rows = pages = wire_bytes = 0
    locator: str | None = None
    started = time.perf_counter()
    while True:
        params: dict[str, Any] = {}
        if locator:
            params["locator"] = locator
        if max_records:
            params["maxRecords"] = max_records
        with session.get(url, headers=headers, params=params, stream=True,
                         timeout=600) as page:
            page.raise_for_status()
            for chunk in page.raw.stream(STREAM_CHUNK_BYTES, decode_content=False):
                wire_bytes += len(chunk)
            rows += int(page.headers["Sforce-NumberOfRecords"])
            locator = page.headers["Sforce-Locator"]
        pages += 1
        if locator == "null":
            break
    seconds = time.perf_counter() - started
    return {"rows": rows, "pages": pages, "wire_mb": round(wire_bytes / 1e6, 1),
            "seconds": round(seconds, 2), "mb_per_second": round(wire_bytes / 1e6 / seconds, 1),
            "rows_per_second": round(rows / seconds)}


def run(records: int = DEFAULT_RECORDS, max_records: int | None = None,
        workdir: Path | None = None, log: Any = print) -> dict[str, Any]:
    """Start an org, render one full-object job, download it per encoding; return figures."""
    scratch = Path(workdir or tempfile.mkdtemp(prefix="forcebeam-serving-"))
    started = time.perf_counter()
    org = start_org(scratch, records=records)
    startup = time.perf_counter() - started
    try:
        session = session_for(org)
        auth = login(org, session)
        fields = extract_fields(session, auth)
        headers = {**auth.headers(), "Content-Type": "application/json"}
        created = session.post(auth.data_url("jobs/query"), headers=headers, timeout=120,
                               json={"operation": "query", "query": extract_soql(fields)})
        created.raise_for_status()
        job_url = auth.data_url(f"jobs/query/{created.json()['id']}")
        job_started = time.perf_counter()
        while (state := session.get(job_url, headers=auth.headers(),
                                    timeout=120).json())["state"] != "JobComplete":
            if state["state"] in ("Failed", "Aborted"):
                raise RuntimeError(f"Bulk job ended {state['state']}: "
                                   f"{state.get('errorMessage')}")
            time.sleep(0.1)
        render_seconds = time.perf_counter() - job_started
        result: dict[str, Any] = {
            "records": records, "fields": len(fields),
            "org_startup_seconds": round(startup, 1),
            "job_render_seconds": round(render_seconds, 2),
            "job_render_rows_per_second": round(records / render_seconds),
        }
        for encoding in ENCODINGS:
            figures = download_all(session, f"{job_url}/results",
                                   {**auth.headers(), "Accept-Encoding": encoding}, max_records)
            if figures["rows"] != records:
                raise RuntimeError(f"downloaded {figures['rows']} rows of {records}")
            result[encoding] = figures
            log(f"  serving {encoding:8}: {figures['mb_per_second']:7.1f} MB/s "
                f"{figures['rows_per_second']:>9,} rows/s  ({figures['wire_mb']} MB in "
                f"{figures['pages']} pages, {figures['seconds']} s)")
        log(f"  job render: {result['job_render_seconds']} s for {records:,} rows "
            f"({result['job_render_rows_per_second']:,} rows/s); org start "
            f"{result['org_startup_seconds']} s")
        return result
    finally:
        org.stop()
        if workdir is None:
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench serving", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--max-records", type=int, default=None,
                        help="maxRecords per page (default: the emulator's own default)")
    args = parser.parse_args(argv)
    print(f"emulator serving benchmark: {args.records:,} Accounts, Bulk 2.0 results, loopback")
    run(records=args.records, max_records=args.max_records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
