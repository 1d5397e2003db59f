"""The connection value: where to log in, how, and which secrets (by reference) to use.

A Connection is frozen, hashable and picklable, and holds references only, so Beam can ship it
to workers and the factory can use it as the key of its process-wide client cache. Build one
from the YAML-shaped dict of ARCHITECTURE §3 with :meth:`Connection.from_mapping`, which turns
every validation problem into a :class:`ConfigError` naming the file, the field and a fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError, field_validator

from forcebeam.auth.config_types import INLINE_SECRET_HINT, AuthConfig, FrozenModel, MutualTlsConfig
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
        """Validate a YAML-shaped connection dict; raise ConfigError naming file, field, fix."""
        from forcebeam.auth.flows import get_flow, known_types

        if not isinstance(data, Mapping):
            raise ConfigError(f"must be a mapping, got {type(data).__name__}", source=source,
                              path=path, suggestion="see the connections: example in README")
        fields = dict(data)
        auth_data = fields.get("auth")
        if not isinstance(auth_data, Mapping):
            raise ConfigError("auth is missing or not a mapping", source=source,
                              path=f"{path}.auth", suggestion="add auth: {type: jwt_bearer, …}; "
                              f"types: {', '.join(known_types())}")
        auth_type = auth_data.get("type")
        try:
            flow = get_flow(str(auth_type))
        except KeyError:
            raise ConfigError(f"unknown auth type {auth_type!r}", source=source,
                              path=f"{path}.auth.type",
                              suggestion=f"use one of: {', '.join(known_types())}") from None
        try:
            auth = flow.config_model.model_validate(dict(auth_data))
        except ValidationError as error:
            raise _config_error(error, source, f"{path}.auth", flow.config_model) from None
        fields["auth"] = auth
        if isinstance(fields.get("ca_bundle"), str) and fields["ca_bundle"].strip():
            fields["ca_bundle"] = _relative_to_source(fields["ca_bundle"], source)
        try:
            connection = cls.model_validate(fields)
        except ValidationError as error:
            raise _config_error(error, source, path, cls) from None
        host = urlsplit(connection.login_url).hostname
        if auth.type == "client_credentials" and host in GENERIC_LOGIN_HOSTS:
            raise ConfigError("client_credentials cannot log in on the generic login host "
                              f"{host} (Salesforce answers 'request not supported on this "
                              "domain')", source=source, path=f"{path}.login_url",
                              suggestion="use your My Domain, e.g. "
                                         "https://acme.my.salesforce.com")
        return connection


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


def _config_error(error: ValidationError, source: str, path: str, model: type) -> ConfigError:
    """The first problem of a pydantic error as a ConfigError (the rest counted)."""
    problems = error.errors(include_input=False, include_url=False)
    first = problems[0]
    location = ".".join(str(part) for part in first["loc"] if part != "function-after[_check_"
                        "reference(), str]")
    field_path = f"{path}.{location}" if location else path
    message = first["msg"].removeprefix("Value error, ")
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(getattr(model, "model_fields", {}))
        message = "unknown field"
        suggestion = f"remove it or fix its spelling; allowed here: {allowed}"
    elif kind == "missing":
        message = "required field is missing"
        suggestion = "add it (see the auth table in README)"
    elif "secret reference" in message and "unknown secret scheme" not in message:
        suggestion = INLINE_SECRET_HINT
        message = "must be a secret reference, not a literal value"
    else:
        suggestion = ""
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s) in this section)"
    return ConfigError(message, source=source, path=field_path, suggestion=suggestion)
