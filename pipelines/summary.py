"""The closing summary of a run: per Salesforce stage, rows read/written/failed, API calls,
logins, duration and rows/s, from the stages' Beam metrics (namespace `forcebeam`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from forcebeam.pipelines.progress import StageProgress

NAMESPACE = "forcebeam"
COUNTERS = ("records_read", "records_written", "records_failed", "api_calls",
            "logins")


@dataclass
class StageSummary:
    name: str
    type: str
    counters: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return (self.counters.get("records_read", 0) + self.counters.get("records_written", 0)
                + self.counters.get("records_failed", 0))


def _stage_of(step: str, names: Mapping[str, str]) -> str | None:
    for part in step.split("/"):
        if part in names:
            return part
    return None


def _value(result: Any) -> int:
    committed = getattr(result, "committed", None)
    return int(committed if committed is not None else result.attempted or 0)


def collect(result: Any, names: Mapping[str, str], progress: Mapping[str, StageProgress],
            started_at: float, finished_at: float) -> list[StageSummary]:
    """One summary per stage named in `names` (step name -> stage type).

    A stage's duration runs from the start of the run (login, describe and planning count)
    to its last row as seen by the progress tap, else to the end of the run.
    """
    from apache_beam.metrics.metric import MetricsFilter

    stages = {name: StageSummary(name, kind) for name, kind in names.items()}
    try:
        counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    except (AttributeError, NotImplementedError):  # a runner without metrics support
        counters = []
    unassigned: dict[str, int] = {}
    for counter in counters:
        stage = _stage_of(counter.key.step, names)
        target = stages[stage].counters if stage else unassigned
        name = counter.key.metric.name
        target[name] = target.get(name, 0) + _value(counter)
    if len(stages) == 1 and unassigned:  # step names not kept by this runner
        only = next(iter(stages.values()))
        for name, value in unassigned.items():
            only.counters[name] = only.counters.get(name, 0) + value
    for stage in stages.values():
        tapped = progress.get(stage.name)
        last = tapped.last if tapped and tapped.last else finished_at
        stage.seconds = max(min(last, finished_at) - started_at, 1e-3)
    return list(stages.values())


def render(stages: list[StageSummary]) -> str:
    if not stages:
        return "summary: no Salesforce stages"
    lines = ["summary:",
             f"  {'stage':<24} {'read':>10} {'written':>10} {'failed':>8} {'api calls':>10} "
             f"{'logins':>7} {'seconds':>8} {'rows/s':>10}"]
    for stage in stages:
        count = stage.counters.get
        rate = stage.rows / stage.seconds if stage.seconds > 0 else 0.0
        lines.append(
            f"  {stage.name:<24} {count('records_read', 0):>10,} "
            f"{count('records_written', 0):>10,} {count('records_failed', 0):>8,} "
            f"{count('api_calls', 0):>10,} {count('logins', 0):>7,} "
            f"{stage.seconds:>8.1f} {rate:>10,.0f}")
    return "\n".join(lines)
