"""The exit statuses of every ``forcebeam`` command, and the one rule that picks them.

The status follows the error's class (its :class:`~forcebeam.auth.errors.ErrorKind`), never a
guess from built-in exception types: the user's input -> 2 (nothing ran; argparse uses 2
too), any other failure -> 1, a run stopped by a signal -> 128 + the signal's number.
"""

from __future__ import annotations

from forcebeam.auth.errors import ErrorKind, kind_of

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130   # 128 + SIGINT
EXIT_TERMINATED = 143    # 128 + SIGTERM


def exit_code_for(error: BaseException) -> int:
    """2 for an error of the user's input, 1 for every other failure."""
    return EXIT_INVALID if kind_of(error) is ErrorKind.INPUT else EXIT_FAILED
