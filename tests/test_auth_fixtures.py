"""Helpers shared by the auth tests (no tests here): connections for every auth type built
from the emulator's info file, the way a user writes them in a pipeline file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from forcebeam.auth import Connection, factory, secrets
from tests.support.org import EmulatedOrg, trusting_session

AUTH_TYPES = ("jwt_bearer", "client_credentials", "refresh_token", "password", "basic",
              "access_token")


@pytest.fixture
def clean_auth_state() -> Iterator[None]:
    """Every test starts with no shared client, no remembered failure, no cached secret."""
    factory.reset()
    secrets.clear_cache()
    yield
    factory.reset()
    secrets.clear_cache()


def mtls_port(org: EmulatedOrg) -> int:
    return int(urlsplit(org.info["mtls_url"]).port)


def user_of(org: EmulatedOrg, mtls: bool) -> tuple[str, str, str]:
    info = org.info
    if mtls:
        return info["mtls_username"], info["mtls_password"], info["mtls_security_token"]
    return info["username"], info["password"], info["security_token"]


def raw_password_login(org: EmulatedOrg, *, mtls: bool = False) -> dict[str, Any]:
    """A token obtained outside forcebeam (what an access_token connection is given)."""
    username, password, token = user_of(org, mtls)
    app = org.info["connected_app"]
    client_tls = org.info["client_tls"]
    session = trusting_session(org.ca_cert, (client_tls["certificate"],
                                             client_tls["private_key"]) if mtls else None)
    base = org.info["mtls_url"] if mtls else org.info["login_url"]
    response = session.post(base + "/services/oauth2/token", timeout=30, data={
        "grant_type": "password", "client_id": app["consumer_key"],
        "client_secret": app["consumer_secret"], "username": username,
        "password": password + token})
    response.raise_for_status()
    return response.json()


def auth_section(org: EmulatedOrg, auth_type: str, monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path, *, mtls: bool = False) -> dict[str, Any]:
    """The `auth:` mapping for one type; secrets come from Secret Manager, env and files."""
    info = org.info
    app = info["connected_app"]
    username, password, token = user_of(org, mtls)
    monkeypatch.setenv("SECRET_MANAGER_EMULATOR_HOST", info["secret_manager_host"])
    monkeypatch.setenv("FB_SF_PASSWORD", password)
    monkeypatch.setenv("FB_SF_CONSUMER_SECRET", app["consumer_secret"])
    (tmp_path / "security-token").write_text(token)
    if auth_type == "jwt_bearer":
        return {"type": "jwt_bearer", "username": username, "consumer_key": app["consumer_key"],
                "private_key": app["private_key_secret"]}
    if auth_type == "client_credentials":
        return {"type": "client_credentials", "consumer_key": app["consumer_key"],
                "consumer_secret": "env://FB_SF_CONSUMER_SECRET"}
    if auth_type == "refresh_token":
        issued = org.admin("POST", "refresh-tokens", json={
            "username": username, "consumer_key": app["consumer_key"]}).json()
        (tmp_path / "refresh-token").write_text(issued["refresh_token"])
        return {"type": "refresh_token", "consumer_key": app["consumer_key"],
                "consumer_secret": "env://FB_SF_CONSUMER_SECRET",
                "refresh_token": f"file://{tmp_path / 'refresh-token'}"}
    if auth_type == "password":
        return {"type": "password", "username": username, "password": "env://FB_SF_PASSWORD",
                "security_token": f"file://{tmp_path / 'security-token'}",
                "consumer_key": app["consumer_key"],
                "consumer_secret": "env://FB_SF_CONSUMER_SECRET"}
    if auth_type == "basic":
        return {"type": "basic", "username": username, "password": "env://FB_SF_PASSWORD",
                "security_token": f"file://{tmp_path / 'security-token'}"}
    if auth_type == "access_token":
        login = raw_password_login(org, mtls=mtls)
        monkeypatch.setenv("FB_SF_ACCESS_TOKEN", login["access_token"])
        return {"type": "access_token", "access_token": "env://FB_SF_ACCESS_TOKEN",
                "instance_url": login["instance_url"]}
    raise ValueError(auth_type)


def connection_for(org: EmulatedOrg, auth: dict[str, Any], *, mtls: bool = False,
                   **extra: Any) -> Connection:
    info = org.info
    data: dict[str, Any] = {"login_url": info["login_url"], "api_version": info["api_version"],
                            "ca_bundle": org.ca_cert, "auth": auth, **extra}
    if mtls:
        data["mutual_tls"] = {"certificate": f"file://{info['client_tls']['certificate']}",
                              "private_key": f"file://{info['client_tls']['private_key']}",
                              "port": mtls_port(org)}
    return Connection.from_mapping(data, source="test-pipeline.yaml", path="connections.org")
