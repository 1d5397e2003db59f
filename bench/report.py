"""Turn measurements into the one table `make bench` prints and the JSON it keeps.

Ratios are the headline (machine speed cancels out of them); absolute rows/s are printed
next to them so a reader can sanity-check the ratio's two sides.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.extract import FORCEBEAM, RAW, SS_BULK2
from bench.measure import Measurement
from bench.profiles import PROFILES
from bench.write import SS_UPSERT, WRITE_METHODS

#: Issue 11's targets (ratios in one run; pipeline-only figures are rows/s on one worker).
TARGET_PIPELINE_ONLY = {"pipeline only -> parquet": 200_000, "pipeline only -> jsonl": 120_000,
                        "pipeline only -> csvfiles": 120_000}
TARGET_REALISTIC_VS_RAW = 0.8
TARGET_REALISTIC_VS_BULK2 = 1.2
TARGET_LOOPBACK_VS_BULK2 = 1.0
TARGET_EXTRA_API_CALLS_PER_1M = 3
TARGET_RSS_GROWTH = 1.3
TARGET_RSS_MB = 800
TARGET_WRITE_VS_SS = 1.2
#: The forcebeam write compared with simple-salesforce's upsert of the same rows.
FB_UPSERT = "forcebeam write: Bulk upsert"


def _find(results: Iterable[Measurement], method: str, profile: str,
          size: int) -> Measurement | None:
    for result in results:
        if (result.method, result.profile, result.size) == (method, profile, size):
            return result if result.error is None else None
    return None


def ratio(results: list[Measurement], method: str, baseline: str, profile: str,
          size: int) -> float | None:
    """rows/s of `method` over rows/s of `baseline` in the same cell (None if either failed)."""
    ours, theirs = (_find(results, method, profile, size),
                    _find(results, baseline, profile, size))
    if not ours or not theirs or not theirs.rows_per_second:
        return None
    return ours.rows_per_second / theirs.rows_per_second


def targets(results: list[Measurement]) -> list[dict[str, Any]]:
    """Issue 11's targets, each with the measured figure and met/MISSED."""
    checks: list[dict[str, Any]] = []
    for method, floor in TARGET_PIPELINE_ONLY.items():
        for result in results:
            if result.method == method:
                checks.append(_check(f"{method} (1 worker, rows/s)",
                                     result.rows_per_second if result.error is None else None,
                                     floor, unit=""))
    sizes = sorted({r.size for r in results if r.method == FORCEBEAM})
    for size in (s for s in sizes if s >= 1_000_000):
        if _find(results, RAW, "realistic", size):
            checks.append(_check(f"realistic {size:,}: {FORCEBEAM} / raw transfer",
                                 ratio(results, FORCEBEAM, RAW, "realistic", size),
                                 TARGET_REALISTIC_VS_RAW))
        if _find(results, SS_BULK2, "realistic", size):
            checks.append(_check(f"realistic {size:,}: {FORCEBEAM} / simple-salesforce "
                                 "bulk2+csv", ratio(results, FORCEBEAM, SS_BULK2,
                                                    "realistic", size),
                                 TARGET_REALISTIC_VS_BULK2))
        if _find(results, SS_BULK2, "loopback", size):
            checks.append(_check(f"loopback {size:,}: {FORCEBEAM} / simple-salesforce "
                                 "bulk2+csv", ratio(results, FORCEBEAM, SS_BULK2,
                                                    "loopback", size),
                                 TARGET_LOOPBACK_VS_BULK2))
        for profile in PROFILES:
            ours, theirs = (_find(results, FORCEBEAM, profile, size),
                            _find(results, SS_BULK2, profile, size))
            if ours and theirs and ours.api_calls is not None and theirs.api_calls is not None:
                allowed = theirs.api_calls + TARGET_EXTRA_API_CALLS_PER_1M * size / 1_000_000
                checks.append(_check(f"{profile} {size:,}: {FORCEBEAM} API calls "
                                     f"(simple-salesforce: {theirs.api_calls})",
                                     ours.api_calls, allowed, higher_is_better=False,
                                     unit=""))
    jobs = [r.bulk_query_jobs for r in results if r.method == FORCEBEAM and r.error is None
            and r.bulk_query_jobs is not None]
    if jobs:
        checks.append(_check(f"{FORCEBEAM}: most Bulk query jobs of one read", max(jobs), 1,
                             higher_is_better=False, unit=""))
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        for profile in PROFILES:
            low, high = (_find(results, FORCEBEAM, profile, small),
                         _find(results, FORCEBEAM, profile, large))
            if low and high and low.peak_rss_bytes and high.peak_rss_bytes:
                checks.append(_check(f"{profile}: {FORCEBEAM} peak RSS {large:,} / {small:,}",
                                     high.peak_rss_bytes / low.peak_rss_bytes,
                                     TARGET_RSS_GROWTH, higher_is_better=False))
                checks.append(_check(f"{profile}: {FORCEBEAM} peak RSS at {large:,} (MB)",
                                     high.peak_rss_bytes / 2**20, TARGET_RSS_MB,
                                     higher_is_better=False, unit=""))
    for profile in PROFILES:
        write_sizes = sorted({r.size for r in results if r.method == FB_UPSERT
                              and r.profile == profile})
        for size in write_sizes:
            ours, theirs = (_find(results, FB_UPSERT, profile, size),
                            _find(results, SS_UPSERT, profile, size))
            if not theirs:
                continue
            checks.append(_check(f"{profile} {size:,}: {FB_UPSERT} / {SS_UPSERT}",
                                 ratio(results, FB_UPSERT, SS_UPSERT, profile, size),
                                 TARGET_WRITE_VS_SS))
            if ours and ours.api_calls is not None and theirs.api_calls is not None:
                checks.append(_check(f"{profile} {size:,}: {FB_UPSERT} API calls "
                                     f"(simple-salesforce: {theirs.api_calls})",
                                     ours.api_calls, theirs.api_calls,
                                     higher_is_better=False, unit=""))
    return checks


