"""Check and build the `connections:` section through auth's own connection model.

auth owns what a connection is and validates it once (`auth.Connection.from_mapping`, which
reports every problem with its path and fix); this module only places each problem at its
line of the file, adds what only a file can check (the files a connection names), and handles
the opt-in `allow_inline_secrets` through `inline_secrets`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from forcebeam.auth.config_problems import Problem as ConfigProblem
from forcebeam.pipelines.inline_secrets import ALLOW_FLAG, externalize
from forcebeam.pipelines.problems import Problem
from forcebeam.pipelines.spec import PipelineSpec


def build(mapping: Mapping[str, Any], source: str = "<config>", name: str = "") -> Any:
    """An `auth.Connection` from a connection mapping (raises auth's ConnectionConfigError)."""
    from forcebeam.auth.connection import Connection

    return Connection.from_mapping(externalize(mapping, name), source=source,
                                   path=f"connections.{name}" if name else "connection")


def _file_problems(spec: PipelineSpec, mapping: Mapping[str, Any]) -> list[ConfigProblem]:
    """Files a connection names (ca_bundle, file: secrets) that are not there."""
    from forcebeam.auth.errors import SecretError
    from forcebeam.auth.secrets.file import path_of

    found: list[ConfigProblem] = []
    bundle = mapping.get("ca_bundle")
    if isinstance(bundle, str) and bundle.strip():
        base = os.path.dirname(os.path.abspath(spec.path))
        path = os.path.join(base, os.path.expanduser(bundle))
        if not os.path.isfile(path):
            found.append(ConfigProblem(("ca_bundle",), f"no such file: {os.path.normpath(path)}",
                                       "give the path of a PEM file of CA certificates "
                                       "(relative paths are read next to the pipeline file)"))
    for section in ("auth", "mutual_tls"):
        block = mapping.get(section)
        if not isinstance(block, Mapping):
            continue
        for key, value in block.items():
            if not (isinstance(value, str) and value.startswith("file:")):
                continue
            try:
                path = path_of(value)
            except SecretError:
                path = None  # a malformed reference: the reference check reports it
            if path is not None and not path.is_file():
                found.append(ConfigProblem((section, key), f"the secret file {path} does not "
                                           "exist", "file:relative/path is read from the "
                                           "working directory"))
    return found


def problems(spec: PipelineSpec) -> list[Problem]:
    """Every problem in every connection, each at its own line (one validation each)."""
    from forcebeam.auth.connection import ConnectionConfigError

    file = spec.file
    found: list[Problem] = []
    for name, mapping in spec.connections.items():
        base = ("connections", name)
        if not isinstance(mapping, Mapping):
            found.append(file.problem(base, "a connection must be a mapping",
                                      "give login_url and auth: {type: ...}"))
            continue
        flag = mapping.get(ALLOW_FLAG)
        if flag is not None and not isinstance(flag, bool):
            found.append(file.problem((*base, ALLOW_FLAG), "must be true or false"))
            continue
        mapping = externalize(mapping, name, environ={})  # checked as it will be built
        located = {problem.path: problem for problem in _file_problems(spec, mapping)}
        try:
            build(mapping, source=spec.path, name=name)
        except ConnectionConfigError as error:
            for problem in error.problems:
                located.setdefault(problem.path, problem)
        found += [file.problem((*base, *problem.path), problem.message, problem.fix)
                  for problem in located.values()]
    return found
