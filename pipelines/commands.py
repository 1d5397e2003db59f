"""The small subcommands: validate, check, describe, keygen, authorize.

They load the file, pick the named connection, and call auth's functions; the Salesforce
work (login, describe, key generation, the authorization web flow) lives in auth/.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from forcebeam.auth.exit_codes import EXIT_INVALID, EXIT_OK
from forcebeam.pipelines import connections, validation
from forcebeam.pipelines.problems import PipelineFileError, suggestion_for
from forcebeam.pipelines.spec import PipelineSpec


def validate(file: str, online: bool = False) -> int:
    spec = PipelineSpec.load(file)
    validation.validate_or_raise(spec, online=online, warn_to=sys.stdout)
    if online:
        from forcebeam.pipelines.online_checks import warnings

        for warning in warnings(spec):
            print(f"warning: {warning}", file=sys.stderr)
    count = sum(1 for _ in spec.transforms())
    print(f"{file}: OK ({count} transforms, {len(spec.connections)} connections"
          f"{', checked against the org' if online else ''})")
    return EXIT_OK


def load_connection(file: str, name: str) -> Any:
    """The `auth.Connection` called `name` in `file`; a clear error if it is not there."""
    spec = PipelineSpec.load(file)
    if name not in spec.connections:
        problem = spec.file.problem(("connections",), f"no connection named '{name}'",
                                    suggestion_for(name, spec.connections))
        raise PipelineFileError([problem])
    problems = [problem for problem in connections.problems(spec)
                if problem.path[:2] == ("connections", name)]
    if problems:
        raise PipelineFileError(problems)
    return connections.build(spec.connections[name], source=file, name=name)


def check(file: str, name: str) -> int:
    from forcebeam.auth.commands import check_connection

    return check_connection(load_connection(file, name), out=sys.stdout)


def describe(file: str, name: str, sobject: str | None) -> int:
    from forcebeam.pipelines.online_checks import Describer

    describer = Describer(load_connection(file, name))
    if sobject is None:
        for object_name in describer.sobject_names():
            print(object_name)
        return EXIT_OK
    described = describer.describe(sobject)
    if described is None:
        print(f"unknown sobject '{sobject}' "
              f"({suggestion_for(sobject, describer.sobject_names())})", file=sys.stderr)
        return EXIT_INVALID
    from forcebeam.pipelines.describe_view import render

    print(render(described))
    return EXIT_OK


def keygen(out_dir: str, store: str | None) -> int:
    from forcebeam.auth.commands import keygen as make_keys

    return make_keys(Path(out_dir), store=store, out=sys.stdout)


def authorize(file: str, name: str, store_refresh_token: str | None = None, port: int = 0,
              open_browser: bool = True) -> int:
    from forcebeam.auth.commands import authorize as run_authorization

    return run_authorization(load_connection(file, name),
                             store_refresh_token=store_refresh_token, port=port,
                             open_browser=open_browser, out=sys.stdout)
