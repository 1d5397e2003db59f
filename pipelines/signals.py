"""SIGTERM handled like Ctrl-C, so every cleanup path of a run also runs for schedulers.

Python's default SIGTERM kills the process on the spot: no `finally`, no `atexit`, so the
mutual-TLS key file, the CA copy and the progress folder stayed in the temp directory. While
a command runs, SIGTERM raises `Terminated` (a KeyboardInterrupt) in the main thread instead.
Beam may wrap it into its own error when it lands inside a DoFn; `received()` still knows.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["Terminated", "install", "restore", "received"]

_state = {"received": False}


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (exit status 143, as for a process the signal ended)."""


def _handler(signum: int, frame: Any) -> None:
    _state["received"] = True
    raise Terminated()


def install() -> Any:
    """Catch SIGTERM in the main thread; returns the previous handler (None elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    _state["received"] = False
    return signal.signal(signal.SIGTERM, _handler)


def restore(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def received() -> bool:
    """Whether SIGTERM arrived since `install()` (even if Beam re-wrapped the exception)."""
    return _state["received"]
