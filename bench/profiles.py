"""Network profiles the benchmarks run under.

Two questions need two profiles. `loopback` (no shaping) asks "how much CPU do we spend per
row compared with simply moving the bytes?" — there the emulator's serving speed is the
limit. `realistic` asks "what does a user see against a real org?" — there round trips,
per-connection bandwidth and Bulk job queueing dominate, and a client wins by overlapping
them (parallel jobs, streamed parsing), not by shaving CPU.

Why these realistic numbers:
- 150 ms added to every response: a worker in one cloud region talking to a Salesforce pod
  on another continent (transatlantic RTT ~80-100 ms, plus Salesforce's own request
  handling of tens of ms on small API calls).
- 80 Mbit/s per connection: Bulk 2.0 result downloads from a single HTTPS stream are
  TCP-window bound at that RTT; tens of Mbit/s per stream is what extract tools report, so
  parallel streams, not one fat pipe, are what scale.
- Bulk query jobs as Salesforce documents them (emulator.bulk.processing): 10 s in the queue
  before InProgress (a peer measured ~14 s of fixed overhead per job), then chunks of 250k
  rows (documented: 100k-250k), up to 4 in parallel per job from an org-wide pool of 16, at
  25k rows/s per chunk (assumptions: Salesforce publishes no figures), QUERY_TIMEOUT for a
  chunk over 120 s (documented), at most 25 concurrent long requests (documented), 5 page
  URLs per `resultPages` call (documented; the emulator's fixed behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.org import EmulatedOrg


@dataclass(frozen=True)
class NetworkProfile:
    """How the emulator shapes answers (`--latency-ms/--bandwidth-mbps/--bulk-job-delay`)."""

    name: str
    latency_ms: int = 0
    bandwidth_mbps: float = 0.0
    bulk_job_delay_seconds: float = 0.0
    bulk_queue_seconds: float = 0.0
    bulk_chunk_rows_per_second: float | None = None     # None: no modeled processing time
    max_concurrent_long_requests: int | None = None

    def emulator_args(self) -> tuple[str, ...]:
        """Command-line flags for `python -m forcebeam.emulator` that produce this profile."""
        args: list[str] = []
        if self.latency_ms:
            args += ["--latency-ms", str(self.latency_ms)]
        if self.bandwidth_mbps:
            args += ["--bandwidth-mbps", f"{self.bandwidth_mbps:g}"]
        if self.bulk_job_delay_seconds:
            args += ["--bulk-job-delay", f"{self.bulk_job_delay_seconds:g}"]
        return tuple(args)

    def fault_spec(self) -> dict[str, float | int | None]:
        """The same shaping as an admin-API fault spec (`PUT /__emulator/faults`).

        Switching an already-running org between profiles saves generating a 1M-row org
        twice; the delay is always set explicitly because clearing faults leaves it as is.
        """
        return {"latency_ms": self.latency_ms, "bandwidth_mbps": self.bandwidth_mbps or None,
                "bulk_job_delay_seconds": self.bulk_job_delay_seconds,
                "bulk_queue_seconds": self.bulk_queue_seconds,
                "bulk_chunk_rows_per_second": self.bulk_chunk_rows_per_second,
                "max_concurrent_long_requests": self.max_concurrent_long_requests}

    def apply_to(self, org: EmulatedOrg) -> None:
        """Reshape a running emulator to this profile."""
        org.admin("PUT", "faults", json=self.fault_spec())

    def describe(self) -> str:
        if not (self.latency_ms or self.bandwidth_mbps or self.bulk_job_delay_seconds
                or self.bulk_queue_seconds or self.bulk_chunk_rows_per_second):
            return "no shaping"
        jobs = (f"{self.bulk_queue_seconds:g} s queue + 250k-row chunks at "
                f"{self.bulk_chunk_rows_per_second:,.0f} rows/s (4/job, 16/org)"
                if self.bulk_chunk_rows_per_second else
                f"{self.bulk_job_delay_seconds:g} s per Bulk job")
        return (f"{self.latency_ms} ms/response, {self.bandwidth_mbps:g} Mbit/s per stream, "
                f"{jobs}")


PROFILES: dict[str, NetworkProfile] = {
    "loopback": NetworkProfile("loopback"),
    "realistic": NetworkProfile("realistic", latency_ms=150, bandwidth_mbps=80,
                                bulk_queue_seconds=10, bulk_chunk_rows_per_second=25_000,
                                max_concurrent_long_requests=25),
}
