"""The org's truth through paths independent of forcebeam: plain REST with requests (a
client-credentials token, ``bench.org.login``) or simple-salesforce, never our stages."""

from __future__ import annotations

import decimal
import json
from typing import Any

from bench.org import login
from tests.support.org import EmulatedOrg


def rest_records(org: EmulatedOrg, soql: str, *, include_deleted: bool = False
                 ) -> list[dict[str, Any]]:
    """Every record of ``soql`` via plain REST paging; JSON numbers as Decimal."""
    session = org.session()
    auth = login(org, session)
    records: list[dict[str, Any]] = []
    response = session.get(auth.data_url("queryAll" if include_deleted else "query"),
                           params={"q": soql}, headers=auth.headers(), timeout=120)
    while True:
        response.raise_for_status()
        page = json.loads(response.content, parse_float=decimal.Decimal)
        records += [{k: v for k, v in r.items() if k != "attributes"} for r in page["records"]]
        if page.get("done", True):
            return records
        response = session.get(auth.instance_url + page["nextRecordsUrl"],
                               headers=auth.headers(), timeout=120)


def describe(org: EmulatedOrg, sobject: str = "Account") -> dict[str, Any]:
    session = org.session()
    auth = login(org, session)
    response = session.get(auth.data_url(f"sobjects/{sobject}/describe"),
                           headers=auth.headers(), timeout=60)
    response.raise_for_status()
    return response.json()


def org_query(org: EmulatedOrg, soql: str) -> list[dict[str, Any]]:
    """The org's truth, read through simple-salesforce's REST query_all (not our stages)."""
    from simple_salesforce import Salesforce

    session = org.session()
    token = session.post(f"{org.info['login_url']}/services/oauth2/token", data={
        "grant_type": "password", "client_id": org.info["connected_app"]["consumer_key"],
        "client_secret": org.info["connected_app"]["consumer_secret"],
        "username": org.info["username"],
        "password": org.info["password"] + org.info["security_token"]}, timeout=30)
    token.raise_for_status()
    sf = Salesforce(instance_url=org.info["instance_url"],
                    session_id=token.json()["access_token"], session=session,
                    version=org.info["api_version"])
    return [{k: v for k, v in row.items() if k != "attributes"}
            for row in sf.query_all(soql)["records"]]
