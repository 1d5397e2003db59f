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

__all__ = ["Terminated", "install", "restore", "received", "interrupted"]

_state = {"received": False, "interrupted": False}


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (exit status 143, as for a process the signal ended)."""


def _handler(signum: int, frame: Any) -> None:
    _state["received"] = True
    raise Terminated()


def _interrupt_handler(signum: int, frame: Any) -> None:
    _state["interrupted"] = True
    raise KeyboardInterrupt()


def install() -> Any:
    """Catch SIGTERM (and note SIGINT) in the main thread; returns the previous handlers
    (None elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    _state["received"] = False
    _state["interrupted"] = False
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:   # Ctrl-C as Python does it, remembered
        signal.signal(signal.SIGINT, _interrupt_handler)
    return signal.signal(signal.SIGTERM, _handler), previous_int


def restore(previous: Any) -> None:
    if previous is not None:
        term, interrupt = previous
        signal.signal(signal.SIGTERM, term)
        signal.signal(signal.SIGINT, interrupt)


def received() -> bool:
    """Whether SIGTERM arrived since `install()` (even if Beam re-wrapped the exception)."""
    return _state["received"]


def interrupted() -> bool:
    """Whether Ctrl-C (SIGINT) arrived since `install()`: Beam may re-wrap the
    KeyboardInterrupt into a RuntimeError when it lands inside a DoFn."""
    return _state["interrupted"]
