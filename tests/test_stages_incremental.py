"""Incremental reads: only changed rows, boundary ties never missed, state advanced on success."""

from __future__ import annotations

import pickle

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from forcebeam.stages.salesforce.incremental import commit_pending, load_state, pending_path
from forcebeam.stages.salesforce.read import ReadFromSalesforce
from tests.support.stages import FNAPI, connection_mapping, run_collect


@pytest.fixture(autouse=True)
def _private_describe_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))


def _read(org, state, mode="auto"):
    return ReadFromSalesforce(connection_mapping(org), sobject="Account",
                              fields=["Id", "Name", "SystemModstamp"], mode=mode, split=2,
                              incremental={"field": "SystemModstamp", "state": state})


def _run_and_commit(org, state, out, mode="auto"):
    rows, result = run_collect(lambda: _read(org, state, mode), out=out)
    assert result.state == "DONE"
    assert commit_pending(state)
    return {r["Id"] for r in rows}


class _SinkError(RuntimeError):
    pass


def _explode(row):
    raise _SinkError(f"sink refused {row.Id}")


@pytest.mark.parametrize("mode", ["rest", "bulk"])
def test_second_run_reads_exactly_the_modified_rows(org_factory, tmp_path, mode):
    org = org_factory(records=1000)
    state = str(tmp_path / "state" / "accounts.json")
    (tmp_path / "state").mkdir()

    first = _run_and_commit(org, state, tmp_path / "run1", mode)
    assert len(first) == 1000
    watermark = load_state(state)["watermark"]

    touched = set(org.admin("POST", "records/Account/touch", json={"count": 100}).json()["ids"])
    assert len(touched) == 100
    second = _run_and_commit(org, state, tmp_path / "run2", mode)
    assert second == touched, (len(second), len(touched & second))
    assert load_state(state)["watermark"] > watermark

    # 500 other rows land on exactly the committed watermark (a boundary tie): all read.
    # Rows already emitted with exactly that version are the only ones de-duplicated.
    boundary = load_state(state)["watermark"]
    seen = load_state(state)["seen"]
    ties = set(org.admin("POST", "records/Account/touch",
                         json={"count": 500, "system_modstamp": boundary}).json()["ids"])
    already = {i for i in ties if seen.get(i) == boundary}
    assert len(ties - already) >= 400
    third = _run_and_commit(org, state, tmp_path / "run3", mode)
    assert third == ties - already

    # Nothing changed: nothing read, watermark kept.
    assert _run_and_commit(org, state, tmp_path / "run4", mode) == set()
    assert load_state(state)["watermark"] == boundary


def test_run_failing_in_its_sink_leaves_the_state_unchanged(org_factory, tmp_path):
    org = org_factory(records=300)
    state = str(tmp_path / "accounts.json")
    _run_and_commit(org, state, tmp_path / "run1")
    before = open(state, "rb").read()
    touched = set(org.admin("POST", "records/Account/touch", json={"count": 10}).json()["ids"])

    with pytest.raises(Exception, match="sink refused"):  # noqa: B017 - Beam wraps it
        with beam.Pipeline(options=PipelineOptions(FNAPI)) as pipeline:
            _ = pipeline | _read(org, state) | beam.Map(_explode)
    assert open(state, "rb").read() == before, "a failed run must not move the watermark"

    again = _run_and_commit(org, state, tmp_path / "run2")
    assert again == touched, "the rows of the failed run are read again"
    assert pickle.dumps(load_state(state))     # state is plain JSON data
    assert not __import__("os").path.exists(pending_path(state))


def test_lookback_rereads_the_window_but_emits_only_changes(org_factory, tmp_path):
    org = org_factory(records=400)
    state = str(tmp_path / "accounts.json")

    def read():
        return ReadFromSalesforce(connection_mapping(org), sobject="Account",
                                  fields=["Id", "Name"], mode="rest",
                                  incremental={"field": "SystemModstamp", "state": state,
                                               "lookback": "3650d"})

    def run(out):
        rows, _ = run_collect(read, out=tmp_path / out)
        assert commit_pending(state)
        return {r["Id"] for r in rows}

    assert len(run("run1")) == 400
    org.reset_counters()
    assert run("run2") == set(), "rows re-read inside the lookback window are not re-emitted"
    assert org.counters()["api_calls"].get("rest_query", 0) >= 1     # the window was re-read
    touched = set(org.admin("POST", "records/Account/touch", json={"count": 10}).json()["ids"])
    assert run("run3") == touched
