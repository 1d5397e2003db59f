"""Admin API under `/__emulator/` (main TLS port, no auth): what tests and benchmarks change.

Moves the org's state the way an admin would in Setup (toggles, certificates, approvals) and
reads the counters benchmarks report. Never part of the Salesforce surface.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from typing import Any

from aiohttp import web
from cryptography import x509

from forcebeam.emulator.records.schema import FieldDef
from forcebeam.emulator.records.store import RecordStore, StoreError
from forcebeam.emulator.records.values import datetime_to_ms
from forcebeam.emulator.state import EmulatorState
from forcebeam.emulator.tls import certificate_fingerprint

PREFIX = "/__emulator"


def _state(request: web.Request) -> EmulatorState:
    return request.app["state"]


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except json.JSONDecodeError as error:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"invalid JSON body: {error}"}),
                                 content_type="application/json") from None


async def get_counters(request: web.Request) -> web.Response:
    return web.json_response(_state(request).counters.snapshot())


async def reset_counters(request: web.Request) -> web.Response:
    _state(request).counters.reset()
    return web.json_response(_state(request).counters.snapshot())


async def get_org(request: web.Request) -> web.Response:
    return web.json_response(_state(request).org.as_json())


async def patch_org(request: web.Request) -> web.Response:
    body = await _json(request)
    if not isinstance(body, dict):
        return _bad("body must be a JSON object of org settings")
    try:
        return web.json_response(_state(request).org.update(body))
    except ValueError as error:
        return _bad(str(error))


USER_FLAGS = ("api_enabled", "api_only", "enforce_mutual_tls", "active",
              "approve_uninstalled_apps", "use_any_api_client", "use_any_api_auth")
APP_FLAGS = ("installed", "token_exchange_enabled", "require_secret_for_token_exchange",
             "client_credentials_enabled", "self_authorize")


async def patch_user(request: web.Request) -> web.Response:
    """Change a user's permission flags, e.g. `{"api_enabled": false}` or `{"active": false}`."""
    user = _state(request).identity.user_by_username(request.match_info["username"])
    if user is None:
        return _bad("unknown username", 404)
    body = await _json(request)
    if not isinstance(body, dict) or not body:
        return _bad(f"body must be a JSON object with any of {list(USER_FLAGS)}")
    for key, value in body.items():
        if key not in USER_FLAGS or not isinstance(value, bool):
            return _bad(f"user flag {key!r} must be one of {list(USER_FLAGS)} with a boolean")
    for key, value in body.items():
        setattr(user, key, value)
    return web.json_response({"username": user.username,
                              **{flag: getattr(user, flag) for flag in USER_FLAGS}})


async def _pem_certificate(request: web.Request) -> tuple[bytes, str] | web.Response:
    pem = await request.read()
    try:
        x509.load_pem_x509_certificate(pem)
    except ValueError:
        return _bad("body must be one PEM X.509 certificate")
    return pem, certificate_fingerprint(pem)


async def upload_app_certificate(request: web.Request) -> web.Response:
    state = _state(request)
    app = state.identity.app(request.match_info["consumer_key"])
    if app is None:
        return _bad("unknown consumer key", 404)
    parsed = await _pem_certificate(request)
    if isinstance(parsed, web.Response):
        return parsed
    state.identity.add_app_certificate(app, *parsed)
    return web.json_response({"fingerprint": parsed[1]}, status=201)


async def patch_app(request: web.Request) -> web.Response:
    """Change an app's policies, e.g. `{"installed": false}` (uninstalled apps are blocked)."""
    app = _state(request).identity.app(request.match_info["consumer_key"])
    if app is None:
        return _bad("unknown consumer key", 404)
    body = await _json(request)
    if not isinstance(body, dict) or not body:
        return _bad(f"body must be a JSON object with any of {list(APP_FLAGS)}")
    for key, value in body.items():
        if key not in APP_FLAGS or not isinstance(value, bool):
            return _bad(f"app flag {key!r} must be one of {list(APP_FLAGS)} with a boolean")
    for key, value in body.items():
        setattr(app, key, value)
    return web.json_response({"name": app.name, "kind": app.kind,
                              **{flag: getattr(app, flag) for flag in APP_FLAGS}})


