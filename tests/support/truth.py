"""The org's truth through paths independent of forcebeam: plain REST with requests (a
client-credentials token, ``bench.org.login``) or simple-salesforce, never our stages."""

from __future__ import annotations

import decimal
import json
from typing import Any

from bench.org import login
from tests.support.bulk import wait_until_terminal
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


class Rest:
    """Plain REST/Bulk calls as the integration user's org admin would make them."""

    def __init__(self, org):
        self.org = org
        self.session = org.session()
        self.auth = login(org, self.session)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, self.auth.data_url(path),
                                        headers=self.auth.headers(), timeout=60, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def count(self, sobject: str) -> int:
        soql = f"SELECT COUNT() FROM {sobject}"  # noqa: S608 - a describe name
        return self.call("GET", "query", params={"q": soql})["totalSize"]

    def ids(self, soql: str, include_deleted: bool = False) -> list[str]:
        return [r["Id"] for r in rest_records(self.org, soql, include_deleted=include_deleted)]

    def hard_delete(self, sobject: str, ids: list[str]) -> None:
        job = self.call("POST", "jobs/ingest", json={"object": sobject,
                                                      "operation": "hardDelete"})
        response = self.session.put(self.auth.data_url(f"jobs/ingest/{job['id']}/batches"),
                                    data="Id\n" + "\n".join(ids) + "\n",
                                    headers={**self.auth.headers(), "Content-Type": "text/csv"},
                                    timeout=60)
        response.raise_for_status()
        self.call("PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
        done = wait_until_terminal(lambda: self.call("GET", f"jobs/ingest/{job['id']}"),
                                   job["id"])
        assert done["state"] == "JobComplete" and done["numberRecordsProcessed"] == len(ids)
