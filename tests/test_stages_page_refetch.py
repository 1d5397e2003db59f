"""A Bulk result page cut off mid-download is fetched again by its locator, no row lost/doubled.

The emulator cannot cut a response halfway, so the test puts a plain TCP relay between the
client and the org (TLS passes through it untouched, still verified end to end) that cuts
the connection once, after part of the first large response has gone through. The session
is an existing access token pointed at the relay (the ``access_token`` auth type).
"""

from __future__ import annotations

import socket
import threading

import pytest

from bench.org import login
from forcebeam.stages.salesforce.read import ReadFromSalesforce
from tests.support.stages import run_collect
from tests.support.truth import rest_records

CUT_AFTER_BYTES = 40_000


class CuttingRelay:
    """Loopback TCP relay that aborts the first connection carrying > N response bytes."""

    def __init__(self, upstream_port: int, cuts: int = 2) -> None:
        self._upstream = upstream_port
        self._cuts_left = cuts
        self.cuts = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._open: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._upstream))
            self._open += [client, upstream]
            for source, target, downstream in ((client, upstream, False),
                                               (upstream, client, True)):
                thread = threading.Thread(target=self._pump, daemon=True,
                                          args=(source, target, downstream, client, upstream))
                thread.start()

    def _pump(self, source, target, downstream, client, upstream) -> None:
        sent = 0
        try:
            while True:
                data = source.recv(16384)
                if not data:
                    break
                target.sendall(data)
                sent += len(data)
                if downstream and sent > CUT_AFTER_BYTES:
                    with self._lock:
                        cut = self._cuts_left > 0
                        if cut:
                            self._cuts_left -= 1
                            self.cuts += 1
                    if cut:
                        break
        except OSError:
            pass
        for sock in (client, upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self._stop = True
        self._server.close()
        for sock in self._open:
            try:
                sock.close()
            except OSError:
                pass


@pytest.fixture
def relay(org_factory):
    org = org_factory(records=8000)
    port = int(org.info["instance_url"].rsplit(":", 1)[1])
    running = CuttingRelay(port)
    try:
        yield org, running
    finally:
        running.close()


def test_page_cut_midway_is_refetched_by_locator(relay, tmp_path, monkeypatch, caplog):
    caplog.set_level("WARNING")
    org, cutter = relay
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FB_STAGES_TEST_TOKEN", login(org, org.session()).access_token)
    fields = ["Id", "Name", "BillingStreet", "BillingCity", "Phone", "Website", "Industry"]
    truth = {r["Id"]: r["Name"] for r in rest_records(org, "SELECT Id, Name FROM Account")}
    connection = {"login_url": org.info["login_url"], "api_version": org.info["api_version"],
                  "ca_bundle": org.ca_cert,
                  "auth": {"type": "access_token", "access_token": "env://FB_STAGES_TEST_TOKEN",
                           "instance_url": f"https://127.0.0.1:{cutter.port}"}}
    org.reset_counters()

    rows, _ = run_collect(lambda: ReadFromSalesforce(connection, sobject="Account",
                                                     fields=fields, mode="bulk", split="none",
                                                     bulk_page_size=4000),
                          out=tmp_path / "out")

    assert cutter.cuts >= 1, "the relay must have cut a download"
    ids = [r["Id"] for r in rows]
    assert len(ids) == len(set(ids)) == len(truth), "no row lost, none twice"
    assert {r["Id"]: r["Name"] for r in rows} == truth
    pages = org.counters()["api_calls"].get("bulk_results", 0)
    assert pages >= 2 + cutter.cuts, f"each cut page was fetched again: {pages} result calls"
    refetches = [r for r in caplog.records if "re-fetching Bulk results page" in r.getMessage()]
    assert refetches, "the page itself was re-fetched (not the whole job re-run)"


def test_pages_followed_by_locator_are_refetched_by_the_given_policy(relay, tmp_path,
                                                                      monkeypatch):
    """The locator-following reader (API versions before ``resultPages``) fetches a cut page
    again by its own locator, keeping no row of the cut download, and waits as the retry
    policy it is given says."""
    from forcebeam.auth import get_client
    from forcebeam.auth.retry import RetryPolicy
    from forcebeam.stages.salesforce.bulk_query import iter_pages, run_query_job
    from forcebeam.stages.salesforce.config import as_connection

    org, cutter = relay
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FB_STAGES_STREAM_TOKEN", login(org, org.session()).access_token)
    truth = {r["Id"]: r["Name"] for r in rest_records(org, "SELECT Id, Name FROM Account")}
    client = get_client(as_connection({
        "login_url": org.info["login_url"], "api_version": org.info["api_version"],
        "ca_bundle": org.ca_cert,
        "auth": {"type": "access_token", "access_token": "env://FB_STAGES_STREAM_TOKEN",
                 "instance_url": f"https://127.0.0.1:{cutter.port}"}}))
    waits: list[float] = []
    policy = RetryPolicy(retries=3, first_wait=0.01, sleep=waits.append)

    job_id = run_query_job(client, "SELECT Id, Name FROM Account")
    pages = list(iter_pages(client, job_id, max_records=4000, retry=policy))
    rows = [row for page in pages for row in page.table.to_pylist()]

    assert cutter.cuts >= 1, "the relay must have cut a download"
    assert len(pages) == -(-len(truth) // 4000), "one page per 4,000 rows, each read whole"
    ids = [r["Id"] for r in rows]
    assert len(ids) == len(set(ids)) == len(truth), "no row lost, none twice"
    assert {r["Id"]: r["Name"] for r in rows} == truth
    assert waits[:1] == [0.01], "the page was re-read after the policy's first wait"
