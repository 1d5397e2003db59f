"""The one retry policy: how often to try again, and how long to wait in between.

Model: Beam's ``requestresponse.Repeater`` / ``retry_on_exception``: the policy is an object
the caller is *given*, and it repeats a call only for the errors it is told to. Which errors
may pass is not decided here (:mod:`forcebeam.auth.responses` and the error classes say
that); this module only says how to wait for them.

Three levels use the same policy, each for what only it can see:

* HTTP (``auth.transport.make_retry``): no connection, a dropped one, 502/503/504 and
  ``Retry-After``, through urllib3's ``Retry`` built from this policy;
* a Bulk results page whose body was cut mid-download (``stages.salesforce.bulk_query``);
* records the org rejected for reasons that may pass, such as UNABLE_TO_LOCK_ROW
  (``stages.salesforce.write``; the write config's ``max_retries`` sets ``retries``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off: retry ``n`` waits ``first_wait * 2 ** (n - 1)`` seconds, at
    most ``max_wait``; a server's ``Retry-After`` is waited instead when it says so.

    ``retries`` counts the tries after the first (0: try once). ``sleep`` is there so unit
    tests can watch the waits instead of sitting through them.
    """

    retries: int = 5
    first_wait: float = 0.5
    max_wait: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    @property
    def attempts(self) -> int:
        """Tries in all, the first included."""
        return self.retries + 1

    def with_retries(self, retries: int) -> RetryPolicy:
        return replace(self, retries=retries)

    def wait(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry)."""
        if retry_after is not None and retry_after >= 0:
            return retry_after
        return min(self.first_wait * 2 ** (retry - 1), self.max_wait)

    def pause(self, retry: int, retry_after: float | None = None) -> bool:
        """Wait before retry number ``retry`` and return True, or return False at once when
        the policy allows no such retry (the caller gives up)."""
        if retry > self.retries:
            return False
        self.sleep(self.wait(retry, retry_after))
        return True

    def call(self, attempt: Callable[[], T], *, retry_on: tuple[type[BaseException], ...],
             on_retry: Callable[[BaseException, int], None] | None = None) -> T:
        """``attempt()``, tried again after an error of ``retry_on`` while retries are left.

        The last error is raised as it is once the retries are spent; any other error is
        raised at once. ``on_retry(error, retry)`` runs before each wait (to log it).
        """
        retry = 0
        while True:
            try:
                return attempt()
            except retry_on as error:
                retry += 1
                if retry > self.retries:
                    raise
                if on_retry is not None:
                    on_retry(error, retry)
                self.pause(retry)


#: The policy every stage and the HTTP transport get unless they are given another one.
DEFAULT_RETRY = RetryPolicy()
