"""The one retry policy: its waits, its limits, and the same numbers at the HTTP level."""

from __future__ import annotations

import pytest
from urllib3.util.retry import RequestHistory

from forcebeam.auth.retry import DEFAULT_RETRY, RetryPolicy
from forcebeam.auth.transport import make_retry


def recording(**kwargs) -> tuple[RetryPolicy, list[float]]:
    waits: list[float] = []
    return RetryPolicy(sleep=waits.append, **kwargs), waits


def test_waits_double_up_to_the_cap_and_a_server_retry_after_wins():
    policy, _ = recording(retries=8, first_wait=0.5, max_wait=4.0)
    assert [policy.wait(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.wait(1, retry_after=7.0) == 7.0


def test_call_retries_only_the_given_errors_and_gives_up_with_the_last_one():
    policy, waits = recording(retries=3, first_wait=0.1)
    tries = []

    def flaky():
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionResetError("cut")
        return "page"

    assert policy.call(flaky, retry_on=(ConnectionResetError,)) == "page"
    assert len(tries) == 3 and waits == [0.1, 0.2]

    seen = []
    with pytest.raises(ConnectionResetError):
        policy.call(lambda: (_ for _ in ()).throw(ConnectionResetError("always")),
                    retry_on=(ConnectionResetError,),
                    on_retry=lambda error, retry: seen.append(retry))
    assert seen == [1, 2, 3] and policy.attempts == 4

    waits.clear()
    with pytest.raises(KeyError):   # not a retriable error: raised at once, no wait
        policy.call(lambda: {}["x"], retry_on=(ConnectionResetError,))
    assert waits == []


def test_pause_says_when_the_retries_are_spent():
    policy, waits = recording(retries=2, first_wait=1.0)
    assert policy.pause(1) and policy.pause(2) and not policy.pause(3)
    assert waits == [1.0, 2.0]
    assert not policy.with_retries(0).pause(1)


def test_the_http_level_uses_the_same_policy():
    retry = make_retry(policy=RetryPolicy(retries=4, first_wait=0.5, max_wait=3.0))
    assert retry.total == 4 and retry.status_forcelist == frozenset({502, 503, 504})
    failure = RequestHistory("GET", "/", None, 503, None)
    waits = [retry.new(history=(failure,) * n).get_backoff_time() for n in range(1, 5)]
    assert waits == [0, 1.0, 2.0, 3.0]   # urllib3 resends the first failure at once
    assert make_retry().total == DEFAULT_RETRY.retries
