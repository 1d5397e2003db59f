"""Bulk API 2.0 query jobs: create, poll until JobComplete, download result pages.

The read stage downloads whole result pages (gzip on the wire) and parses each with Arrow
(``fetch_page``): a page is only handed on once it parsed completely and has exactly the
advertised ``Sforce-NumberOfRecords`` rows, else it is fetched again by its own
URL (locator), so nothing is lost or doubled. Pages are enumerated up front with
``resultPages`` (API 58.0+, up to 5 page URLs per call) so that workers download them in
parallel; older API versions follow ``Sforce-Locator`` from page to page. A page's gzip'd
body stays compressed until Arrow decompresses it while parsing, and a reader holds one
parsed page (two when it parses the next one ahead, see ``fetch_pages``), so memory per
worker does not grow with the read.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from forcebeam.auth import responses
from forcebeam.auth.errors import FatalError, TransientError
from forcebeam.auth.retry import DEFAULT_RETRY, RetryPolicy
from forcebeam.stages.salesforce.rest_query import ApiClient

__all__ = ["BulkQueryRefusedError", "BulkJobFailedError", "create_query_job", "run_query_job",
           "delete_query_job", "deleting_after", "wait_for_job", "PollSchedule",
           "result_page_urls", "fetch_page", "fetch_pages", "iter_pages", "ResultPage",
           "PagesHeld", "download_page"]

LOG = logging.getLogger(__name__)
#: Rows per results page: 100k keeps a 1M-row read at 10 downloads (API calls) while a page
#: (~30 MB of CSV for 24 fields) stays small next to a worker's memory.
PAGE_MAX_RECORDS = 100_000
#: A body cut mid-download surfaces as one of these (the HTTP level cannot resend a request
#: whose answer already began); they become a transient ``_CutPageError``.
_DOWNLOAD_ERRORS = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                    http.client.HTTPException, OSError)


class BulkQueryRefusedError(FatalError):
    """Salesforce refused to run this query through Bulk 2.0 (REST can serve it)."""


class BulkJobFailedError(FatalError):
    """A Bulk 2.0 job ended Failed/Aborted, never completed within the timeout, or one of
    its result pages kept failing after the retry policy's attempts."""


class _TruncatedPageError(TransientError):
    """A results page came back shorter than advertised: fetched again by its URL."""


class _CutPageError(TransientError):
    """A results page's download broke off (connection dropped or reset mid-body)."""


#: What a page re-read retries: a page that came back cut, however that showed.
_PAGE_CUT = (_TruncatedPageError, _CutPageError)


def _cause_name(error: BaseException) -> str:
    """The name of what went wrong, for the log: the download's own error if it was one."""
    if isinstance(error, _CutPageError) and error.__cause__ is not None:
        return type(error.__cause__).__name__
    return type(error).__name__


def create_query_job(client: ApiClient, soql: str, *, include_deleted: bool = False
                     ) -> dict[str, Any]:
    """Create a query job without waiting for it; returns its job info.

    Raises ``BulkQueryRefusedError`` when job creation is rejected as unsupported (compound
    fields, unsupported object or clause) so the caller can fall back to REST.
    """
    from forcebeam.auth.errors import SalesforceApiError

    body = {"operation": "queryAll" if include_deleted else "query", "query": soql,
            "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF"}
    try:
        return client.request("POST", "jobs/query", json=body).json()
    except SalesforceApiError as error:
        if responses.bulk_refuses_query(error):
            raise BulkQueryRefusedError(f"{error.error_code}: {error.message}") from error
        raise


