"""The connection value: where to log in, how, and which secrets (by reference) to use.

A Connection is frozen, hashable and picklable, and holds references only, so Beam can ship it
to workers and the factory can use it as the key of its process-wide client cache. Build one
from the YAML-shaped dict of ARCHITECTURE §3 with :meth:`Connection.from_mapping`, the one
validation of a connection: it reports every problem at once in a
:class:`ConnectionConfigError` (each with its field path and fix).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError, field_validator

from forcebeam.auth.config_problems import (
    Problem,
    format_path,
    from_validation_error,
    suggestion_for,
)
from forcebeam.auth.config_types import AuthConfig, FrozenModel, MutualTlsConfig
from forcebeam.auth.errors import ConfigError

DEFAULT_API_VERSION = "62.0"
GENERIC_LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")
LOGIN_URL_HINT = ("use https://login.salesforce.com, https://test.salesforce.com or your My "
                  "Domain, e.g. https://acme.my.salesforce.com")


class Connection(FrozenModel):
    """A named way to reach one org. Never holds a secret value (see ``auth.secrets``)."""

    login_url: str
    auth: AuthConfig
    api_version: str = DEFAULT_API_VERSION
    ca_bundle: str | None = None
    mutual_tls: MutualTlsConfig | None = None
    max_api_usage: str | None = None

    @field_validator("login_url")
    @classmethod
    def _https_origin(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"must be an https:// URL; {LOGIN_URL_HINT}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"must be just scheme://host[:port] without a path; {LOGIN_URL_HINT}")
        if parts.username or parts.password:
            raise ValueError("must not hold credentials; put them under auth:")
        return urlunsplit(("https", parts.netloc.lower(), "", "", ""))

    @field_validator("api_version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> str:
        text = str(value).strip().lstrip("vV")
        if re.fullmatch(r"\d+", text):
            text += ".0"
        if not re.fullmatch(r"\d+\.0", text) or not 31 <= int(text.split(".")[0]) <= 99:
            raise ValueError('must be a Salesforce API version such as "62.0" (31.0 or later)')
        return text

    @field_validator("ca_bundle")
    @classmethod
    def _bundle(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be the path of a PEM file of CA certificates; remove "
                             "ca_bundle to trust the system's certificate authorities")
        return value

    @field_validator("max_api_usage", mode="before")
    @classmethod
    def _usage(cls, value: Any) -> str | None:
        if value is None:
            return None
        text = str(value).strip()
        if re.fullmatch(r"\d+(\.\d+)?%", text) and 0 < float(text[:-1]) <= 100:
            return text
        if re.fullmatch(r"\d+", text) and int(text) > 0:
            return text
        raise ValueError('must be a percentage of the daily API limit such as "80%", or a '
                         "positive number of calls")

    # ------------------------------------------------------------------ derived facts

    def api_usage_ceiling(self, daily_max: int) -> int | None:
        """The number of API calls (of ``daily_max``) this connection may use, or None."""
        if self.max_api_usage is None:
            return None
        if self.max_api_usage.endswith("%"):
            return int(daily_max * float(self.max_api_usage[:-1]) / 100)
        return int(self.max_api_usage)

    def login_endpoint(self) -> str:
        """Where logins go: the login host, on the mutual-TLS port when mTLS is configured."""
        if self.mutual_tls is None:
            return self.login_url
        return with_port(self.login_url, self.mutual_tls.port)

    def api_endpoint(self, instance_url: str) -> str:
        """Where API calls go for a token's ``instance_url``.

        With mutual TLS the token response's instance_url has no port (Salesforce answers mTLS
        on 8443 of the My Domain host), so the configured port is put back; an explicit port
        (a listener that served the token itself) is kept.
        """
        parts = urlsplit(instance_url)
        origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        if self.mutual_tls is None or parts.port is not None:
            return origin
        return with_port(origin, self.mutual_tls.port)

    def __repr__(self) -> str:  # references only, but keep it short and obviously safe
        mtls = f", mutual_tls=port {self.mutual_tls.port}" if self.mutual_tls else ""
        return f"Connection({self.login_url}, auth={self.auth.type}{mtls})"

    __str__ = __repr__

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "<config>",
                     path: str = "connection") -> Connection:
        """Validate a YAML-shaped connection dict, once: every problem at once in a
        :class:`ConnectionConfigError` (file, field path, fix); a mapping validated before
        in this process (e.g. by `forcebeam run`, then by the stage it builds) is not
        validated again."""
        if not isinstance(data, Mapping):
            raise ConnectionConfigError([Problem((), f"must be a mapping, got "
                                                 f"{type(data).__name__}",
                                                 "see the connections: example in README")],
                                        source=source, path=path)
        fields = dict(data)
        if isinstance(fields.get("ca_bundle"), str) and fields["ca_bundle"].strip():
            fields["ca_bundle"] = _relative_to_source(fields["ca_bundle"], source)
        key = json.dumps(fields, sort_keys=True, default=repr)
        connection = _validated.get(key)
        if connection is None:
            problems, connection = _check(fields)
            if problems:
                raise ConnectionConfigError(problems, source=source, path=path)
            with _validated_lock:
                if len(_validated) >= _VALIDATED_MAX:
                    _validated.clear()
                _validated[key] = connection
        return connection


class ConnectionConfigError(ConfigError):
    """Every problem of one connection; ``problems`` hold paths relative to the connection,
    so a caller that knows the file places each at its line. The ConfigError fields (path,
    message, suggestion) describe the first problem; the text lists all of them."""

    def __init__(self, problems: Sequence[Problem], *, source: str = "<config>",
                 path: str = "connection") -> None:
        self.problems = list(problems)
        self.base_path = path
        first, *rest = self.problems
        super().__init__(first.message, source=source, path=self.path_of(first),
                         suggestion=first.fix)
        if rest:
            self.args = ("\n".join([str(ConfigError(problem.message, source=source,
                                                     path=self.path_of(problem),
                                                     suggestion=problem.fix))
                                     for problem in self.problems]),)

    def path_of(self, problem: Problem) -> str:
        return ".".join(part for part in (self.base_path, format_path(problem.path)) if part)

    def __reduce__(self):
        return (_rebuild_error, (self.problems, self.source, self.base_path))


def _rebuild_error(problems: list[Problem], source: str, path: str) -> ConnectionConfigError:
    return ConnectionConfigError(problems, source=source, path=path)


_VALIDATED_MAX = 256
_validated_lock = threading.Lock()
_validated: dict[str, Connection] = {}


def _check(fields: dict[str, Any]) -> tuple[list[Problem], Connection | None]:
    """All problems of a connection mapping: its auth block through the flow's own model,
    and the other fields even when auth is wrong (a wrong auth type must not hide a wrong
    login_url)."""
    from forcebeam.auth.flows import get_flow, known_types

    problems: list[Problem] = []
    auth_data = fields.pop("auth", None)
    auth: AuthConfig | None = None
    if not isinstance(auth_data, Mapping):
        problems.append(Problem(("auth",), "auth is missing or not a mapping",
                                "add auth: {type: jwt_bearer, …}; types: "
                                f"{', '.join(known_types())}"))
    else:
        auth_type = auth_data.get("type")
        try:
            flow = get_flow(str(auth_type))
        except KeyError:
            problems.append(Problem(("auth", "type"), f"unknown auth type {auth_type!r}",
                                    suggestion_for(str(auth_type), known_types())))
        else:
            try:
                auth = flow.config_model.model_validate(dict(auth_data))
            except ValidationError as error:
                problems += [problem.under("auth") for problem
                             in from_validation_error(error, flow.config_model)]
    # The rest, with a stand-in auth when it is wrong (its problems are listed above).
    fields["auth"] = auth or AuthConfig(type="(invalid)")
    try:
        connection = Connection.model_validate(fields)
    except ValidationError as error:
        return problems + from_validation_error(error, Connection), None
    if auth is None:
        return problems, None
    host = urlsplit(connection.login_url).hostname
    if auth.type == "client_credentials" and host in GENERIC_LOGIN_HOSTS:
        problems.append(Problem(("login_url",), "client_credentials cannot log in on the "
                                f"generic login host {host} (Salesforce answers 'request not "
                                "supported on this domain')",
                                "use your My Domain, e.g. https://acme.my.salesforce.com"))
    return problems, (None if problems else connection)


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path, "", ""))


def _relative_to_source(value: str, source: str) -> str:
    """A relative ca_bundle is read next to the pipeline file that names it."""
    candidate = Path(value).expanduser()
    if candidate.is_absolute():
        return str(candidate)
    source_path = Path(source)
    if source_path.is_file():
        return str((source_path.parent / candidate).resolve())
    return str(candidate.resolve())
