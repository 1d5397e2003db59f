"""Google Cloud Secret Manager v1 REST endpoint (plain HTTP, anonymous), for local runs.

Paths and verbs match the official python client's REST transport
(`secretmanager_v1/.../transports/rest_base.py`), so
`SecretManagerServiceClient(transport="rest", client_options={"api_endpoint": ...})` works
unmodified. Payload checksums are CRC32C (google-crc32c), sent as decimal strings (int64 JSON).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

import google_crc32c
from aiohttp import web

from forcebeam.emulator.state import EmulatorState
from forcebeam.emulator.state.secrets import Secret, SecretStore, SecretVersion

SECRET = "/v1/projects/{project}/secrets/{secret:[^/:]+}"  # noqa: S105 (a route)
VERSION = SECRET + "/versions/{version:[^/:]+}"


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _google_error(code: int, status: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "status": status}},
                             status=code)


def _store(request: web.Request) -> SecretStore:
    return request.app["state"].secrets


def _secret_json(secret: Secret) -> dict[str, Any]:
    return {"name": secret.name, "replication": {"automatic": {}},
            "createTime": _time(secret.created), "labels": secret.labels, "etag": '"1"'}


def _version_json(secret: Secret, version: SecretVersion) -> dict[str, Any]:
    return {"name": f"{secret.name}/versions/{version.number}",
            "createTime": _time(version.created), "state": version.state,
            "replicationStatus": {"automatic": {}}, "etag": '"1"',
            "clientSpecifiedPayloadChecksum": True}


def _secret_or_404(request: web.Request) -> Secret | web.Response:
    project, secret_id = request.match_info["project"], request.match_info["secret"]
    secret = _store(request).get(project, secret_id)
    if secret is None:
        return _google_error(404, "NOT_FOUND",
                             f"Secret [projects/{project}/secrets/{secret_id}] not found.")
    return secret


def _version_or_404(request: web.Request) -> tuple[Secret, SecretVersion] | web.Response:
    project, secret_id = request.match_info["project"], request.match_info["secret"]
    version_id = request.match_info["version"]
    secret = _store(request).get(project, secret_id)
    version = SecretStore.version(secret, version_id) if secret else None
    if secret is None or version is None:
        if version_id == "latest" or secret is None:
            return _google_error(404, "NOT_FOUND", f"Secret [projects/{project}/secrets/"
                                 f"{secret_id}] not found or has no versions.")
        return _google_error(404, "NOT_FOUND", f"Secret Version [projects/{project}/secrets/"
                             f"{secret_id}/versions/{version_id}] not found.")
    return secret, version


async def access_version(request: web.Request) -> web.Response:
    found = _version_or_404(request)
    if isinstance(found, web.Response):
        return found
    secret, version = found
    if version.state != "ENABLED":
        return _google_error(400, "FAILED_PRECONDITION", f"{secret.name}/versions/"
                             f"{version.number} is in {version.state} state.")
    return web.json_response({
        "name": f"{secret.name}/versions/{version.number}",
        "payload": {"data": base64.b64encode(version.data).decode("ascii"),
                    "dataCrc32c": str(google_crc32c.value(version.data))}})


async def get_version(request: web.Request) -> web.Response:
    found = _version_or_404(request)
    if isinstance(found, web.Response):
        return found
    return web.json_response(_version_json(*found))


async def list_versions(request: web.Request) -> web.Response:
    secret = _secret_or_404(request)
    if isinstance(secret, web.Response):
        return secret
    versions = [_version_json(secret, v) for v in reversed(secret.versions)]
    return web.json_response({"versions": versions, "totalSize": len(versions)})


async def get_secret(request: web.Request) -> web.Response:
    secret = _secret_or_404(request)
    if isinstance(secret, web.Response):
        return secret
    return web.json_response(_secret_json(secret))


async def delete_secret(request: web.Request) -> web.Response:
    project, secret_id = request.match_info["project"], request.match_info["secret"]
    if not _store(request).delete(project, secret_id):
        return _google_error(404, "NOT_FOUND",
                             f"Secret [projects/{project}/secrets/{secret_id}] not found.")
    return web.json_response({})


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = json.loads(await request.read() or b"{}")
    except json.JSONDecodeError:
        return {"__invalid__": True}
    return body if isinstance(body, dict) else {"__invalid__": True}


async def create_secret(request: web.Request) -> web.Response:
    project = request.match_info["project"]
    secret_id = request.query.get("secretId", "")
    if not secret_id:
        return _google_error(400, "INVALID_ARGUMENT", "secretId is required.")
    body = await _json_body(request)
    if "__invalid__" in body:
        return _google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
    secret = _store(request).create(project, secret_id, body.get("labels") or {})
    if secret is None:
        return _google_error(409, "ALREADY_EXISTS",
                             f"Secret [projects/{project}/secrets/{secret_id}] already exists.")
    return web.json_response(_secret_json(secret))


async def list_secrets(request: web.Request) -> web.Response:
    secrets = _store(request).list(request.match_info["project"])
    return web.json_response({"secrets": [_secret_json(s) for s in secrets],
                              "totalSize": len(secrets)})


async def add_version(request: web.Request) -> web.Response:
    secret = _secret_or_404(request)
    if isinstance(secret, web.Response):
        return secret
    body = await _json_body(request)
    payload = body.get("payload") if isinstance(body.get("payload"), dict) else None
    if payload is None:
        return _google_error(400, "INVALID_ARGUMENT", "payload is required.")
    try:
        data = base64.b64decode(payload.get("data", ""), validate=True)
    except (binascii.Error, ValueError):
        return _google_error(400, "INVALID_ARGUMENT", "payload.data must be base64.")
    checksum = payload.get("dataCrc32c")
    if checksum is not None and int(checksum) != google_crc32c.value(data):
        return _google_error(400, "INVALID_ARGUMENT", "Checksum mismatch: payload.data_crc32c "
                             "does not match the CRC32C of payload.data.")
    version = _store(request).add_version(secret, data)
    return web.json_response(_version_json(secret, version))


def _version_state_change(new_state: str):
    """`:disable`, `:enable`, `:destroy` on one version (destroy also drops the payload)."""

    async def change(request: web.Request) -> web.Response:
        found = _version_or_404(request)
        if isinstance(found, web.Response):
            return found
        secret, version = found
        if version.state == "DESTROYED" and new_state != "DESTROYED":
            return _google_error(400, "FAILED_PRECONDITION", f"{secret.name}/versions/"
                                 f"{version.number} is in DESTROYED state.")
        version.state = new_state
        if new_state == "DESTROYED":
            version.data = b""
        return web.json_response(_version_json(secret, version))

    return change


def register(app: web.Application, state: EmulatorState) -> None:
    app.router.add_get(VERSION + ":access", access_version)
    app.router.add_get(VERSION, get_version)
    app.router.add_post(VERSION + ":disable", _version_state_change("DISABLED"))
    app.router.add_post(VERSION + ":enable", _version_state_change("ENABLED"))
    app.router.add_post(VERSION + ":destroy", _version_state_change("DESTROYED"))
    app.router.add_get(SECRET + "/versions", list_versions)
    app.router.add_post(SECRET + ":addVersion", add_version)
    app.router.add_get(SECRET, get_secret)
    app.router.add_delete(SECRET, delete_secret)
    app.router.add_post("/v1/projects/{project}/secrets", create_secret)
    app.router.add_get("/v1/projects/{project}/secrets", list_secrets)
