"""Check and build the `connections:` section through auth's own connection model.

auth owns what a connection is (`auth.Connection.from_mapping`); this module only places its
verdict on the file's lines; `inline_secrets` handles the opt-in `allow_inline_secrets`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from forcebeam.pipelines.inline_secrets import ALLOW_FLAG, externalize
from forcebeam.pipelines.problems import FieldPath, Problem, closest, suggestion_for
from forcebeam.pipelines.pydantic_problems import from_validation_error
from forcebeam.pipelines.spec import PipelineSpec


def _split_path(text: str) -> FieldPath:
    """`auth.private_key` or `auth[0].x` -> ('auth', 'private_key') ..."""
    parts: list[str | int] = []
    for chunk in text.replace("[", ".").replace("]", "").split("."):
        if chunk:
            parts.append(int(chunk) if chunk.isdigit() else chunk)
    return tuple(parts)


def build(mapping: Mapping[str, Any], source: str = "<config>", name: str = "") -> Any:
    """An `auth.Connection` from a connection mapping (raises auth's ConfigError)."""
    from forcebeam.auth.connection import Connection

    return Connection.from_mapping(externalize(mapping, name), source=source,
                                   path=f"connections.{name}" if name else "connection")


def _suggest(error: Any, mapping: Mapping[str, Any], relative: FieldPath) -> str:
    """auth's fix, sharpened to the closest valid name when a field name is unknown."""
    if not relative or not isinstance(relative[-1], str):
        return error.suggestion
    candidates = _allowed_names(mapping, relative[:-1])
    best = closest(relative[-1], candidates) if candidates else None
    if best and best != relative[-1]:
        return f"did you mean '{best}'?"
    if relative[-1] == "type" and relative[:-1] == ("auth",):
        from forcebeam.auth.flows import known_types

        auth_type = str((mapping.get("auth") or {}).get("type"))
        return suggestion_for(auth_type, known_types())
    return error.suggestion


def _allowed_names(mapping: Mapping[str, Any], parent: FieldPath) -> list[str]:
    """Field names valid at `parent` inside a connection (from auth's own models)."""
    from forcebeam.auth.config_types import MutualTlsConfig
    from forcebeam.auth.connection import Connection
    from forcebeam.auth.flows import get_flow

    if parent == ():
        return [*Connection.model_fields, ALLOW_FLAG]
    if parent == ("mutual_tls",):
        return list(MutualTlsConfig.model_fields)
    if parent == ("auth",):
        try:
            return list(get_flow(str(mapping["auth"]["type"])).config_model.model_fields)
        except (KeyError, TypeError):
            return []
    return []


def _unknown_auth_type(mapping: Mapping[str, Any]) -> bool:
    from forcebeam.auth.flows import get_flow

    auth = mapping.get("auth")
    if not isinstance(auth, Mapping):
        return False
    try:
        get_flow(str(auth.get("type")))
    except KeyError:
        return True
    return False


def _auth_type_problem(spec: PipelineSpec, mapping: Mapping[str, Any], base: FieldPath
                       ) -> list[Problem]:
    from forcebeam.auth.errors import ConfigError

    try:
        build(mapping, source=spec.path, name=str(base[-1]))
    except ConfigError as error:
        full = _split_path(error.path)
        path = full if full[:2] == base else (*base, *full)
        return [spec.file.problem(path, error.message, _suggest(error, mapping, path[2:]))]
    return []


def _auth_problems(mapping: Mapping[str, Any]) -> list[tuple[FieldPath, str, str]]:
    """All problems of the `auth:` block, through the flow's own config model."""
    from forcebeam.auth.flows import get_flow

    auth = mapping.get("auth")
    if not isinstance(auth, Mapping):
        return []  # auth's own check says what is missing
    try:
        model = get_flow(str(auth.get("type"))).config_model
    except KeyError:
        return []  # unknown type: auth's own check names it, we add the closest type
    try:
        model.model_validate(dict(auth))
    except ValidationError as error:
        return [(("auth", *relative), message, suggestion) for relative, message, suggestion
                in from_validation_error(error, auth, model)]
    return []


def _other_fields_problems(mapping: Mapping[str, Any]) -> list[tuple[FieldPath, str, str]]:
    """Problems outside `auth:` (login_url, ca_bundle, ...), found even when auth is wrong."""
    from forcebeam.auth.connection import Connection

    try:
        Connection.model_validate(dict(mapping))
    except ValidationError as error:
        return [(relative, message, suggestion) for relative, message, suggestion
                in from_validation_error(error, mapping, Connection)
                if relative[:1] != ("auth",)]
    return []


def _file_problems(spec: PipelineSpec, mapping: Mapping[str, Any]
                   ) -> list[tuple[FieldPath, str, str]]:
    """Files a connection names (ca_bundle, file: secrets) that are not there."""
    from forcebeam.auth.errors import SecretError
    from forcebeam.auth.secrets.file import path_of

    found: list[tuple[FieldPath, str, str]] = []
    bundle = mapping.get("ca_bundle")
    if isinstance(bundle, str) and bundle.strip():
        base = os.path.dirname(os.path.abspath(spec.path))
        path = os.path.join(base, os.path.expanduser(bundle))
        if not os.path.isfile(path):
            found.append((("ca_bundle",), f"no such file: {os.path.normpath(path)}",
                          "give the path of a PEM file of CA certificates (relative paths "
                          "are read next to the pipeline file)"))
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
                found.append(((section, key), f"the secret file {path} does not exist",
                              "file:relative/path is read from the working directory"))
    return found


def problems(spec: PipelineSpec) -> list[Problem]:
    """Every problem in every connection, each at its own line."""
    from forcebeam.auth.errors import ConfigError

    file = spec.file
    found: list[Problem] = []
    for name, mapping in spec.connections.items():
        base: FieldPath = ("connections", name)
        if not isinstance(mapping, Mapping):
            found.append(file.problem(base, "a connection must be a mapping",
                                      "give login_url and auth: {type: ...}"))
            continue
        flag = mapping.get(ALLOW_FLAG)
        if flag is not None and not isinstance(flag, bool):
            found.append(file.problem((*base, ALLOW_FLAG), "must be true or false"))
            continue
        mapping = externalize(mapping, name, environ={})  # checked as it will be built
        files = [file.problem((*base, *relative), message, suggestion)
                 for relative, message, suggestion in _file_problems(spec, mapping)]
        found += files
        auth_problems = _auth_problems(mapping)
        if auth_problems or _unknown_auth_type(mapping):
            # every auth field at once (auth's own check stops at the first), and the other
            # fields too: a wrong auth type must not hide a wrong login_url or ca_bundle
            found += [file.problem((*base, *relative), message, suggestion)
                      for relative, message, suggestion in auth_problems]
            if not auth_problems:
                found += _auth_type_problem(spec, mapping, base)
            found += [file.problem((*base, *relative), message, suggestion)
                      for relative, message, suggestion in _other_fields_problems(mapping)
                      if not any(p.path == (*base, *relative) for p in files)]
            continue
        if files:
            continue
        try:
            build(mapping, source=spec.path, name=name)
        except ConfigError as error:
            full = _split_path(error.path)
            path = full if full[:2] == base else (*base, *full)
            found.append(file.problem(path, error.message,
                                      _suggest(error, mapping, path[2:])))
        except ValidationError as error:
            for relative, message, suggestion in from_validation_error(error, mapping):
                found.append(file.problem((*base, *relative), message, suggestion))
    return found
