"""Login flows Salesforce is retiring, with their dates: one place for every warning.

``validate``, ``check`` and ``run`` (and a legacy flow's first login) all say the same
thing: what retires when, what to move to, and, once the date has passed, what Salesforce
answers. "Today" is injectable (argument, or ``FORCEBEAM_TODAY=YYYY-MM-DD`` to preview what a
pipeline will say on a later date), so the date logic is tested both sides of each date.

Sources: Salesforce Help 005228017 / 005461976 (the username-password flow ends for connected
apps on 20 Feb 2027; External Client Apps never offer it) and the SOAP API ``login()`` page
(not available from API 65.0; retired for all versions in the Summer '27 release).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date

README_LINK = "README.md#choosing-an-auth-type"
TODAY_VARIABLE = "FORCEBEAM_TODAY"


@dataclass(frozen=True)
class Sunset:
    flow: str           # the connection's auth type
    what: str           # what Salesforce retires, in its words
    retires_on: date    # first day Salesforce no longer answers
    when: str           # the date as people say it
    before: str         # extra facts while it still works
    after: str          # what Salesforce answers once it is gone


SUNSETS = {
    "password": Sunset(
        "password", "the OAuth username-password flow", date(2027, 2, 20), "20 Feb 2027",
        "it never works with an External Client App (Salesforce answers invalid_grant "
        "'authentication failure')",
        "the token endpoint answers invalid_grant 'authentication failure' for every app"),
    "basic": Sunset(
        "basic", "SOAP API login()", date(2027, 6, 1), "the Summer '27 release (June 2027)",
        "it does not exist from API 65.0, so forcebeam logs in through the SOAP 64.0 endpoint "
        "whatever api_version the REST and Bulk calls use; orgs created from Winter '26 have "
        "it off, and users need the 'Use Any API Auth' permission",
        "every SOAP login() answers a fault (UNSUPPORTED_API_VERSION) in every API version"),
}
REPLACEMENT = ("move this connection to jwt_bearer or client_credentials on an External Client "
               f"App (or token_exchange on Google Cloud); see {README_LINK}")


def today(value: date | None = None) -> date:
    """The date warnings are computed for: ``value``, else $FORCEBEAM_TODAY, else today."""
    if value is not None:
        return value
    override = os.environ.get(TODAY_VARIABLE, "").strip()
    if override:
        try:
            return date.fromisoformat(override)
        except ValueError:
            pass  # a malformed override must not break a run: use the real date
    return date.today()


def warning_for(auth_type: str, on: date | None = None) -> str | None:
    """One sentence about a retiring flow (None for flows that are not retiring)."""
    sunset = SUNSETS.get(auth_type)
    if sunset is None:
        return None
    if today(on) >= sunset.retires_on:
        return (f"auth type '{auth_type}' uses {sunset.what}, which Salesforce retired on "
                f"{sunset.when}: {sunset.after}; {REPLACEMENT}")
    return (f"auth type '{auth_type}' uses {sunset.what}, which Salesforce retires on "
            f"{sunset.when}; {sunset.before}; {REPLACEMENT}")