async def get_token_exchange_handler(request: web.Request) -> web.Response:
    return web.json_response(_state(request).identity.token_exchange_handler.as_json())


async def patch_token_exchange_handler(request: web.Request) -> web.Response:
    """Trusted issuers (iss -> PEM public keys), audiences, subject -> username mapping."""
    body = await _json(request)
    if not isinstance(body, dict):
        return _bad("body must be a JSON object of handler settings")
    try:
        return web.json_response(_state(request).identity.token_exchange_handler.update(body))
    except ValueError as error:
        return _bad(str(error))


async def add_callback_url(request: web.Request) -> web.Response:
    """Register another callback URL (e.g. a localhost port a test's receiver listens on)."""
    app = _state(request).identity.app(request.match_info["consumer_key"])
    if app is None:
        return _bad("unknown consumer key", 404)
    body = await _json(request)
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return _bad('body must be {"url": "http(s)://..."}')
    if url not in app.callback_urls:
        app.callback_urls.append(url)
    return web.json_response({"callback_urls": app.callback_urls}, status=201)


async def upload_mutual_auth_certificate(request: web.Request) -> web.Response:
    parsed = await _pem_certificate(request)
    if isinstance(parsed, web.Response):
        return parsed
    _state(request).identity.trust_mutual_auth_certificate(*parsed)
    return web.json_response({"fingerprint": parsed[1]}, status=201)


async def _user_and_app(request: web.Request):
    body = await _json(request)
    if not isinstance(body, dict):
        return _bad('body must be {"username": ..., "consumer_key": ...}')
    state = _state(request)
    user = state.identity.user_by_username(str(body.get("username", "")))
    app = state.identity.app(str(body.get("consumer_key", "")))
    if user is None or app is None:
        return _bad("unknown username or consumer_key", 404)
    return user, app


async def approve(request: web.Request) -> web.Response:
    found = await _user_and_app(request)
    if isinstance(found, web.Response):
        return found
    _state(request).identity.approve(*found)
    return web.json_response({"approved": True}, status=201)


async def issue_refresh_token(request: web.Request) -> web.Response:
    found = await _user_and_app(request)
    if isinstance(found, web.Response):
        return found
    token = _state(request).identity.new_refresh_token(*found)
    return web.json_response({"refresh_token": token.token}, status=201)


async def expire_sessions(request: web.Request) -> web.Response:
    return web.json_response({"expired": _state(request).identity.expire_all_sessions()})


async def touch_records(request: web.Request) -> web.Response:
    state = _state(request)
    body = await _json(request)
    if not isinstance(body, dict) or ("ids" not in body and "count" not in body):
        return _bad('body must be {"ids": [...]} or {"count": N}, optional "system_modstamp"')
    stamp = body.get("system_modstamp")
    try:
        modstamp = datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
    except (AttributeError, ValueError):
        return _bad("system_modstamp must be an ISO 8601 dateTime")
    ids = await asyncio.get_running_loop().run_in_executor(
        None, lambda: state.records.touch(request.match_info["sobject"], body.get("ids"),
                                          body.get("count"), modstamp))
    return web.json_response({"ids": ids})


def _store(request: web.Request) -> RecordStore:
    return _state(request).records


async def empty_recycle_bin(request: web.Request) -> web.Response:
    """Purge soft-deleted rows of an object (body `{"ids": [...]}` for some, else all), as
    Setup's "Empty Recycle Bin" / the SOAP emptyRecycleBin() call do."""
    store = _store(request)
    body = await _json(request)
    wanted = body.get("ids") if isinstance(body, dict) else None
    try:
        purged = await asyncio.get_running_loop().run_in_executor(
            None, lambda: store.empty_recycle_bin(request.match_info["sobject"], wanted))
    except StoreError as error:
        return _bad(error.message, 404)
    return web.json_response({"purged": purged})


async def forget_deleted(request: web.Request) -> web.Response:
    """Move the deletion log's `earliestDateAvailable` forward (`{"before": ISO}`): what
    Salesforce does as it ages out its record of deletions."""
    body = await _json(request)
    try:
        when = datetime.fromisoformat(str(body["before"]).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError):
        return _bad('body must be {"before": "<ISO 8601 dateTime>"}')
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    _store(request).deleted_log.forget_before(datetime_to_ms(when))
    return web.json_response({"earliestDateAvailable": when.isoformat()})