def run_query_job(client: ApiClient, soql: str, *, include_deleted: bool = False,
                  timeout_seconds: float = 3600.0, job_id: str | None = None) -> str:
    """Wait for JobComplete of ``job_id`` (or of a new job for ``soql``); returns the job id.

    ``job_id`` is a job submitted earlier (at planning, so the org runs every unit's job
    while earlier units are read). If that job is gone (deleted after a previous attempt
    of the same unit read it), a new one is created.
    """
    from forcebeam.auth.errors import SalesforceApiError

    if job_id:
        path = f"jobs/query/{job_id}"
        try:
            return wait_for_job(client, path, client.request("GET", path).json(),
                                timeout_seconds)["id"]
        except SalesforceApiError as error:
            if error.status != 404:
                raise
            LOG.info("Bulk job %s is gone (an earlier attempt read it); submitting again",
                     job_id)
    job = create_query_job(client, soql, include_deleted=include_deleted)
    return wait_for_job(client, f"jobs/query/{job['id']}", job, timeout_seconds)["id"]


def wait_for_job(client: ApiClient, path: str, job: dict[str, Any],
                 timeout_seconds: float, *, expected_records: int | None = None
                 ) -> dict[str, Any]:
    """Poll a Bulk 2.0 job (query or ingest) until JobComplete; returns its final info.

    Each poll is an API call of the org's daily budget. Jobs complete after a delay, so the
    poll backs off from 0.25 s to 2 s between calls; an ingest job of ``expected_records``
    is first polled when it could be done at the fastest (``PollSchedule``), and it reports
    its progress (``numberRecordsProcessed``), so once a poll has seen it move the next one
    waits until the job should be done, but never longer than half the time waited so far
    (nor 30 s): a 30-minute job costs a few dozen polls instead of ~900, and a wrong guess
    costs at most a third of the job's time.
    """
    deadline = time.monotonic() + timeout_seconds
    schedule = PollSchedule(expected_records, started=time.monotonic())
    while True:
        state = job.get("state")
        if state == "JobComplete":
            return job
        if state in ("Failed", "Aborted"):
            raise BulkJobFailedError(f"Bulk job {job.get('id')} ended {state}: "
                                f"{job.get('errorMessage') or 'no message from Salesforce'}")
        if time.monotonic() > deadline:
            raise BulkJobFailedError(f"Bulk job {job.get('id')} still {state} after "
                                f"{timeout_seconds:.0f}s; raise the timeout or split more")
        time.sleep(schedule.next_delay())
        job = client.request("GET", path).json()
        schedule.observe(job, time.monotonic())


class PollSchedule:
    """When to poll a job next: back off, or aim at the completion its progress predicts."""

    FIRST = 0.25
    BACKOFF_LIMIT = 2.0
    PREDICTED_LIMIT = 30.0
    #: Faster than any org processes ingest records (Salesforce publishes no figure; Bulk
    #: API 2.0 loads of simple objects reach thousands a second; the local emulated org
    #: ~90k): before ``expected_records`` / this the job cannot be done, and a poll would
    #: only show that it started (a 100k-record job's first poll: 1 s; the next one aims at
    #: the completion its progress predicts).
    FASTEST_RECORDS_PER_SECOND = 100_000

    def __init__(self, expected_records: int | None = None, started: float = 0.0) -> None:
        self._expected = expected_records or 0
        self._started = started
        self._delay = min(max(self.FIRST, self._expected / self.FASTEST_RECORDS_PER_SECOND),
                          self.PREDICTED_LIMIT)
        self._predicted: float | None = None
        self._progress: tuple[float, int] | None = None   # (when, processed) first seen

    def next_delay(self) -> float:
        if self._predicted is not None:
            return self._predicted
        delay = self._delay
        self._delay = min(self._delay * 1.5, self.BACKOFF_LIMIT)
        return delay

    def observe(self, job: dict[str, Any], now: float) -> None:
        """Take a poll's answer: with progress seen, predict the remaining time.

        The first progress is measured from the start (queue time included, so the guess is
        late rather than early); later ones from the first progress seen.
        """
        self._predicted = None
        try:
            processed = int(job.get("numberRecordsProcessed") or 0)
        except (TypeError, ValueError):
            return
        if not self._expected or processed <= 0 or processed >= self._expected:
            return
        if self._progress is None:
            self._progress = (now, processed)
            since, done = self._started, 0
        else:
            since, done = self._progress
        if processed <= done or now <= since:
            return
        rate = (processed - done) / (now - since)
        remaining = (self._expected - processed) / rate
        patience = max(self.BACKOFF_LIMIT, (now - self._started) / 2)
        self._predicted = min(max(remaining, self.FIRST), patience, self.PREDICTED_LIMIT)