def _check(name: str, value: float | None, target: float, higher_is_better: bool = True,
           unit: str = "x") -> dict[str, Any]:
    if value is None:
        status = "not measured"
    elif higher_is_better:
        status = "met" if value >= target else "MISSED"
    else:
        status = "met" if value <= target else "MISSED"
    op = ">=" if higher_is_better else "<="
    return {"name": name, "value": value, "target": f"{op} {target:,g}{unit}",
            "status": status, "unit": unit}


def _fmt_int(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _per(result: Measurement, unit: int) -> str:
    if result.api_calls is None or not result.rows or result.error:
        return "-"
    return f"{result.api_calls * unit / result.rows:,.1f}"


def render_table(results: list[Measurement]) -> str:
    """One table: extract rows per (profile, size, method), then the write rows, then targets."""
    header = ("profile", "rows", "method", "rows/s", "sec", "API calls", "logins",
              "Bulk jobs", "peak RSS MB", "x raw", "x bulk2")
    lines: list[tuple[str, ...]] = []
    for result in results:
        is_write = result.method in WRITE_METHODS
        unit = 100_000
        rss = ("-" if not result.peak_rss_bytes
               else f"{result.peak_rss_bytes / 2**20:,.0f}")
        vs_raw = vs_bulk2 = "-"
        if not is_write:
            for baseline, cell in ((RAW, 0), (SS_BULK2, 1)):
                value = ratio(results, result.method, baseline, result.profile, result.size)
                text = "-" if value is None or result.method == baseline else f"{value:.2f}"
                vs_raw, vs_bulk2 = (text, vs_bulk2) if cell == 0 else (vs_raw, text)
        elif result.method != SS_UPSERT:   # writes: against the script's upsert (x bulk2)
            value = ratio(results, result.method, SS_UPSERT, result.profile, result.size)
            vs_bulk2 = "-" if value is None else f"{value:.2f}"
        rate = "FAILED" if result.error else _fmt_int(result.rows_per_second)
        lines.append((result.profile, f"{result.size:,}", result.method, rate,
                      f"{result.seconds:.1f}", f"{_per(result, unit)}/{unit // 1000}k",
                      "-" if result.logins is None else str(result.logins),
                      "-" if result.bulk_query_jobs is None else str(result.bulk_query_jobs),
                      rss, vs_raw, vs_bulk2))
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    right = {1, 3, 4, 5, 6, 7, 8, 9, 10}

    def fmt(row: tuple[str, ...]) -> str:
        return " | ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                          for i, cell in enumerate(row))

    out = [fmt(header), "-+-".join("-" * w for w in widths)]
    out += [fmt(row) for row in lines]
    checks = targets(results)
    if checks:
        out.append("")
        out.append("targets:")
        for check in checks:
            value = ("-" if check["value"] is None else f"{check['value']:.2f}x"
                     if check["unit"] == "x" else f"{check['value']:,.0f}")
            out.append(f"  {check['name']}: {value} (target {check['target']}) "
                       f"{check['status']}")
    failures = [r for r in results if r.error]
    if failures:
        out.append("")
        out.append("failures:")
        for result in failures:
            first_line = result.error.splitlines()[0] if result.error else ""
            out.append(f"  {result.profile} {result.size:,} {result.method}: {first_line[:300]}")
    return "\n".join(out)


def write_json(path: Path, results: list[Measurement], args: dict[str, Any],
               serving: dict[str, Any] | None) -> None:
    """Atomically write `latest.json`: inputs, host, every measurement, targets."""
    document = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "arguments": args,
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                 "platform": platform.platform()},
        "profiles": {name: {"latency_ms": p.latency_ms, "bandwidth_mbps": p.bandwidth_mbps,
                            "bulk_job_delay_seconds": p.bulk_job_delay_seconds,
                            "description": p.describe()} for name, p in PROFILES.items()},
        "measurements": [r.to_json() for r in results],
        "targets": targets(results),
        "emulator_serving": serving,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=2, default=str))
    temporary.replace(path)
