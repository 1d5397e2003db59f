"""The emulated org a benchmark talks to: start it shaped by a profile, log in, describe.

Every benchmark starts its own emulator through the real command line (the same code path as
`tests/support/org.py`, reused rather than copied) on ephemeral loopback ports, so a run
never depends on anything already running and never reaches past 127.0.0.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.support.org import EmulatedOrg, start_org, trusting_session

# Compound fields cannot be selected in Bulk 2.0 (their components can), so every method
# benchmarked selects the same non-compound field list.
COMPOUND_TYPES = frozenset({"address", "location"})


@dataclass
class Login:
    """An OAuth session obtained once for the baselines (client credentials, My Domain)."""

    access_token: str
    instance_url: str
    api_version: str

    def data_url(self, path: str) -> str:
        return f"{self.instance_url}/services/data/v{self.api_version}/{path.lstrip('/')}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def start_bench_org(workdir: Path, records: int,
                    extra_args: tuple[str, ...] = ()) -> EmulatedOrg:
    """Start `python -m forcebeam.emulator` with `records` Accounts (no shaping here)."""
    workdir.mkdir(parents=True, exist_ok=True)
    # start_org returns as soon as an info file exists: a stale one from an earlier run in the
    # same --workdir would point at a dead port.
    (workdir / "info.json").unlink(missing_ok=True)
    return start_org(workdir, records=records, extra_args=extra_args)


def session_for(org: EmulatedOrg) -> requests.Session:
    """A requests.Session verifying TLS against the emulator's CA (env vars cannot override)."""
    return trusting_session(org.ca_cert)


def login(org: EmulatedOrg, session: requests.Session) -> Login:
    """Client-credentials token from the org's My Domain — one login for a baseline run."""
    app = org.info["connected_app"]
    response = session.post(
        f"{org.info['login_url']}/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": app["consumer_key"],
              "client_secret": app["consumer_secret"]},
        timeout=60)
    response.raise_for_status()
    body = response.json()
    return Login(access_token=body["access_token"], instance_url=body["instance_url"],
                 api_version=org.info["api_version"])


def extract_fields(session: requests.Session, auth: Login, sobject: str = "Account") -> list[str]:
    """Every field of `sobject` that Bulk 2.0 can select (describe order, compounds left out)."""
    response = session.get(auth.data_url(f"sobjects/{sobject}/describe"),
                           headers=auth.headers(), timeout=60)
    response.raise_for_status()
    fields: list[dict[str, Any]] = response.json()["fields"]
    return [field["name"] for field in fields if field["type"] not in COMPOUND_TYPES]


def extract_soql(fields: list[str], sobject: str = "Account") -> str:
    """The one extract query every method runs (names come from describe, not from users)."""
    return f"SELECT {', '.join(fields)} FROM {sobject}"  # noqa: S608 - SOQL, not SQL
