"""`forcebeam`: run, validate and inspect Salesforce pipelines; run the local emulated org.

Each subcommand is a thin shell over a function in pipelines/ or auth/ (so scripts can call
the same code). Exit codes (``auth.exit_codes``): 0 ok, 2 an error of the user's input
(invalid file or arguments: nothing ran), 1 any other failure, 130/143 interrupted by
SIGINT/SIGTERM. The error's class decides, not its built-in base type.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

# google-auth reads these at import time: never probe a GCE metadata server unless the user
# configured one (Dataflow workers set their own).
os.environ.setdefault("NO_GCE_CHECK", "true")
# Arrow's allocator for the command's process, read when pyarrow loads: jemalloc (in
# pyarrow's Linux builds) hands freed pages back after a second, where the default mimalloc
# keeps them. A local extract to Parquet (make bench) peaked at 449 MB for 5M rows against
# 370 MB for 100k (1.21x); with mimalloc at 541 MB against 417 MB (1.30x). A pool the user
# chose is kept.
if sys.platform.startswith("linux"):
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

from forcebeam.auth.exit_codes import (  # noqa: E402
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    exit_code_for,
)
from forcebeam.pipelines import signals  # noqa: E402
from forcebeam.pipelines.problems import PipelineFileError  # noqa: E402


def _add_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="pipeline file (YAML)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forcebeam", description="Apache Beam pipelines for Salesforce.",
        allow_abbrev=False)  # Beam options pass through: never guess a prefix of ours
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser(
        "run", allow_abbrev=False,
        help="validate and run a pipeline (DirectRunner semantics, offline)",
        description="Any unrecognised --flags are Beam pipeline options, e.g. "
                    "--runner=DataflowRunner --setup_file ./setup.py, "
                    "--direct_running_mode=multi_processing --direct_num_workers=2.")
    _add_file(run)
    run.add_argument("--progress-seconds", type=float, default=3.0,
                     help="how often to print extract progress (default 3)")

    validate = commands.add_parser("validate", help="check a pipeline file without running it")
    _add_file(validate)
    validate.add_argument("--online", action="store_true",
                          help="also check sobjects and fields against the org's describe")

    check = commands.add_parser("check", help="log in with a connection; print org and usage")
    _add_file(check)
    check.add_argument("connection", help="connection name in the file")

    describe = commands.add_parser("describe",
                                   help="list sobjects, or the fields of one with types")
    _add_file(describe)
    describe.add_argument("connection", help="connection name in the file")
    describe.add_argument("sobject", nargs="?", help="sobject to describe (omit: list all)")

    keygen = commands.add_parser(
        "keygen", help="RSA key + self-signed X.509 certificate for a connected app")
    keygen.add_argument("--out", default=".", help="directory for the key and certificate")
    keygen.add_argument("--store", help="also store the private key at this gcp-sm:// ref")

    authorize = commands.add_parser(
        "authorize", help="one-time approval of the connected app (web server flow + PKCE)")
    _add_file(authorize)
    authorize.add_argument("connection", help="connection name in the file")
    authorize.add_argument("--store-refresh-token", metavar="REF",
                           help="secret reference to store the refresh token at")
    authorize.add_argument("--port", type=int, default=0,
                           help="callback port (default: the callback URL's, 1717)")
    authorize.add_argument("--no-browser", action="store_true",
                           help="print the approval URL instead of opening a browser")

    commands.add_parser("emulator", add_help=False,
                        help="run the local emulated org "
                             "(same options as python -m forcebeam.emulator)")
    demo = commands.add_parser("demo", help="start the emulator and run the example pipeline")
    demo.add_argument("--out", default="out", help="output directory (default ./out)")
    demo.add_argument("--records", type=int, default=2000, help="Accounts in the demo org")
    return parser


class _DropImportNoise(logging.Filter):
    """Beam warns at import that optional GCP extras are missing; irrelevant offline."""

    NOISE = ("Failed to import GCSFileSystem", "apitools not found",
             "Could not load ML transform module")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in self.NOISE)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropImportNoise())
    if not verbose:
        # Stage progress lines are ours to print (pipelines.progress); a failing DoFn's
        # traceback is logged by Beam before it is raised, and we print it once, shortly.
        logging.getLogger("forcebeam.progress").setLevel(logging.WARNING)
        logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)
        # urllib3 logs every retry of an unreachable host; the one clear error follows.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # `forcebeam emulator ...` hands every remaining argument to the emulator's own CLI.
    if arguments[:1] == ["emulator"]:
        return _run_emulator(arguments[1:])
    parser = build_parser()
    options, extra = parser.parse_known_args(arguments)
    if extra and options.command not in ("run", "emulator"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _configure_logging(options.verbose)
    previous = signals.install()
    try:
        return _dispatch(options, extra)
    except PipelineFileError as error:
        print(error.report(), file=sys.stderr)
        return exit_code_for(error)
    except KeyboardInterrupt:
        if signals.received():
            print("terminated (SIGTERM); temporary files removed", file=sys.stderr)
            return EXIT_TERMINATED
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - one clear line; the traceback with -v
        if signals.received():   # Beam wrapped our Terminated into its own error
            print("terminated (SIGTERM); temporary files removed", file=sys.stderr)
            return EXIT_TERMINATED
        if signals.interrupted():   # ... or the KeyboardInterrupt of a Ctrl-C
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        if options.verbose:
            raise
        print(f"forcebeam {options.command}: {_one_line(error)}", file=sys.stderr)
        return exit_code_for(error)
    finally:
        signals.restore(previous)


def console_main() -> int:
    """The ``forcebeam`` command: :func:`main`, then leave without tearing Python down.

    An interpreter that imported Beam spends ~0.4 s finalizing (freeing ~190k objects and
    its module tables) after the work is done, and every run waited for it. Exit handlers
    still run (logging's flush, our key-file and temp-folder cleanup), then the output is
    flushed and the process ends with the command's exit code. Only the console script
    leaves this way; callers of :func:`main` (tests, scripts) keep their interpreter.
    """
    import atexit

    code = main()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:   # not CPython: the ordinary, slower exit
        return code
    run_exit_handlers()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _one_line(error: BaseException) -> str:
    """The useful part of an error: Beam wraps worker errors in pages of traceback."""
    text = str(error).strip() or type(error).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 12:  # keep the head (what failed) and the tail (the root cause)
        lines = [*lines[:3], "...", *lines[-6:]]
    return "\n".join(lines)


def _run_emulator(arguments: list[str]) -> int:
    from forcebeam.pipelines.emulator_env import missing_emulator_stack

    missing = missing_emulator_stack()
    if missing:
        print(f"forcebeam emulator: {missing}", file=sys.stderr)
        return EXIT_FAILED
    from forcebeam.emulator.cli import main as emulator_main

    return emulator_main(arguments) or EXIT_OK


def _dispatch(options: argparse.Namespace, extra: list[str]) -> int:
    command = options.command
    if command == "validate":
        from forcebeam.pipelines import commands

        return commands.validate(options.file, online=options.online)
    if command == "run":
        from forcebeam.pipelines import run

        return run.run_file(options.file, extra, progress_seconds=options.progress_seconds)
    if command in ("check", "describe", "authorize"):
        from forcebeam.pipelines import commands

        if command == "check":
            return commands.check(options.file, options.connection)
        if command == "describe":
            return commands.describe(options.file, options.connection, options.sobject)
        return commands.authorize(options.file, options.connection,
                                  store_refresh_token=options.store_refresh_token,
                                  port=options.port, open_browser=not options.no_browser)
    if command == "keygen":
        from forcebeam.pipelines import commands

        return commands.keygen(options.out, options.store)
    if command == "emulator":  # reached as `forcebeam -v emulator ...`
        return _run_emulator(extra)
    if command == "demo":
        from forcebeam.pipelines import demo

        return demo.run_demo(out_dir=options.out, records=options.records)
    raise AssertionError(f"unhandled command {command}")  # argparse restricts the choices


if __name__ == "__main__":
    sys.exit(console_main())
