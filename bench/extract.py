"""The extract cell: every method on one org of N Accounts in one network profile."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench import baselines
from bench.forcebeam_run import count_output_rows, run_pipeline
from bench.measure import Measurement, measure
from bench.org import extract_fields, extract_soql, login, session_for
from bench.pipeline_files import extract_pipeline, save
from bench.profiles import NetworkProfile
from tests.support.org import EmulatedOrg

RAW = "raw Bulk transfer"
SS_BULK2 = "simple-salesforce bulk2+csv"
SS_REST = "simple-salesforce REST"
FORCEBEAM = "forcebeam run"
FORCEBEAM_2PROC = "forcebeam run, 2 procs"
FORCEBEAM_SPLIT4 = "forcebeam run, split 4"
EXTRACT_METHODS = (RAW, SS_BULK2, SS_REST, FORCEBEAM, FORCEBEAM_2PROC, FORCEBEAM_SPLIT4)
METHOD_KEYS = {"raw": RAW, "bulk2": SS_BULK2, "rest": SS_REST, "forcebeam": FORCEBEAM,
               "forcebeam-2proc": FORCEBEAM_2PROC, "forcebeam-split4": FORCEBEAM_SPLIT4}
#: Methods that run `forcebeam run` (their peak RSS is reported).
FORCEBEAM_METHODS = (FORCEBEAM, FORCEBEAM_2PROC, FORCEBEAM_SPLIT4)
#: The same `forcebeam run` on Beam's own local scale-out: two worker processes, one per core
#: of the benchmark machine (the read units are spread over both).
TWO_PROCESSES = ("--direct_running_mode=multi_processing", "--direct_num_workers=2")


def forcebeam_extract(org: EmulatedOrg, fields: list[str], workdir: Path,
                      beam_args: tuple[str, ...], sink: str = "parquet",
                      read_options: dict[str, Any] | None = None
                      ) -> tuple[int, dict[str, Any]]:
    """ReadFromSalesforce -> `sink` through `forcebeam run`; rows counted in the output."""
    out_dir = workdir / "forcebeam-out"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    prefix = out_dir / "accounts"
    pipeline = save(extract_pipeline(org.info, fields, prefix, sink=sink,
                                     read_options=read_options), workdir / "extract.yaml")
    facts = run_pipeline(pipeline, workdir, beam_args)
    facts["sink"] = sink
    rows = count_output_rows(prefix, sink)
    shutil.rmtree(out_dir, ignore_errors=True)
    return rows, facts


def run_extract_cell(org: EmulatedOrg, profile: NetworkProfile, size: int, workdir: Path,
                     methods: Iterable[str] = EXTRACT_METHODS,
                     beam_args: tuple[str, ...] = (),
                     log: Callable[[str], None] = print,
                     sink: str = "parquet") -> list[Measurement]:
    """Shape the running `org` (holding `size` Accounts) by `profile`; measure each method."""
    workdir.mkdir(parents=True, exist_ok=True)
    profile.apply_to(org)
    session = session_for(org)
    fields = extract_fields(session, login(org, session))
    soql = extract_soql(fields)
    runners: dict[str, Callable[[], tuple[int, dict[str, Any]]]] = {
        RAW: lambda: baselines.raw_bulk_transfer(org, soql),
        SS_BULK2: lambda: baselines.simple_salesforce_bulk2_csv(org, soql),
        SS_REST: lambda: baselines.simple_salesforce_rest(org, soql),
        FORCEBEAM: lambda: forcebeam_extract(org, fields, workdir, beam_args, sink),
        FORCEBEAM_2PROC: lambda: forcebeam_extract(org, fields, workdir,
                                                   (*TWO_PROCESSES, *beam_args), sink),
        # The explicit trade: 4 Id-range jobs (4x the org's job budget) for time.
        FORCEBEAM_SPLIT4: lambda: forcebeam_extract(org, fields, workdir, beam_args, sink,
                                                    {"split": 4}),
    }
    results = []
    for method in methods:
        log(f"  {profile.name:9} {size:>9,} rows  {method} ...")
        result = measure(org, method, profile.name, size, runners[method])
        if method in FORCEBEAM_METHODS and result.error is None:
            result.peak_rss_bytes = result.extra.get("peak_rss_bytes")
        result.extra["fields"] = len(fields)
        log(f"    -> {_summary(result)}")
        results.append(result)
    return results


def _summary(result: Measurement) -> str:
    if result.error:
        return f"FAILED: {result.error.splitlines()[0][:200]}"
    return (f"{result.rows:,} rows in {result.seconds:.1f}s = {result.rows_per_second:,.0f} "
            f"rows/s, {result.api_calls} API calls, {result.logins} logins, "
            f"{result.bulk_query_jobs} Bulk query jobs")