def delete_query_job(client: ApiClient, job_id: str) -> None:
    """Best effort: completed jobs hold result files in the org until deleted."""
    try:
        client.request("DELETE", f"jobs/query/{job_id}")
    except Exception as error:  # noqa: BLE001 - cleanup must never fail a read
        LOG.debug("could not delete bulk query job %s: %s", job_id, type(error).__name__)


def discard_query_job(client: ApiClient, job_id: str) -> None:
    """Best effort: abort a job nobody will read (Salesforce deletes only a job that has
    stopped), then delete it."""
    try:
        client.request("PATCH", f"jobs/query/{job_id}", json={"state": "Aborted"})
    except Exception as error:  # noqa: BLE001 - already complete (INVALIDJOBSTATE), or gone
        LOG.debug("could not abort bulk query job %s: %s", job_id, type(error).__name__)
    delete_query_job(client, job_id)


def deleting_after(pages: Iterator[ResultPage], count: int, client: ApiClient,
                   job_id: str) -> Iterator[ResultPage]:
    """``pages`` (all ``count`` pages of ``job_id``), deleting the job once the last one is
    in hand, parsed and complete: on a thread, while the caller still writes that page.

    The delete is waited for before this generator ends, so a read never finishes (nor its
    process exits) with the request in flight; a page that fails deletes nothing.
    """
    import threading

    deleting: threading.Thread | None = None
    number = 0
    try:
        while True:
            # Handed on from a list, so this frame holds no page while the caller has it
            # (the caller lets a page's blocks go one by one).
            ahead = [next(pages, None)]
            if ahead[0] is None:
                return
            number += 1
            if number == count:
                deleting = threading.Thread(target=delete_query_job, args=(client, job_id),
                                            name="bulk-job-delete", daemon=True)
                deleting.start()
            yield ahead.pop()
    finally:
        if deleting is not None:
            deleting.join()


# ------------------------------------------------------------------ whole pages, as Arrow

#: ``resultPages`` exists from this API version on (Salesforce API 58.0, Summer '23).
RESULT_PAGES_MIN_VERSION = 58.0


@dataclass(frozen=True)
class ResultPage:
    """One downloaded, complete results page: its rows as string columns, and the next."""

    table: Any                 # pyarrow.Table of string columns (empty field = null)
    next_locator: str | None   # None on the last page


def result_page_urls(client: ApiClient, job_id: str, *, max_records: int
                     ) -> list[str] | None:
    """Every results-page URL of a completed job (``resultPages``), or None if the org's
    API version predates it (the caller then follows locators).

    One call returns up to 5 URLs; the calls follow ``nextRecordsUrl`` until ``done``.
    """
    if float(client.api_version) < RESULT_PAGES_MIN_VERSION:   # "NN.0", checked by auth
        return None
    from forcebeam.auth.errors import SalesforceApiError

    urls: list[str] = []
    path: str = f"jobs/query/{job_id}/resultPages"
    params: dict[str, Any] | None = {"maxRecords": max_records}
    while True:
        try:
            body = client.request("GET", path, params=params,
                                  headers={"Accept": "application/json"}).json()
        except SalesforceApiError as error:
            if error.status == 404 and not urls:
                return None
            raise
        urls.extend(page["resultUrl"] for page in body.get("resultPages") or [])
        following = body.get("nextRecordsUrl")
        if body.get("done", True) or not following:
            return urls
        path, params = following, None


