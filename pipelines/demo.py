"""`forcebeam demo` / `make demo`: the embedded default, end to end, on one machine.

Starts the emulated org (a subprocess on ephemeral loopback ports, data in a temp dir),
points the example pipeline at it through environment variables taken from the emulator's
info file, runs `pipelines/examples/demo.yaml` (JWT bearer with the key from the emulator's
Secret Manager; Account/Contact/Opportunity to files; a CSV upserted back with one bad row
that lands in a dead-letter file), prints the summary and the files written, and stops the
emulator whatever happened.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from forcebeam.auth.errors import FatalError
from forcebeam.pipelines.emulator_env import OFFLINE_GOOGLE_ENV, missing_emulator_stack, use_org

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
DEMO_FILE = EXAMPLES_DIR / "demo.yaml"
READY_TIMEOUT_SECONDS = 180


class EmulatorStartError(FatalError):
    """The emulator exited or never wrote its info file."""


@contextmanager
def running_emulator(workdir: Path, records: int) -> Iterator[dict[str, Any]]:
    """Run `python -m forcebeam.emulator` on ephemeral ports; yield its info; always stop it."""
    info_file = workdir / "info.json"
    log_path = workdir / "emulator.log"
    command = [sys.executable, "-m", "forcebeam.emulator", "--port", "0", "--mtls-port", "0",
               "--secret-manager-port", "0", "--records", str(records),
               "--data-dir", str(workdir / "data"), "--info-file", str(info_file)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield _wait_for_info(process, info_file, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_for_info(process: subprocess.Popen, info_file: Path,
                   log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise EmulatorStartError(f"the emulator exited with {process.returncode}:\n{tail}")
        if info_file.exists():
            try:
                return json.loads(info_file.read_text())
            except json.JSONDecodeError:
                pass  # written atomically, but be patient with slow filesystems
        time.sleep(0.1)
    raise EmulatorStartError(f"the emulator was not ready after {READY_TIMEOUT_SECONDS}s "
                             f"(log: {log_path})")


def _list_outputs(out_dir: Path, stream: TextIO) -> None:
    for leftover in out_dir.glob(".temp*"):  # Beam's file sinks leave empty temp dirs
        if leftover.is_dir() and not any(leftover.iterdir()):
            leftover.rmdir()
    print(f"\nfiles in {out_dir}:", file=stream)
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
        print(f"  {path.relative_to(out_dir)}  ({path.stat().st_size:,} bytes)", file=stream)


def run_demo(out_dir: str = "out", records: int = 2000, stream: TextIO | None = None,
             beam_args: list[str] | None = None) -> int:
    """The whole demo; returns the exit code of the pipeline run (0 on success)."""
    stream = stream or sys.stdout
    missing = missing_emulator_stack()
    if missing:
        print(f"forcebeam demo: {missing}", file=sys.stderr)
        return 1
    # Before anything imports google-auth: never look for a GCE metadata server.
    os.environ.update(OFFLINE_GOOGLE_ENV)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="forcebeam-demo-"))
    saved = dict(os.environ)
    try:
        print(f"starting the emulated org ({records:,} Accounts) ...", file=stream, flush=True)
        with running_emulator(workdir, records) as info:
            print(f"org ready at {info['instance_url']} (Secret Manager at "
                  f"{info['secret_manager_host']})", file=stream, flush=True)
            use_org(info)
            os.environ["FORCEBEAM_OUT"] = str(out)
            os.environ["FORCEBEAM_EXAMPLES_DIR"] = str(EXAMPLES_DIR)
            # The demo's describe cache lives and dies with its org.
            os.environ["FORCEBEAM_CACHE_DIR"] = str(workdir / "cache")
            from forcebeam.pipelines.run import run_file

            code = run_file(str(DEMO_FILE), beam_args or [], stream=stream)
        if code == 0:
            _list_outputs(out, stream)
            print("\ndemo finished: rejected rows (with Salesforce's code and message) are in "
                  "rejected_invoices*", file=stream)
        return code
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(workdir, ignore_errors=True)
