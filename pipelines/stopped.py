"""What a failed or interrupted run did before it stopped, and what a rerun will do.

Beam's metrics die with a failed pipeline, so the counts come from the progress taps (rows
each Salesforce stage read, was fed, wrote and had rejected; files written every ~0.5 s, so
the last moments may be missing - the numbers are "at least"). The advice is per stage:
an ``insert`` that wrote rows creates them again on a rerun (duplicates), so it points to
``upsert`` on an external id; update/upsert/delete repeat harmlessly; an incremental read
did not move its watermark, so a rerun reads the same rows again (no gap); so does a
replication, which publishes its files, manifest and watermarks only at its very end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forcebeam.pipelines.progress import StageProgress
from forcebeam.pipelines.spec import PipelineSpec

WRITTEN_SUFFIX = " written"
FAILED_SUFFIX = " failed"


def render(spec: PipelineSpec, counts: Mapping[str, StageProgress], why: str,
           removed: list[str]) -> str:
    rows = lambda name: counts[name].rows if name in counts else 0  # noqa: E731
    lines = [f"the run stopped ({why}); done before the stop (at least):"]
    advice: list[str] = []
    for transform in spec.transforms():
        config = transform.config if isinstance(transform.config, dict) else {}
        name = transform.name
        if transform.type == "ReadFromSalesforce":
            lines.append(f"  {name:<24} read {rows(name):>10,}")
            if isinstance(config.get("incremental"), dict):
                advice.append(f"{name}: the incremental state was not committed; a rerun "
                              "reads the same rows again (no gap, no loss)")
        elif transform.type == "ReplicateSalesforce":
            lines.append(f"  {name:<24} read {rows(name):>10,}")
            advice.append(f"{name}: no file was published, no manifest written and no "
                          "watermark moved; a rerun reads the same changes again (no gap)")
        elif transform.type == "WriteToSalesforce":
            written, failed = rows(name + WRITTEN_SUFFIX), rows(name + FAILED_SUFFIX)
            lines.append(f"  {name:<24} fed {rows(name):>10,}   written {written:>10,}   "
                         f"failed {failed:>8,}")
            advice.append(_write_advice(name, config, written))
    if removed:
        lines.append(f"  removed {len(removed)} partial output file(s)/folder(s) of this run "
                     "(a rerun writes them again)")
    if advice:
        lines.append("a rerun:")
        lines += [f"  {line}" for line in advice]
    return "\n".join(lines)


def _write_advice(name: str, config: Mapping[str, Any], written: int) -> str:
    operation = str(config.get("operation") or "insert")
    if operation == "insert":
        if written:
            return (f"{name}: inserted {written:,} record(s) before the stop; a rerun inserts "
                    "them AGAIN (duplicates). Delete them first, or make the write "
                    "repeatable: operation: upsert with external_id_field: <an External ID "
                    "field> updates instead of duplicating")
        return f"{name}: nothing was inserted; a rerun starts afresh"
    return (f"{name}: {operation} is repeatable; a rerun applies the same changes again "
            "(records already done end up the same)")
