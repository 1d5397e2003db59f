"""`python -m bench` / `make bench`: every figure from one run, one table, one JSON file.

Quick run:  make bench BENCH_ARGS="--sizes 100000 --profiles loopback"
Full run:   make bench          (100k and 1M rows, loopback and realistic; 5M loopback;
                                 writes of 100k)

Cells run one after another, never in parallel: they share a 2-core machine, and a
benchmark competing with itself measures nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.forcebeam_run import GOOGLE_AUTH_GUARD

os.environ.update(GOOGLE_AUTH_GUARD)  # before anything imports google-auth

from bench.extract import EXTRACT_METHODS, METHOD_KEYS, run_extract_cell  # noqa: E402
from bench.measure import Measurement  # noqa: E402
from bench.org import start_bench_org  # noqa: E402
from bench.pipeline_files import SINKS  # noqa: E402
from bench.profiles import PROFILES  # noqa: E402
from bench.report import render_table, write_json  # noqa: E402
from bench.write import run_write_cell  # noqa: E402

WRITE_ORG_RECORDS = 1000  # the write cell inserts new rows; existing ones only set the scene
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="Account rows per extract cell (default: 100000 1000000)")
    parser.add_argument("--profiles", nargs="+", choices=sorted(PROFILES),
                        default=["loopback", "realistic"], help="network profiles to run")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHOD_KEYS),
                        default=list(METHOD_KEYS),
                        help="extract methods (default: all four)")
    parser.add_argument("--write-rows", type=int, default=100_000,
                        help="rows per write method; 0 skips the write cell (default 100000)")
    parser.add_argument("--large-size", type=int, default=5_000_000,
                        help="rows of the large loopback cell (simple-salesforce bulk2 vs "
                             "forcebeam only); 0 skips it (default 5000000)")
    parser.add_argument("--beam-args", default="",
                        help="extra Beam options for `forcebeam run`, one string")
    parser.add_argument("--sink", choices=sorted(SINKS), default="parquet",
                        help="file sink of the `forcebeam run` extracts (default parquet; "
                             "jsonl/csvfiles: forcebeam's Arrow sinks, json/csv: Beam's)")
    parser.add_argument("--skip-pipeline-only", action="store_true",
                        help="skip the pipeline-only cells (pages pre-rendered, one per sink)")
    parser.add_argument("--skip-serving", action="store_true",
                        help="skip the emulator serving benchmark (bench/emulator_serving.py)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="scratch directory (default: a temp dir, removed afterwards)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"JSON results file (default {DEFAULT_OUTPUT})")
    return parser.parse_args(argv)


def run_serving(records: int, log: Callable[[str], None]) -> dict[str, Any] | None:
    """How fast the emulator serves Bulk 2.0 query results (`bench.emulator_serving`), the
    ceiling of every client benchmark; kept in every full run."""
    try:
        from bench import emulator_serving
    except ImportError:
        log("  emulator serving benchmark not available (bench/emulator_serving.py missing)")
        return None
    log(f"emulator serving benchmark: {records:,} Accounts, raw pages, loopback")
    try:
        return emulator_serving.run(records=records, log=log)
    except Exception as exc:  # the serving figure must not sink the whole run
        log(f"  emulator serving benchmark failed: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}


def run_pipeline_only(org: Any, size: int, workdir: Path,
                      log: Callable[[str], None]) -> list[Measurement]:
    """Pipeline-only cells: the org's pages downloaded once, then one run per sink."""
    from bench import pipeline_only

    org.admin("PUT", "faults", json=PROFILES["loopback"].fault_spec())
    log(f"pipeline only: downloading the {size:,}-row pages once ...")
    rows, _ = pipeline_only.download_pages(org, workdir / "pages")
    results = []
    for sink in pipeline_only.PIPELINE_ONLY_SINKS:
        log(f"  pipeline only -> {sink} (1 worker) ...")
        results.append(pipeline_only.run_cell(workdir / "pages", sink, workdir, rows, size,
                                              log))
    shutil.rmtree(workdir, ignore_errors=True)
    return results


def run_large_cell(size: int, workdir: Path, beam_args: tuple[str, ...],
                   log: Callable[[str], None], sink: str) -> list[Measurement]:
    """The large loopback cell: the script and forcebeam only (the others add nothing new)."""
    from bench.extract import FORCEBEAM, SS_BULK2

    log(f"starting an org with {size:,} Accounts (large loopback cell) ...")
    org = start_bench_org(workdir / "org", size)
    try:
        return run_extract_cell(org, PROFILES["loopback"], size, workdir / "loopback",
                                [SS_BULK2, FORCEBEAM], beam_args, log, sink=sink)
    finally:
        org.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    methods = [m for m in EXTRACT_METHODS
               if m in {METHOD_KEYS[key] for key in args.methods}]
    beam_args = tuple(args.beam_args.split())
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="forcebeam-bench-"))

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    results: list[Measurement] = []
    profiles = [PROFILES[name] for name in args.profiles]
    started = time.perf_counter()
    try:
        for size in args.sizes:
            log(f"starting an org with {size:,} Accounts ...")
            org = start_bench_org(workdir / f"org-{size}", size)
            try:
                for profile in profiles:
                    log(f"profile {profile.name}: {profile.describe()}")
                    results += run_extract_cell(org, profile, size,
                                                workdir / f"{profile.name}-{size}", methods,
                                                beam_args, log, sink=args.sink)
                if not args.skip_pipeline_only and size == max(args.sizes):
                    results += run_pipeline_only(org, size, workdir / "pipeline-only", log)
            finally:
                org.stop()
                shutil.rmtree(workdir / f"org-{size}", ignore_errors=True)
        if args.large_size and "loopback" in args.profiles:
            results += run_large_cell(args.large_size, workdir / "large", beam_args, log,
                                      args.sink)
        if args.write_rows:
            org = start_bench_org(workdir / "org-write", WRITE_ORG_RECORDS)
            try:
                for profile in profiles:
                    results += run_write_cell(org, profile, args.write_rows,
                                              workdir / f"{profile.name}-write", beam_args, log)
            finally:
                org.stop()
        serving = None if args.skip_serving else run_serving(max(args.sizes), log)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    write_json(args.output, results, {k: str(v) for k, v in vars(args).items()}, serving)
    print(f"forcebeam benchmark ({time.perf_counter() - started:.0f}s; "
          + "; ".join(f"{n}: {PROFILES[n].describe()}" for n in args.profiles) + ")")
    print(render_table(results))
    if serving and "error" not in serving:
        print(f"emulator serving ({serving['records']:,} rows, one job, loopback): job render "
              f"{serving['job_render_seconds']} s ({serving['job_render_rows_per_second']:,} "
              "rows/s); pages "
              + ", ".join(f"{enc} {serving[enc]['mb_per_second']} MB/s = "
                          f"{serving[enc]['rows_per_second']:,} rows/s"
                          for enc in ("identity", "gzip") if enc in serving))
    elif serving:
        print(f"emulator serving: {serving['error']}")
    print(f"results: {args.output}")
    return 0 if all(r.error is None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
