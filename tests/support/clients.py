"""Third-party clients pointed at an emulated org, as their users build them.

simple-salesforce gets a session that trusts the emulator's CA and a token from the org's
client-credentials flow (``bench.org``), so tests exercise the library unmodified.
"""

from __future__ import annotations

import csv
import io

from simple_salesforce import Salesforce

from bench.org import login, session_for
from tests.support.org import EmulatedOrg


def simple_salesforce(org: EmulatedOrg) -> Salesforce:
    """An unmodified simple-salesforce client logged in to ``org``."""
    session = session_for(org)
    auth = login(org, session)
    return Salesforce(instance_url=auth.instance_url, session_id=auth.access_token,
                      session=session, version=auth.api_version)


def read_csv(text: str) -> list[dict[str, str]]:
    """A Bulk result file (header + rows) as dicts."""
    return list(csv.DictReader(io.StringIO(text)))