FIELD_TYPES = ("string", "textarea", "int", "double", "currency", "percent", "boolean", "date",
               "datetime", "email", "phone", "url")


async def add_field(request: web.Request) -> web.Response:
    """Create a custom field now: `{"name": "Tier__c", "type": "string", "label": ...,
    "length": 80}` (types: FIELD_TYPES)."""
    body = await _json(request)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        return _bad('body must be {"name": "X__c", "type": ..., "label": ..., "length": N}')
    kind = body.get("type", "string")
    if kind not in FIELD_TYPES:
        return _bad(f"type must be one of {list(FIELD_TYPES)}")
    length = int(body.get("length") or (255 if kind in ("string", "email", "url") else 0))
    precision, scale = (18, 2) if kind in ("double", "currency", "percent") else (0, 0)
    definition = FieldDef(body["name"], kind, str(body.get("label") or body["name"]),
                          length=length, precision=precision, scale=scale, custom=True,
                          nillable=kind != "boolean",
                          default_value="false" if kind == "boolean" else None)
    try:
        _store(request).add_field(request.match_info["sobject"], definition)
    except StoreError as error:
        return _bad(f"{error.code}: {error.message}")
    return web.json_response(definition.describe(), status=201)


async def remove_field(request: web.Request) -> web.Response:
    try:
        _store(request).remove_field(request.match_info["sobject"], request.match_info["field"])
    except StoreError as error:
        return _bad(f"{error.code}: {error.message}", 404)
    return web.Response(status=204)


async def set_field_access(request: web.Request) -> web.Response:
    """Field-level security for one user: `{"readable": false}` hides the field from that
    user (describe omits it, a query naming it gets INVALID_FIELD); true shows it again."""
    user = _state(request).identity.user_by_username(request.match_info["username"])
    if user is None:
        return _bad("unknown username", 404)
    body = await _json(request)
    if not isinstance(body, dict) or not isinstance(body.get("readable"), bool):
        return _bad('body must be {"readable": true|false}')
    try:
        _store(request).set_field_access(user.user_id, request.match_info["sobject"],
                                         request.match_info["field"], body["readable"])
    except StoreError as error:
        return _bad(error.message, 404)
    return web.json_response({"username": user.username, "readable": body["readable"]})


def register(app: web.Application, state: EmulatorState) -> None:
    router = app.router
    router.add_get(f"{PREFIX}/counters", get_counters)
    router.add_post(f"{PREFIX}/counters/reset", reset_counters)
    router.add_get(f"{PREFIX}/org", get_org)
    router.add_patch(f"{PREFIX}/org", patch_org)
    router.add_patch(f"{PREFIX}/users/{{username}}", patch_user)
    router.add_post(f"{PREFIX}/apps/{{consumer_key}}/certificates", upload_app_certificate)
    router.add_post(f"{PREFIX}/apps/{{consumer_key}}/callback-urls", add_callback_url)
    router.add_patch(f"{PREFIX}/apps/{{consumer_key}}", patch_app)
    router.add_get(f"{PREFIX}/token-exchange-handler", get_token_exchange_handler)
    router.add_patch(f"{PREFIX}/token-exchange-handler", patch_token_exchange_handler)
    router.add_post(f"{PREFIX}/mutual-auth-certificates", upload_mutual_auth_certificate)
    router.add_post(f"{PREFIX}/approvals", approve)
    router.add_post(f"{PREFIX}/refresh-tokens", issue_refresh_token)
    router.add_post(f"{PREFIX}/sessions/expire", expire_sessions)
    router.add_post(f"{PREFIX}/records/{{sobject}}/touch", touch_records)
    router.add_post(f"{PREFIX}/records/{{sobject}}/empty-recycle-bin", empty_recycle_bin)
    router.add_post(f"{PREFIX}/deleted-records/forget", forget_deleted)
    router.add_post(f"{PREFIX}/schema/{{sobject}}/fields", add_field)
    router.add_delete(f"{PREFIX}/schema/{{sobject}}/fields/{{field}}", remove_field)
    router.add_put(f"{PREFIX}/users/{{username}}/field-access/{{sobject}}/{{field}}",
                   set_field_access)
    # /__emulator/faults (GET/PUT/DELETE) is registered by emulator.wire.faults
