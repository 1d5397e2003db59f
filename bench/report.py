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

from bench.extract import FORCEBEAM, FORCEBEAM_2PROC, RAW, SS_BULK2
from bench.measure import Measurement
from bench.profiles import PROFILES

TARGET_LOOPBACK_VS_RAW = 0.5
TARGET_REALISTIC_VS_BULK2 = 3.0
TARGET_RSS_GROWTH = 1.3


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
    """The three targets from the task, each with the measured figure and met/MISSED."""
    checks: list[dict[str, Any]] = []
    for method in (FORCEBEAM, FORCEBEAM_2PROC):
        sizes = sorted({r.size for r in results if r.method == method})
        for size in sizes:
            if _find(results, RAW, "loopback", size):
                checks.append(_check(f"loopback {size:,}: {method} / raw transfer",
                                     ratio(results, method, RAW, "loopback", size),
                                     TARGET_LOOPBACK_VS_RAW))
        for size in sizes:
            if size >= 1_000_000 and _find(results, SS_BULK2, "realistic", size):
                checks.append(_check(f"realistic {size:,}: {method} / simple-salesforce "
                                     "bulk2+csv",
                                     ratio(results, method, SS_BULK2, "realistic", size),
                                     TARGET_REALISTIC_VS_BULK2))
        if len(sizes) >= 2:
            small, large = sizes[0], sizes[-1]
            for profile in PROFILES:
                low, high = (_find(results, method, profile, small),
                             _find(results, method, profile, large))
                if low and high and low.peak_rss_bytes and high.peak_rss_bytes:
                    checks.append(_check(f"{profile}: {method} peak RSS {large:,} / {small:,}",
                                         high.peak_rss_bytes / low.peak_rss_bytes,
                                         TARGET_RSS_GROWTH, higher_is_better=False))
    return checks


def _check(name: str, value: float | None, target: float,
           higher_is_better: bool = True) -> dict[str, Any]:
    if value is None:
        status = "not measured"
    elif higher_is_better:
        status = "met" if value >= target else "MISSED"
    else:
        status = "met" if value <= target else "MISSED"
    op = ">=" if higher_is_better else "<="
    return {"name": name, "value": value, "target": f"{op} {target:g}x", "status": status}


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
        is_write = result.method.startswith("forcebeam write")
        unit = 10_000 if is_write else 100_000
        rss = ("-" if not result.peak_rss_bytes
               else f"{result.peak_rss_bytes / 2**20:,.0f}")
        vs_raw = vs_bulk2 = "-"
        if not is_write:
            for baseline, cell in ((RAW, 0), (SS_BULK2, 1)):
                value = ratio(results, result.method, baseline, result.profile, result.size)
                text = "-" if value is None or result.method == baseline else f"{value:.2f}"
                vs_raw, vs_bulk2 = (text, vs_bulk2) if cell == 0 else (vs_raw, text)
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
            value = "-" if check["value"] is None else f"{check['value']:.2f}x"
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
