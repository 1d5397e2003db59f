"""Run `forcebeam run FILE` as a user would (a child process) and watch its memory.

The wall time includes interpreter start, Beam pipeline construction, login and the final
file commit: that is the latency a user waits for, and the only figure comparable with the
baselines (which also start from nothing but a login).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.rss import PeakRssSampler

RUN_TIMEOUT_SECONDS = 3600

# google-auth reads these at import time: never probe a metadata server (loopback only).
GOOGLE_AUTH_GUARD = {"NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1:9",
                     "GCE_METADATA_IP": "127.0.0.1:9"}


def forcebeam_command() -> list[str]:
    """The installed console script next to this interpreter, else the module it points at."""
    script = Path(sys.executable).with_name("forcebeam")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main())"]


class ForcebeamRunError(RuntimeError):
    """`forcebeam run` exited non-zero; the message holds the tail of its output."""


def run_pipeline(pipeline_file: Path, workdir: Path, beam_args: tuple[str, ...] = (),
                 secret_manager_host: str | None = None) -> dict[str, Any]:
    """Run the file; return wall seconds, peak RSS of the process tree and the log path."""
    env = {**os.environ, **GOOGLE_AUTH_GUARD}
    if secret_manager_host:
        env["SECRET_MANAGER_EMULATOR_HOST"] = secret_manager_host
    log_path = workdir / f"{pipeline_file.stem}.log"
    command = [*forcebeam_command(), "run", str(pipeline_file), *beam_args]
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                                   env=env)
        with PeakRssSampler(process.pid) as sampler:
            try:
                code = process.wait(timeout=RUN_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                code = -9
        seconds = time.perf_counter() - started
    if code != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise ForcebeamRunError(f"forcebeam run exited {code}; log {log_path}:\n{tail}")
    return {"seconds": seconds, "peak_rss_bytes": sampler.peak_bytes, "log": str(log_path),
            "command": " ".join(command[-(len(beam_args) + 2):])}


def count_json_lines(prefix: Path) -> int:
    """Rows written by WriteToJson under `prefix` (all shards), counted without loading them."""
    total = 0
    for shard in sorted(prefix.parent.glob(prefix.name + "*")):
        if shard.is_file():
            with shard.open("rb") as handle:
                total += sum(1 for line in handle if line.strip())
    return total


def count_output_rows(prefix: Path, sink: str) -> int:
    """Rows a sink wrote under `prefix` (all shards): Parquet from its metadata, CSV parsed
    (quoted values hold line breaks), JSON by lines."""
    shards = [p for p in sorted(prefix.parent.glob(prefix.name + "*")) if p.is_file()]
    if sink == "parquet":
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(p).metadata.num_rows for p in shards)
    if sink in ("csv", "csvfiles"):
        import pyarrow.csv as pa_csv

        options = pa_csv.ParseOptions(newlines_in_values=True)   # values span lines
        return sum(pa_csv.read_csv(shard, parse_options=options).num_rows
                   for shard in shards if shard.stat().st_size)
    return count_json_lines(prefix)