@dataclass(frozen=True)
class _PageBody:
    """One results page as downloaded: its body (still gzip'd when it came so) and headers."""

    body: Any                  # pyarrow.Buffer of gzip'd CSV, or bytes of CSV
    gzipped: bool
    locator: str | None        # None on the last page
    advertised: int | None     # Sforce-NumberOfRecords

    def parse(self) -> ResultPage:
        """The page's rows; a page short of ``Sforce-NumberOfRecords`` rows was cut."""
        from forcebeam.stages.salesforce.columnar import parse_page

        table = parse_page(self.body, gzipped=self.gzipped)
        if self.advertised is not None and self.advertised != table.num_rows:
            raise _TruncatedPageError()
        return ResultPage(table=table, next_locator=self.locator)


def download_page(client: ApiClient, url: str, params: dict[str, Any] | None = None
                  ) -> _PageBody:
    """One download of a results page, unparsed (a cut download raises ``_CutPageError``)."""
    with _cut_download_is_transient():
        response = client.request("GET", url, params=params, stream=True,
                                  headers={"Accept": "text/csv", "Accept-Encoding": "gzip"})
        try:
            body, gzipped = _page_body(response)
            locator = response.headers.get("Sforce-Locator") or "null"
            advertised = response.headers.get("Sforce-NumberOfRecords")
        finally:
            response.close()
    return _PageBody(body=body, gzipped=gzipped,
                     locator=None if locator == "null" else locator,
                     advertised=None if advertised is None else int(advertised))


def fetch_page(client: ApiClient, url: str, *, params: dict[str, Any] | None = None,
               label: str = "", retry: RetryPolicy = DEFAULT_RETRY,
               first: Callable[[], ResultPage] | None = None) -> ResultPage:
    """Download one results page whole and parse it; re-fetch it (same URL) on a failure.

    A page counts as complete only if it parses and holds ``Sforce-NumberOfRecords`` rows: a
    connection cut at a row boundary still parses, so the count is what catches it.
    ``first`` gives the first attempt's page (downloaded and parsed ahead, see
    ``fetch_pages``); its failure is retried like any other.
    """
    from forcebeam.stages.salesforce.columnar import PageParseError

    ahead = [first] if first is not None else []

    def attempt() -> ResultPage:
        return ahead.pop()() if ahead else download_page(client, url, params).parse()

    def log_retry(error: BaseException, _: int) -> None:
        LOG.warning("re-fetching Bulk results page %s after %s", label or url,
                    _cause_name(error))

    try:
        return retry.call(attempt, retry_on=(*_PAGE_CUT, PageParseError), on_retry=log_retry)
    except (*_PAGE_CUT, PageParseError) as error:
        raise BulkJobFailedError(f"Bulk results page {label or url} failed {retry.attempts} "
                                 f"times: {_cause_name(error)}") from error


#: Bytes read from the socket at a time while a page downloads.
_READ_BYTES = 1 << 20


def _page_body(response: requests.Response) -> tuple[Any, bool]:
    """A page's body and whether it is still gzip'd.

    A gzip'd body is kept compressed, in Arrow memory (``parse_page`` decompresses it while
    parsing): holding pages as Python ``bytes`` of CSV text left the process heap several
    pages larger than the pages it held. Any other body is read (and decoded) as bytes.
    """
    import pyarrow as pa

    if response.headers.get("Content-Encoding", "").strip().lower() != "gzip":
        return response.raw.read(decode_content=True), False
    sink = pa.BufferOutputStream()
    for block in response.raw.stream(_READ_BYTES, decode_content=False):
        sink.write(block)
    return sink.getvalue(), True


@contextlib.contextmanager
def _cut_download_is_transient() -> Iterator[None]:
    """A download that broke off, raised as the transient ``_CutPageError`` (its cause kept)."""
    try:
        yield
    except _DOWNLOAD_ERRORS as error:
        raise _CutPageError(str(error)) from error


