"""Start the emulator through its real command line and talk to its admin API.

Tests use the machine-readable contract of ARCHITECTURE §6 (the info file), exactly as a
user's scripts would, so the CLI itself is covered by every test run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

READY_TIMEOUT_SECONDS = 180


class PinnedCAAdapter(HTTPAdapter):
    """Verify TLS against one CA file, whatever REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE say.

    requests merges the environment's CA bundle over `Session.verify`; passing `verify` at
    the adapter level is the one place the environment cannot override.
    """

    def __init__(self, ca_file: str, **kwargs: Any) -> None:
        self._ca_file = ca_file
        super().__init__(**kwargs)

    def send(self, request, **kwargs):  # type: ignore[override]
        kwargs["verify"] = self._ca_file
        return super().send(request, **kwargs)


def trusting_session(ca_file: str, client_cert: tuple[str, str] | None = None) -> requests.Session:
    """A requests.Session that trusts the emulator's CA (and optionally presents a cert)."""
    session = requests.Session()
    session.mount("https://", PinnedCAAdapter(ca_file))
    if client_cert:
        session.cert = client_cert
    return session


@dataclass
class EmulatedOrg:
    """A running emulator process and the facts from its info file."""

    process: subprocess.Popen
    info: dict[str, Any]
    data_dir: Path
    _session: requests.Session | None = field(default=None, repr=False)

    @property
    def ca_cert(self) -> str:
        return self.info["ca_cert"]

    def session(self) -> requests.Session:
        """A fresh session trusting the emulator's CA."""
        return trusting_session(self.ca_cert)

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the admin API (`/__emulator/...`); raises on HTTP errors."""
        if self._session is None:
            self._session = self.session()
        url = self.info["admin_url"].rstrip("/") + "/" + path.lstrip("/")
        response = self._session.request(method, url, timeout=60, **kwargs)
        response.raise_for_status()
        return response

    def counters(self) -> dict[str, Any]:
        return self.admin("GET", "counters").json()

    def reset_counters(self) -> None:
        self.admin("POST", "counters/reset")

    def __enter__(self) -> EmulatedOrg:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_org(workdir: Path, records: int = 1000,
              extra_args: tuple[str, ...] | list[str] = ()) -> EmulatedOrg:
    """Run `python -m forcebeam.emulator` on ephemeral ports and wait for its info file."""
    data_dir = workdir / "data"
    info_file = workdir / "info.json"
    log_file = (workdir / "emulator.log").open("wb")
    command = [sys.executable, "-m", "forcebeam.emulator", "--port", "0", "--mtls-port", "0",
               "--secret-manager-port", "0", "--records", str(records),
               "--data-dir", str(data_dir), "--info-file", str(info_file), *extra_args]
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                               cwd=Path(__file__).resolve().parents[2], env=os.environ.copy())
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (workdir / "emulator.log").read_text(errors="replace")
            raise RuntimeError(f"emulator exited with {process.returncode}:\n{log[-4000:]}")
        if info_file.exists():
            try:
                info = json.loads(info_file.read_text())
            except json.JSONDecodeError:
                time.sleep(0.05)
                continue
            return EmulatedOrg(process=process, info=info, data_dir=data_dir)
        time.sleep(0.05)
    process.kill()
    raise TimeoutError(f"emulator not ready after {READY_TIMEOUT_SECONDS}s: {command}")
