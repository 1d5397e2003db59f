"""Which Beam runners run a pipeline on this machine: one list for the CLI and the stages.

Why it matters: a local run is handed to an offline ``FnApiRunner`` (``pipelines.run``; the
DirectRunner would download Prism), and a read sizes its shares by the local workers
(``stages.salesforce.read``). A runner is named by its option string (``--runner direct``)
or by its class; either way, case aside.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LOCAL_RUNNER_NAMES", "is_local_runner", "runner_name"]

#: Runner names (lower case) that run in this process or on this machine; "" is Beam's
#: default runner, the DirectRunner. (The legacy BundleBasedDirectRunner is not handed to
#: FnApiRunner: whoever names it wants it, and a read under it behaves as under any runner.)
LOCAL_RUNNER_NAMES = frozenset({"", "direct", "directrunner", "switchingdirectrunner",
                                "fnapirunner"})


def runner_name(runner: Any) -> str:
    """A runner option (a name, a runner object or None) as a name; "" for None."""
    if runner is None:
        return ""
    return runner if isinstance(runner, str) else type(runner).__name__


def is_local_runner(runner: Any) -> bool:
    """True for a runner (name, object or None) that runs on this machine."""
    return runner_name(runner).lower() in LOCAL_RUNNER_NAMES