def iter_pages(client: ApiClient, job_id: str, *, max_records: int = PAGE_MAX_RECORDS,
               retry: RetryPolicy = DEFAULT_RETRY
               ) -> Iterator[ResultPage]:
    """Every page of a completed job in order, following ``Sforce-Locator``."""
    locator: str | None = None
    while True:
        params: dict[str, Any] = {"maxRecords": max_records}
        if locator:
            params["locator"] = locator
        # Handed on from a list, so this frame holds no page while the caller has it.
        pages = [fetch_page(client, f"jobs/query/{job_id}/results", params=params,
                            label=f"of job {job_id} at {locator or 'start'}", retry=retry)]
        locator = pages[0].next_locator
        yield pages.pop()
        if locator is None:
            return


def fetch_pages(client: ApiClient, urls: list[str] | tuple[str, ...], *, label: str = "",
                parallel: int = 3, parse_ahead: bool = False,
                retry: RetryPolicy = DEFAULT_RETRY,
                held: PagesHeld | None = None) -> Iterator[ResultPage]:
    """The pages at ``urls``, in order, downloading up to ``parallel`` ahead of the caller.

    One Bulk download stream is bounded by its TCP window and the org's latency, so a worker
    keeps a few in flight while it converts and writes the page it has. What waits ahead is
    the body as received (gzip'd: ~1/5 of the page's CSV text), parsed when it is handed on:
    the reader holds one parsed page at a time, however many download (``held`` counts both).

    ``parse_ahead``: the next page is parsed while the caller converts and writes this one.
    Arrow parses without Python's lock, so a reader alone in its process keeps a second core
    busy (parsing was ~half of a page's time on the reader's thread), holding two parsed
    pages. Readers sharing a process already keep its cores busy, and would only hold more.
    """
    held = held if held is not None else PagesHeld()
    labels = [f"{number + 1} {label}" for number in range(len(urls))]
    if len(urls) <= 1 or parallel <= 1:
        for url, page_label in zip(urls, labels, strict=True):
            with held.handing_on():
                yield fetch_page(client, url, label=page_label, retry=retry)
        return
    with (ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="bulk-page") as pool,
          ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-parse") as parser):
        downloads: dict[int, Future[_PageBody]] = {}
        parses: dict[int, Future[ResultPage]] = {}

        def parse(number: int) -> None:
            """Page ``number`` parsed once downloaded, on the parser thread, in order (the
            caller waits for its page either way: only a page parsed ahead overlaps)."""
            if number < len(urls) and number not in parses:
                parses[number] = parser.submit(_parsed, downloads.pop(number))
                held.add(bodies=-1, parsed=1)

        for number, (url, page_label) in enumerate(zip(urls, labels, strict=True)):
            for coming in range(number, min(number + parallel, len(urls))):
                if coming not in downloads and coming not in parses:
                    downloads[coming] = pool.submit(download_page, client, urls[coming])
                    held.add(bodies=1)
            parse(number)
            if parse_ahead:
                parse(number + 1)
            held.add(parsed=-1)                 # counted again while it is handed on
            # Yielded straight from the call: no local holds the page while the caller has it.
            with held.handing_on():
                yield fetch_page(client, url, label=page_label, retry=retry,
                                 first=parses.pop(number).result)


def _parsed(download: Future[_PageBody]) -> ResultPage:
    return download.result().parse()


class PagesHeld:
    """What a page reader holds at once: result bodies downloading or downloaded ahead
    (``bodies``), pages parsed (or being parsed) and not yet let go by the caller
    (``parsed``), and the most of each so far. Updated by the reading thread only."""

    def __init__(self) -> None:
        self.bodies = self.parsed = 0
        self.most_bodies = self.most_parsed = 0

    def add(self, *, bodies: int = 0, parsed: int = 0) -> None:
        self.bodies += bodies
        self.parsed += parsed
        self.most_bodies = max(self.most_bodies, self.bodies)
        self.most_parsed = max(self.most_parsed, self.parsed)

    @contextlib.contextmanager
    def handing_on(self) -> Iterator[None]:
        """A parsed page, from when it is handed on until the reader asks for the next."""
        self.add(parsed=1)
        try:
            yield
        finally:
            self.add(parsed=-1)
