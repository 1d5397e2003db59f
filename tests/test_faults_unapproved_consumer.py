"""A connected app the user never approved: one actionable error, no token-endpoint storm.

Peers hammer the token endpoint here (a retry loop per worker/bundle) and then print a bare
`invalid_grant`; a user needs to be told what to click in Salesforce. The pipeline must stop
before reading anything, with one error that carries Salesforce's words and the fix.
"""

from __future__ import annotations

import pytest

from tests.support.faults import read_jsonl, run_read
from tests.support.stages import connection_mapping

MAX_TOKEN_CALLS = 3


def test_unapproved_consumer_stops_the_pipeline_with_one_actionable_error(org_factory,
                                                                           tmp_path):
    org = org_factory(records=300)
    unapproved = org.info["self_authorize_app"]["consumer_key"]
    org.reset_counters()

    with pytest.raises(Exception) as caught:  # noqa: B017 - Beam may wrap the AuthError
        run_read(tmp_path / "out", connection_mapping(org, consumer_key=unapproved),
                 sobject="Account", fields=["Id", "Name"], mode="bulk")

    message = str(caught.value)
    assert "hasn't approved this consumer" in message, message
    assert "forcebeam authorize" in message and "Edit Policies" in message, (
        f"the error must say what to do in Salesforce: {message}")
    assert message.count("Fix:") == 1, f"one error, not one per retry/worker: {message}"

    counters = org.counters()
    assert counters["token_requests"]["total"] <= MAX_TOKEN_CALLS, counters["token_requests"]
    assert counters["token_requests"]["failed"] == counters["token_requests"]["total"]
    assert counters["logins"]["total"] == 0
    assert counters["api_calls"]["total"] == 0, "no API call without a session"
    assert read_jsonl(tmp_path / "out", "rows") == [], "nothing may be written"


def test_a_write_whose_login_fails_stops_with_the_same_error_and_sends_nothing(org_factory,
                                                                              tmp_path):
    """A write logs in while it takes in its first batch; a failed login still stops the
    run with the one actionable error, before any record is sent."""
    from tests.support.faults import run_write

    org = org_factory(records=10)
    unapproved = org.info["self_authorize_app"]["consumer_key"]
    org.reset_counters()
    records = [{"Name": f"NEVER SENT {index}"} for index in range(20)]
    with pytest.raises(Exception) as caught:  # noqa: B017 - Beam may wrap the AuthError
        run_write(tmp_path / "out", connection_mapping(org, consumer_key=unapproved),
                  records, sobject="Account", mode="bulk")

    message = str(caught.value)
    assert "hasn't approved this consumer" in message and message.count("Fix:") == 1, message
    counters = org.counters()
    assert 0 < counters["token_requests"]["total"] <= MAX_TOKEN_CALLS
    assert counters["api_calls"]["total"] == 0, "no API call without a session"
