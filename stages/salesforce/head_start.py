"""A local run's head start: logins, and reads' Bulk jobs, begun while Beam is imported.

Why: ``forcebeam run`` spends ~2.5 s importing Beam, building the pipeline and starting the
runner before a read's plan would create its Bulk job (a script creates its job ~0.3 s after
it starts). The org could be running the job all that time. When the run's workers are
threads of this process (the local in-memory runner), the CLI calls, before it imports Beam:

- ``log_in`` for every connection of the run: the process's shared client
  (``auth.get_client``) logs in on a thread, so the workers find it logged in;
- ``start_read`` for each read: on a thread, after that login, the read's one ``COUNT()``
  (auto mode, which picks Bulk or REST by it) and its Bulk job, exactly the job its plan
  would create.

The read's plan then ``take`` s what was started instead of doing it again. A job nobody
took (the build failed, the run was interrupted, or a misjudged runner runs its plans
elsewhere) is aborted and deleted by ``discard_untaken``, which the CLI calls on every way
out of a run.

Only reads whose plan creates its one job up front get a head start: ``split: auto`` and
not incremental (an incremental read's bound comes from its state file, read through Beam's
file systems).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from forcebeam.stages.salesforce import bulk_query, planner, rest_query
from forcebeam.stages.salesforce.config import ReadConfig
from forcebeam.stages.salesforce.read_spec import ReadSpec, read_spec, unit_mode, unit_text

__all__ = ["StartedRead", "discard_untaken", "log_in", "login_failure", "start_read", "take"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartedRead:
    """What a read's head start did, as its plan would have done it."""

    #: The read's ``COUNT()`` (auto mode), or -1 (bulk mode counts nothing).
    total: int
    #: Its Bulk query job as created; None when the read goes through REST or Bulk refused.
    job: dict[str, Any] | None
    #: Bulk refused the query (``BulkQueryRefusedError``): the plan falls back as it would.
    refused: bulk_query.BulkQueryRefusedError | None = None


@dataclass
class _Begun:
    """A read's head start on its thread, and whether its job may still appear."""

    connection: Any
    started: Future[StartedRead] = field(default_factory=Future)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Set by ``discard_untaken``: a job not yet requested is then never created.
    cancelled: bool = False
    #: The job's creation was requested (it may exist once ``started`` is done).
    requested: bool = False


_lock = threading.Lock()
_logins: dict[Any, Future[Any]] = {}
#: (connection, query, include_deleted, mode) -> that read's head start.
_reads: dict[tuple[Any, ...], _Begun] = {}
#: How long ``discard_untaken`` waits for job requests in flight before it gives up on them.
DISCARD_WAIT_SECONDS = 30.0


def _on_thread(name: str, work: Callable[[], Any], future: Future[Any] | None = None
               ) -> Future[Any]:
    """Run ``work`` on a daemon thread; its result (or error) in ``future``."""
    future = future if future is not None else Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as error:  # noqa: BLE001 - handed to whoever waits for it
            future.set_exception(error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def log_in(connection: Any) -> Future[Any]:
    """The shared client of ``connection``, logging in on a thread (once per connection)."""
    from forcebeam.auth import get_client

    with _lock:
        login = _logins.get(connection)
        if login is None:
            login = _logins[connection] = _on_thread("forcebeam-head-start-login",
                                                     lambda: get_client(connection))
        return login


def login_failure() -> BaseException | None:
    """Wait for the logins begun; the first one's error, if any failed.

    The run raises it before it builds the pipeline: it is the error every worker's login
    would raise, and trying again from the workers would only repeat a failed login against
    the org (where repeated failures lock the user out).
    """
    with _lock:
        logins = list(_logins.values())
    for login in logins:
        error = login.exception()
        if error is not None:
            return error
    return None


def _eligible(spec: ReadSpec) -> bool:
    return spec.split == "auto" and spec.incremental is None and spec.mode != "rest"


def _key(connection: Any, spec: ReadSpec) -> tuple[Any, ...]:
    return (connection, spec.query, spec.include_deleted, spec.mode)


def start_read(connection: Any, config: ReadConfig) -> bool:
    """Begin the read configured as ``config`` on a thread; False if it gets no head start
    (another read with the same query already has it: that one's plan takes it)."""
    spec = read_spec(config, connection, announce=False)
    if not _eligible(spec):
        return False
    login = log_in(connection)
    with _lock:
        key = _key(connection, spec)
        if key in _reads:
            return False
        begun = _reads[key] = _Begun(connection)
    _on_thread("forcebeam-head-start-read", lambda: _begin(login.result(), spec, begun),
               begun.started)
    return True


def _begin(client: Any, spec: ReadSpec, begun: _Begun) -> StartedRead:
    """The start of ``_PlanUnits.process`` for a read without an incremental bound."""
    total = -1
    if spec.query.splittable and spec.mode == "auto":
        total = rest_query.count_rows(client, spec.query.count_text(extra=[]),
                                      include_deleted=spec.include_deleted)
    if unit_mode(spec, total) != "bulk":
        return StartedRead(total=total, job=None)
    whole = planner.ReadUnit(index=0, id_from=None, id_to=None, expected_rows=total,
                             mode="bulk")
    with begun.lock:
        if begun.cancelled:     # the run ended first: create no job
            return StartedRead(total=total, job=None)
        begun.requested = True
    try:
        job = bulk_query.create_query_job(client, unit_text(spec, whole),
                                          include_deleted=spec.include_deleted)
    except bulk_query.BulkQueryRefusedError as refusal:
        return StartedRead(total=total, job=None, refused=refusal)
    return StartedRead(total=total, job=job)


def take(connection: Any, spec: ReadSpec) -> StartedRead | None:
    """The head start of this read (once), or None: the plan then does it all itself.

    A head start that failed (the org, the network) is None too: the plan tries again and
    reports the failure its own way.
    """
    if not _eligible(spec):
        return None
    with _lock:
        entry = _reads.pop(_key(connection, spec), None)
    if entry is None:
        return None
    try:
        return entry.started.result()
    except Exception as error:  # noqa: BLE001 - the plan's own attempt reports it
        LOG.debug("the head start of the %s read failed (%s); its plan starts it again",
                  spec.query.sobject, type(error).__name__)
        return None


def discard_untaken(wait_seconds: float = DISCARD_WAIT_SECONDS) -> int:
    """Abort and delete the jobs no plan took; forget every head start. Returns how many
    jobs were discarded.

    A head start still logging in creates no job after this; one whose job request is in
    flight is waited for (at most ``wait_seconds`` in all) and its job discarded.
    """
    with _lock:
        untaken = list(_reads.values())
        _reads.clear()
        _logins.clear()
    requested = []
    for begun in untaken:
        with begun.lock:
            begun.cancelled = True
            if begun.requested:
                requested.append(begun)
    deadline = time.monotonic() + wait_seconds
    discarded = 0
    for begun in requested:
        try:
            job = begun.started.result(timeout=max(0.0, deadline - time.monotonic())).job
        except TimeoutError:
            LOG.warning("a read's Bulk job was still being created when the run ended; if "
                        "it was, it is left in the org (Salesforce deletes it after 7 days)")
            continue
        except Exception:  # noqa: BLE001, S112 - no job was created
            continue
        if job is None:
            continue
        from forcebeam.auth import get_client

        bulk_query.discard_query_job(get_client(begun.connection), job["id"])
        discarded += 1
        LOG.debug("discarded the head-started Bulk job %s: no read took it", job["id"])
    return discarded
